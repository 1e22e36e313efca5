//! Saved payment methods and autopay (seed 004): the business's three
//! autopay settings, what saving a method does to autopay, and how a
//! method is named to the business without disclosing it.

use crate::card::{CardBrand, CardView};

/// The organization's autopay settings (the `autopay` section of the
/// portal settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutopaySettings {
    /// Customers may turn autopay on or off and change its method. Off:
    /// neither, and a save that says `autopay` is refused.
    pub customers_can_change: bool,
    /// Saving a new method turns autopay on with it, whether or not
    /// customers may change autopay.
    pub auto_enable_on_new_method: bool,
    /// The default state of the "use this method for autopay" box.
    pub checkbox_default: bool,
}

impl Default for AutopaySettings {
    /// Customers may change autopay; nothing is turned on for them; the box
    /// starts unchecked.
    fn default() -> Self {
        AutopaySettings {
            customers_can_change: true,
            auto_enable_on_new_method: false,
            checkbox_default: false,
        }
    }
}

/// Why an autopay change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AutopayRefusal {
    /// The business does not let customers change autopay.
    #[error("customers may not change autopay")]
    ChangeNotAllowed,
}

/// Whether autopay is on with a method the customer saves now, given the
/// box (`requested`, `None` when the request leaves it out):
///
/// | may change | `autopay` given | result |
/// |---|---|---|
/// | yes | `v` | `v` |
/// | yes | omitted | `auto_enable_on_new_method \|\| checkbox_default` |
/// | no | given | refused ([`AutopayRefusal::ChangeNotAllowed`]) |
/// | no | omitted | `auto_enable_on_new_method` |
pub fn autopay_on_save(
    settings: &AutopaySettings,
    requested: Option<bool>,
) -> Result<bool, AutopayRefusal> {
    match (settings.customers_can_change, requested) {
        (true, Some(v)) => Ok(v),
        (true, None) => Ok(settings.auto_enable_on_new_method || settings.checkbox_default),
        (false, Some(_)) => Err(AutopayRefusal::ChangeNotAllowed),
        (false, None) => Ok(settings.auto_enable_on_new_method),
    }
}

/// The kind of a saved method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// A card, kept as the gateway's token.
    Card,
    /// A signed recurring SEPA mandate.
    SepaDebit,
}

impl MethodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Card => "card",
            MethodKind::SepaDebit => "sepa_debit",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "card" => Some(MethodKind::Card),
            "sepa_debit" => Some(MethodKind::SepaDebit),
            _ => None,
        }
    }
}

/// The brand as people write it.
pub fn brand_label(brand: CardBrand) -> &'static str {
    match brand {
        CardBrand::Visa => "Visa",
        CardBrand::Mastercard => "Mastercard",
        CardBrand::Amex => "American Express",
        CardBrand::Other => "Card",
    }
}

/// A card named for people: `Visa •••• 4242`.
pub fn card_label(card: &CardView) -> String {
    format!("{} •••• {}", brand_label(card.brand), card.last4)
}

/// A SEPA mandate named for people: `SEPA FR76 **** **** **** **** ***0 189`.
pub fn sepa_label(iban_masked: &str) -> String {
    format!("SEPA {iban_masked}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::Funding;

    fn settings(can_change: bool, auto: bool, checkbox: bool) -> AutopaySettings {
        AutopaySettings {
            customers_can_change: can_change,
            auto_enable_on_new_method: auto,
            checkbox_default: checkbox,
        }
    }

    #[test]
    fn the_defaults_let_customers_choose_with_the_box_unchecked() {
        let d = AutopaySettings::default();
        assert!(d.customers_can_change);
        assert!(!d.auto_enable_on_new_method && !d.checkbox_default);
        assert_eq!(autopay_on_save(&d, None), Ok(false));
    }

    #[test]
    fn saving_a_method_follows_the_rules_table_for_every_setting() {
        for can_change in [true, false] {
            for auto in [true, false] {
                for checkbox in [true, false] {
                    let s = settings(can_change, auto, checkbox);
                    for requested in [None, Some(true), Some(false)] {
                        let got = autopay_on_save(&s, requested);
                        let want = match (can_change, requested) {
                            (true, Some(v)) => Ok(v),
                            (true, None) => Ok(auto || checkbox),
                            (false, Some(_)) => Err(AutopayRefusal::ChangeNotAllowed),
                            (false, None) => Ok(auto),
                        };
                        assert_eq!(got, want, "{s:?} {requested:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_customer_who_may_change_can_uncheck_the_box_even_with_auto_enable() {
        let s = settings(true, true, true);
        assert_eq!(autopay_on_save(&s, Some(false)), Ok(false));
        // Not allowed to change: auto-enable applies, the box default does not.
        assert_eq!(
            autopay_on_save(&settings(false, false, true), None),
            Ok(false)
        );
        assert_eq!(
            autopay_on_save(&settings(false, true, false), None),
            Ok(true)
        );
    }

    #[test]
    fn methods_are_named_without_disclosing_them() {
        let card = CardView {
            brand: CardBrand::Visa,
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2030,
            funding: Funding::Credit,
        };
        assert_eq!(card_label(&card), "Visa •••• 4242");
        assert_eq!(
            sepa_label("FR76 **** **** **** **** ***0 189"),
            "SEPA FR76 **** **** **** **** ***0 189"
        );
        for kind in [MethodKind::Card, MethodKind::SepaDebit] {
            assert_eq!(MethodKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MethodKind::parse("cash"), None);
    }
}
