//! Consent invitations: the business orders, for one of its client
//! accounts, the sharing of the client's credit-card statements; the
//! cardholder consents alone through an expiring link (SMS code, card,
//! client reference, terms, the bank's strong authentication).
//!
//! - `admin.rs`: `/v1/admin/consent-accounts`, `/v1/admin/consents...`
//!   (order, track, edit and resend, revoke, templates, settings);
//! - `public.rs`: `/v1/consents/{token}...`, the cardholder's steps;
//! - `sca.rs`: the sandbox issuer's page, `/v1/sandbox/sca/{id}`.

pub mod admin;
pub mod public;
pub mod sca;

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::consent::link_expired;
use guichet_domain::ids;
use guichet_store::DbConnection;
use guichet_store::repo::consents::{self, Consent, ConsentAccount, Step};
use guichet_store::repo::events::{self, Event};
use guichet_store::snapshots;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{StaffActor, StaffPrincipal};
use crate::problem::ApiError;

/// Registers the consent routes (the fixed admin paths before `{id}`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/v1/admin/consent-accounts")
            .service(admin::list_accounts)
            .service(admin::create_account),
    )
    .service(
        scope("/v1/admin/consents")
            .service(admin::get_settings)
            .service(admin::put_settings)
            .service(admin::templates)
            .service(admin::create)
            .service(admin::list)
            .service(admin::get_one)
            .service(admin::update)
            .service(admin::reinvite)
            .service(admin::revoke),
    )
    .service(
        scope("/v1/consents")
            .service(public::welcome)
            .service(public::send_code)
            .service(public::verify_code)
            .service(public::card)
            .service(public::completion),
    )
    .service(
        scope("/v1/sandbox/sca")
            .service(sca::page)
            .service(sca::decide),
    );
}

/// The hash a link's token is stored under (tokens are 256 random bits,
/// so an unkeyed hash is enough).
pub fn link_hash(token: &str) -> String {
    hex::encode(Sha256::digest(format!("consent_link\0{token}").as_bytes()))
}

/// The activation link: the organization's page with the token in place
/// of `{token}`.
pub fn activation_link(activation_url: &str, token: &str) -> String {
    activation_url.replace("{token}", token)
}

/// A client account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentAccountView {
    #[schema(example = "cac_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// The client company.
    #[schema(example = "Boulangerie Martin SRL")]
    pub company_name: String,
    /// The card account's client reference, as printed on its statements.
    #[schema(example = "BE-CARO-0042-4242")]
    pub client_reference: String,
    pub created_at: DateTime<Utc>,
}

impl From<ConsentAccount> for ConsentAccountView {
    fn from(a: ConsentAccount) -> Self {
        ConsentAccountView {
            id: a.id,
            company_name: a.company_name,
            client_reference: a.client_reference,
            created_at: a.created_at,
        }
    }
}

/// One step of the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// `invitation_sent`, `link_opened`, `code_sent`, `code_verified`,
    /// `card_refused`, `bank_started`, `bank_succeeded`, `bank_failed`,
    /// `confirmation_sent`, `contacts_erased`, `contacts_edited`, `expired`
    /// or `revoked`.
    #[schema(value_type = crate::routes::enums::ConsentStep, example = "code_sent")]
    pub step: String,
    pub at: DateTime<Utc>,
    /// What the office needs: the masked destination of a message, the
    /// card of a bank step (`visa 4242`), the refusal code of a card, the
    /// bank's outcome.
    #[schema(example = "+32 4** ** ** 67")]
    pub detail: Option<String>,
}

/// The card of the last accepted card step (never its number).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentCardView {
    #[schema(value_type = crate::routes::enums::CardBrand, example = "visa")]
    pub brand: String,
    #[schema(example = "4242")]
    pub last4: String,
}

/// A consent as the office follows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    #[schema(example = "cns_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// `invitation_sent`, `opened`, `code_sent`, `code_verified`,
    /// `awaiting_bank`, `active`, `failed`, `expired` or `revoked`.
    #[schema(value_type = crate::routes::enums::ConsentStatus, example = "invitation_sent")]
    pub status: &'static str,
    /// `failed`: what the bank answered (`online_payments_disabled`,
    /// `card_blocked`, `card_not_activated`, `wrong_data`,
    /// `technical_error`).
    #[schema(value_type = Option<crate::routes::enums::BankFailure>, example = "card_blocked")]
    pub failure_reason: Option<String>,
    pub account: ConsentAccountView,
    pub cardholder_name: String,
    /// In clear until the confirmation is sent, then null (erased).
    #[schema(example = "anne.martin@example.com")]
    pub email: Option<String>,
    #[schema(example = "+32470123467")]
    pub mobile: Option<String>,
    #[schema(example = "a***@example.com")]
    pub email_masked: String,
    #[schema(example = "+32 4** ** ** 67")]
    pub mobile_masked: String,
    /// The cardholder's language: `fr` or `en`.
    #[schema(value_type = crate::routes::enums::Language, example = "fr")]
    pub language: String,
    /// When the current activation link dies (14 days after it was sent).
    pub expires_at: DateTime<Utc>,
    /// Active: the first day statements are shared from (the first day of
    /// the month after enrolment).
    pub effective_from: Option<NaiveDate>,
    pub card: Option<ConsentCardView>,
    /// Whether the e-mail address and mobile number were erased (after the
    /// confirmation was sent).
    pub contacts_erased: bool,
    /// Every step with its time, oldest first.
    pub timeline: Vec<StepView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The consent's view, with its account and timeline.
