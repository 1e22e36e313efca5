//! The demo's buy-now-pay-later lender: one organization whose customers
//! hold schedules in every state, so that each customer action and each
//! refusal of the schedules issue can be tried at once (README's curl
//! session, docs/SCHEDULES.md).
//!
//! Dates are relative to the day the data is created; the cards are sandbox
//! tokens made with the server's secret key, so the running server's
//! gateway accepts them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Datelike;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use guichet_domain::gateway::sandbox::SandboxTokens;
use guichet_domain::gateway::{CardDetails, Cvc, Pan, test_cards};
use guichet_domain::identity::Customer;
use guichet_domain::password::hash_password;
use guichet_domain::schedule::{InstalmentStatus, Schedule, plan_equal};
use guichet_domain::{Clock, Currency, Money, ids};
use guichet_store::repo::payment::{self, PaymentSettings};
use guichet_store::repo::schedules::{self, Card, Order};
use guichet_store::repo::{codes, customers, organizations, staff};
use guichet_store::{DbConnection, OptionalExt};

use super::{DemoAccount, customer};
use crate::provision::{self, ProvisionError};
use crate::routes::auth::purpose;

/// The lender's slug.
pub const SLUG: &str = "fractio";
const NAME: &str = "Fractio — paiement en plusieurs fois";
const ADMIN: (&str, &str) = ("admin@fractio.guichet.localhost", "Admin-Fractio-2026!");
/// The customer of the README's session: one schedule in each state.
pub const SOPHIE: (&str, &str) = ("sophie.laurent@example.com", "Sophie-Demo-2026!");
const KARIM: (&str, &str) = ("karim.benali@example.com", "Karim-Demo-2026!");
/// Shown as a `tel:` link when a regularization payment fails.
const COLLECTIONS_PHONE: &str = "+33 1 84 80 00 00";

/// The lender's accounts, for the banner.
pub fn accounts() -> Vec<DemoAccount> {
    vec![
        DemoAccount {
            what: "admin (POST /v1/auth/staff/login)",
            email: ADMIN.0,
            password: Some(ADMIN.1),
        },
        DemoAccount {
            what: "customer with schedules in progress, within the card-change notice, \
                   completed, unpaid and partially cancelled",
            email: SOPHIE.0,
            password: Some(SOPHIE.1),
        },
        DemoAccount {
            what: "customer with a schedule in progress and a cancelled one",
            email: KARIM.0,
            password: Some(KARIM.1),
        },
    ]
}

/// The lender organization, created unless it exists; whether it was
/// created.
pub fn seed(
    conn: &mut DbConnection,
    clock: Arc<dyn Clock>,
    secret_key: &[u8],
) -> Result<(guichet_domain::Organization, bool), ProvisionError> {
    if let Some(org) = organizations::find_by_slug(conn, SLUG).optional()? {
        return Ok((org, false));
    }
    let now = clock.now();
    // The sandbox's tokens need no ledger: they are derived from the card
    // under the server key, as the server's sandbox derives them.
    let tokens = SandboxTokens::new(secret_key);
    let hash = |p: &str| hash_password(p).map_err(|e| ProvisionError::Invalid(e.to_string()));
    let (admin_hash, sophie_hash, karim_hash) = (hash(ADMIN.1)?, hash(SOPHIE.1)?, hash(KARIM.1)?);
    let today = now.date_naive();
    let year = u16::try_from(today.year()).unwrap_or(2026);
    let card = |number: &str, cvc: &str, exp_month: u8, exp_year: u16| {
        let details = CardDetails {
            number: Pan::parse(number).map_err(|e| ProvisionError::Invalid(e.to_string()))?,
            exp_month,
            exp_year,
            cvc: Cvc::parse(cvc).map_err(|e| ProvisionError::Invalid(e.to_string()))?,
        };
        tokens
            .tokenize(details, today)
            .map_err(|e| ProvisionError::Invalid(format!("sandbox card: {e}")))
    };
    let visa = card(test_cards::VISA, "123", 12, year + 3)?;
    let mastercard = card(test_cards::MASTERCARD, "123", 8, year + 2)?;
    let visa_debit = card(test_cards::VISA_DEBIT, "123", 3, year + 2)?;
    let no_funds = card(test_cards::INSUFFICIENT_FUNDS, "123", 5, year + 2)?;

    // All or nothing: a failure leaves no half-made organization that the
    // next start would take for finished.
    let org = guichet_store::transaction(conn, |conn| {
        let new = provision::insert_organization(conn, secret_key, SLUG, NAME, ADMIN.0, now)?;
        let org = new.organization;
        let mut o = org.clone();
        o.support_email = Some("support@fractio.guichet.localhost".into());
        o.support_phone = Some(COLLECTIONS_PHONE.into());
        organizations::update_settings(conn, &o)?;
        staff::set_password(conn, &new.admin.id, &admin_hash)?;
        codes::void_all(conn, &new.admin.id, purpose::STAFF_SETUP, now)?;
        let mut settings = PaymentSettings::defaults(&org.id);
        settings.collections_phone = Some(COLLECTIONS_PHONE.into());
        payment::put(conn, &settings, now)?;

        let sophie = customer(
            &org.id,
            SOPHIE.0,
            "Sophie Laurent",
            Some("+33611223344"),
            now,
        );
        customers::insert(conn, &sophie)?;
        customers::set_password(conn, &sophie.id, &sophie_hash, now)?;
        let karim = customer(&org.id, KARIM.0, "Karim Benali", None, now);
        customers::insert(conn, &karim)?;
        customers::set_password(conn, &karim.id, &karim_hash, now)?;

        let orders = [
            // In progress, next debit in about three weeks: the card can
            // change (and the refusals for the new card can be tried).
            Plan {
                customer: &sophie,
                number: "FR-10421",
                brand: "Maison Lumière",
                total: 48_000,
                count: 4,
                first_due: days_before(today, 40),
                card: &visa,
                unpaid: 0,
                cancel: None,
            },
            // In progress, next debit in 1 to 4 days (27 days ago plus a
            // month): within the 7 days' notice,
            // a card change is refused with `debit_already_scheduled`.
            Plan {
                customer: &sophie,
                number: "FR-10433",
                brand: "Vélo Urbain",
                total: 129_900,
                count: 3,
                first_due: days_before(today, 27),
                card: &mastercard,
                unpaid: 0,
                cancel: None,
            },
            // Completed: every instalment paid.
            Plan {
                customer: &sophie,
                number: "FR-10377",
                brand: "Atelier Bois",
                total: 29_970,
                count: 3,
                first_due: days_before(today, 100),
                card: &visa_debit,
                unpaid: 0,
                cancel: None,
            },
            // Unpaid: the second debit failed twice for insufficient funds;
            // the card change is refused and regularization is offered.
            Plan {
                customer: &sophie,
                number: "FR-10398",
                brand: "Sport Élan",
                total: 35_997,
                count: 3,
                first_due: days_before(today, 45),
                card: &no_funds,
                unpaid: 1,
                cancel: None,
            },
            // Partially cancelled: 200 € of 600 € returned to the merchant
            // after the first instalment was paid.
            Plan {
                customer: &sophie,
                number: "FR-10402",
                brand: "Électro Plus",
                total: 60_000,
                count: 4,
                first_due: days_before(today, 20),
                card: &visa,
                unpaid: 0,
                cancel: Some((20_000, days_before(today, 5))),
            },
            Plan {
                customer: &karim,
                number: "FR-10450",
                brand: "Maison Lumière",
                total: 24_000,
                count: 2,
                first_due: days_before(today, 10),
                card: &mastercard,
                unpaid: 0,
                cancel: None,
            },
            // Cancelled in full after one payment, which is refunded.
            Plan {
                customer: &karim,
                number: "FR-10389",
                brand: "Sport Élan",
                total: 15_000,
                count: 3,
                first_due: days_before(today, 35),
                card: &mastercard,
                unpaid: 0,
                cancel: Some((15_000, days_before(today, 3))),
            },
        ];
        for plan in &orders {
            plan.store(conn, today, now)?;
        }
        Ok::<_, ProvisionError>(org)
    })?;
    Ok((org, true))
}

