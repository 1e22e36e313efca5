//! SEPA fixtures seeded through the store, as an import would: the
//! organization's creditor settings, a customer's account, and a signed
//! mandate with its signature. Everything the tests then do goes over HTTP
//! or through the jobs' entry points.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use guichet_domain::{Clock, ids};
use guichet_store::schema::{accounts, creditor_settings, mandate_signatures, mandates};

use crate::TestApp;

/// The creditor's account in the settings [`creditor`] writes.
pub const CREDITOR_IBAN: &str = "FR7630006000011234567890189";
/// The debtor's account of the mandates [`signed_mandate`] writes.
pub const DEBTOR_IBAN: &str = "FR1420041010050500013M02606";

/// The organization's creditor settings, with `days` of notice.
pub fn creditor(app: &TestApp, org_id: &str, name: &str, days: i32) {
    diesel::insert_into(creditor_settings::table)
        .values((
            creditor_settings::org_id.eq(org_id),
            creditor_settings::name.eq(name),
            creditor_settings::address.eq("12 rue des Lilas\n75011 Paris"),
            creditor_settings::creditor_id.eq("FR72ZZZ123456"),
            creditor_settings::iban.eq(CREDITOR_IBAN),
            creditor_settings::bic.eq("AGRIFRPP"),
            creditor_settings::prenotification_days.eq(days),
            creditor_settings::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(&mut app.store.conn().unwrap())
        .unwrap();
}

/// An account of the customer owing `balance` (EUR minor units): its id.
pub fn account(
    app: &TestApp,
    org_id: &str,
    customer_id: &str,
    label: &str,
    balance: i64,
) -> String {
    let id = ids::new_id("acc");
    let now = app.clock.now().naive_utc();
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(&id),
            accounts::org_id.eq(org_id),
            accounts::customer_id.eq(customer_id),
            accounts::label.eq(label),
            accounts::reference.eq(ids::new_id("REF")),
            accounts::balance.eq(balance),
            accounts::currency.eq("EUR"),
            accounts::created_at.eq(now),
            accounts::updated_at.eq(now),
        ))
        .execute(&mut app.store.conn().unwrap())
        .unwrap();
    id
}

/// What [`signed_mandate`] writes.
pub struct Mandate<'a> {
    pub org_id: &'a str,
    pub customer_id: &'a str,
    pub account_id: &'a str,
    pub email: &'a str,
    pub debtor_name: &'a str,
    /// Recurrent (spread over `spread_months`), else one-off.
    pub recurrent: bool,
    pub spread_months: Option<i32>,
    pub signed_at: DateTime<Utc>,
}

/// A mandate signed at `m.signed_at`, with its signature: its id. Its
/// reference is `RUM-` and twelve characters of its id.
pub fn signed_mandate(app: &TestApp, m: &Mandate<'_>) -> String {
    let id = ids::new_id("mdt");
    let umr = format!("RUM-{}", &id[4..16].to_ascii_uppercase());
    let at = m.signed_at.naive_utc();
    let mut conn = app.store.conn().unwrap();
    diesel::insert_into(mandates::table)
        .values((
            mandates::id.eq(&id),
            mandates::org_id.eq(m.org_id),
            mandates::customer_id.eq(m.customer_id),
            mandates::account_id.eq(m.account_id),
            mandates::status.eq("signed"),
            mandates::payment_type.eq(if m.recurrent { "recurrent" } else { "one_off" }),
            mandates::iban.eq(DEBTOR_IBAN),
            mandates::bic.eq("PSSTFRPPPAR"),
            mandates::email.eq(m.email),
            mandates::amount.eq(None::<i64>),
            mandates::spread_months.eq(m.spread_months),
            mandates::debtor_name.eq(m.debtor_name),
            mandates::debtor_address.eq(None::<String>),
            mandates::umr.eq(Some(&umr)),
            mandates::created_at.eq(at),
            mandates::updated_at.eq(at),
        ))
        .execute(&mut conn)
        .unwrap();
    diesel::insert_into(mandate_signatures::table)
        .values((
            mandate_signatures::mandate_id.eq(&id),
            mandate_signatures::signed_at.eq(at),
            mandate_signatures::channel.eq("email"),
            mandate_signatures::destination.eq("d***@example.com"),
            mandate_signatures::ip.eq("127.0.0.1"),
            mandate_signatures::user_agent.eq("tests"),
            mandate_signatures::document_sha256.eq("00"),
        ))
        .execute(&mut conn)
        .unwrap();
    id
}
