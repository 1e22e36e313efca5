//! The cardholder's steps, by link (no account, no password):
//! `GET /v1/consents/{token}` (welcome), `POST .../sms-code`,
//! `POST .../sms-code/verification` (a short-lived step token),
//! `POST .../card` (card token, client reference, terms: the bank's page
//! to go to), `POST .../completion` (the bank's outcome, asked of the
//! gateway).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::card::{Funding, card_expiry};
use guichet_domain::consent::{
    ConsentStatus, effective_from, link_expired, same_reference, step_token_lifetime,
};
use guichet_domain::gateway::{AuthenticationFailure, AuthenticationOutcome, GatewayError};
use guichet_domain::identity::{CODE_MAX_ATTEMPTS, SubjectKind, lifetimes};
use guichet_domain::{Locale, Organization, ids, secret};
use guichet_store::DbConnection;
use guichet_store::repo::codes::{self, OneTimeCode};
use guichet_store::repo::consents::{
    self, Consent, ConsentAccount, ConsentSettings, Invitation, Step,
};
use guichet_store::repo::organizations;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{CARDHOLDER, expire_if_due, link_hash, record_event};
use crate::auth::flows;
use crate::edge::json::Json;
use crate::faults::FaultPoint;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::auth::CodeSent;
use crate::routes::schedules::sandbox::gateway_problem;
use crate::state::AppState;

/// The one-time-code purpose of the SMS code; its subject is the link.
pub const SMS_PURPOSE: &str = "consent_sms";
/// The purpose of the step token a verified code gives.
pub const STEP_PURPOSE: &str = "consent_step";
/// SMS codes sent per link per hour.
pub const CODES_PER_LINK_PER_HOUR: u32 = 3;

const LINK_PARAM: (&str, &str) = ("token", "The activation link's token.");
const NOT_FOUND: &str = "Unknown, tampered or replaced link. Codes: `not_found`.";
const GONE: &str = "The link has expired (14 days; `office` says whom to ask for a new one), or the office revoked the consent. Codes: `invitation_expired`, `consent_revoked`.";
const ACTIVE: &str =
    "The consent is already active (`consent_status`). Codes: `consent_already_active`.";

/// What a public step works on.
struct Link {
    invitation: Invitation,
    consent: Consent,
    org: Organization,
}

fn office_contact(org: &Organization) -> serde_json::Value {
    serde_json::json!({
        "name": org.name,
        "email": org.support_email,
        "phone": org.support_phone,
    })
}

/// Whether a step may go on with this link and its consent as read: 410
/// `consent_revoked` when the office revoked the consent, 404 when the link
/// was replaced, 410 `invitation_expired` when it expired, 409 when the
/// consent is already active. The one answer of every step, on the first
/// read ([`resolve`]) and again with the consent locked ([`Link::relock`]).
fn check(
    invitation: &Invitation,
    consent: &Consent,
    org: &Organization,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if consent.status == ConsentStatus::Revoked {
        return Err(ApiError::new(ProblemCode::ConsentRevoked)
            .detail(
                format!(
                    "{} a révoqué cet accord : ce lien n'est plus valable.",
                    org.name
                ),
                format!(
                    "{} revoked this consent: this link is no longer valid.",
                    org.name
                ),
            )
            .extension("office", office_contact(org)));
    }
    if invitation.dead_at.is_some() {
        return Err(ApiError::not_found());
    }
    if consent.status == ConsentStatus::Expired || link_expired(invitation.expires_at, now) {
        return Err(ApiError::new(ProblemCode::InvitationExpired)
            .detail(
                format!(
                    "Ce lien d'activation a expiré (14 jours). Demandez à {} de vous envoyer une nouvelle invitation, valable à nouveau 14 jours.",
                    org.name
                ),
                format!(
                    "This activation link has expired (14 days). Ask {} to send you a new invitation, valid 14 days again.",
                    org.name
                ),
            )
            .extension("office", office_contact(org)));
    }
    if consent.status == ConsentStatus::Active {
        return Err(ApiError::new(ProblemCode::ConsentAlreadyActive)
            .detail(
                "Le service est déjà activé : il n'y a plus rien à faire.",
                "The service is already active: there is nothing left to do.",
            )
            .extension("consent_status", consent.status.as_str().into())
            .extension("effective_from", serde_json::json!(consent.effective_from)));
    }
    Ok(())
}

