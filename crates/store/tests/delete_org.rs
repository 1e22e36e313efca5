//! `organizations::delete_with_data` leaves no row of the organization in
//! any table and touches no row of another one: on a throwaway SQLite file,
//! or a throwaway PostgreSQL database when `GUICHET_TEST_DATABASE_URL`
//! names a PostgreSQL server (an administrative URL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use guichet_store::repo::organizations;
use guichet_store::{DatabaseUrl, DbConnection, PoolOptions, Store, admin};

/// Tables that belong to no organization: limits per client address or
/// destination and spent proof-of-work challenges (keyed hashes that name
/// no organization), and diesel's record of the migrations applied.
const NOT_HELD: [&str; 4] = [
    "rate_limit_keys",
    "rate_limit_hits",
    "used_challenges",
    "__diesel_schema_migrations",
];

struct TestDb {
    store: Store,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg {
            let _ = admin::drop_database(admin_url, name);
        }
    }
}

fn test_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let options = PoolOptions::one_shot();
    match std::env::var("GUICHET_TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let prefix =
                std::env::var("GUICHET_TEST_DB_PREFIX").unwrap_or_else(|_| "guichet_t".to_owned());
            let name = format!(
                "{prefix}delorg_{}_{}",
                std::process::id(),
                chrono::Utc::now().timestamp_subsec_nanos()
            );
            admin::create_database(&admin_url, &name).unwrap();
            let url = admin::with_database(&admin_url, &name).unwrap();
            let store = Store::connect(&DatabaseUrl::Postgres(url), &options).unwrap();
            TestDb {
                store,
                _dir: dir,
                pg: Some((admin_url, name)),
            }
        }
        _ => {
            let url = DatabaseUrl::Sqlite(dir.path().join("g.db"));
            let store = Store::connect(&url, &options).unwrap();
            TestDb {
                store,
                _dir: dir,
                pg: None,
            }
        }
    }
}

