//! Seeding orders for tests of the customer side and of debit runs, through
//! the store (as an import would), with a sandbox card token.

use chrono::{NaiveDate, Utc};
use guichet_domain::gateway::sandbox::SandboxTokens;
use guichet_domain::gateway::{CardDetails, Cvc, Pan};
use guichet_domain::schedule::{Schedule, plan_equal};
use guichet_domain::{Clock, Currency, Money, SystemClock, ids};
use guichet_store::repo::schedules::{self, Card, Order};

use crate::{TEST_SECRET_KEY, TestApp};

/// A sandbox token for test card `number` expiring `exp_month`/`exp_year`,
/// the same the test server's sandbox gives.
pub fn sandbox_token(
    number: &str,
    exp_month: u8,
    exp_year: u16,
) -> (String, guichet_domain::card::CardView) {
    // Tokens need no ledger: derived under the test server's key.
    let tokens = SandboxTokens::new(TEST_SECRET_KEY.as_bytes());
    let cvc = if number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    let token = tokens
        .tokenize(
            CardDetails {
                number: Pan::parse(number).unwrap(),
                exp_month,
                exp_year,
                cvc: Cvc::parse(cvc).unwrap(),
            },
            SystemClock.today(),
        )
        .unwrap();
    (token.token, token.card)
}

impl TestApp {
    /// Stores an order of `total` EUR cents in `count` monthly instalments
    /// from `first_due`, paid by test card `card_number` (expiry 12/2030);
    /// returns its id.
    pub fn seed_order(
        &self,
        org_id: &str,
        customer_id: &str,
        total: i64,
        count: u32,
        first_due: NaiveDate,
        card_number: &str,
    ) -> String {
        let (token, view) = sandbox_token(card_number, 12, 2030);
        let now = Utc::now();
        let money = Money::new(total, Currency::EUR);
        let schedule = Schedule::new(money, plan_equal(money, count, first_due).unwrap()).unwrap();
        let mut order = Order {
            id: ids::new_id("ord"),
            org_id: org_id.to_owned(),
            customer_id: customer_id.to_owned(),
            order_number: ids::new_id("CMD"),
            merchant_brand: "Maison & Jardin".to_owned(),
            purchase_date: first_due,
            card: Card {
                id: ids::new_id("crd"),
                org_id: org_id.to_owned(),
                customer_id: customer_id.to_owned(),
                token,
                view,
                created_at: now,
            },
            instalment_ids: Default::default(),
            refunds: Vec::new(),
            schedule,
            created_at: now,
            updated_at: now,
        };
        for i in &order.schedule.instalments {
            order.instalment_ids.insert(i.number, ids::new_id("ins"));
        }
        let mut conn = self.store.conn().unwrap();
        guichet_store::transaction(&mut conn, |conn| {
            schedules::insert_card(conn, &order.card)?;
            schedules::insert_order(conn, &order)
        })
        .unwrap();
        order.id
    }
}
