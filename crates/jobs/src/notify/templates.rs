//! The texts of every message, in French and English.

use guichet_domain::Locale;

use super::Channel;

/// A message to send, with what it needs.
#[derive(Debug, Clone)]
pub enum Template {
    /// First connection: the code that proves the e-mail is the customer's.
    RegisterCode { org_name: String, code: String },
    /// Passwordless sign-in code.
    LoginCode { org_name: String, code: String },
    /// Forgotten password: the single-use reset token.
    PasswordReset { org_name: String, token: String },
    /// The password was changed or reset.
    PasswordChanged { org_name: String },
    /// A new staff member's setup token.
    StaffSetup { org_name: String, token: String },
    /// Every debit attempt of an instalment failed: it is now unpaid.
    DebitUnpaid {
        org_name: String,
        order_number: String,
        /// Already formatted (`129.99 EUR`).
        amount: String,
        /// The collections phone, when known.
        phone: Option<String>,
    },
    /// The card paying a schedule was changed.
    CardChanged {
        org_name: String,
        last4: String,
        order_number: String,
    },
    /// The one-time code that signs a SEPA mandate.
    MandateCode { org_name: String, code: String },
    /// A SEPA mandate was signed (the signed PDF is attached). It is also
    /// the pre-notification of the collections it lists.
    MandateSigned {
        org_name: String,
        creditor_name: String,
        /// The unique mandate reference.
        umr: String,
        /// `true` for a recurrent mandate, `false` for a one-off one.
        recurrent: bool,
        /// Already masked (`FR76 **** ... 189`).
        masked_iban: String,
        /// The creditor identifier (ICS).
        creditor_id: String,
        /// Each collection's due date and amount, already formatted
        /// (`2026-12-06`, `129.99 EUR`).
        collections: Vec<(String, String)>,
    },
    /// A consent invitation: the steps, what to have at hand, the explainer
    /// video and the activation link (valid 14 days).
    ConsentInvitation {
        org_name: String,
        cardholder_name: String,
        company_name: String,
        /// The activation link, with its token.
        link: String,
        video_url: String,
        /// Already formatted (`2026-12-06 09:00 UTC`).
        expires_at: String,
    },
    /// The SMS code of a consent's activation.
    ConsentCode { org_name: String, code: String },
    /// The consent is active: statements are shared from `effective_from`;
    /// revoking goes through the office.
    ConsentConfirmed {
        org_name: String,
        company_name: String,
        /// Already formatted (`2026-12-01`).
        effective_from: String,
        terms_url: String,
    },
    /// Pre-notification of a SEPA collection, sent at least the creditor's
    /// notice period before it is presented.
    CollectionPrenotice {
        org_name: String,
        creditor_name: String,
        umr: String,
        /// Already masked.
        masked_iban: String,
        /// Already formatted (`2026-12-06`).
        due_date: String,
        /// Already formatted (`129.99 EUR`).
        amount: String,
    },
    /// A webhook endpoint failed for 3 days and was disabled (to the
    /// organization's admins).
    WebhookEndpointDisabled {
        org_name: String,
        /// The endpoint's id (`whe_...`).
        endpoint_id: String,
        url: String,
    },
    /// What happened to a booking, told to its customer (an e-mail, with
    /// the iCalendar invitation attached when there is one; the reminder
    /// also by SMS).
    BookingNotice {
        org_name: String,
        what: BookingNotice,
        /// The service's name in the customer's language.
        service: String,
        /// Already formatted local time (`2026-11-23 09:00 (Europe/Paris)`).
        when: String,
        provider: String,
        /// Why the business declined or cancelled it.
        reason: Option<String>,
    },
    /// An invoice or payment request was issued (its PDF is attached).
    InvoiceIssued {
        org_name: String,
        /// `true` for a payment request.
        request: bool,
        number: String,
        /// Already formatted.
        total: String,
        due_date: String,
        /// The payment request's reason.
        reason: Option<String>,
    },
    /// A payment of an invoice went through (the receipt is attached).
    InvoiceReceipt {
        org_name: String,
        number: String,
        /// Already formatted.
        amount: String,
        /// What is left to pay, already formatted; `None` once paid.
        left: Option<String>,
    },
    /// The bank returned a SEPA collection: the amount is due again.
    CollectionRejected {
        org_name: String,
        umr: String,
        /// Already formatted.
        amount: String,
        due_date: String,
        /// The bank's reason code or text.
        reason: String,
    },
    /// A customer's autopay changed, or they saved a payment method: told
    /// to the business's billing contact, in the organization's language.
    AutopayNotice {
        org_name: String,
        customer_name: String,
        customer_email: String,
        change: AutopayChange,
        /// The method the change is about: the one saved, the one autopay
        /// now uses (or used, when turned off), or the one removed.
        method: NamedMethod,
        /// The method autopay uses after the change; `None`: autopay is off.
        autopay_now: Option<NamedMethod>,
    },
}

/// What a [`Template::BookingNotice`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingNotice {
    /// The request waits for the business.
    Requested,
    /// Booked (at once, approved, or by staff).
    Confirmed,
    /// The business declined the request.
    Declined,
    /// Cancelled, by the customer or the business.
    Cancelled,
    /// Moved to `when`.
    Rescheduled,
    /// It is soon.
    Reminder,
}