impl Link {
    /// Locks the consent (in the step's transaction, before it writes or
    /// queues anything), reads the link and the consent again and checks
    /// them as the first read did: meanwhile the expiry sweep or a read may
    /// have expired the consent, the office revoked it or replaced its
    /// link. Returns the consent as it is now; writes nothing (a consent
    /// found due here is refused, and left to the sweep or the next read).
    fn relock(&self, conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Consent, ApiError> {
        consents::lock(conn, &self.consent.org_id, &self.consent.id)?;
        let invitation = consents::find_invitation(conn, &self.invitation.token_hash)?
            .ok_or_else(ApiError::not_found)?;
        let consent = consents::get(conn, &self.consent.org_id, &self.consent.id)?;
        check(&invitation, &consent, &self.org, now)?;
        Ok(consent)
    }
}

/// Finds the link of `token` and checks it ([`check`]): 404 when
/// unknown or replaced, 410 when expired or revoked, 409 when the consent
/// is already active. A live link whose consent is due is expired first
/// (see [`expire_if_due`]).
fn resolve(conn: &mut DbConnection, token: &str, now: DateTime<Utc>) -> Result<Link, ApiError> {
    if token.is_empty() || token.len() > 128 {
        return Err(ApiError::not_found());
    }
    let invitation =
        consents::find_invitation(conn, &link_hash(token))?.ok_or_else(ApiError::not_found)?;
    let consent = consents::get(conn, &invitation.org_id, &invitation.consent_id)?;
    let org = organizations::get(conn, &invitation.org_id)?;
    let consent = if invitation.dead_at.is_none() {
        expire_if_due(conn, consent, now)?
    } else {
        consent
    };
    check(&invitation, &consent, &org, now)?;
    Ok(Link {
        invitation,
        consent,
        org,
    })
}

async fn resolve_async(state: &web::Data<AppState>, token: String) -> Result<Link, ApiError> {
    let now = state.clock.now();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        resolve(&mut conn, &token, now)
    })
    .await?
}

fn settings_of(conn: &mut DbConnection, org_id: &str) -> Result<ConsentSettings, ApiError> {
    consents::settings(conn, org_id)?
        .ok_or_else(|| ApiError::internal("a consent without its organization's settings"))
}

// ---------------------------------------------------------------- welcome

/// The office, as the cardholder sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeView {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The welcome step.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentWelcome {
    /// Who asks: the office.
    pub office: OfficeView,
    /// The client company the statements are shared for.
    pub company_name: String,
    pub cardholder_name: String,
    /// What is shared: the credit card statements of the account below.
    #[schema(example = "credit_card_statements")]
    pub service: &'static str,
    /// The client reference the office entered (on the card statement).
    #[schema(example = "BE-CARO-0042-4242")]
    pub client_reference: String,
    /// Statements are shared from this day when the activation ends today
    /// (the first day of next month).
    pub shared_from: NaiveDate,
    /// Where the SMS code goes, masked.
    #[schema(example = "+32 4** ** ** 67")]
    pub mobile_masked: String,
    /// The steps, in order.
    pub steps: Vec<&'static str>,
    /// What to have at hand.
    pub have_at_hand: Vec<&'static str>,
    pub video_url: String,
    pub terms_version: String,
    pub terms_url: String,
    /// Where the activation stands (`invitation_sent` ... `failed`).
    #[schema(value_type = crate::routes::enums::ConsentStatus, example = "opened")]
    pub status: &'static str,
    pub expires_at: DateTime<Utc>,
}

/// The welcome step of an activation link.
///
/// The office's name, what will be shared and from when, the steps, what
/// to have at hand, the masked mobile number, the client reference the
/// office entered, the terms' version and address. The first opening is
/// recorded (`opened`, `consent.opened`).
#[utoipa::path(
    operation_id = "getConsentInvitation",
    tag = "consents",
    security(()),
    params(("token" = String, Path, description = "The activation link's token.")),
    responses(
        (status = 200, description = "The welcome step.", body = ConsentWelcome),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = ACTIVE, body = Problem, content_type = "application/problem+json"),
        (status = 410, description = GONE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{token}")]
pub async fn welcome(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConsentWelcome>, ApiError> {
    let _ = LINK_PARAM;
    let token = path.into_inner();
    let now = state.clock.now();
    let today = state.clock.today();
    let store = state.store.clone();
    let welcome = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        let link = resolve(conn, &token, now)?;
        let consent = &link.consent;
        if link.invitation.opened_at.is_none() {
            guichet_store::transaction(conn, |conn| {
                link.relock(conn, now)?;
                if consents::open_invitation(conn, &link.invitation.id, now)? {
                    consents::transition(
                        conn,
                        &consent.org_id,
                        &consent.id,
                        &[ConsentStatus::InvitationSent],
                        ConsentStatus::Opened,
                        None,
                        now,
                    )?;
                    consents::add_step(conn, &Step::new(consent, "link_opened", None, now))?;
                    record_event(
                        conn,
                        &consent.id,
                        &consent.org_id,
                        "opened",
                        CARDHOLDER,
                        now,
                    )?;
                }
                Ok::<_, ApiError>(())
            })?;
        }
        let consent = consents::get(conn, &consent.org_id, &consent.id)?;
        let account = consents::get_account(conn, &consent.org_id, &consent.account_id)?;
        let settings = settings_of(conn, &consent.org_id)?;
        Ok::<_, ApiError>(welcome_of(&link.org, &consent, account, settings, today))
    })
    .await??;
    Ok(web::Json(welcome))
}

