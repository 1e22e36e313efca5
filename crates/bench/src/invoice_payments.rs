//! The `invoice_payments_vs_me` scenario (issue #17): the demo customer
//! pays her invoices online, `POST /v1/me/invoices/{id}/payments` with a
//! sandbox card token, in turns with `GET /v1/me` (same token, same
//! server).
//!
//! Every request pays a different open invoice, all that is due, under
//! its own `Idempotency-Key`: a repeated key or an invoice already paid
//! would be a replay or a refusal, not a payment. The invoices are seeded
//! in SQL into the server's database after the demo is created and before
//! the measured server starts (issuing that many through the admin API
//! would render and share a PDF each, minutes of set-up): open, numbered,
//! one line at 20 % like `autopay.rs`'s, due 30 days later, without the
//! issued PDF (paying does not read it). The requests are encoded once and
//! consumed in order by the connections ([`Sequence`]): warm-ups and
//! measured windows each take the next invoices.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate};
use diesel::prelude::*;
use guichet_domain::gateway::test_cards;
use guichet_store::schema::{customers, invoice_payments, invoices, organizations};
use serde_json::json;

use crate::autopay::{
    ID_BASE, InvoiceSeed, amounts_of, invoices_sql, numbers_sql, run_in_transaction, settle,
};
use crate::debit::{connect, quote};
use crate::http::RequestSpec;
use crate::load::Sequence;
use crate::scenarios::{DEMO_EMAIL, DEMO_ORGANIZATION, Setup, login, string_field};
use crate::server::Backend;

/// The highest payment rate the seed is sized for: more than this over
/// the whole run exhausts the invoices (counted as `exhausted` errors).
pub const MAX_RATE_PER_S: f64 = 5_000.0;

/// The seeded invoices' id prefix (`inv_p10000001`, ...).
const ID_PREFIX: &str = "inv_p";

/// The path as reported: one per invoice.
pub const PATH: &str = "/v1/me/invoices/{id}/payments";

/// Invoices to seed for `load` seconds of payments (warm-ups included).
pub fn needed(load: Duration) -> u64 {
    (load.as_secs_f64() * MAX_RATE_PER_S).ceil() as u64 + 1
}

/// What the seed made: each invoice's id and total, in the order they
/// are paid.
#[derive(Debug)]
pub struct Seeded {
    pub invoices: Vec<(String, i64)>,
    pub seed_ms: f64,
}

/// Seeds `count` open invoices of the demo customer into the database at
/// `url` (the demo created, the server stopped).
pub fn seed(url: &str, backend: Backend, count: u64, today: NaiveDate) -> Result<Seeded, String> {
    let started = std::time::Instant::now();
    let mut conn = connect(url)?;
    let db = |e: diesel::result::Error| format!("invoice_payments seed: {e}");
    let org_id: String = organizations::table
        .filter(organizations::slug.eq(DEMO_ORGANIZATION))
        .select(organizations::id)
        .first(&mut conn)
        .map_err(db)?;
    let customer_id: String = customers::table
        .filter(customers::org_id.eq(&org_id))
        .filter(customers::email.eq(DEMO_EMAIL))
        .select(customers::id)
        .first(&mut conn)
        .map_err(db)?;
    let due = today
        .checked_add_days(Days::new(30))
        .ok_or_else(|| format!("{today} is out of range"))?;
    let customer = quote(&customer_id);
    let seed = InvoiceSeed {
        backend,
        org_id: &org_id,
        customer_sql: &customer,
        id_prefix: ID_PREFIX,
        number_prefix: "BENCH-P-",
        issue_date: today,
        due_date: due,
        filter: "TRUE",
    };
    let mut statements = vec![numbers_sql(backend, count)];
    statements.extend(invoices_sql(&seed));
    statements.push("DROP TABLE bench_n;".to_owned());
    run_in_transaction(&mut conn, &statements)?;
    settle(&mut conn, backend)?;
    Ok(Seeded {
        invoices: (1..=count)
            .map(|n| (format!("{ID_PREFIX}{}", ID_BASE + n), amounts_of(n).2))
            .collect(),
        seed_ms: crate::debit::round(started.elapsed().as_secs_f64() * 1000.0, 1),
    })
}