/// What a [`Template::AutopayNotice`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutopayChange {
    /// A method saved, with the autopay box checked: autopay is on with it.
    SavedOn,
    /// A method saved with the box unchecked: autopay was not turned on
    /// with it.
    SavedOff,
    /// Autopay turned on.
    TurnedOn,
    /// Autopay turned off.
    TurnedOff,
    /// Autopay now uses another method.
    MethodChanged,
    /// The autopay method removed, autopay moved to another one.
    MethodRemoved,
}

/// A payment method as the business is told of it, masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedMethod {
    /// A card (else a SEPA mandate).
    pub card: bool,
    /// `Visa •••• 4242`, or the masked IBAN.
    pub label: String,
}

impl NamedMethod {
    fn phrase(&self, fr: bool) -> String {
        match (self.card, fr) {
            (true, true) => format!("une carte {}", self.label),
            (true, false) => format!("a card {}", self.label),
            (false, true) => format!("un mandat de prélèvement SEPA sur {}", self.label),
            (false, false) => format!("a SEPA direct debit mandate on {}", self.label),
        }
    }
}

/// A rendered message./// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Empty for SMS.
    pub subject: String,
    pub body: String,
}

impl Template {
    /// A stable name, stored with the message.
    pub fn name(&self) -> &'static str {
        match self {
            Template::RegisterCode { .. } => "register_code",
            Template::LoginCode { .. } => "login_code",
            Template::PasswordReset { .. } => "password_reset",
            Template::PasswordChanged { .. } => "password_changed",
            Template::StaffSetup { .. } => "staff_setup",
            Template::CardChanged { .. } => "card_changed",
            Template::DebitUnpaid { .. } => "debit_unpaid",
            Template::MandateCode { .. } => "mandate_code",
            Template::MandateSigned { .. } => "mandate_signed",
            Template::CollectionPrenotice { .. } => "collection_prenotice",
            Template::CollectionRejected { .. } => "collection_rejected",
            Template::WebhookEndpointDisabled { .. } => "webhook_endpoint_disabled",
            Template::ConsentInvitation { .. } => "consent_invitation",
            Template::ConsentCode { .. } => "consent_code",
            Template::ConsentConfirmed { .. } => "consent_confirmed",
            Template::InvoiceIssued { .. } => "invoice_issued",
            Template::InvoiceReceipt { .. } => "invoice_receipt",
            Template::AutopayNotice { change, .. } => match change {
                AutopayChange::SavedOn | AutopayChange::SavedOff => "autopay_method_saved",
                AutopayChange::TurnedOn
                | AutopayChange::TurnedOff
                | AutopayChange::MethodChanged
                | AutopayChange::MethodRemoved => "autopay_updated",
            },
            Template::BookingNotice { what, .. } => match what {
                BookingNotice::Requested => "booking_requested",
                BookingNotice::Confirmed => "booking_confirmed",
                BookingNotice::Declined => "booking_declined",
                BookingNotice::Cancelled => "booking_cancelled",
                BookingNotice::Rescheduled => "booking_rescheduled",
                BookingNotice::Reminder => "booking_reminder",
            },
        }
    }

    /// Whether the message carries a secret (a one-time code, a reset or
    /// setup link): it is then stored sealed ([`super::queue_sealed`]).
    pub fn carries_secret(&self) -> bool {
        matches!(
            self,
            Template::RegisterCode { .. }
                | Template::LoginCode { .. }
                | Template::PasswordReset { .. }
                | Template::StaffSetup { .. }
                | Template::MandateCode { .. }
                | Template::ConsentInvitation { .. }
                | Template::ConsentCode { .. }
        )
    }

    /// The subject and body in `locale`, shaped for `channel` (an SMS is one
    /// short line).
    pub fn render(&self, locale: Locale, channel: Channel) -> Rendered {
        let fr = locale == Locale::Fr;
        let (subject, body) = match self {
            Template::RegisterCode { org_name, code } => {
                if fr {
                    (
                        format!("{org_name} : votre code de vérification"),
                        format!(
                            "Bonjour,\n\nVoici votre code de vérification pour créer votre accès à l'espace client {org_name} : {code}\n\nIl est valable 10 minutes. Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: your verification code"),
                        format!(
                            "Hello,\n\nHere is your verification code to create your access to the {org_name} customer space: {code}\n\nIt is valid for 10 minutes. If you did not ask for it, ignore this message.\n"
                        ),
                    )
                }
            }
            Template::LoginCode { org_name, code } => {
                if channel == Channel::Sms {
                    let body = if fr {
                        format!(
                            "{org_name} : votre code de connexion est {code}. Valable 10 minutes."
                        )
                    } else {
                        format!("{org_name}: your sign-in code is {code}. Valid for 10 minutes.")
                    };
                    (String::new(), body)
                } else if fr {
                    (
                        format!("{org_name} : votre code de connexion"),
                        format!(
                            "Bonjour,\n\nVoici votre code de connexion à l'espace client {org_name} : {code}\n\nIl est valable 10 minutes. Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: your sign-in code"),
                        format!(
                            "Hello,\n\nHere is your sign-in code for the {org_name} customer space: {code}\n\nIt is valid for 10 minutes. If you did not ask for it, ignore this message.\n"
                        ),
                    )
                }
            }
            Template::PasswordReset { org_name, token } => {
                if fr {
                    (
                        format!("{org_name} : réinitialisation de votre mot de passe"),
                        format!(
                            "Bonjour,\n\nPour choisir un nouveau mot de passe, utilisez ce code de réinitialisation dans l'espace client {org_name} :\n\n{token}\n\nIl est valable 30 minutes et ne sert qu'une fois. Si vous n'avez rien demandé, ignorez ce message : votre mot de passe reste inchangé.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: reset your password"),
                        format!(
                            "Hello,\n\nTo choose a new password, use this reset code in the {org_name} customer space:\n\n{token}\n\nIt is valid for 30 minutes and works once. If you did not ask for it, ignore this message: your password stays as it is.\n"
                        ),
                    )
                }
            }
            Template::PasswordChanged { org_name } => {
                if fr {
                    (
                        format!("{org_name} : votre mot de passe a été modifié"),
                        format!(
                            "Bonjour,\n\nLe mot de passe de votre espace client {org_name} vient d'être modifié et vos autres sessions ont été fermées. Si vous n'êtes pas à l'origine de ce changement, utilisez « Mot de passe oublié » sans attendre.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: your password was changed"),
                        format!(
                            "Hello,\n\nThe password of your {org_name} customer space was just changed and your other sessions were ended. If this was not you, use \"Forgot password\" at once.\n"
                        ),
                    )
                }
            }
            Template::StaffSetup { org_name, token } => {
                if fr {
                    (
                        format!("{org_name} : créez votre accès Guichet"),
                        format!(
                            "Bonjour,\n\nUn accès à l'administration Guichet de {org_name} a été créé pour vous. Choisissez votre mot de passe avec ce jeton (valable 7 jours) :\n\n{token}\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: set up your Guichet access"),
                        format!(
                            "Hello,\n\nA Guichet administration access for {org_name} was created for you. Choose your password with this token (valid for 7 days):\n\n{token}\n"
                        ),
                    )
                }
            }
            Template::DebitUnpaid {
                org_name,
                order_number,
                amount,
                phone,
            } => {
                if fr {
                    let call = phone
                        .as_ref()
                        .map(|p| format!(" ou appelez notre service recouvrement au {p}"))
                        .unwrap_or_default();
                    (
                        format!("{org_name} : échéance impayée"),
                        format!(
                            "Bonjour,\n\nLe prélèvement de {amount} pour la commande {order_number} n'a pas pu être effectué et l'échéance est désormais impayée. Connectez-vous à votre espace client pour la régulariser (en une fois, ou en 2 ou 3 fois){call}.\n"
                        ),
                    )
                } else {
                    let call = phone
                        .as_ref()
                        .map(|p| format!(" or call our collections department on {p}"))
                        .unwrap_or_default();
                    (
                        format!("{org_name}: unpaid instalment"),
                        format!(
                            "Hello,\n\nThe {amount} debit for order {order_number} failed and the instalment is now unpaid. Sign in to your customer space to settle it (at once, or in 2 or 3 payments){call}.\n"
                        ),
                    )
                }
            }
            Template::CardChanged {
                org_name,
                last4,
                order_number,
            } => {
                if fr {
                    (
                        format!("{org_name} : carte de paiement modifiée"),
                        format!(
                            "Bonjour,\n\nLes prochains prélèvements de la commande {order_number} seront faits sur la carte se terminant par {last4}. Si vous n'êtes pas à l'origine de ce changement, contactez-nous sans attendre.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: payment card changed"),
                        format!(
                            "Hello,\n\nThe next debits of order {order_number} will be made from the card ending in {last4}. If this was not you, contact us at once.\n"
                        ),
                    )
                }
            }
            Template::MandateCode { org_name, code } => {
                if channel == Channel::Sms {
                    let body = if fr {
                        format!(
                            "{org_name} : code de signature de votre mandat SEPA : {code}. Valable 10 minutes."
                        )
                    } else {
                        format!(
                            "{org_name}: your SEPA mandate signature code is {code}. Valid for 10 minutes."
                        )
                    };
                    (String::new(), body)
                } else if fr {
                    (
                        format!("{org_name} : code de signature de votre mandat SEPA"),
                        format!(
                            "Bonjour,\n\nVoici le code qui signe votre mandat de prélèvement SEPA dans l'espace client {org_name} : {code}\n\nIl est valable 10 minutes. En le saisissant, vous signez le mandat que vous avez relu. Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: your SEPA mandate signature code"),
                        format!(
                            "Hello,\n\nHere is the code that signs your SEPA direct debit mandate in the {org_name} customer space: {code}\n\nIt is valid for 10 minutes. Entering it signs the mandate you reviewed. If you did not ask for it, ignore this message.\n"
                        ),
                    )
                }
            }
            Template::MandateSigned {
                org_name,
                creditor_name,
                umr,
                recurrent,
                masked_iban,
                creditor_id,
                collections,
            } => {
                let lines: String = collections
                    .iter()
                    .map(|(date, amount)| format!("- {date} : {amount}\n"))
                    .collect();
                if fr {
                    let kind = if *recurrent { "récurrent" } else { "ponctuel" };
                    (
                        format!("{org_name} : votre mandat de prélèvement SEPA {umr} est signé"),
                        format!(
                            "Bonjour,\n\nVous avez signé le mandat de prélèvement SEPA {kind} de référence unique (RUM) {umr}, au profit de {creditor_name} (identifiant créancier SEPA {creditor_id}), sur le compte {masked_iban}. Le mandat signé est joint à ce message.\n\nPré-notification : les prélèvements suivants seront présentés à votre banque à ces dates :\n{lines}\nVous pouvez demander à votre banque le remboursement d'un prélèvement autorisé dans les 8 semaines suivant le débit.\n"
                        ),
                    )
                } else {
                    let kind = if *recurrent { "recurrent" } else { "one-off" };
                    let lines = lines.replace(" : ", ": ");
                    (
                        format!("{org_name}: your SEPA direct debit mandate {umr} is signed"),
                        format!(
                            "Hello,\n\nYou signed the {kind} SEPA direct debit mandate with unique mandate reference (UMR) {umr}, in favour of {creditor_name} (creditor identifier {creditor_id}), on account {masked_iban}. The signed mandate is attached to this message.\n\nPre-notification: the following debits will be presented to your bank on these dates:\n{lines}\nYou may ask your bank to refund an authorised debit within 8 weeks of the debit.\n"
                        ),
                    )
                }
            }
            Template::CollectionPrenotice {
                org_name,
                creditor_name,
                umr,
                masked_iban,
                due_date,
                amount,
            } => {
                if fr {
                    (
                        format!("{org_name} : prochain prélèvement SEPA le {due_date}"),
                        format!(
                            "Bonjour,\n\nPré-notification : un prélèvement SEPA de {amount} sera présenté à votre banque le {due_date} sur le compte {masked_iban}, au titre du mandat {umr}, au profit de {creditor_name}.\n\nVous pouvez demander à votre banque le remboursement d'un prélèvement autorisé dans les 8 semaines suivant le débit.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: next SEPA direct debit on {due_date}"),
                        format!(
                            "Hello,\n\nPre-notification: a SEPA direct debit of {amount} will be presented to your bank on {due_date} from account {masked_iban}, under mandate {umr}, in favour of {creditor_name}.\n\nYou may ask your bank to refund an authorised debit within 8 weeks of the debit.\n"
                        ),
                    )
                }
            }
            Template::CollectionRejected {
                org_name,
                umr,
                amount,
                due_date,
                reason,
            } => {
                if fr {
                    (
                        format!("{org_name} : prélèvement SEPA rejeté"),
                        format!(
                            "Bonjour,\n\nVotre banque a rejeté le prélèvement SEPA de {amount} du {due_date} (mandat {umr}, motif : {reason}). Ce montant reste dû : connectez-vous à votre espace client ou contactez-nous pour le régler.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: SEPA direct debit rejected"),
                        format!(
                            "Hello,\n\nYour bank rejected the {amount} SEPA direct debit of {due_date} (mandate {umr}, reason: {reason}). This amount is still due: sign in to your customer space or contact us to settle it.\n"
                        ),
                    )
                }
            }
            Template::WebhookEndpointDisabled {
                org_name,
                endpoint_id,
                url,
            } => {
                if fr {
                    (
                        format!("{org_name} : point de réception de webhooks désactivé"),
                        format!(
                            "Bonjour,\n\nDepuis 3 jours, chaque envoi d'événement à {url} ({endpoint_id}) a échoué. Ce point de réception a été désactivé : aucun événement ne lui est plus envoyé. Consultez son journal d'envois (GET /v1/admin/webhook-endpoints/{endpoint_id}/deliveries), corrigez le récepteur puis réactivez-le (PATCH avec \"enabled\": true).\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: webhook endpoint disabled"),
                        format!(
                            "Hello,\n\nFor 3 days, every event sent to {url} ({endpoint_id}) has failed. The endpoint was disabled: no more events are sent to it. Read its delivery log (GET /v1/admin/webhook-endpoints/{endpoint_id}/deliveries), fix the receiver, then enable it again (PATCH with \"enabled\": true).\n"
                        ),
                    )
                }
            }
            Template::ConsentInvitation {
                org_name,
                cardholder_name,
                company_name,
                link,
                video_url,
                expires_at,
            } => {
                if fr {
                    (
                        format!(
                            "{org_name} : activez le partage de vos relevés de carte de crédit"
                        ),
                        format!(
                            "Bonjour {cardholder_name},\n\n{org_name} a commandé pour {company_name} le partage de vos relevés de carte de crédit. Pour l'activer :\n\n1. Ouvrez le lien d'activation ci-dessous (page de bienvenue).\n2. Saisissez le code reçu par SMS.\n3. Saisissez les détails de votre carte de crédit, confirmez votre référence client et acceptez les conditions.\n4. Confirmez auprès de votre banque avec votre carte et votre lecteur de carte.\n\nAyez sous la main : votre téléphone mobile, votre carte de crédit, votre relevé de carte de crédit (il porte votre référence client) et votre lecteur de carte bancaire.\n\nLes étapes en vidéo : {video_url}\n\nLien d'activation (valable jusqu'au {expires_at}, soit 14 jours) :\n{link}\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: activate the sharing of your credit card statements"),
                        format!(
                            "Hello {cardholder_name},\n\n{org_name} has ordered, for {company_name}, the sharing of your credit card statements. To activate it:\n\n1. Open the activation link below (welcome page).\n2. Enter the code received by SMS.\n3. Enter your credit card details, confirm your client reference and accept the terms.\n4. Confirm with your bank using your card and card reader.\n\nHave at hand: your mobile phone, your credit card, your credit card statement (it shows your client reference) and your card reader.\n\nThe steps on video: {video_url}\n\nActivation link (valid until {expires_at}, 14 days):\n{link}\n"
                        ),
                    )
                }
            }
            Template::ConsentCode { org_name, code } => {
                let body = if fr {
                    format!(
                        "{org_name} : votre code de vérification est {code}. Valable 10 minutes."
                    )
                } else {
                    format!("{org_name}: your verification code is {code}. Valid for 10 minutes.")
                };
                if channel == Channel::Sms {
                    (String::new(), body)
                } else if fr {
                    (format!("{org_name} : code de vérification"), body)
                } else {
                    (format!("{org_name}: verification code"), body)
                }
            }
            Template::ConsentConfirmed {
                org_name,
                company_name,
                effective_from,
                terms_url,
            } => {
                if fr {
                    (
                        format!("{org_name} : partage de vos relevés de carte de crédit activé"),
                        format!(
                            "Bonjour,\n\nVous êtes inscrit : vos relevés de carte de crédit seront partagés avec {org_name} pour {company_name} à partir du {effective_from}.\n\nLes conditions générales : {terms_url}\nPour révoquer cet accord, contactez {org_name}.\n\nVotre adresse e-mail et votre numéro de mobile sont effacés de notre base de données une fois ce message envoyé.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: sharing of your credit card statements activated"),
                        format!(
                            "Hello,\n\nYou are enrolled: your credit card statements will be shared with {org_name} for {company_name} from {effective_from}.\n\nThe terms: {terms_url}\nTo revoke this agreement, contact {org_name}.\n\nYour e-mail address and mobile number are erased from our database once this message is sent.\n"
                        ),
                    )
                }
            }
            Template::InvoiceIssued {
                org_name,
                request,
                number,
                total,
                due_date,
                reason,
            } => {
                let what = match (request, fr) {
                    (false, true) => "facture",
                    (false, false) => "invoice",
                    (true, true) => "demande de paiement",
                    (true, false) => "payment request",
                };
                let why = match (reason, fr) {
                    (Some(r), true) => format!("Motif : {r}\n\n"),
                    (Some(r), false) => format!("Reason: {r}\n\n"),
                    (None, _) => String::new(),
                };
                if fr {
                    (
                        format!("{org_name} : {what} {number}"),
                        format!(
                            "Bonjour,\n\n{org_name} vous adresse la {what} {number} d'un montant de {total}, à régler au plus tard le {due_date}.\n\n{why}Le document est joint et disponible dans votre espace client, où vous pouvez la régler en ligne.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: {what} {number}"),
                        format!(
                            "Hello,\n\n{org_name} sends you {what} {number} for {total}, due by {due_date}.\n\n{why}The document is attached and in your customer space, where you can pay it online.\n"
                        ),
                    )
                }
            }
            Template::InvoiceReceipt {
                org_name,
                number,
                amount,
                left,
            } => {
                let rest = match (left, fr) {
                    (Some(l), true) => format!("Il reste {l} à régler."),
                    (Some(l), false) => format!("{l} is left to pay."),
                    (None, true) => "La facture est entièrement réglée.".to_owned(),
                    (None, false) => "The invoice is paid in full.".to_owned(),
                };
                if fr {
                    (
                        format!("{org_name} : reçu de votre paiement ({number})"),
                        format!(
                            "Bonjour,\n\nNous avons bien reçu votre paiement de {amount} pour la facture {number}. {rest}\n\nLe reçu est joint.\n"
                        ),
                    )
                } else {
                    (
                        format!("{org_name}: receipt for your payment ({number})"),
                        format!(
                            "Hello,\n\nWe received your payment of {amount} for invoice {number}. {rest}\n\nThe receipt is attached.\n"
                        ),
                    )
                }
            }
            Template::BookingNotice {
                org_name,
                what,
                service,
                when,
                provider,
                reason,
            } => booking_notice(
                fr,
                channel,
                org_name,
                *what,
                service,
                when,
                provider,
                reason.as_deref(),
            ),
            Template::AutopayNotice {
                org_name,
                customer_name,
                customer_email,
                change,
                method,
                autopay_now,
            } => autopay_notice(
                fr,
                org_name,
                customer_name,
                customer_email,
                *change,
                method,
                autopay_now.as_ref(),
            ),
        };
        Rendered { subject, body }
    }
}

