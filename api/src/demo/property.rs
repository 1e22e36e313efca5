//! The demo's property manager (seed 003): a creditor with its SEPA
//! settings and a tenant holding two accounts, one without a mandate and
//! one already paid by a signed recurring mandate, so that the README's
//! session goes from the IBAN check to a signed PDF.
//!
//! The signed mandate is made here as the signature route makes one (same
//! document, reference and collection plan), with evidence that says it is
//! demo data rather than a real signature.

use chrono::{DateTime, Days, NaiveDate, Utc};
use guichet_domain::identity::Customer;
use guichet_domain::ids;
use guichet_domain::password::hash_password;
use guichet_domain::sepa::PaymentType;
use guichet_domain::sepa::mandate_pdf::{
    SignatureChannel, SignatureEvidence, document_hash, render_mandate,
};
use guichet_store::repo::accounts::{self, Account, EntryKind};
use guichet_store::repo::collections::{self, Collection};
use guichet_store::repo::creditor::{self, CreditorSettings, DEFAULT_PRENOTIFICATION_DAYS};
use guichet_store::repo::mandates::{self, Mandate, MandateStatus, Signature};
use guichet_store::repo::{codes, customers, organizations, staff};
use guichet_store::{DbConnection, OptionalExt};

use super::{DemoAccount, customer};
use crate::problem::ApiError;
use crate::provision::{self, ProvisionError};
use crate::routes::auth::purpose;
use crate::routes::sepa::mandates::{
    document_of, earliest_due, letterhead, new_umr, place_of, plan,
};

/// The property manager's slug.
pub const SLUG: &str = "gerance";
const NAME: &str = "Gérance des Lilas — administrateur de biens";
const ADMIN: (&str, &str) = ("admin@gerance.guichet.localhost", "Admin-Gerance-2026!");
/// The tenant of the README's session.
pub const NADIA: (&str, &str) = ("nadia.haddad@example.com", "Nadia-Demo-2026!");
/// Her bank account (La Banque Postale's documented example IBAN).
const NADIA_IBAN: &str = "FR1420041010050500013M02606";
const NADIA_BIC: &str = "PSSTFRPP";

/// The property manager's accounts, for the banner.
pub fn accounts() -> Vec<DemoAccount> {
    vec![
        DemoAccount {
            what: "admin (POST /v1/auth/staff/login)",
            email: ADMIN.0,
            password: Some(ADMIN.1),
        },
        DemoAccount {
            what: "tenant with two accounts: LOC-2024-0042 without mandate (850.00 € due), \
                   PKG-2024-0012 with a signed recurring mandate",
            email: NADIA.0,
            password: Some(NADIA.1),
        },
    ]
}

fn invalid(what: &str) -> impl Fn(ApiError) -> ProvisionError + '_ {
    move |e| ProvisionError::Invalid(format!("{what}: {e}"))
}