/// One row in every table an organization holds, every id prefixed with
/// `p` (so two organizations seeded with different prefixes never clash).
fn seed(conn: &mut DbConnection, p: &str) {
    let t = "'2026-01-05 10:00:00'";
    let d = "'2026-02-01'";
    let slug = format!("org-{}", p.trim_end_matches('_'));
    let sql = format!(
        "
INSERT INTO organizations (id, slug, name, locale, created_at, login_methods)
  VALUES ('{p}org', '{slug}', 'Org {p}', 'fr', {t}, 'both');
INSERT INTO staff_users (id, org_id, email, name, role, created_at)
  VALUES ('{p}stf', '{p}org', 'admin@{p}.example', 'Admin', 'admin', {t});
INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, created_at)
  VALUES ('{p}key', '{p}org', 'key', 'gk_{p}', 'hash-{p}', {t});
INSERT INTO customers (id, org_id, email, name, locale, created_at, updated_at)
  VALUES ('{p}cus', '{p}org', 'c@{p}.example', 'Customer', 'fr', {t}, {t});
INSERT INTO sessions (id, org_id, subject_kind, subject_id, remember_me, created_at, last_used_at, expires_at)
  VALUES ('{p}ses', '{p}org', 'customer', '{p}cus', FALSE, {t}, {t}, {t});
INSERT INTO refresh_tokens (token_hash, session_id, created_at)
  VALUES ('{p}rt', '{p}ses', {t});
INSERT INTO one_time_codes (id, org_id, subject_kind, subject_id, purpose, code_hash, channel, destination, destination_key, attempts, max_attempts, expires_at, created_at)
  VALUES ('{p}otc', '{p}org', 'customer', '{p}cus', 'login', 'h', 'sms', '+33600000000', 'dk', 0, 5, {t}, {t});
INSERT INTO login_throttles (key, failed_logins, updated_at)
  VALUES ('{p}throttle', 1, {t});
INSERT INTO outbox (id, org_id, channel, recipient, subject, body, template, attempts, next_attempt_at, created_at)
  VALUES ('{p}msg', '{p}org', 'email', 'c@{p}.example', 's', 'b', 't', 0, {t}, {t});
INSERT INTO outbox_attachments (id, outbox_id, filename, content_type, content)
  VALUES ('{p}att', '{p}msg', 'm.pdf', 'application/pdf', '');
INSERT INTO payment_settings (org_id, card_change_notice_days, accepted_brands, retry_count, retry_delay_days, updated_at)
  VALUES ('{p}org', 7, 'visa', 1, 3, {t});
INSERT INTO contact_channels (org_id, time_zone, channels, updated_at)
  VALUES ('{p}org', 'Europe/Paris', '[]', {t});
INSERT INTO cards (id, org_id, customer_id, token, brand, last4, exp_month, exp_year, funding, created_at)
  VALUES ('{p}card', '{p}org', '{p}cus', 'tok', 'visa', '4242', 12, 2030, 'credit', {t});
INSERT INTO orders (id, org_id, customer_id, order_number, merchant_brand, purchase_date, total_amount, currency, card_id, status, created_at, updated_at)
  VALUES ('{p}ord', '{p}org', '{p}cus', 'N-1', 'Brand', {d}, 1000, 'EUR', '{p}card', 'in_progress', {t}, {t});
INSERT INTO instalments (id, order_id, org_id, number, due_date, amount, currency, status, attempts)
  VALUES ('{p}ins', '{p}ord', '{p}org', 1, {d}, 1000, 'EUR', 'paid', 1);
INSERT INTO adjustments (id, order_id, kind, amount, created_at)
  VALUES ('{p}adj', '{p}ord', 'cancellation', 500, {t});
INSERT INTO refunds (id, order_id, adjustment_id, amount, currency, status, created_at)
  VALUES ('{p}ref', '{p}ord', '{p}adj', 500, 'EUR', 'pending', {t});
INSERT INTO charges (id, org_id, order_id, instalment_id, idempotency_key, amount, currency, status, created_at, purpose)
  VALUES ('{p}chg', '{p}org', '{p}ord', '{p}ins', '{p}idem', 1000, 'EUR', 'succeeded', {t}, 'instalment');
INSERT INTO refund_parts (id, refund_id, charge_id, idempotency_key, amount, currency, status, created_at)
  VALUES ('{p}rp', '{p}ref', '{p}chg', '{p}rpidem', 500, 'EUR', 'pending', {t});
INSERT INTO sandbox_ledger (merchant, kind, idempotency_key, id, reference, amount, currency, outcome, refunded, created_at)
  VALUES ('{p}org', 'charge', '{p}idem', '{p}sbx', 'ref', 1000, 'EUR', 'succeeded', 0, {t});
INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
  VALUES ('{p}cus', 'k', 'h', {t});
INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
  VALUES ('account-charge:{p}stf', 'k', 'h', {t});
INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
  VALUES ('account-charge:{p}key', 'k', 'h', {t});
INSERT INTO creditor_settings (org_id, name, address, creditor_id, iban, bic, prenotification_days, updated_at)
  VALUES ('{p}org', 'Creditor', 'Paris', 'FR00ZZZ000000', 'FR7630006000011234567890189', 'AGRIFRPP', 14, {t});
INSERT INTO accounts (id, org_id, customer_id, label, reference, balance, currency, created_at, updated_at)
  VALUES ('{p}acc', '{p}org', '{p}cus', 'Rent', 'LOC-1', 85000, 'EUR', {t}, {t});
INSERT INTO mandates (id, org_id, customer_id, account_id, status, payment_type, iban, bic, email, debtor_name, created_at, updated_at)
  VALUES ('{p}mdt', '{p}org', '{p}cus', '{p}acc', 'signed', 'recurrent', 'FR7630006000011234567890189', 'AGRIFRPP', 'c@{p}.example', 'C', {t}, {t});
INSERT INTO mandate_signatures (mandate_id, signed_at, channel, destination, ip, user_agent, document_sha256)
  VALUES ('{p}mdt', {t}, 'sms', '+33600000000', '127.0.0.1', 'ua', 'sha');
INSERT INTO mandate_documents (mandate_id, pdf, sha256, created_at)
  VALUES ('{p}mdt', '', 'sha', {t});
INSERT INTO sepa_collections (id, org_id, mandate_id, account_id, end_to_end_id, sequence_type, amount, currency, due_date, status, created_at, updated_at)
  VALUES ('{p}col', '{p}org', '{p}mdt', '{p}acc', '{p}e2e', 'RCUR', 85000, 'EUR', {d}, 'pending', {t}, {t});
INSERT INTO documents (id, org_id, customer_id, kind, title, filename, content_type, size_bytes, sha256, blob_key, created_by_kind, created_by, created_at)
  VALUES ('{p}doc', '{p}org', '{p}cus', 'attachment', 'T', 't.pdf', 'application/pdf', 1, 'sha', 'k/{p}doc', 'customer', '{p}cus', {t});
INSERT INTO conversations (id, org_id, customer_id, subject, status, assigned_staff_id, created_at, last_message_at)
  VALUES ('{p}cnv', '{p}org', '{p}cus', 'S', 'open', '{p}stf', {t}, {t});
INSERT INTO conversation_messages (id, conversation_id, org_id, author_kind, author_id, body, created_at)
  VALUES ('{p}cvm', '{p}cnv', '{p}org', 'customer', '{p}cus', 'B', {t});
INSERT INTO message_attachments (document_id, message_id, org_id, position)
  VALUES ('{p}doc', '{p}cvm', '{p}org', 0);
INSERT INTO account_entries (id, account_id, org_id, kind, amount, label, collection_id, created_at)
  VALUES ('{p}ent', '{p}acc', '{p}org', 'collection', -85000, 'Collection', '{p}col', {t});
INSERT INTO security_events (id, org_id, customer_id, kind, actor, session_id, created_at)
  VALUES ('{p}sev', '{p}org', '{p}cus', 'password_changed', 'customer', '{p}ses', {t});
INSERT INTO contact_changes (id, org_id, customer_id, field, new_value, requested_by, requester_id, code_hash, attempts, max_attempts, expires_at, status, created_at)
  VALUES ('{p}cch', '{p}org', '{p}cus', 'email', 'n@{p}.example', 'staff', '{p}stf', 'h', 0, 5, {t}, 'pending', {t});
INSERT INTO events (id, org_id, event_type, object_type, object_id, customer_id, actor, data, created_at)
  VALUES ('{p}evt', '{p}org', 'customer.created', 'customer', '{p}cus', '{p}cus', 'staff', '{{}}', {t});
INSERT INTO webhook_endpoints (id, org_id, url, description, event_types, enabled, secret_sealed, created_at, updated_at)
  VALUES ('{p}whe', '{p}org', 'https://hooks.example/{p}', '', '[\"*\"]', TRUE, 'sealed', {t}, {t});
INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
  VALUES ('{p}whd', '{p}org', '{p}whe', '{p}evt', 'pending', 1, {t}, {t}, {t});
INSERT INTO webhook_attempts (id, delivery_id, org_id, endpoint_id, event_id, attempt, outcome, http_status, latency_ms, response, started_at)
  VALUES ('{p}wha', '{p}whd', '{p}org', '{p}whe', '{p}evt', 1, 'failed', 500, 12, 'oops', {t});
INSERT INTO consent_settings (org_id, activation_url, video_url, terms_version, terms_url, updated_at)
  VALUES ('{p}org', 'https://a.example/{{token}}', 'https://v.example', 'v1', 'https://t.example', {t});
INSERT INTO consent_accounts (id, org_id, company_name, client_reference, created_at)
  VALUES ('{p}cac', '{p}org', 'Client', 'REF-{p}', {t});
INSERT INTO consents (id, org_id, account_id, cardholder_name, email, mobile, email_masked, mobile_masked, language, status, expires_at, created_at, updated_at)
  VALUES ('{p}cns', '{p}org', '{p}cac', 'Holder', 'h@{p}.example', '+33612345678', 'h***', '+33 6**', 'fr', 'invitation_sent', {t}, {t}, {t});
INSERT INTO consent_invitations (id, consent_id, org_id, token_hash, email, email_masked, expires_at, created_at)
  VALUES ('{p}cin', '{p}cns', '{p}org', 'hash{p}', 'h@{p}.example', 'h***', {t}, {t});
INSERT INTO consent_steps (id, consent_id, org_id, seq, kind, at)
  VALUES ('{p}cst', '{p}cns', '{p}org', 1, 'invitation_sent', {t});
INSERT INTO sandbox_sca_sessions (id, merchant, idempotency_key, card_token, created_at)
  VALUES ('{p}sca', '{p}org', 'key', 'tok', {t});
INSERT INTO portal_settings (org_id, slug, actions, display_name, test_customer_id, updated_at)
  VALUES ('{p}org', 'portal-{slug}', '[]', 'Portal', '{p}cus', {t});
INSERT INTO portal_logos (org_id, content_type, content, sha256, updated_at)
  VALUES ('{p}org', 'image/png', '', 'sha', {t});
INSERT INTO portal_customer_overrides (org_id, customer_id, action, enabled, updated_at)
  VALUES ('{p}org', '{p}cus', 'documents', FALSE, {t});
INSERT INTO notifications (id, org_id, customer_id, kind, title, body, link, test, created_at)
  VALUES ('{p}ntf', '{p}org', '{p}cus', 'mandate.signed', 'T', 'B', '/v1/me/mandates/{p}mdt', FALSE, {t});
INSERT INTO booking_settings (org_id, online_booking, confirmation, horizon_days, min_notice_minutes, cancel_allowed, cancel_until_hours, reschedule_allowed, reschedule_until_hours, max_pending, reminder_hours_before, time_zone, updated_at)
  VALUES ('{p}org', TRUE, 'manual', 60, 720, TRUE, 24, TRUE, 24, 2, 24, 'Europe/Paris', {t});
INSERT INTO booking_providers (id, org_id, name, kind, staff_id, active, created_at, updated_at)
  VALUES ('{p}prv', '{p}org', 'Dr A', 'staff', '{p}stf', TRUE, {t}, {t});
INSERT INTO booking_services (id, org_id, names, duration_minutes, buffer_after_minutes, price_amount, price_currency, active, created_at, updated_at)
  VALUES ('{p}svc', '{p}org', '{{\"fr\":\"Consultation\"}}', 30, 10, 4500, 'EUR', TRUE, {t}, {t});
INSERT INTO booking_service_providers (service_id, provider_id, org_id)
  VALUES ('{p}svc', '{p}prv', '{p}org');
INSERT INTO booking_windows (id, org_id, provider_id, weekday, start_minute, end_minute)
  VALUES ('{p}bwn', '{p}org', '{p}prv', 1, 540, 720);
INSERT INTO booking_exceptions (id, org_id, provider_id, day, kind, note, created_at)
  VALUES ('{p}bex', '{p}org', '{p}prv', {d}, 'closed', 'Holiday', {t});
INSERT INTO bookings (id, org_id, customer_id, service_id, provider_id, start_at, end_at, busy_until, status, created_by_kind, created_by, test, reminder_due_at, created_at, updated_at)
  VALUES ('{p}bkg', '{p}org', '{p}cus', '{p}svc', '{p}prv', '2026-02-02 09:00:00', '2026-02-02 09:30:00', '2026-02-02 09:40:00', 'confirmed', 'customer', '{p}cus', FALSE, '2026-02-01 09:00:00', {t}, {t});
INSERT INTO payment_methods (id, org_id, customer_id, kind, card_token, card_brand, card_last4, card_exp_month, card_exp_year, card_funding, is_default, created_at)
  VALUES ('{p}pmc', '{p}org', '{p}cus', 'card', 'tok', 'visa', '4242', 12, 2030, 'credit', TRUE, {t});
INSERT INTO payment_methods (id, org_id, customer_id, kind, mandate_id, iban_masked, umr, is_default, created_at)
  VALUES ('{p}pms', '{p}org', '{p}cus', 'sepa_debit', '{p}mdt', 'FR76 **** 0189', 'RUM-{p}', FALSE, {t});
INSERT INTO customer_autopay (org_id, customer_id, enabled, payment_method_id, updated_at)
  VALUES ('{p}org', '{p}cus', TRUE, '{p}pmc', {t});
INSERT INTO invoice_counters (org_id, kind, year, last_seq)
  VALUES ('{p}org', 'invoice', 2026, 1);
INSERT INTO invoices (id, org_id, customer_id, kind, number, status, currency, subtotal, tax, total, amount_paid, issue_date, due_date, document_id, created_at, updated_at, issued_at)
  VALUES ('{p}inv', '{p}org', '{p}cus', 'invoice', 'F-2026-00001', 'open', 'EUR', 9000, 0, 9000, 4000, {d}, {d}, '{p}doc', {t}, {t}, {t});
INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_amount, tax_rate_bp, net, tax)
  VALUES ('{p}inv', 0, 'Séance', 2, 4500, 0, 9000, 0);
