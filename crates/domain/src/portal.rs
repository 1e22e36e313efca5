//! The client portal: the actions a business offers its customers, the
//! customer's overrides on top of them, branding checks, the logo's image
//! types and the notifications the portal shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::organization::Locale;

/// The four call-to-action buttons of the portal. Each one's customer
/// endpoints answer 403 `portal_action_disabled` while it is off for the
/// customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalAction {
    Bookings,
    Payments,
    Documents,
    Messages,
}

impl PortalAction {
    /// Every action, in the default display order.
    pub const ALL: [PortalAction; 4] = [
        PortalAction::Bookings,
        PortalAction::Payments,
        PortalAction::Documents,
        PortalAction::Messages,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PortalAction::Bookings => "bookings",
            PortalAction::Payments => "payments",
            PortalAction::Documents => "documents",
            PortalAction::Messages => "messages",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The button's label when the business has not overridden it.
    pub fn default_label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (PortalAction::Bookings, Locale::Fr) => "Réservations",
            (PortalAction::Bookings, Locale::En) => "Bookings",
            (PortalAction::Payments, Locale::Fr) => "Paiements",
            (PortalAction::Payments, Locale::En) => "Payments",
            (PortalAction::Documents, Locale::Fr) => "Documents",
            (PortalAction::Documents, Locale::En) => "Documents",
            (PortalAction::Messages, Locale::Fr) => "Contacter l'entreprise",
            (PortalAction::Messages, Locale::En) => "Contact the business",
        }
    }
}

/// One action as the business configured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSetting {
    pub action: PortalAction,
    pub enabled: bool,
    /// Label overrides by language code (`fr`, `en`).
    #[serde(default)]
    pub labels: BTreeMap<Locale, String>,
}

impl ActionSetting {
    /// The label shown in `locale`: the override, else the default.
    pub fn label(&self, locale: Locale) -> String {
        self.labels
            .get(&locale)
            .cloned()
            .unwrap_or_else(|| self.action.default_label(locale).to_owned())
    }
}

/// Why a list of action settings is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionsError {
    #[error("action {0} is listed twice")]
    Duplicate(&'static str),
}

/// The business's actions, in display order, every action present once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalActions(Vec<ActionSetting>);

impl Default for PortalActions {
    /// Every action on, in the default order, with the default labels.
    fn default() -> Self {
        PortalActions(
            PortalAction::ALL
                .into_iter()
                .map(|action| ActionSetting {
                    action,
                    enabled: true,
                    labels: BTreeMap::new(),
                })
                .collect(),
        )
    }
}

impl PortalActions {
    /// Takes the business's list: an action listed twice is refused; an
    /// action left out keeps its place after the listed ones, switched off
    /// (what is not offered is not shown).
    pub fn new(list: Vec<ActionSetting>) -> Result<Self, ActionsError> {
        let mut seen = Vec::with_capacity(4);
        for s in &list {
            if seen.contains(&s.action) {
                return Err(ActionsError::Duplicate(s.action.as_str()));
            }
            seen.push(s.action);
        }
        let mut all = list;
        for action in PortalAction::ALL {
            if !seen.contains(&action) {
                all.push(ActionSetting {
                    action,
                    enabled: false,
                    labels: BTreeMap::new(),
                });
            }
        }
        Ok(PortalActions(all))
    }

    pub fn list(&self) -> &[ActionSetting] {
        &self.0
    }

    /// The actions with `overrides` (action → on/off for one customer) on
    /// top, in the business's order.
    pub fn effective(&self, overrides: &[(PortalAction, bool)]) -> Vec<ActionSetting> {
        self.0
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if let Some((_, on)) = overrides.iter().find(|(a, _)| *a == s.action) {
                    s.enabled = *on;
                }
                s
            })
            .collect()
    }

    /// Whether `action` is on once `overrides` are applied.
    pub fn is_enabled(&self, action: PortalAction, overrides: &[(PortalAction, bool)]) -> bool {
        if let Some((_, on)) = overrides.iter().find(|(a, _)| *a == action) {
            return *on;
        }
        self.0
            .iter()
            .find(|s| s.action == action)
            .is_some_and(|s| s.enabled)
    }
}

/// Whether `s` is an accent colour as `#rrggbb`.
pub fn is_accent_color(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7 && b[0] == b'#' && b[1..].iter().all(u8::is_ascii_hexdigit)
}