pub fn view(conn: &mut DbConnection, consent: &Consent) -> Result<ConsentView, ApiError> {
    let account = consents::get_account(conn, &consent.org_id, &consent.account_id)?;
    let steps = consents::steps(conn, &consent.org_id, &consent.id)?;
    Ok(view_of(consent, account, steps))
}

/// The view of a consent, its account and its timeline.
pub fn view_of(consent: &Consent, account: ConsentAccount, steps: Vec<Step>) -> ConsentView {
    let card = steps
        .iter()
        .rev()
        .find(|s| s.kind == consents::BANK_STARTED)
        .and_then(|s| s.detail.as_deref())
        .and_then(|d| d.split_once(' '))
        .map(|(brand, last4)| ConsentCardView {
            brand: brand.to_owned(),
            last4: last4.to_owned(),
        });
    let contacts_erased = steps.iter().any(|s| s.kind == consents::CONTACTS_ERASED);
    ConsentView {
        id: consent.id.clone(),
        status: consent.status.as_str(),
        failure_reason: consent.failure_reason.clone(),
        account: account.into(),
        cardholder_name: consent.cardholder_name.clone(),
        email: consent.email.clone(),
        mobile: consent.mobile.clone(),
        email_masked: consent.email_masked.clone(),
        mobile_masked: consent.mobile_masked.clone(),
        language: consent.language.clone(),
        expires_at: consent.expires_at,
        effective_from: consent.effective_from,
        card,
        contacts_erased,
        timeline: steps
            .into_iter()
            .map(|s| StepView {
                step: s.kind,
                at: s.at,
                detail: s.detail,
            })
            .collect(),
        created_at: consent.created_at,
        updated_at: consent.updated_at,
    }
}

/// Who acted, as events name it.
pub fn actor_of(principal: &StaffPrincipal) -> &'static str {
    match principal.actor {
        StaffActor::Staff { .. } => "staff",
        StaffActor::ApiKey { .. } => "api_key",
    }
}

/// The actor of the cardholder's own steps (no account: the link).
pub const CARDHOLDER: &str = "cardholder";

/// Records `consent.<verb>` for the consent as it is now, in the caller's
/// transaction. The snapshot is the admin view without the e-mail address
/// and mobile number in clear (their masked forms stay), built by
/// `guichet_store::snapshots::consent` as the expiry sweep builds it.
pub fn record_event(
    conn: &mut DbConnection,
    consent_id: &str,
    org_id: &str,
    verb: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let consent = consents::get(conn, org_id, consent_id)?;
    let account = consents::get_account(conn, org_id, &consent.account_id)?;
    let steps = consents::steps(conn, org_id, consent_id)?;
    let data = snapshots::consent(&consent, &account, &steps).to_string();
    events::record(
        conn,
        &Event {
            id: ids::new_id("evt"),
            org_id: org_id.to_owned(),
            event_type: format!("consent.{verb}"),
            object_type: "consent".to_owned(),
            object_id: consent_id.to_owned(),
            customer_id: None,
            actor: actor.to_owned(),
            data,
            created_at: now,
        },
    )?;
    Ok(())
}

/// Marks the consent `expired` when its link died while the flow was under
/// way (with its step and event, in one transaction: see
/// `consents::expire`, which the expiry sweep of `guichet_jobs::consents`
/// runs too, so that the event is recorded once whichever comes first);
/// returns it as it is now.
pub fn expire_if_due(
    conn: &mut DbConnection,
    consent: Consent,
    now: DateTime<Utc>,
) -> Result<Consent, ApiError> {
    if !consent.status.in_progress() || !link_expired(consent.expires_at, now) {
        return Ok(consent);
    }
    guichet_store::transaction(conn, |conn| {
        consents::expire(conn, &consent.org_id, &consent.id, now)
    })?;
    Ok(consents::get(conn, &consent.org_id, &consent.id)?)
}

/// Expires every consent of the organization whose link died (before a
/// list is read, so that `?status=` filters what is true now, even between
/// two sweeps).
pub fn expire_due(
    conn: &mut DbConnection,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    for id in consents::due_to_expire(conn, org_id, now)? {
        guichet_store::transaction(conn, |conn| consents::expire(conn, org_id, &id, now))?;
    }
    Ok(())
}