fn welcome_of(
    org: &Organization,
    consent: &Consent,
    account: ConsentAccount,
    settings: ConsentSettings,
    today: NaiveDate,
) -> ConsentWelcome {
    ConsentWelcome {
        office: OfficeView {
            name: org.name.clone(),
            email: org.support_email.clone(),
            phone: org.support_phone.clone(),
        },
        company_name: account.company_name,
        cardholder_name: consent.cardholder_name.clone(),
        service: "credit_card_statements",
        client_reference: account.client_reference,
        shared_from: effective_from(today),
        mobile_masked: consent.mobile_masked.clone(),
        steps: vec![
            "sms_code",
            "card_and_client_reference",
            "terms",
            "bank_authentication",
            "confirmation_email",
        ],
        have_at_hand: vec![
            "mobile_phone",
            "credit_card",
            "credit_card_statement",
            "card_reader",
        ],
        video_url: settings.video_url,
        terms_version: settings.terms_version,
        terms_url: settings.terms_url,
        status: consent.status.as_str(),
        expires_at: consent.expires_at,
    }
}

// --------------------------------------------------------------- SMS code

/// Send the SMS code.
///
/// A 6-digit code by SMS to the mobile number the office entered, valid 10
/// minutes, once; a new code replaces the previous one. At most 3 per link
/// and per hour, and the server's per-number and per-address limits.
#[utoipa::path(
    operation_id = "sendConsentCode",
    tag = "consents",
    security(()),
    params(("token" = String, Path, description = "The activation link's token.")),
    responses(
        (status = 202, description = "Sent; the masked number.", body = CodeSent),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = ACTIVE, body = Problem, content_type = "application/problem+json"),
        (status = 410, description = GONE, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many codes for this link, this number or from this address; see `Retry-After`. Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{token}/sms-code")]
pub async fn send_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = path.into_inner();
    let link = resolve_async(&state, token).await?;
    let mobile = link
        .consent
        .mobile
        .clone()
        .ok_or_else(|| ApiError::internal("a consent in progress without its mobile"))?;
    let per_link = format!("consent_sms:{}", link.invitation.id);
    {
        let state = state.clone();
        web::block(move || flows::limit(&state, &per_link, CODES_PER_LINK_PER_HOUR, 3600))
            .await??;
    }
    flows::limit_sends(&state, &req).await?;
    let now = state.clock.now();
    let masked = link.consent.mobile_masked.clone();
    let state_for = state.clone();
    web::block(move || {
        let state = &*state_for;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        let key = flows::destination_key(state, &mobile);
        if !flows::may_send(conn, state, &key, now)? {
            return Err(crate::auth::ratelimit::rate_limited(3600));
        }
        let consent = &link.consent;
        let code = secret::numeric_code(6);
        let record = OneTimeCode {
            id: ids::new_id("otc"),
            org_id: consent.org_id.clone(),
            subject_kind: SubjectKind::Customer,
            subject_id: link.invitation.id.clone(),
            purpose: SMS_PURPOSE.to_owned(),
            code_hash: flows::code_hash(state, SMS_PURPOSE, &code),
            channel: "sms".to_owned(),
            destination: consent.mobile_masked.clone(),
            destination_key: key,
            payload: None,
            attempts: 0,
            max_attempts: CODE_MAX_ATTEMPTS,
            expires_at: now + lifetimes::one_time_code(),
            consumed_at: None,
            created_at: now,
        };
        let locale = Locale::parse(&consent.language).unwrap_or(Locale::Fr);
        guichet_store::transaction(conn, |conn| {
            link.relock(conn, now)?;
            codes::void_all(conn, &link.invitation.id, SMS_PURPOSE, now)?;
            codes::insert(conn, &record)?;
            let message_id = notify::queue_returning_id(
                conn,
                &state.outbox_key(),
                Some(&consent.org_id),
                Channel::Sms,
                &mobile,
                &Template::ConsentCode {
                    org_name: link.org.name.clone(),
                    code,
                },
                locale,
                now,
            )?;
            consents::transition(
                conn,
                &consent.org_id,
                &consent.id,
                &[ConsentStatus::InvitationSent, ConsentStatus::Opened],
                ConsentStatus::CodeSent,
                None,
                now,
            )?;
            consents::add_step(
                conn,
                &Step::new(
                    consent,
                    "code_sent",
                    Some(consent.mobile_masked.clone()),
                    now,
                )
                .with_message(message_id),
            )?;
            Ok::<_, ApiError>(())
        })
    })
    .await??;
    Ok(HttpResponse::Accepted().json(CodeSent {
        channel: "sms",
        destination: masked,
        expires_in_minutes: lifetimes::one_time_code().num_minutes(),
    }))
}