INSERT INTO invoice_payments (id, org_id, invoice_id, customer_id, amount, currency, source, method, status, paid_on, created_at, completed_at)
  VALUES ('{p}ipy', '{p}org', '{p}inv', '{p}cus', 4000, 'EUR', 'staff', 'cheque', 'succeeded', {d}, {t}, {t});
"
    );
    conn.batch_execute(&sql).unwrap();
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every table of the database (whatever the migrations created, so that
/// a new table is checked without changing this test).
fn tables(conn: &mut DbConnection) -> Vec<String> {
    let sql = match conn.backend() {
        guichet_store::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        guichet_store::Backend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        }
    };
    let mut names: Vec<String> = diesel::sql_query(sql)
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    names.sort();
    names
}

/// The rows of each table as text, so that a comparison shows which rows
/// are left.
fn counts(conn: &mut DbConnection) -> BTreeMap<String, i64> {
    tables(conn)
        .into_iter()
        .filter(|t| !NOT_HELD.contains(&t.as_str()))
        .map(|t| {
            let n = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {t}"))
                .get_result::<Count>(conn)
                .unwrap()
                .n;
            (t, n)
        })
        .collect()
}

#[test]
fn deleting_an_organization_leaves_none_of_its_rows_and_all_of_the_others() {
    let db = test_db();
    let mut conn = db.store.conn().unwrap();
    let conn = &mut *conn;
    let empty = counts(conn);
    seed(conn, "a_");
    let one = counts(conn);
    // The fixture covers every table an organization can hold: a table
    // added by a migration and not seeded here fails this test until it is
    // seeded (and, if it holds an organization's rows, deleted).
    for (table, n) in &one {
        assert!(
            *n > empty[table],
            "the fixture writes no row into `{table}`: seed it, and delete it in delete_with_data"
        );
    }
    seed(conn, "b_");
    let two = counts(conn);

    let throttles = ["a_throttle".to_owned()];
    assert!(organizations::delete_with_data(conn, "a_org", &throttles).unwrap());
    let after = counts(conn);
    for (table, n) in &after {
        assert_eq!(
            *n, one[table],
            "`{table}`: {} rows before, {n} after deleting one organization of two",
            two[table]
        );
    }
    // What is left is the other organization's, intact.
    for (table, column, id) in [
        ("organizations", "id", "b_org"),
        ("customers", "id", "b_cus"),
        ("mandate_documents", "mandate_id", "b_mdt"),
        ("sandbox_ledger", "merchant", "b_org"),
        ("idempotency_keys", "scope", "account-charge:b_stf"),
        ("login_throttles", "key", "b_throttle"),
        ("refund_parts", "id", "b_rp"),
    ] {
        let n = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {column} = '{id}'"
        ))
        .get_result::<Count>(conn)
        .unwrap()
        .n;
        assert_eq!(n, 1, "{table}.{column} = {id}");
    }
    assert!(organizations::get(conn, "b_org").is_ok());

    // Deleting it again finds nothing; deleting the other empties the
    // tables.
    assert!(!organizations::delete_with_data(conn, "a_org", &throttles).unwrap());
    assert!(organizations::delete_with_data(conn, "b_org", &["b_throttle".to_owned()]).unwrap());
    assert_eq!(counts(conn), empty);
}
