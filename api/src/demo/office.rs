//! The demo's accounting office (seed 001): client accounts for which the
//! sharing of credit-card statements can be ordered, the consent settings,
//! and one consent in each status with its timeline, so that the office's
//! tracking shows every case of the troubleshooting guide. The README's
//! session orders a new one and follows the cardholder's steps.
//!
//! The consents here are written as the routes write them; their links'
//! tokens are thrown away (only a hash is ever kept), so none of these
//! links can be opened: a new invitation gives a working one.

use chrono::{DateTime, Duration, Utc};
use guichet_domain::consent::{ConsentStatus, effective_from, invitation_lifetime};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::password::hash_password;
use guichet_domain::{ids, secret};
use guichet_store::repo::consents::{
    self, Consent, ConsentAccount, ConsentSettings, Invitation, Step,
};
use guichet_store::repo::{codes, organizations, staff};
use guichet_store::{DbConnection, OptionalExt};

use super::DemoAccount;
use crate::provision::{self, ProvisionError};
use crate::routes::auth::purpose;
use crate::routes::consents::link_hash;

/// The accounting office's slug.
pub const SLUG: &str = "fiduciaire";
const NAME: &str = "Fiduciaire Dupont & Associés";
const ADMIN: (&str, &str) = (
    "admin@fiduciaire.guichet.localhost",
    "Admin-Fiduciaire-2026!",
);
/// The client account of the README's session (its reference ends with the
/// sandbox's test Visa credit card's last four digits, 4242).
pub const README_REFERENCE: &str = "BE-CARO-0042-4242";
/// The terms' version the cardholder accepts.
pub const TERMS_VERSION: &str = "2026-11";

/// The office's accounts, for the banner.
pub fn accounts() -> Vec<DemoAccount> {
    vec![DemoAccount {
        what: "admin (POST /v1/auth/staff/login): client accounts, one consent in each status; \
               order one for BE-CARO-0042-4242 (card 4242 4242 4242 4242)",
        email: ADMIN.0,
        password: Some(ADMIN.1),
    }]
}