/// The code received by SMS.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyConsentCode {
    #[validate(length(min = 1, max = 12))]
    #[schema(example = "482913", min_length = 1, max_length = 12)]
    pub code: String,
}

/// The step token the next step needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepToken {
    /// Pass it as `step_token` to `POST /v1/consents/{token}/card`: valid
    /// 15 minutes, for this link only, once.
    pub step_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues a step token for the link (in the caller's transaction).
fn issue_step_token(
    conn: &mut DbConnection,
    state: &AppState,
    link: &Link,
    now: DateTime<Utc>,
) -> Result<StepToken, ApiError> {
    let token = secret::token(32);
    let expires_at = now + step_token_lifetime();
    codes::void_all(conn, &link.invitation.id, STEP_PURPOSE, now)?;
    codes::insert(
        conn,
        &OneTimeCode {
            id: ids::new_id("otc"),
            org_id: link.consent.org_id.clone(),
            subject_kind: SubjectKind::Customer,
            subject_id: link.invitation.id.clone(),
            purpose: STEP_PURPOSE.to_owned(),
            code_hash: flows::code_hash(state, STEP_PURPOSE, &token),
            channel: "link".to_owned(),
            destination: link.consent.mobile_masked.clone(),
            destination_key: String::new(),
            payload: None,
            attempts: 0,
            max_attempts: 1,
            expires_at,
            consumed_at: None,
            created_at: now,
        },
    )?;
    Ok(StepToken {
        step_token: token,
        expires_at,
    })
}

/// Verify the SMS code.
///
/// The right code gives a step token for the card step (15 minutes, this
/// link only, once); five wrong codes void it.
#[utoipa::path(
    operation_id = "verifyConsentCode",
    tag = "consents",
    security(()),
    params(("token" = String, Path, description = "The activation link's token.")),
    request_body = VerifyConsentCode,
    responses(
        (status = 200, description = "Verified.", body = StepToken),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = ACTIVE, body = Problem, content_type = "application/problem+json"),
        (status = 410, description = GONE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `invalid_code` (`remaining_attempts`), `code_expired` (none waiting: ask for one).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `code_attempts_exceeded` (the fifth wrong code voids it), `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{token}/sms-code/verification")]
pub async fn verify_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<VerifyConsentCode>,
) -> Result<web::Json<StepToken>, ApiError> {
    let token = path.into_inner();
    let code = body.0.code;
    let link = resolve_async(&state, token).await?;
    flows::limit_code_entries(&state, &req).await?;
    let now = state.clock.now();
    let state_for = state.clone();
    let step = web::block(move || {
        let state = &*state_for;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        let record = flows::check_code(
            conn,
            state,
            Some(&link.invitation.id),
            SMS_PURPOSE,
            &code,
            now,
        )?;
        let consent = &link.consent;
        guichet_store::transaction(conn, |conn| {
            link.relock(conn, now)?;
            if !codes::consume(conn, &record.id, now)? {
                return Err(ApiError::new(ProblemCode::CodeExpired).detail(
                    "Ce code a déjà servi : demandez-en un nouveau.",
                    "This code was already used: ask for a new one.",
                ));
            }
            consents::transition(
                conn,
                &consent.org_id,
                &consent.id,
                &[
                    ConsentStatus::InvitationSent,
                    ConsentStatus::Opened,
                    ConsentStatus::CodeSent,
                ],
                ConsentStatus::CodeVerified,
                None,
                now,
            )?;
            consents::add_step(conn, &Step::new(consent, "code_verified", None, now))?;
            issue_step_token(conn, state, &link, now)
        })
    })
    .await??;
    Ok(web::Json(step))
}

// ------------------------------------------------------------------- card

/// The card step.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentCard {
    /// The step token of the SMS code's verification (without it, the
    /// step is refused: `step_not_completed`).
    #[validate(length(min = 1, max = 128))]
    #[schema(min_length = 1, max_length = 128)]
    pub step_token: Option<String>,
    /// The card, as a payment-gateway token (never a card number; with the
    /// sandbox: `POST /v1/sandbox/card-tokens`).
    #[validate(length(min = 1, max = 128))]
    #[schema(
        example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7",
        min_length = 1,
        max_length = 128
    )]
    pub card_token: String,
    /// The client reference, as on the card statement (confirms the one
    /// the office entered).
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "BE-CARO-0042-4242", min_length = 1, max_length = 64)]
    pub client_reference: String,
    /// Must be `true`.
    pub terms_accepted: bool,
    /// The version of the terms read (the welcome step's `terms_version`).
    #[validate(length(min = 1, max = 32))]
    #[schema(example = "2026-11", min_length = 1, max_length = 32)]
    pub terms_version: String,
}

/// Where to go for the bank step.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextAction {
    /// `redirect_to_bank`.
    #[schema(example = "redirect_to_bank")]
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The bank's strong-authentication page.
    pub url: String,
}

/// The card is accepted: authenticate at the bank.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequiresAction {
    /// `requires_action`.
    #[schema(example = "requires_action")]
    pub status: &'static str,
    pub next_action: NextAction,
}

fn step_not_completed(fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::StepNotCompleted).detail(fr, en)
}

fn card_refusal(code: ProblemCode) -> ApiError {
    let (fr, en) = match code {
        ProblemCode::CardReferenceMismatch => (
            "La carte ne correspond pas aux données transmises par votre bureau : le numéro de carte doit correspondre à la référence client pour laquelle le service a été commandé. Vérifiez votre référence client et votre numéro de carte sur votre relevé de carte de crédit papier.",
            "The card does not match the data your office sent: the card number must match the client reference the service was ordered for. Check your client reference and card number on your paper credit card statement.",
        ),
        ProblemCode::CardNotCredit => (
            "Cette carte n'est pas une carte de crédit (les cartes à débit immédiat portent la mention « Débit ») : le service demande la carte de crédit qui correspond à votre référence client (mention « Crédit »).",
            "This card is not a credit card (immediate-debit cards say \"Debit\"): the service needs the credit card that matches your client reference (it says \"Credit\").",
        ),
        ProblemCode::CardExpired => (
            "Cette carte est expirée : vérifiez la date d'expiration, ou utilisez votre nouvelle carte.",
            "This card has expired: check its expiry date, or use your new card.",
        ),
        ProblemCode::TermsNotAccepted => (
            "Lisez et acceptez les conditions (terms_accepted: true, dans leur version actuelle).",
            "Read and accept the terms (terms_accepted: true, in their current version).",
        ),
        _ => (
            "La référence client ne correspond pas à celle saisie par votre bureau : vérifiez-la sur votre relevé de carte de crédit.",
            "The client reference does not match the one your office entered: check it on your credit card statement.",
        ),
    };
    ApiError::new(code).detail(fr, en)
}

/// Records a refused card in the timeline (for the office), unless the
/// link is no longer good (then that is the answer).
fn record_refusal(
    state: &AppState,
    link: &Link,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut conn = state.store.conn()?;
    guichet_store::transaction(&mut conn, |conn| {
        link.relock(conn, now)?;
        consents::add_step(
            conn,
            &Step::new(&link.consent, "card_refused", Some(code.to_owned()), now),
        )?;
        Ok::<_, ApiError>(())
    })
}

/// The card step's preconditions: a live step token of this link, a
/// state that may give a card; returns the step token's record, the
/// settings, the account and the number of this bank attempt.
fn card_step_checks(
    conn: &mut DbConnection,
    state: &AppState,
    link: &Link,
    body: &ConsentCard,
    now: DateTime<Utc>,
) -> Result<(OneTimeCode, ConsentSettings, ConsentAccount, i64), ApiError> {
    let consent = &link.consent;
    let step_hash = body
        .step_token
        .as_deref()
        .map(|t| flows::code_hash(state, STEP_PURPOSE, t.trim()));
    let step = match &step_hash {
        Some(hash) => codes::find_by_hash(conn, STEP_PURPOSE, hash)?,
        None => None,
    }
    .filter(|s| s.subject_id == link.invitation.id && s.consumed_at.is_none() && s.expires_at > now)
    .ok_or_else(|| {
        step_not_completed(
            "Vérifiez d'abord le code reçu par SMS (ce jeton d'étape est inconnu, déjà utilisé ou expiré).",
            "Verify the code received by SMS first (this step token is unknown, already used or expired).",
        )
    })?;
    if !matches!(
        consent.status,
        ConsentStatus::CodeVerified | ConsentStatus::Failed | ConsentStatus::AwaitingBank
    ) {
        return Err(step_not_completed(
            "Vérifiez d'abord le code reçu par SMS.",
            "Verify the code received by SMS first.",
        ));
    }
    let settings = settings_of(conn, &consent.org_id)?;
    let account = consents::get_account(conn, &consent.org_id, &consent.account_id)?;
    let attempt = consents::bank_attempts(conn, &consent.id)? + 1;
    Ok((step, settings, account, attempt))
}

/// Give the card, confirm the client reference, accept the terms.
///
/// Needs the step token of the SMS code. The card arrives as a gateway
/// token. Refused, each with what to check: `card_reference_mismatch` (not
/// the card of the client reference the office ordered for),
/// `card_not_credit` (a debit card), `card_expired`, `terms_not_accepted`,
/// `client_reference_mismatch`. Accepted: the step token is spent and the
/// answer is the bank's strong-authentication page to go to
/// (`requires_action`); come back with `POST .../completion`.
#[utoipa::path(
    operation_id = "submitConsentCard",
    tag = "consents",
    security(()),
    params(("token" = String, Path, description = "The activation link's token.")),
    request_body = ConsentCard,
    responses(
        (status = 202, description = "Accepted: go to the bank's page.", body = RequiresAction),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The SMS code was not verified, or the step token is wrong, spent or expired. Codes: `step_not_completed`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = ACTIVE, body = Problem, content_type = "application/problem+json"),
        (status = 410, description = GONE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `card_reference_mismatch`, `card_not_credit`, `card_expired`, `terms_not_accepted`, `client_reference_mismatch`, `card_token_invalid`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The payment gateway cannot be reached. Codes: `gateway_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{token}/card")]
pub async fn card(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ConsentCard>,
) -> Result<HttpResponse, ApiError> {
    let token = path.into_inner();
    let body = body.0;
    let now = state.clock.now();
    let today = state.clock.today();
    let state_for = state.clone();
    let accepted = web::block(move || {
        let state = &*state_for;
        // No connection is held while the gateway is asked (the sandbox
        // takes one of the same pool).
        let (link, step, settings, account, attempt) = {
            let mut conn = state.store.conn()?;
            let conn = &mut conn;
            let link = resolve(conn, &token, now)?;
            let (step, settings, account, attempt) = card_step_checks(conn, state, &link, &body, now)?;
            (link, step, settings, account, attempt)
        };
        let consent = &link.consent;
        let refuse = |code: ProblemCode| {
            record_refusal(state, &link, code.as_str(), now)?;
            Err::<(), ApiError>(card_refusal(code))
        };
        if !body.terms_accepted || body.terms_version.trim() != settings.terms_version {
            refuse(ProblemCode::TermsNotAccepted)?;
        }
        if !same_reference(&body.client_reference, &account.client_reference) {
            refuse(ProblemCode::ClientReferenceMismatch)?;
        }
        let gateway = &state.gateway;
        let card = gateway.card(&body.card_token).map_err(|e| gateway_problem(&e))?;
        if card_expiry(card.exp_month, card.exp_year).is_none_or(|end| end < today) {
            refuse(ProblemCode::CardExpired)?;
        }
        if card.funding != Funding::Credit {
            refuse(ProblemCode::CardNotCredit)?;
        }
        if !gateway
            .card_matches_reference(&consent.org_id, &body.card_token, &account.client_reference)
            .map_err(|e| gateway_problem(&e))?
        {
            refuse(ProblemCode::CardReferenceMismatch)?;
        }
        let key = format!("consent:{}:bank:{attempt}", consent.id);
        let session = gateway
            .start_authentication(&consent.org_id, &body.card_token, &key)
            .map_err(|e| match e {
                GatewayError::IdempotencyKeyReused => step_not_completed(
                    "Une autre carte vient d'être présentée pour cette étape : recommencez avec un nouveau code.",
                    "Another card was just given for this step: start again with a new code.",
                ),
                other => gateway_problem(&other),
            })?;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        guichet_store::transaction(conn, |conn| {
            link.relock(conn, now)?;
            if !codes::consume(conn, &step.id, now)? {
                return Err(step_not_completed(
                    "Ce jeton d'étape a déjà servi : vérifiez un nouveau code.",
                    "This step token was already used: verify a new code.",
                ));
            }
            if !consents::start_bank_step(conn, &consent.org_id, &consent.id, &session.id, now)? {
                return Err(step_not_completed(
                    "Vérifiez d'abord le code reçu par SMS.",
                    "Verify the code received by SMS first.",
                ));
            }
            consents::add_step(
                conn,
                &Step::new(
                    consent,
                    consents::BANK_STARTED,
                    Some(format!("{} {}", card.brand.as_str(), card.last4)),
                    now,
                ),
            )?;
            Ok::<_, ApiError>(())
        })?;
        Ok::<_, ApiError>(session.redirect_url)
    })
    .await??;
    let url = if accepted.starts_with('/') {
        let info = req.connection_info();
        format!("{}://{}{accepted}", info.scheme(), info.host())
    } else {
        accepted
    };
    Ok(HttpResponse::Accepted().json(RequiresAction {
        status: "requires_action",
        next_action: NextAction {
            kind: "redirect_to_bank",
            url,
        },
    }))
}

// ------------------------------------------------------------- completion

/// The consent is active.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentActivated {
    /// `active`.
    #[schema(value_type = crate::routes::enums::ConsentStatus, example = "active")]
    pub status: &'static str,
    /// Statements are shared from this day (the first day of next month).
    pub effective_from: Option<NaiveDate>,
    pub office: OfficeView,
    /// Where the terms are (also in the confirmation e-mail); revoking goes
    /// through the office.
    pub terms_url: String,
}

fn bank_failure(reason: AuthenticationFailure, org: &Organization, step: StepToken) -> ApiError {
    let (fr, en) = match reason {
        AuthenticationFailure::OnlinePaymentsDisabled => (
            "Votre banque a refusé : la carte ne permet pas les paiements en ligne. Demandez à votre banque d'activer cette option, puis réessayez.",
            "Your bank refused: the card does not allow online payments. Ask your bank to enable them, then try again.",
        ),
        AuthenticationFailure::CardBlocked => (
            "Votre banque a refusé : la carte est peut-être bloquée temporairement dans votre app bancaire. Débloquez-la (cela peut prendre quelques minutes), puis réessayez.",
            "Your bank refused: the card may be temporarily blocked in your banking app. Unblock it (it may take a few minutes), then try again.",
        ),
        AuthenticationFailure::CardNotActivated => (
            "Votre banque a refusé : une carte neuve doit d'abord servir une fois (distributeur ou terminal de paiement en magasin). Utilisez-la, puis réessayez.",
            "Your bank refused: a new card must be used once first (a cash machine or a shop's payment terminal). Use it, then try again.",
        ),
        AuthenticationFailure::WrongData => (
            "Une erreur s'est produite : vérifiez le numéro de carte, la date d'expiration, le code de sécurité, votre code PIN, et que la carte n'est ni expirée ni bloquée.",
            "An error occurred: check the card number, expiry date, security code, your PIN, and that the card is neither expired nor blocked.",
        ),
        AuthenticationFailure::TechnicalError => (
            "Une erreur technique s'est produite chez votre banque : réessayez un peu plus tard.",
            "A technical error occurred at your bank: try again a little later.",
        ),
    };
    ApiError::new(ProblemCode::BankAuthenticationFailed)
        .detail(fr, en)
        .extension("reason", reason.as_str().into())
        .extension("office", office_contact(org))
        .extension("step_token", step.step_token.into())
        .extension("step_token_expires_at", serde_json::json!(step.expires_at))
}

/// The answer to a completion: activated, or a failure with what to check
/// (the failure commits before it is answered).
enum Completed {
    Active(ConsentActivated),
    Failed(ApiError),
}

/// Come back from the bank.
///
/// After the bank's page, the server asks the payment gateway for the
/// outcome itself (redirect parameters are never trusted). Success: the
/// consent is `active` from the first day of next month, a confirmation
/// e-mail (with the terms, saying that revoking goes through the office)
/// is sent, and then the e-mail address and mobile number are erased.
/// Failure: `failed` with the reason in the office's timeline, and a
/// problem naming what to check with a new `step_token` to retry from the
/// card step while the link is valid.
#[utoipa::path(
    operation_id = "completeConsent",
    tag = "consents",
    security(()),
    params(("token" = String, Path, description = "The activation link's token.")),
    responses(
        (status = 200, description = "Active.", body = ConsentActivated),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `bank_step_not_started` (give the card first), `bank_authentication_pending` (not finished on the bank's page), `consent_already_active`.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = GONE, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The bank did not authenticate: `reason` (`online_payments_disabled`, `card_blocked`, `card_not_activated`, `wrong_data`, `technical_error`), `office`, and a new `step_token` for the card step. Codes: `bank_authentication_failed`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The payment gateway cannot be reached. Codes: `gateway_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{token}/completion")]
pub async fn completion(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConsentActivated>, ApiError> {
    let token = path.into_inner();
    let now = state.clock.now();
    let today = state.clock.today();
    let state_for = state.clone();
    let outcome = web::block(move || {
        let state = &*state_for;
        // No connection is held while the gateway is asked (the sandbox
        // takes one of the same pool).
        let (link, settings) = {
            let mut conn = state.store.conn()?;
            let link = resolve(&mut conn, &token, now)?;
            let settings = settings_of(&mut conn, &link.consent.org_id)?;
            (link, settings)
        };
        let consent = &link.consent;
        let session_id = match (&consent.status, &consent.sca_session_id) {
            (ConsentStatus::AwaitingBank, Some(id)) => id.clone(),
            _ => {
                return Err(ApiError::new(ProblemCode::BankStepNotStarted)
                    .detail(
                        "L'étape bancaire n'a pas commencé : saisissez d'abord votre carte.",
                        "The bank step has not started: give your card first.",
                    )
                    .extension("consent_status", consent.status.as_str().into()));
            }
        };
        let outcome = state
            .gateway
            .authentication_outcome(&consent.org_id, &session_id)
            .map_err(|e| gateway_problem(&e))?;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        match outcome {
            AuthenticationOutcome::Pending => Err(ApiError::new(
                ProblemCode::BankAuthenticationPending,
            )
            .detail(
                "Terminez d'abord l'authentification sur la page de votre banque.",
                "Finish the authentication on your bank's page first.",
            )),
            AuthenticationOutcome::Succeeded => {
                let account = consents::get_account(conn, &consent.org_id, &consent.account_id)?;
                let from = effective_from(today);
                guichet_store::transaction(conn, |conn| {
                    link.relock(conn, now)?;
                    if consents::activate(
                        conn,
                        &consent.org_id,
                        &consent.id,
                        &session_id,
                        from,
                        now,
                    )? {
                        consents::add_step(conn, &Step::new(consent, "bank_succeeded", None, now))?;
                        let email = consent.email.clone().ok_or_else(|| {
                            ApiError::internal("an active consent without its e-mail")
                        })?;
                        let message_id = notify::queue_returning_id(
                            conn,
                            &state.outbox_key(),
                            Some(&consent.org_id),
                            Channel::Email,
                            &email,
                            &Template::ConsentConfirmed {
                                org_name: link.org.name.clone(),
                                company_name: account.company_name.clone(),
                                effective_from: from.to_string(),
                                terms_url: settings.terms_url.clone(),
                            },
                            Locale::parse(&consent.language).unwrap_or(Locale::Fr),
                            now,
                        )?;
                        consents::add_step(
                            conn,
                            &Step::new(
                                consent,
                                consents::CONFIRMATION_SENT,
                                Some(consent.email_masked.clone()),
                                now,
                            )
                            .with_message(message_id),
                        )?;
                        record_event(
                            conn,
                            &consent.id,
                            &consent.org_id,
                            "activated",
                            CARDHOLDER,
                            now,
                        )?;
                    }
                    state.faults.pause(FaultPoint::ConsentCompletion);
                    Ok::<_, ApiError>(())
                })?;
                let fresh = consents::get(conn, &consent.org_id, &consent.id)?;
                if fresh.status != ConsentStatus::Active {
                    return Err(ApiError::new(ProblemCode::BankStepNotStarted)
                        .detail(
                            "L'étape bancaire a changé entre-temps : recommencez.",
                            "The bank step changed meanwhile: start again.",
                        )
                        .extension("consent_status", fresh.status.as_str().into()));
                }
                Ok(Completed::Active(ConsentActivated {
                    status: fresh.status.as_str(),
                    effective_from: fresh.effective_from,
                    office: OfficeView {
                        name: link.org.name.clone(),
                        email: link.org.support_email.clone(),
                        phone: link.org.support_phone.clone(),
                    },
                    terms_url: settings.terms_url,
                }))
            }
            AuthenticationOutcome::Failed(reason) => {
                let step = guichet_store::transaction(conn, |conn| {
                    let fresh = link.relock(conn, now)?;
                    if fresh.sca_session_id.as_deref() != Some(session_id.as_str())
                        || !consents::transition(
                            conn,
                            &consent.org_id,
                            &consent.id,
                            &[ConsentStatus::AwaitingBank],
                            ConsentStatus::Failed,
                            Some(reason.as_str()),
                            now,
                        )?
                    {
                        return Err(ApiError::new(ProblemCode::BankStepNotStarted)
                            .detail(
                                "L'étape bancaire a changé entre-temps : recommencez.",
                                "The bank step changed meanwhile: start again.",
                            )
                            .extension("consent_status", fresh.status.as_str().into()));
                    }
                    consents::add_step(
                        conn,
                        &Step::new(
                            consent,
                            "bank_failed",
                            Some(reason.as_str().to_owned()),
                            now,
                        ),
                    )?;
                    record_event(
                        conn,
                        &consent.id,
                        &consent.org_id,
                        "failed",
                        CARDHOLDER,
                        now,
                    )?;
                    issue_step_token(conn, state, &link, now)
                })?;
                Ok(Completed::Failed(bank_failure(reason, &link.org, step)))
            }
        }
    })
    .await??;
    match outcome {
        Completed::Active(active) => Ok(web::Json(active)),
        Completed::Failed(problem) => Err(problem),
    }
}