/// One demo order: an equal monthly plan whose instalments due before today
/// are paid, except the last `unpaid` of them; then an optional
/// cancellation of `(amount, on)`.
struct Plan<'a> {
    customer: &'a Customer,
    number: &'a str,
    brand: &'a str,
    total: i64,
    count: u32,
    first_due: NaiveDate,
    card: &'a guichet_domain::gateway::CardToken,
    unpaid: usize,
    cancel: Option<(i64, NaiveDate)>,
}

impl Plan<'_> {
    fn store(
        &self,
        conn: &mut DbConnection,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), ProvisionError> {
        let invalid = |e: guichet_domain::schedule::ScheduleError| {
            ProvisionError::Invalid(format!("demo order {}: {e}", self.number))
        };
        let total = Money::new(self.total, Currency::EUR);
        let schedule = Schedule::new(
            total,
            plan_equal(total, self.count, self.first_due).map_err(invalid)?,
        )
        .map_err(invalid)?;
        let created = at(self.first_due);
        let mut order = Order {
            id: ids::new_id("ord"),
            org_id: self.customer.org_id.clone(),
            customer_id: self.customer.id.clone(),
            order_number: self.number.to_owned(),
            merchant_brand: self.brand.to_owned(),
            purchase_date: self.first_due,
            card: Card {
                id: ids::new_id("crd"),
                org_id: self.customer.org_id.clone(),
                customer_id: self.customer.id.clone(),
                token: self.card.token.clone(),
                view: self.card.card.clone(),
                created_at: created,
            },
            instalment_ids: schedule
                .instalments
                .iter()
                .map(|i| (i.number, ids::new_id("ins")))
                .collect::<BTreeMap<_, _>>(),
            refunds: Vec::new(),
            schedule,
            created_at: created,
            updated_at: created,
        };
        schedules::insert_card(conn, &order.card)?;
        schedules::insert_order(conn, &order)?;

        let past: Vec<u32> = order
            .schedule
            .instalments
            .iter()
            .filter(|i| i.due_date < today)
            .map(|i| i.number)
            .collect();
        let paid = past.len().saturating_sub(self.unpaid);
        for (k, number) in past.iter().enumerate() {
            if let Some(i) = order.schedule.instalment_mut(*number) {
                if k < paid {
                    i.status = InstalmentStatus::Paid;
                    i.paid_at = Some(at(i.due_date));
                    i.attempts = 1;
                } else {
                    // Failed on its due date and at the retry 3 days later.
                    i.status = InstalmentStatus::Unpaid;
                    i.attempts = 2;
                }
            }
        }
        if let Some((amount, on)) = self.cancel {
            order
                .schedule
                .cancel(Money::new(amount, Currency::EUR), at(on))
                .map_err(invalid)?;
        }
        schedules::save_schedule(conn, &mut order, now)?;
        Ok(())
    }
}

/// 06:00 UTC on `date`: when the demo's debits ran.
fn at(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN))
        .and_utc()
}

fn days_before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(days)).unwrap_or(date)
}