/// The largest logo accepted, in bytes.
pub const LOGO_MAX_BYTES: usize = 512 * 1024;

/// The image types a logo may have, recognized by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoType {
    Png,
    Jpeg,
}

impl LogoType {
    /// The type the content's magic bytes announce, whatever was declared.
    pub fn sniff(content: &[u8]) -> Option<Self> {
        if content.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(LogoType::Png)
        } else if content.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(LogoType::Jpeg)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            LogoType::Png => "image/png",
            LogoType::Jpeg => "image/jpeg",
        }
    }
}

/// A notification about to be written for one customer, already in the
/// customer's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// What caused it, e.g. `schedule.card_changed`, `document.shared`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// The API path of the object it is about.
    pub link: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
}

/// The notification an event of type `event_type` about `object_id` gives
/// its customer, in `locale`; `None` for events a customer is not told
/// about in the portal (or those they caused themselves and already see).
pub fn notification_for_event(
    event_type: &str,
    object_type: &str,
    object_id: &str,
    locale: Locale,
) -> Option<NewNotification> {
    let fr = locale == Locale::Fr;
    let (title, body, link) = match event_type {
        "schedule.card_changed" => (
            if fr {
                "Carte modifiée"
            } else {
                "Card changed"
            },
            if fr {
                "La carte de votre échéancier a été modifiée."
            } else {
                "The card of your schedule was changed."
            },
            Some(format!("/v1/me/schedules/{object_id}")),
        ),
        "schedule.regularized" => (
            if fr {
                "Régularisation effectuée"
            } else {
                "Payment regularized"
            },
            if fr {
                "Votre impayé a été régularisé."
            } else {
                "Your unpaid amount was settled."
            },
            Some(format!("/v1/me/schedules/{object_id}")),
        ),
        "instalment.failed" => (
            if fr {
                "Échéance impayée"
            } else {
                "Instalment failed"
            },
            if fr {
                "Le prélèvement d'une échéance a échoué. Vous pouvez régulariser depuis votre espace."
            } else {
                "An instalment could not be debited. You can settle it from your portal."
            },
            Some(format!("/v1/me/schedules/{object_id}")),
        ),
        "mandate.signed" => (
            if fr {
                "Mandat signé"
            } else {
                "Mandate signed"
            },
            if fr {
                "Votre mandat de prélèvement SEPA est signé."
            } else {
                "Your SEPA direct-debit mandate is signed."
            },
            Some(format!("/v1/me/mandates/{object_id}")),
        ),
        "invoice.issued" => (
            if fr {
                "Nouvelle facture"
            } else {
                "New invoice"
            },
            if fr {
                "Une facture vous a été adressée ; vous pouvez la régler en ligne."
            } else {
                "An invoice was sent to you; you can pay it online."
            },
            Some(format!("/v1/me/invoices/{object_id}")),
        ),
        "invoice.paid" => (
            if fr {
                "Facture réglée"
            } else {
                "Invoice paid"
            },
            if fr {
                "Votre facture est réglée. Le reçu vous a été envoyé."
            } else {
                "Your invoice is paid. The receipt was sent to you."
            },
            Some(format!("/v1/me/invoices/{object_id}")),
        ),
        "invoice.payment_failed" => (
            if fr {
                "Paiement refusé"
            } else {
                "Payment refused"
            },
            if fr {
                "Le paiement d'une facture a été refusé. Vous pouvez réessayer avec une autre carte."
            } else {
                "A payment of an invoice was refused. You can try again with another card."
            },
            Some(format!("/v1/me/invoices/{object_id}")),
        ),
        "booking.confirmed" => (
            if fr {
                "Rendez-vous confirmé"
            } else {
                "Booking confirmed"
            },
            if fr {
                "Votre rendez-vous est confirmé."
            } else {
                "Your booking is confirmed."
            },
            Some(format!("/v1/me/bookings/{object_id}")),
        ),
        "booking.declined" => (
            if fr {
                "Demande refusée"
            } else {
                "Request declined"
            },
            if fr {
                "L'entreprise ne peut pas accepter votre demande de rendez-vous."
            } else {
                "The business cannot accept your booking request."
            },
            Some(format!("/v1/me/bookings/{object_id}")),
        ),
        "booking.cancelled" => (
            if fr {
                "Rendez-vous annulé"
            } else {
                "Booking cancelled"
            },
            if fr {
                "Votre rendez-vous est annulé."
            } else {
                "Your booking is cancelled."
            },
            Some(format!("/v1/me/bookings/{object_id}")),
        ),
        "booking.reminder_sent" => (
            if fr {
                "Rendez-vous bientôt"
            } else {
                "Booking soon"
            },
            if fr {
                "Rappel : votre rendez-vous approche."
            } else {
                "Reminder: your booking is coming up."
            },
            Some(format!("/v1/me/bookings/{object_id}")),
        ),
        _ => return None,
    };
    let link = match (event_type, object_type) {
        // An instalment's event names the instalment; its page is its
        // schedule's, which the link cannot name without the schedule id.
        ("instalment.failed", "instalment") => None,
        _ => link,
    };
    Some(NewNotification {
        kind: event_type.to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
        link,
        object_type: Some(object_type.to_owned()),
        object_id: Some(object_id.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_settings_put_the_customer_over_the_business() {
        let actions = PortalActions::new(vec![
            ActionSetting {
                action: PortalAction::Documents,
                enabled: true,
                labels: BTreeMap::new(),
            },
            ActionSetting {
                action: PortalAction::Messages,
                enabled: false,
                labels: BTreeMap::new(),
            },
        ])
        .unwrap();
        let order: Vec<_> = actions.list().iter().map(|s| s.action).collect();
        assert_eq!(
            order,
            [
                PortalAction::Documents,
                PortalAction::Messages,
                PortalAction::Bookings,
                PortalAction::Payments
            ]
        );
        assert!(actions.is_enabled(PortalAction::Documents, &[]));
        assert!(!actions.is_enabled(PortalAction::Bookings, &[]));
        let over = [
            (PortalAction::Documents, false),
            (PortalAction::Messages, true),
        ];
        assert!(!actions.is_enabled(PortalAction::Documents, &over));
        assert!(actions.is_enabled(PortalAction::Messages, &over));
        let eff = actions.effective(&over);
        assert!(!eff[0].enabled && eff[1].enabled && !eff[2].enabled);
    }

    #[test]
    fn an_action_listed_twice_is_refused() {
        let s = ActionSetting {
            action: PortalAction::Payments,
            enabled: true,
            labels: BTreeMap::new(),
        };
        assert_eq!(
            PortalActions::new(vec![s.clone(), s]),
            Err(ActionsError::Duplicate("payments"))
        );
    }

    #[test]
    fn labels_fall_back_to_the_defaults() {
        let mut labels = BTreeMap::new();
        labels.insert(Locale::En, "Book".to_owned());
        let a = PortalActions::new(vec![ActionSetting {
            action: PortalAction::Bookings,
            enabled: true,
            labels,
        }])
        .unwrap();
        assert_eq!(a.list()[0].label(Locale::En), "Book");
        assert_eq!(a.list()[0].label(Locale::Fr), "Réservations");
    }

    #[test]
    fn logos_are_recognized_by_their_magic_bytes() {
        assert_eq!(LogoType::sniff(b"\x89PNG\r\n\x1a\nxx"), Some(LogoType::Png));
        assert_eq!(
            LogoType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(LogoType::Jpeg)
        );
        assert_eq!(LogoType::sniff(b"GIF89a"), None);
        assert_eq!(LogoType::sniff(b"%PDF-1.7"), None);
    }

    #[test]
    fn accent_colours_are_hex_triplets() {
        assert!(is_accent_color("#1a2B3c"));
        assert!(!is_accent_color("1a2b3c"));
        assert!(!is_accent_color("#1a2b3"));
        assert!(!is_accent_color("#1a2b3g"));
    }

    #[test]
    fn events_give_notifications_in_the_customer_language() {
        let n = notification_for_event("schedule.card_changed", "schedule", "sch_1", Locale::En)
            .unwrap();
        assert_eq!(n.title, "Card changed");
        assert_eq!(n.link.as_deref(), Some("/v1/me/schedules/sch_1"));
        let n = notification_for_event("mandate.signed", "mandate", "mdt_1", Locale::Fr).unwrap();
        assert_eq!(n.title, "Mandat signé");
        assert!(notification_for_event("customer.created", "customer", "c", Locale::Fr).is_none());
    }
}