/// The property manager, created unless it exists; whether it was created.
pub fn seed(
    conn: &mut DbConnection,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<(guichet_domain::Organization, bool), ProvisionError> {
    if let Some(org) = organizations::find_by_slug(conn, SLUG).optional()? {
        return Ok((org, false));
    }
    let hash = |p: &str| hash_password(p).map_err(|e| ProvisionError::Invalid(e.to_string()));
    let (admin_hash, nadia_hash) = (hash(ADMIN.1)?, hash(NADIA.1)?);
    let today = now.date_naive();
    let org = guichet_store::transaction(conn, |conn| {
        let new = provision::insert_organization(conn, secret_key, SLUG, NAME, ADMIN.0, now)?;
        let org = new.organization;
        let mut o = org.clone();
        o.support_email = Some("locataires@gerance.guichet.localhost".into());
        o.support_phone = Some("+33 1 84 80 00 10".into());
        organizations::update_settings(conn, &o)?;
        staff::set_password(conn, &new.admin.id, &admin_hash)?;
        codes::void_all(conn, &new.admin.id, purpose::STAFF_SETUP, now)?;
        let creditor = CreditorSettings {
            org_id: org.id.clone(),
            name: "Gérance des Lilas SAS".to_owned(),
            address: vec!["12 rue de la Paix".to_owned(), "75002 Paris".to_owned()],
            creditor_id: "FR72ZZZ123456".to_owned(),
            iban: "FR7630006000011234567890189".to_owned(),
            bic: "AGRIFRPP".to_owned(),
            prenotification_days: DEFAULT_PRENOTIFICATION_DAYS,
            updated_at: now,
        };
        creditor::put(conn, &creditor, now)?;

        let mut nadia = customer(&org.id, NADIA.0, "Nadia Haddad", Some("+33622334455"), now);
        nadia.external_ref = Some("LOCATAIRE-0042".to_owned());
        customers::insert(conn, &nadia)?;
        customers::set_password(conn, &nadia.id, &nadia_hash, now)?;
        account(
            conn,
            &nadia,
            "Bail — 8 rue des Lilas, appartement 3",
            "LOC-2024-0042",
            85_000,
            now,
        )?;
        let parking = account(
            conn,
            &nadia,
            "Parking n° 12 — 8 rue des Lilas",
            "PKG-2024-0012",
            12_000,
            now,
        )?;
        signed_recurring_mandate(conn, &nadia, &parking, &creditor, days_before(today, 10))?;
        Ok::<_, ProvisionError>(org)
    })?;
    Ok((org, true))
}

fn account(
    conn: &mut DbConnection,
    customer: &Customer,
    label: &str,
    reference: &str,
    balance: i64,
    now: DateTime<Utc>,
) -> Result<Account, ProvisionError> {
    let account = Account {
        id: ids::new_id("acc"),
        org_id: customer.org_id.clone(),
        customer_id: customer.id.clone(),
        label: label.to_owned(),
        reference: reference.to_owned(),
        balance: 0,
        currency: "EUR".to_owned(),
        created_at: now,
        updated_at: now,
    };
    accounts::insert(conn, &account)?;
    accounts::add_entry(
        conn,
        &account.id,
        &account.org_id,
        EntryKind::Charge,
        balance,
        "Loyer de novembre",
        None,
        now,
    )?;
    Ok(accounts::get(conn, &account.org_id, &account.id)?)
}

/// A recurring mandate signed on `signed_on` by code sent by SMS, with its
/// signed PDF and the collection of the whole balance at the earliest date.
fn signed_recurring_mandate(
    conn: &mut DbConnection,
    customer: &Customer,
    account: &Account,
    creditor: &CreditorSettings,
    signed_on: NaiveDate,
) -> Result<(), ProvisionError> {
    let signed_at = signed_on
        .and_hms_opt(18, 42, 0)
        .unwrap_or_default()
        .and_utc();
    let mut mandate = Mandate {
        id: ids::new_id("mdt"),
        org_id: customer.org_id.clone(),
        customer_id: customer.id.clone(),
        account_id: account.id.clone(),
        status: MandateStatus::Draft,
        payment_type: PaymentType::Recurrent,
        iban: NADIA_IBAN.to_owned(),
        bic: NADIA_BIC.to_owned(),
        email: customer.email.clone(),
        amount: None,
        spread_months: None,
        debtor_name: customer.name.clone(),
        debtor_address: Some("8 rue des Lilas\n75011 Paris".to_owned()),
        umr: None,
        signature: None,
        created_at: signed_at,
        updated_at: signed_at,
    };
    mandates::insert(conn, &mandate)?;
    let letterhead = letterhead(conn, &mandate.org_id).map_err(invalid("demo letterhead"))?;
    let unsigned = render_mandate(
        &document_of(&mandate, creditor, customer.locale, &letterhead, None)
            .map_err(invalid("demo mandate"))?,
    );
    let evidence = SignatureEvidence {
        place: place_of(&mandate, customer.locale),
        signed_at: signed_at
            .with_timezone(&letterhead.time_zone)
            .fixed_offset(),
        channel: SignatureChannel::Sms,
        masked_destination: "+33 6** ** 44 55".to_owned(),
        ip: "192.0.2.10".to_owned(),
        user_agent: "Guichet demo data (no real signature)".to_owned(),
        document_hash: document_hash(&unsigned),
    };
    let umr = new_umr(signed_on);
    mandate.umr = Some(umr.clone());
    let pdf = render_mandate(
        &document_of(
            &mandate,
            creditor,
            customer.locale,
            &letterhead,
            Some(evidence.clone()),
        )
        .map_err(invalid("demo mandate"))?,
    );
    let signature = Signature {
        signed_at,
        channel: "sms".to_owned(),
        destination: evidence.masked_destination.clone(),
        ip: evidence.ip.clone(),
        user_agent: evidence.user_agent.clone(),
        document_sha256: evidence.document_hash.clone(),
        last_collected_at: None,
        revoked_at: None,
        expired_at: None,
    };
    mandates::sign(
        conn,
        &mandate.org_id,
        &mandate.id,
        &umr,
        &signature,
        &pdf,
        &document_hash(&pdf),
        signed_at,
    )?;
    let due = earliest_due(signed_on, Some(creditor));
    for (sequence, amount, due_date) in plan(&mandate, account.balance, due) {
        collections::insert(
            conn,
            &Collection::scheduled(
                &mandate.org_id,
                &mandate.id,
                &mandate.account_id,
                sequence,
                amount,
                due_date,
                Some(signed_at),
                signed_at,
            ),
        )?;
    }
    Ok(())
}

fn days_before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(days)).unwrap_or(date)
}