/// The subject and body of a [`Template::BookingNotice`].
#[allow(clippy::too_many_arguments)]
fn booking_notice(
    fr: bool,
    channel: Channel,
    org_name: &str,
    what: BookingNotice,
    service: &str,
    when: &str,
    provider: &str,
    reason: Option<&str>,
) -> (String, String) {
    let (subject, line) = match (what, fr) {
        (BookingNotice::Requested, true) => (
            "demande de rendez-vous reçue",
            format!(
                "Votre demande de rendez-vous « {service} » le {when} avec {provider} est enregistrée. {org_name} vous répondra bientôt."
            ),
        ),
        (BookingNotice::Requested, false) => (
            "booking request received",
            format!(
                "Your request for \"{service}\" on {when} with {provider} is recorded. {org_name} will answer soon."
            ),
        ),
        (BookingNotice::Confirmed, true) => (
            "rendez-vous confirmé",
            format!(
                "Votre rendez-vous « {service} » le {when} avec {provider} est confirmé. L'invitation pour votre agenda est jointe."
            ),
        ),
        (BookingNotice::Confirmed, false) => (
            "booking confirmed",
            format!(
                "Your booking \"{service}\" on {when} with {provider} is confirmed. The invitation for your calendar is attached."
            ),
        ),
        (BookingNotice::Declined, true) => (
            "demande de rendez-vous refusée",
            format!("{org_name} ne peut pas accepter votre demande « {service} » du {when}."),
        ),
        (BookingNotice::Declined, false) => (
            "booking request declined",
            format!("{org_name} cannot accept your request for \"{service}\" on {when}."),
        ),
        (BookingNotice::Cancelled, true) => (
            "rendez-vous annulé",
            format!(
                "Votre rendez-vous « {service} » du {when} avec {provider} est annulé. L'annulation pour votre agenda est jointe."
            ),
        ),
        (BookingNotice::Cancelled, false) => (
            "booking cancelled",
            format!(
                "Your booking \"{service}\" on {when} with {provider} is cancelled. The cancellation for your calendar is attached."
            ),
        ),
        (BookingNotice::Rescheduled, true) => (
            "rendez-vous déplacé",
            format!(
                "Votre rendez-vous « {service} » avec {provider} est déplacé au {when}. L'invitation mise à jour pour votre agenda est jointe."
            ),
        ),
        (BookingNotice::Rescheduled, false) => (
            "booking moved",
            format!(
                "Your booking \"{service}\" with {provider} is moved to {when}. The updated invitation for your calendar is attached."
            ),
        ),
        (BookingNotice::Reminder, true) => (
            "rappel de votre rendez-vous",
            format!("Rappel : rendez-vous « {service} » le {when} avec {provider}."),
        ),
        (BookingNotice::Reminder, false) => (
            "booking reminder",
            format!("Reminder: \"{service}\" on {when} with {provider}."),
        ),
    };
    if channel == Channel::Sms {
        let sep = if fr { " : " } else { ": " };
        return (String::new(), format!("{org_name}{sep}{line}"));
    }
    let mut body = if fr {
        format!("Bonjour,\n\n{line}\n")
    } else {
        format!("Hello,\n\n{line}\n")
    };
    if let Some(reason) = reason {
        body.push_str(&if fr {
            format!("\nMotif : {reason}\n")
        } else {
            format!("\nReason: {reason}\n")
        });
    }
    let sep = if fr { " : " } else { ": " };
    (format!("{org_name}{sep}{subject}"), body)
}