/// The office, created unless it exists; whether it was created.
pub fn seed(
    conn: &mut DbConnection,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<(guichet_domain::Organization, bool), ProvisionError> {
    if let Some(org) = organizations::find_by_slug(conn, SLUG).optional()? {
        return Ok((org, false));
    }
    let admin_hash = hash_password(ADMIN.1).map_err(|e| ProvisionError::Invalid(e.to_string()))?;
    let org = guichet_store::transaction(conn, |conn| {
        let new = provision::insert_organization(conn, secret_key, SLUG, NAME, ADMIN.0, now)?;
        let org = new.organization;
        let mut o = org.clone();
        o.support_email = Some("caro@fiduciaire.guichet.localhost".into());
        o.support_phone = Some("+32 2 555 01 00".into());
        organizations::update_settings(conn, &o)?;
        staff::set_password(conn, &new.admin.id, &admin_hash)?;
        codes::void_all(conn, &new.admin.id, purpose::STAFF_SETUP, now)?;
        consents::put_settings(
            conn,
            &ConsentSettings {
                org_id: org.id.clone(),
                activation_url: "http://127.0.0.1:8080/v1/consents/{token}".to_owned(),
                video_url: "https://fiduciaire.example/caro-en-5-etapes".to_owned(),
                terms_version: TERMS_VERSION.to_owned(),
                terms_url: "https://fiduciaire.example/conditions/2026-11".to_owned(),
                updated_at: now,
            },
        )?;
        account(
            conn,
            &org.id,
            "Boulangerie Martin SRL",
            README_REFERENCE,
            now,
        )?;
        let others = [
            account(conn, &org.id, "Garage Lambert SA", "BE-CARO-0107-4444", now)?,
            account(conn, &org.id, "Cabinet Vert SPRL", "BE-CARO-0311-5556", now)?,
        ];
        let people = [
            (
                "Sophie Lambert",
                "sophie.lambert@example.com",
                "+32470100001",
            ),
            ("Hugo Lambert", "hugo.lambert@example.com", "+32470100002"),
            ("Inès Vert", "ines.vert@example.com", "+32470100003"),
            ("Jean Vert", "jean.vert@example.com", "+32470100004"),
            ("Karim Lambert", "karim.lambert@example.com", "+32470100005"),
            ("Laura Vert", "laura.vert@example.com", "+32470100006"),
            ("Marie Lambert", "marie.lambert@example.com", "+32470100007"),
            ("Nora Vert", "nora.vert@example.com", "+32470100008"),
            ("Omar Lambert", "omar.lambert@example.com", "+32470100009"),
        ];
        for (i, status) in ConsentStatus::ALL.into_iter().enumerate() {
            let (name, email, mobile) = people[i];
            let account = &others[i % 2];
            consent_in(conn, account, name, email, mobile, status, now)?;
        }
        Ok::<_, ProvisionError>(org)
    })?;
    Ok((org, true))
}

fn account(
    conn: &mut DbConnection,
    org_id: &str,
    company: &str,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<ConsentAccount, ProvisionError> {
    let account = ConsentAccount {
        id: ids::new_id("cac"),
        org_id: org_id.to_owned(),
        company_name: company.to_owned(),
        client_reference: reference.to_owned(),
        created_at: now,
    };
    consents::insert_account(conn, &account)?;
    Ok(account)
}

/// A consent that reached `status`, with the steps that lead there.
fn consent_in(
    conn: &mut DbConnection,
    account: &ConsentAccount,
    name: &str,
    email: &str,
    mobile: &str,
    status: ConsentStatus,
    now: DateTime<Utc>,
) -> Result<(), ProvisionError> {
    let invalid = |e: guichet_domain::ContactError| ProvisionError::Invalid(e.to_string());
    let email = Email::parse(email).map_err(invalid)?;
    let mobile = Msisdn::parse(mobile).map_err(invalid)?;
    // Expired: sent 15 days ago; the others: 2 days ago.
    let sent = if status == ConsentStatus::Expired {
        now - Duration::days(15)
    } else {
        now - Duration::days(2)
    };
    let at = |minutes: i64| sent + Duration::minutes(minutes);
    // Active or revoked after it: the confirmation was sent, the contacts
    // erased.
    let erased = matches!(status, ConsentStatus::Active | ConsentStatus::Revoked);
    let consent = Consent {
        id: ids::new_id("cns"),
        org_id: account.org_id.clone(),
        account_id: account.id.clone(),
        cardholder_name: name.to_owned(),
        email: (!erased).then(|| email.as_str().to_owned()),
        mobile: (!erased).then(|| mobile.as_str().to_owned()),
        email_masked: email.masked(),
        mobile_masked: mobile.masked(),
        language: "fr".to_owned(),
        status,
        failure_reason: (status == ConsentStatus::Failed).then(|| "card_blocked".to_owned()),
        expires_at: sent + invitation_lifetime(),
        effective_from: erased.then(|| effective_from(at(30).date_naive())),
        sca_session_id: None,
        created_at: sent,
        updated_at: sent,
    };
    consents::insert(conn, &consent)?;
    consents::insert_invitation(
        conn,
        &Invitation {
            id: ids::new_id("cin"),
            consent_id: consent.id.clone(),
            org_id: consent.org_id.clone(),
            token_hash: link_hash(&secret::token(32)),
            email: consent.email.clone(),
            email_masked: consent.email_masked.clone(),
            expires_at: consent.expires_at,
            dead_at: (status == ConsentStatus::Revoked).then_some(at(60)),
            opened_at: None,
            created_at: sent,
        },
    )?;
    let rank = |s: ConsentStatus| ConsentStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
    let reached = |s: ConsentStatus| {
        status == s
            || (rank(status) > rank(s) && rank(status) <= rank(ConsentStatus::Failed))
            || (status == ConsentStatus::Revoked && rank(s) <= rank(ConsentStatus::Active))
    };
    let mut steps = vec![Step::new(
        &consent,
        "invitation_sent",
        Some(consent.email_masked.clone()),
        at(0),
    )];
    if reached(ConsentStatus::Opened) {
        steps.push(Step::new(&consent, "link_opened", None, at(10)));
    }
    if reached(ConsentStatus::CodeSent) {
        steps.push(Step::new(
            &consent,
            "code_sent",
            Some(consent.mobile_masked.clone()),
            at(11),
        ));
    }
    if reached(ConsentStatus::CodeVerified) {
        steps.push(Step::new(&consent, "code_verified", None, at(12)));
    }
    if reached(ConsentStatus::AwaitingBank) {
        let card = if status == ConsentStatus::Failed {
            "visa 5556"
        } else {
            "visa 4444"
        };
        steps.push(Step::new(
            &consent,
            consents::BANK_STARTED,
            Some(card.to_owned()),
            at(15),
        ));
    }
    match status {
        ConsentStatus::Active | ConsentStatus::Revoked => {
            steps.push(Step::new(&consent, "bank_succeeded", None, at(20)));
            steps.push(Step::new(
                &consent,
                consents::CONFIRMATION_SENT,
                Some(consent.email_masked.clone()),
                at(20),
            ));
            steps.push(Step::new(&consent, consents::CONTACTS_ERASED, None, at(21)));
            if status == ConsentStatus::Revoked {
                steps.push(Step::new(&consent, "revoked", None, at(60)));
            }
        }
        ConsentStatus::Failed => {
            steps.push(Step::new(
                &consent,
                "bank_failed",
                Some("card_blocked".to_owned()),
                at(20),
            ));
        }
        ConsentStatus::Expired => {
            steps.push(Step::new(&consent, "expired", None, consent.expires_at));
        }
        _ => {}
    }
    for step in &steps {
        consents::add_step(conn, step)?;
    }
    Ok(())
}