/// The requests to compare: the payments (the first already sent and
/// checked, the rest encoded in order), `GET /v1/me` with the same
/// token, and the payment as reported.
pub struct Prepared {
    pub payments: Arc<Sequence>,
    pub shown: RequestSpec,
    pub me: RequestSpec,
}

/// Signs the demo customer in, tokenizes a sandbox Visa, pays the first
/// seeded invoice (checking the answer) and encodes a payment of each
/// other one.
pub fn prepare(setup: &mut Setup<'_>, seeded: &Seeded) -> Result<Prepared, String> {
    let sign_in = login(setup)?;
    let token = string_field(
        &setup.send(&sign_in)?.expect(200)?.json()?,
        "access_token",
        "customer login",
    )?;
    let me = RequestSpec::get("/v1/me").bearer(&token);
    let card = RequestSpec::json(
        "POST",
        "/v1/sandbox/card-tokens",
        &json!({"number": test_cards::VISA, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    let card_token = string_field(
        &setup
            .send(&card)?
            .expect(201)
            .map_err(|e| format!("tokenizing a card: {e}"))?
            .json()?,
        "token",
        "POST /v1/sandbox/card-tokens",
    )?;
    let run = std::process::id();
    let pay = |(id, total): &(String, i64)| {
        RequestSpec::json(
            "POST",
            &format!("/v1/me/invoices/{id}/payments"),
            &json!({"amount": total, "card_token": card_token}),
        )
        .bearer(&token)
        .header("Idempotency-Key", &format!("bench-{run}-{id}"))
    };
    let (first, rest) = seeded
        .invoices
        .split_first()
        .ok_or("no invoice was seeded")?;
    let answer = setup
        .send(&pay(first))?
        .expect(201)
        .map_err(|e| format!("paying {}: {e}", first.0))?
        .json()?;
    let (status, paid) = (
        answer["invoice"]["status"].as_str(),
        answer["invoice"]["amount_paid"].as_i64(),
    );
    if status != Some("paid") || paid != Some(first.1) {
        return Err(format!(
            "paying {} ({} cents) answered the invoice {status:?} with {paid:?} paid",
            first.0, first.1
        ));
    }
    let mut wire = Vec::with_capacity(rest.len());
    for invoice in rest {
        wire.push(pay(invoice).encode(setup.host())?);
    }
    let shown = RequestSpec {
        path: PATH.to_owned(),
        ..pay(first)
    };
    Ok(Prepared {
        payments: Arc::new(Sequence::new(wire)),
        shown,
        me,
    })
}

/// What the database says of the seeded invoices after the load.
#[derive(Debug)]
pub struct Check {
    pub paid_invoices: u64,
    pub succeeded_payments: u64,
    pub other_payments: u64,
}

/// Counts the seeded invoices paid and their payments: each paid invoice
/// must have exactly one succeeded payment, and none may be left pending
/// or failed (the card is always accepted).
pub fn check(url: &str) -> Result<Check, String> {
    let mut conn = connect(url)?;
    let db = |e: diesel::result::Error| format!("invoice_payments check: {e}");
    let like = format!("{ID_PREFIX}%");
    let paid: i64 = invoices::table
        .filter(invoices::id.like(&like))
        .filter(invoices::status.eq("paid"))
        .count()
        .get_result(&mut conn)
        .map_err(db)?;
    let succeeded: i64 = invoice_payments::table
        .filter(invoice_payments::invoice_id.like(&like))
        .filter(invoice_payments::status.eq("succeeded"))
        .count()
        .get_result(&mut conn)
        .map_err(db)?;
    let other: i64 = invoice_payments::table
        .filter(invoice_payments::invoice_id.like(&like))
        .filter(invoice_payments::status.ne("succeeded"))
        .count()
        .get_result(&mut conn)
        .map_err(db)?;
    let count = |c: i64| u64::try_from(c).unwrap_or(0);
    Ok(Check {
        paid_invoices: count(paid),
        succeeded_payments: count(succeeded),
        other_payments: count(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_covers_the_load_at_the_highest_rate() {
        assert_eq!(needed(Duration::from_secs(14)), 70_001);
        assert_eq!(needed(Duration::ZERO), 1);
    }
}