/// The subject and body of a [`Template::AutopayNotice`].
fn autopay_notice(
    fr: bool,
    org_name: &str,
    customer_name: &str,
    customer_email: &str,
    change: AutopayChange,
    method: &NamedMethod,
    autopay_now: Option<&NamedMethod>,
) -> (String, String) {
    let who = format!("{customer_name} ({customer_email})");
    let m = method.phrase(fr);
    let (subject, line) = match (change, fr) {
        (AutopayChange::SavedOn, true) => (
            format!("{customer_name} a activé le paiement automatique"),
            format!("{who} a enregistré {m} et a activé le paiement automatique."),
        ),
        (AutopayChange::SavedOn, false) => (
            format!("{customer_name} turned on autopay"),
            format!("{who} saved {m} and turned on autopay."),
        ),
        (AutopayChange::SavedOff, true) => (
            format!("{customer_name} a enregistré un moyen de paiement"),
            format!("{who} a enregistré {m} et n'a pas activé le paiement automatique."),
        ),
        (AutopayChange::SavedOff, false) => (
            format!("{customer_name} saved a payment method"),
            format!("{who} saved {m} and did not turn on autopay."),
        ),
        (AutopayChange::TurnedOn, true) => (
            format!("{customer_name} a activé le paiement automatique"),
            format!("{who} a activé le paiement automatique avec {m}."),
        ),
        (AutopayChange::TurnedOn, false) => (
            format!("{customer_name} turned on autopay"),
            format!("{who} turned on autopay with {m}."),
        ),
        (AutopayChange::TurnedOff, true) => (
            format!("{customer_name} a désactivé le paiement automatique"),
            format!("{who} a désactivé le paiement automatique (il utilisait {m})."),
        ),
        (AutopayChange::TurnedOff, false) => (
            format!("{customer_name} turned off autopay"),
            format!("{who} turned off autopay (it used {m})."),
        ),
        (AutopayChange::MethodChanged, true) => (
            format!("{customer_name} a changé de moyen de paiement automatique"),
            format!("{who} paie désormais automatiquement avec {m}."),
        ),
        (AutopayChange::MethodChanged, false) => (
            format!("{customer_name} changed their autopay method"),
            format!("{who} now pays automatically with {m}."),
        ),
        (AutopayChange::MethodRemoved, true) => (
            format!("{customer_name} a retiré son moyen de paiement automatique"),
            format!("{who} a retiré {m}, qui servait au paiement automatique."),
        ),
        (AutopayChange::MethodRemoved, false) => (
            format!("{customer_name} removed their autopay method"),
            format!("{who} removed {m}, which autopay used."),
        ),
    };
    let state = match (autopay_now, fr) {
        (Some(now), true) => format!(
            "Paiement automatique : activé, avec {}. Les factures ouvertes seront prélevées à leur échéance.",
            now.phrase(true)
        ),
        (Some(now), false) => format!(
            "Autopay: on, with {}. Open invoices will be charged on their due date.",
            now.phrase(false)
        ),
        (None, true) => "Paiement automatique : désactivé.".to_owned(),
        (None, false) => "Autopay: off.".to_owned(),
    };
    let sep = if fr { " : " } else { ": " };
    let body = if fr {
        format!("Bonjour,\n\n{line}\n\n{state}\n")
    } else {
        format!("Hello,\n\n{line}\n\n{state}\n")
    };
    (format!("{org_name}{sep}{subject}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_carries_its_secret_in_both_languages() {
        let cases = [
            Template::RegisterCode {
                org_name: "Floa".into(),
                code: "123456".into(),
            },
            Template::LoginCode {
                org_name: "Floa".into(),
                code: "654321".into(),
            },
            Template::PasswordReset {
                org_name: "Floa".into(),
                token: "tok-abc".into(),
            },
            Template::StaffSetup {
                org_name: "Floa".into(),
                token: "tok-def".into(),
            },
            Template::MandateCode {
                org_name: "Floa".into(),
                code: "246810".into(),
            },
            Template::ConsentCode {
                org_name: "Floa".into(),
                code: "135790".into(),
            },
            Template::ConsentInvitation {
                org_name: "Floa".into(),
                cardholder_name: "Anne".into(),
                company_name: "Client SA".into(),
                link: "https://app.example/consent/tok-ghi".into(),
                video_url: "https://video.example".into(),
                expires_at: "2026-12-06 09:00 UTC".into(),
            },
        ];
        for template in cases {
            let secret = match &template {
                Template::RegisterCode { code, .. }
                | Template::LoginCode { code, .. }
                | Template::MandateCode { code, .. }
                | Template::ConsentCode { code, .. } => code,
                Template::ConsentInvitation { link, .. } => link,
                Template::PasswordReset { token, .. } | Template::StaffSetup { token, .. } => token,
                Template::PasswordChanged { .. }
                | Template::CardChanged { .. }
                | Template::DebitUnpaid { .. }
                | Template::MandateSigned { .. }
                | Template::CollectionPrenotice { .. }
                | Template::CollectionRejected { .. }
                | Template::WebhookEndpointDisabled { .. }
                | Template::ConsentConfirmed { .. }
                | Template::BookingNotice { .. }
                | Template::InvoiceIssued { .. }
                | Template::InvoiceReceipt { .. }
                | Template::AutopayNotice { .. } => unreachable!(),
            };
            for locale in [Locale::Fr, Locale::En] {
                let r = template.render(locale, Channel::Email);
                assert!(r.body.contains(secret.as_str()), "{}", template.name());
                assert!(r.subject.contains("Floa"));
            }
        }
        let sms = Template::LoginCode {
            org_name: "Floa".into(),
            code: "111222".into(),
        }
        .render(Locale::Fr, Channel::Sms);
        assert!(sms.subject.is_empty());
        assert!(sms.body.contains("111222") && sms.body.len() <= 160);
        let sms = Template::MandateCode {
            org_name: "Floa".into(),
            code: "333444".into(),
        }
        .render(Locale::Fr, Channel::Sms);
        assert!(sms.subject.is_empty());
        assert!(sms.body.contains("333444") && sms.body.chars().count() <= 160);
    }

    #[test]
    fn the_disabled_endpoint_message_names_it_in_both_languages() {
        let template = Template::WebhookEndpointDisabled {
            org_name: "Floa".into(),
            endpoint_id: "whe_1".into(),
            url: "https://hooks.floa.example/in".into(),
        };
        assert!(!template.carries_secret());
        for locale in [Locale::Fr, Locale::En] {
            let r = template.render(locale, Channel::Email);
            assert!(r.subject.contains("Floa") && r.subject.contains("webhook"));
            assert!(r.body.contains("https://hooks.floa.example/in") && r.body.contains("whe_1"));
        }
    }

    #[test]
    fn the_mandate_confirmation_lists_its_collections() {
        let template = Template::MandateSigned {
            org_name: "Floa".into(),
            creditor_name: "Régie du Parc".into(),
            umr: "GCH20261122ABCDEFGHJKMNPQRS".into(),
            recurrent: true,
            masked_iban: "FR76 **** **** **** **** ***0 189".into(),
            creditor_id: "FR72ZZZ123456".into(),
            collections: vec![
                ("2026-12-06".into(), "33.34 EUR".into()),
                ("2027-01-06".into(), "33.33 EUR".into()),
            ],
        };
        for locale in [Locale::Fr, Locale::En] {
            let r = template.render(locale, Channel::Email);
            for text in [
                "GCH20261122ABCDEFGHJKMNPQRS",
                "Régie du Parc",
                "FR72ZZZ123456",
                "***0 189",
                "2026-12-06",
                "33.34 EUR",
                "2027-01-06",
            ] {
                assert!(r.body.contains(text), "{text} in {}", r.body);
            }
            assert!(r.subject.contains("GCH20261122ABCDEFGHJKMNPQRS"));
        }
    }
    #[test]
    fn booking_notices_name_the_service_the_time_and_the_reason() {
        for what in [
            BookingNotice::Requested,
            BookingNotice::Confirmed,
            BookingNotice::Declined,
            BookingNotice::Cancelled,
            BookingNotice::Rescheduled,
            BookingNotice::Reminder,
        ] {
            let t = Template::BookingNotice {
                org_name: "Kiné Martin".into(),
                what,
                service: "Séance".into(),
                when: "2026-11-23 09:00 (Europe/Paris)".into(),
                provider: "Claire Petit".into(),
                reason: Some("Cabinet fermé".into()),
            };
            assert!(t.name().starts_with("booking_"));
            assert!(!t.carries_secret());
            for locale in [Locale::Fr, Locale::En] {
                let r = t.render(locale, Channel::Email);
                assert!(r.subject.starts_with("Kiné Martin"), "{}", r.subject);
                assert!(r.body.contains("Séance") && r.body.contains("2026-11-23 09:00"));
                assert!(r.body.contains("Cabinet fermé"), "{}", r.body);
                let sms = t.render(locale, Channel::Sms);
                assert!(sms.subject.is_empty());
                assert!(sms.body.contains("2026-11-23 09:00"));
            }
        }
        let en = Template::BookingNotice {
            org_name: "Kiné Martin".into(),
            what: BookingNotice::Confirmed,
            service: "Session".into(),
            when: "2026-11-23 09:00 (Europe/Paris)".into(),
            provider: "Claire Petit".into(),
            reason: None,
        }
        .render(Locale::En, Channel::Email);
        assert_eq!(en.subject, "Kiné Martin: booking confirmed");
        assert!(!en.body.contains("Reason"));
    }

    #[test]
    fn autopay_notices_name_the_customer_the_method_and_the_state() {
        let visa = NamedMethod {
            card: true,
            label: "Visa •••• 4242".into(),
        };
        let on = Template::AutopayNotice {
            org_name: "Kiné Martin".into(),
            customer_name: "Léa Dubois".into(),
            customer_email: "lea@example.com".into(),
            change: AutopayChange::SavedOn,
            method: visa.clone(),
            autopay_now: Some(visa.clone()),
        };
        assert!(!on.carries_secret());
        assert_eq!(on.name(), "autopay_method_saved");
        let en = on.render(Locale::En, Channel::Email);
        assert_eq!(en.subject, "Kiné Martin: Léa Dubois turned on autopay");
        assert!(
            en.body.contains(
                "Léa Dubois (lea@example.com) saved a card Visa •••• 4242 and turned on autopay."
            ),
            "{}",
            en.body
        );
        assert!(en.body.contains("Autopay: on, with a card Visa •••• 4242."));
        let fr = on.render(Locale::Fr, Channel::Email);
        assert!(
            fr.body
                .contains("a enregistré une carte Visa •••• 4242 et a activé")
        );
        let off = Template::AutopayNotice {
            org_name: "Kiné Martin".into(),
            customer_name: "Léa Dubois".into(),
            customer_email: "lea@example.com".into(),
            change: AutopayChange::SavedOff,
            method: NamedMethod {
                card: false,
                label: "FR76 **** **** **** **** ***0 189".into(),
            },
            autopay_now: None,
        };
        let en = off.render(Locale::En, Channel::Email);
        assert!(en.body.contains("did not turn on autopay"), "{}", en.body);
        assert!(en.body.contains("***0 189") && en.body.contains("Autopay: off."));
        let fr = off.render(Locale::Fr, Channel::Email);
        assert!(fr.body.contains("n'a pas activé") && fr.body.contains("désactivé"));
        for change in [
            AutopayChange::TurnedOn,
            AutopayChange::TurnedOff,
            AutopayChange::MethodChanged,
            AutopayChange::MethodRemoved,
        ] {
            let t = Template::AutopayNotice {
                org_name: "Kiné Martin".into(),
                customer_name: "Léa Dubois".into(),
                customer_email: "lea@example.com".into(),
                change,
                method: visa.clone(),
                autopay_now: None,
            };
            assert_eq!(t.name(), "autopay_updated");
            for locale in [Locale::Fr, Locale::En] {
                let r = t.render(locale, Channel::Email);
                assert!(r.subject.starts_with("Kiné Martin") && r.subject.contains("Léa Dubois"));
                assert!(r.body.contains("lea@example.com") && r.body.contains("Visa •••• 4242"));
            }
        }
    }
}
