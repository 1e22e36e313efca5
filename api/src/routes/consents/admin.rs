//! The office's side: eligible client accounts, ordering a consent (the
//! invitation e-mail goes at once), tracking it with its timeline, editing
//! the contacts and sending a new link, revoking it, the two texts to send
//! the client and the cardholder, and the organization's settings.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use guichet_domain::consent::{ConsentStatus, OfficeTemplate, TemplateValues, invitation_lifetime};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::{Locale, ids, secret};
use guichet_store::repo::consents::{
    self, Consent, ConsentAccount, ConsentSettings, Invitation, Step,
};
use guichet_store::repo::organizations;
use guichet_store::{DbConnection, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{
    ConsentAccountView, ConsentView, activation_link, actor_of, expire_due, expire_if_due,
    link_hash, record_event, view,
};
use crate::auth::{AdminPrincipal, StaffActor, StaffPrincipal};
use crate::edge::json::Json;
use crate::faults::FaultPoint;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, Page, ROLE_FAILURE, next_cursor, status_filter};
use crate::routes::idempotency::{self, Begun};
use crate::state::AppState;

const NOT_FOUND: &str = "No such consent in your organization. Codes: `not_found`.";

fn invalid(field: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(fr, en)
        .field(field, "invalid")
}

fn http_url(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > 8
        && !value.chars().any(char::is_whitespace)
}

// --------------------------------------------------------------- settings

/// What an organization's invitations show and link to.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentSettingsBody {
    /// The cardholder's activation page, with `{token}` where the link's
    /// token goes (the page calls `GET /v1/consents/{token}`).
    #[validate(length(min = 10, max = 500))]
    #[schema(
        example = "https://app.example.com/activation/{token}",
        min_length = 10,
        max_length = 500,
        pattern = "^https?://[^\\s\\u0000-\\u001F\\u007F-\\u009F]*\\{token\\}[^\\s\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub activation_url: String,
    /// The explainer video the invitation links to.
    #[validate(length(min = 10, max = 500))]
    #[schema(
        example = "https://video.example.com/5-steps",
        min_length = 10,
        max_length = 500,
        pattern = "^https?://[^\\s\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub video_url: String,
    /// The version of the terms the cardholder accepts.
    #[validate(length(min = 1, max = 32))]
    #[schema(example = "2026-11", min_length = 1, max_length = 32)]
    pub terms_version: String,
    /// Where the terms are read.
    #[validate(length(min = 10, max = 500))]
    #[schema(
        example = "https://example.com/terms/2026-11",
        min_length = 10,
        max_length = 500,
        pattern = "^https?://[^\\s\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub terms_url: String,
}

/// The settings and when they changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentSettingsView {
    /// The cardholder's activation page, with `{token}`.
    pub activation_url: String,
    /// The explainer video the invitation links to.
    pub video_url: String,
    /// The version of the terms the cardholder accepts.
    pub terms_version: String,
    /// Where the terms are read.
    pub terms_url: String,
    /// When they last changed.
    pub updated_at: DateTime<Utc>,
}

fn settings_view(s: ConsentSettings) -> ConsentSettingsView {
    ConsentSettingsView {
        activation_url: s.activation_url,
        video_url: s.video_url,
        terms_version: s.terms_version,
        terms_url: s.terms_url,
        updated_at: s.updated_at,
    }
}

fn settings_missing() -> ApiError {
    ApiError::new(ProblemCode::ConsentSettingsMissing).detail(
        "Renseignez d'abord la page d'activation, la vidéo et les conditions (PUT /v1/admin/consents/settings).",
        "Set the activation page, the video and the terms first (PUT /v1/admin/consents/settings).",
    )
}

/// The consent settings.
///
/// The activation page the links point to, the explainer video and the
/// terms' version and address.
#[utoipa::path(
    operation_id = "getConsentSettings",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The settings.", body = ConsentSettingsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never set. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/settings")]
pub async fn get_settings(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<ConsentSettingsView>, ApiError> {
    let store = state.store.clone();
    let settings = web::block(move || {
        let mut conn = store.conn()?;
        consents::settings(&mut conn, &principal.org_id)?.ok_or_else(ApiError::not_found)
    })
    .await??;
    Ok(web::Json(settings_view(settings)))
}

/// Set the consent settings.
///
/// Sets the activation page (with `{token}`), the explainer video and the
/// terms (version and address). Admins only. New invitations use them; a
/// cardholder accepts the version current at the card step.
#[utoipa::path(
    operation_id = "putConsentSettings",
    tag = "consents",
    security(("bearer" = [])),
    request_body = ConsentSettingsBody,
    responses(
        (status = 200, description = "The settings.", body = ConsentSettingsView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (a URL that is not http(s), an activation URL without `{token}`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (an API key or another role). Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/settings")]
pub async fn put_settings(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<ConsentSettingsBody>,
) -> Result<web::Json<ConsentSettingsView>, ApiError> {
    let body = body.0;
    for (field, value) in [
        ("activation_url", &body.activation_url),
        ("video_url", &body.video_url),
        ("terms_url", &body.terms_url),
    ] {
        if !http_url(value) {
            return Err(invalid(
                field,
                "Une adresse http(s) complète est attendue.",
                "A full http(s) address is expected.",
            ));
        }
    }
    if !body.activation_url.contains("{token}") {
        return Err(invalid(
            "activation_url",
            "L'adresse d'activation doit contenir {token}.",
            "The activation address must contain {token}.",
        ));
    }
    let settings = ConsentSettings {
        org_id: principal.org_id.clone(),
        activation_url: body.activation_url,
        video_url: body.video_url,
        terms_version: body.terms_version.trim().to_owned(),
        terms_url: body.terms_url,
        updated_at: state.clock.now(),
    };
    let store = state.store.clone();
    let saved = settings.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| consents::put_settings(conn, &saved))
    })
    .await??;
    Ok(web::Json(settings_view(settings)))
}

// --------------------------------------------------------------- accounts

/// A client account to order the service for.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsentAccount {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(example = "Boulangerie Martin SRL", min_length = 1, max_length = 200)]
    pub company_name: String,
    /// The card account's client reference, as printed on its statements
    /// (unique in the organization).
    #[validate(
        length(min = 1, max = 64),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(example = "BE-CARO-0042-4242", min_length = 1, max_length = 64)]
    pub client_reference: String,
}

/// A page of client accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentAccountPage {
    pub data: Vec<ConsentAccountView>,
    pub next_cursor: Option<String>,
}

/// Add a client account.
///
/// A client company and its card account's client reference, for which
/// the service can then be ordered.
#[utoipa::path(
    operation_id = "createConsentAccount",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = NewConsentAccount,
    responses(
        (status = 201, description = "The account.", body = ConsentAccountView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `client_reference_taken`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create_account(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<NewConsentAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let account = ConsentAccount {
        id: ids::new_id("cac"),
        org_id: principal.org_id.clone(),
        company_name: body.company_name.trim().to_owned(),
        client_reference: body.client_reference.trim().to_owned(),
        created_at: state.clock.now(),
    };
    let store = state.store.clone();
    let saved = account.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        consents::insert_account(&mut conn, &saved).map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(ProblemCode::ClientReferenceTaken)
                .detail(
                    "Un compte client porte déjà cette référence.",
                    "A client account already has this reference.",
                )
                .field("client_reference", "taken"),
            other => other.into(),
        })
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/v1/admin/consent-accounts/{}", account.id),
        ))
        .json(ConsentAccountView::from(account)))
}

/// The eligible client accounts.
///
/// The client accounts for which the service can be ordered, by id.
#[utoipa::path(
    operation_id = "listConsentAccounts",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(Page),
    responses(
        (status = 200, description = "A page of accounts.", body = ConsentAccountPage),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_accounts(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<Page>,
) -> Result<web::Json<ConsentAccountPage>, ApiError> {
    let (limit, after) = query.into_inner().resolve()?;
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        consents::list_accounts(&mut conn, &principal.org_id, after.as_deref(), limit + 1)
    })
    .await??;
    let next_cursor = next_cursor(&mut items, limit, |a| &a.id);
    Ok(web::Json(ConsentAccountPage {
        data: items.into_iter().map(ConsentAccountView::from).collect(),
        next_cursor,
    }))
}

// ------------------------------------------------------------------ order

/// The order of the service for a client account.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsent {
    /// The client account (`cac_...`).
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "cac_3k9x0d2m7q8r4t6v1w5y", min_length = 1, max_length = 64)]
    pub account_id: String,
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(example = "Anne Martin", min_length = 1, max_length = 200)]
    pub cardholder_name: String,
    /// Where the invitation goes.
    #[validate(length(min = 3, max = 254))]
    #[schema(
        example = "anne.martin@example.com",
        format = "email",
        min_length = 3,
        max_length = 254
    )]
    pub email: String,
    /// Where the SMS code goes, E.164.
    #[validate(length(min = 9, max = 16))]
    #[schema(
        example = "+32470123467",
        min_length = 9,
        max_length = 16,
        pattern = r"^\+[1-9][0-9]{7,14}$"
    )]
    pub mobile: String,
    /// The cardholder's language: `fr` or `en`.
    #[schema(value_type = crate::routes::enums::Language, example = "fr")]
    pub language: Locale,
}

fn parse_email(value: &str) -> Result<Email, ApiError> {
    Email::parse(value).map_err(|_| {
        invalid(
            "email",
            "Adresse e-mail invalide.",
            "Invalid e-mail address.",
        )
    })
}

fn parse_mobile(value: &str) -> Result<Msisdn, ApiError> {
    Msisdn::parse(value).map_err(|_| {
        invalid(
            "mobile",
            "Numéro de mobile invalide : format international attendu (+32...).",
            "Invalid mobile number: international format expected (+32...).",
        )
    })
}

/// Sends a new activation link for `consent` (in the caller's
/// transaction): a fresh token, its hash stored, the previous links dead,
/// the e-mail queued, the step and the event recorded.
#[allow(clippy::too_many_arguments)]
fn send_invitation(
    conn: &mut DbConnection,
    state: &AppState,
    consent: &Consent,
    account: &ConsentAccount,
    settings: &ConsentSettings,
    org_name: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let email = consent
        .email
        .clone()
        .ok_or_else(|| ApiError::internal("inviting a consent without an e-mail"))?;
    let token = secret::token(32);
    let expires_at = now + invitation_lifetime();
    consents::reinvite(conn, &consent.org_id, &consent.id, expires_at, now)?;
    consents::insert_invitation(
        conn,
        &Invitation {
            id: ids::new_id("cin"),
            consent_id: consent.id.clone(),
            org_id: consent.org_id.clone(),
            token_hash: link_hash(&token),
            email: Some(email.clone()),
            email_masked: consent.email_masked.clone(),
            expires_at,
            dead_at: None,
            opened_at: None,
            created_at: now,
        },
    )?;
    let locale = Locale::parse(&consent.language).unwrap_or(Locale::Fr);
    let message_id = notify::queue_returning_id(
        conn,
        &state.outbox_key(),
        Some(&consent.org_id),
        Channel::Email,
        &email,
        &Template::ConsentInvitation {
            org_name: org_name.to_owned(),
            cardholder_name: consent.cardholder_name.clone(),
            company_name: account.company_name.clone(),
            link: activation_link(&settings.activation_url, &token),
            video_url: settings.video_url.clone(),
            expires_at: expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        },
        locale,
        now,
    )?;
    consents::add_step(
        conn,
        &Step::new(
            consent,
            "invitation_sent",
            Some(consent.email_masked.clone()),
            now,
        )
        .with_message(message_id),
    )?;
    record_event(
        conn,
        &consent.id,
        &consent.org_id,
        "invitation_sent",
        actor,
        now,
    )
}

/// Order the service for a client account.
///
/// Records the consent and sends the invitation e-mail at once: the steps,
/// what to have at hand (mobile phone, credit card, the statement with the
/// client reference, card reader), the explainer video and the activation
/// link, valid 14 days. The link's token (256 random bits) is stored only
/// as a hash. Records `consent.invitation_sent`. An optional
/// `Idempotency-Key` makes a retried order give the first answer instead
/// of a second consent and a second e-mail.
#[utoipa::path(
    operation_id = "createConsent",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: 1 to 255 visible ASCII characters, scoped to the staff member or API key; the same key and body replay the first answer for 24 hours (one consent, one invitation)."),
    ),
    request_body = NewConsent,
    responses(
        (status = 201, description = "The consent, `invitation_sent` (also the replay of a first answer, with `Idempotent-Replayed: true`).", body = ConsentView,
            headers(("Location" = String, description = "`/v1/admin/consents/{id}`."))),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (an invalid e-mail, a mobile not in E.164, an unknown language), `invalid_parameter` (a malformed `Idempotency-Key`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client account in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `consent_settings_missing`, `idempotency_key_in_use` (another request with this key may still be running: retry after `Retry-After` seconds).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: whole seconds until the key's lock ends."))),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `idempotency_key_reused` (this key was used with another order).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    req: HttpRequest,
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<NewConsent>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let email = parse_email(&body.email)?;
    let mobile = parse_mobile(&body.mobile)?;
    let key = idempotency::optional_key(&req)?;
    let now = state.clock.now();
    let mut ticket = None;
    if let Some(key) = key {
        let scope = match &principal.actor {
            StaffActor::Staff { id, .. } | StaffActor::ApiKey { id } => {
                format!("{}{id}", consents::ORDER_SCOPE_PREFIX)
            }
        };
        let hash = order_hash(&body, &email, &mobile);
        match idempotency::begin(&state, scope, key, hash, now).await? {
            // A first attempt that never answered committed nothing: the
            // consent commits with its answer.
            Begun::Fresh(t) | Begun::Resumed(t) => ticket = Some(t),
            Begun::Replay(replay) => return Ok(replay.respond(|_| {})),
        }
    }
    let state_for = state.clone();
    let ticket_for = ticket.clone();
    let outcome = web::block(move || {
        let state = &*state_for;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        let account = consents::get_account(conn, &principal.org_id, &body.account_id)?;
        let settings = consents::settings(conn, &principal.org_id)?.ok_or_else(settings_missing)?;
        let org = organizations::get(conn, &principal.org_id)?;
        let consent = Consent {
            id: ids::new_id("cns"),
            org_id: principal.org_id.clone(),
            account_id: account.id.clone(),
            cardholder_name: body.cardholder_name.trim().to_owned(),
            email: Some(email.as_str().to_owned()),
            mobile: Some(mobile.as_str().to_owned()),
            email_masked: email.masked(),
            mobile_masked: mobile.masked(),
            language: body.language.as_str().to_owned(),
            status: ConsentStatus::InvitationSent,
            failure_reason: None,
            expires_at: now + invitation_lifetime(),
            effective_from: None,
            sca_session_id: None,
            created_at: now,
            updated_at: now,
        };
        idempotency::commit(
            conn,
            state,
            FaultPoint::ConsentOrder,
            ticket_for.as_ref(),
            StatusCode::CREATED,
            |conn| {
                consents::insert(conn, &consent)?;
                send_invitation(
                    conn,
                    state,
                    &consent,
                    &account,
                    &settings,
                    &org.name,
                    actor_of(&principal),
                    now,
                )?;
                let consent = consents::get(conn, &principal.org_id, &consent.id)?;
                let view = view(conn, &consent)?;
                serde_json::to_string(&view).map_err(|e| ApiError::internal(e.to_string()))
            },
        )
    })
    .await?;
    idempotency::answer(
        &state,
        ticket,
        outcome,
        |body| idempotency::created("/v1/admin/consents", body),
        |_| {},
    )
    .await
}

/// What an order's `Idempotency-Key` is bound to.
fn order_hash(body: &NewConsent, email: &Email, mobile: &Msisdn) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "consent-order",
        body.account_id.as_str(),
        body.cardholder_name.trim(),
        email.as_str(),
        mobile.as_str(),
        body.language.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    hex::encode(hasher.finalize())
}

// ------------------------------------------------------------------ track

/// `?status=&limit=&cursor=` of the consent list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsentListQuery {
    /// Only consents in this status.
    #[param(value_type = Option<crate::routes::enums::ConsentStatus>, nullable = false)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// A page of consents.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentPage {
    pub data: Vec<ConsentView>,
    pub next_cursor: Option<String>,
}

/// The consents ordered.
///
/// The organization's consents by id, each with its status and timeline;
/// `?status=` keeps one status (links that died meanwhile are `expired`).
#[utoipa::path(
    operation_id = "listConsents",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(ConsentListQuery),
    responses(
        (status = 200, description = "A page of consents.", body = ConsentPage),
        (status = 400, description = "Codes: `invalid_parameter` (an unknown status, a bad limit or cursor).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<ConsentListQuery>,
) -> Result<web::Json<ConsentPage>, ApiError> {
    let query = query.into_inner();
    let allowed: Vec<&str> = ConsentStatus::ALL.iter().map(|s| s.as_str()).collect();
    let status = status_filter(query.status.as_deref(), ConsentStatus::parse, &allowed)?;
    let (limit, after) = Page {
        limit: query.limit,
        cursor: query.cursor,
    }
    .resolve()?;
    let now = state.clock.now();
    let store = state.store.clone();
    let (views, next_cursor) = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        expire_due(conn, &principal.org_id, now)?;
        guichet_store::snapshot(conn, |conn| {
            let mut items =
                consents::list(conn, &principal.org_id, status, after.as_deref(), limit + 1)?;
            let next_cursor = next_cursor(&mut items, limit, |c| &c.id);
            let views = items
                .iter()
                .map(|c| view(conn, c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ApiError>((views, next_cursor))
        })
    })
    .await??;
    Ok(web::Json(ConsentPage {
        data: views,
        next_cursor,
    }))
}

fn load(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Consent, ApiError> {
    let consent = consents::get(conn, org_id, id)?;
    expire_if_due(conn, consent, now)
}

/// One consent with its timeline.
///
/// Its status (with the bank's reason when `failed`) and every step with
/// its time: e-mail sent, link opened, SMS sent and to which masked
/// number, code verified, card refused and why, bank step started and its
/// outcome, confirmation sent, contacts erased.
#[utoipa::path(
    operation_id = "getConsent",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Consent id (`cns_...`).")),
    responses(
        (status = 200, description = "The consent.", body = ConsentView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConsentView>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let view = web::block(move || {
        let mut conn = store.conn()?;
        load(&mut conn, &principal.org_id, &id, now)?;
        // The consent and its timeline as of one moment (an erasure or a
        // step may commit between two reads).
        guichet_store::snapshot(&mut conn, |conn| {
            let consent = consents::get(conn, &principal.org_id, &id)?;
            view(conn, &consent)
        })
    })
    .await??;
    Ok(web::Json(view))
}

// ---------------------------------------------------------- edit, resend

fn not_reinvitable(consent: &Consent) -> ApiError {
    ApiError::new(ProblemCode::ConsentNotReinvitable)
        .detail(
            format!(
                "Cet accord est {} : ses coordonnées ne peuvent plus changer ni une invitation partir.",
                consent.status.as_str()
            ),
            format!(
                "This consent is {}: its contacts can no longer change nor an invitation go.",
                consent.status.as_str()
            ),
        )
        .extension("consent_status", consent.status.as_str().into())
}

/// New contacts; absent fields stay.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConsent {
    #[validate(length(min = 3, max = 254))]
    #[schema(
        example = "anne.martin@example.com",
        format = "email",
        min_length = 3,
        max_length = 254
    )]
    pub email: Option<String>,
    /// E.164.
    #[validate(length(min = 9, max = 16))]
    #[schema(
        example = "+32470123467",
        min_length = 9,
        max_length = 16,
        pattern = r"^\+[1-9][0-9]{7,14}$"
    )]
    pub mobile: Option<String>,
}

/// Edit the cardholder's e-mail or mobile.
///
/// The troubleshooting's first step ("check the mobile number"): change
/// the e-mail address or the mobile number, then send a new invitation.
/// Possible while the consent is neither `active` nor `revoked`.
#[utoipa::path(
    operation_id = "updateConsent",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Consent id (`cns_...`).")),
    request_body = UpdateConsent,
    responses(
        (status = 200, description = "The consent.", body = ConsentView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `consent_not_reinvitable` (active or revoked).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/{id}")]
pub async fn update(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<UpdateConsent>,
) -> Result<web::Json<ConsentView>, ApiError> {
    let id = path.into_inner();
    let body = body.0;
    let email = body.email.as_deref().map(parse_email).transpose()?;
    let mobile = body.mobile.as_deref().map(parse_mobile).transpose()?;
    let now = state.clock.now();
    let store = state.store.clone();
    let view = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        load(conn, &principal.org_id, &id, now)?;
        guichet_store::transaction(conn, |conn| {
            consents::lock(conn, &principal.org_id, &id)?;
            let consent = consents::get(conn, &principal.org_id, &id)?;
            if !consent.status.reinvitable() {
                return Err(not_reinvitable(&consent));
            }
            let (email_clear, email_masked) = match &email {
                Some(e) => (e.as_str().to_owned(), e.masked()),
                None => (
                    consent.email.clone().unwrap_or_default(),
                    consent.email_masked.clone(),
                ),
            };
            let (mobile_clear, mobile_masked) = match &mobile {
                Some(m) => (m.as_str().to_owned(), m.masked()),
                None => (
                    consent.mobile.clone().unwrap_or_default(),
                    consent.mobile_masked.clone(),
                ),
            };
            consents::set_contacts(
                conn,
                &principal.org_id,
                &id,
                (&email_clear, &email_masked),
                (&mobile_clear, &mobile_masked),
                now,
            )?;
            consents::add_step(
                conn,
                &Step::new(
                    &consent,
                    "contacts_edited",
                    Some(format!("{email_masked} {mobile_masked}")),
                    now,
                ),
            )?;
            Ok::<_, ApiError>(())
        })?;
        let consent = consents::get(conn, &principal.org_id, &id)?;
        view(conn, &consent)
    })
    .await??;
    Ok(web::Json(view))
}

/// Send a new invitation.
///
/// A new activation link valid 14 days, to the current e-mail address; the
/// previous link dies at once. Possible while the consent is neither
/// `active` nor `revoked`, also after expiry; the consent is back to
/// `invitation_sent`. Records `consent.invitation_sent`.
#[utoipa::path(
    operation_id = "resendConsentInvitation",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Consent id (`cns_...`).")),
    responses(
        (status = 201, description = "The consent, `invitation_sent` with its new expiry.", body = ConsentView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `consent_not_reinvitable` (active or revoked), `consent_settings_missing`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/invitations")]
pub async fn reinvite(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let state_for = state.clone();
    let view = web::block(move || {
        let state = &*state_for;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        load(conn, &principal.org_id, &id, now)?;
        let settings = consents::settings(conn, &principal.org_id)?.ok_or_else(settings_missing)?;
        let org = organizations::get(conn, &principal.org_id)?;
        guichet_store::transaction(conn, |conn| {
            consents::lock(conn, &principal.org_id, &id)?;
            let consent = consents::get(conn, &principal.org_id, &id)?;
            if !consent.status.reinvitable() {
                return Err(not_reinvitable(&consent));
            }
            let account = consents::get_account(conn, &principal.org_id, &consent.account_id)?;
            send_invitation(
                conn,
                state,
                &consent,
                &account,
                &settings,
                &org.name,
                actor_of(&principal),
                now,
            )
        })?;
        let consent = consents::get(conn, &principal.org_id, &id)?;
        view(conn, &consent)
    })
    .await??;
    Ok(HttpResponse::Created().json(view))
}

/// Revoke the consent.
///
/// The cardholder revokes by asking the office: the consent is `revoked`,
/// its link dies, sharing stops. Records `consent.revoked`.
#[utoipa::path(
    operation_id = "revokeConsent",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Consent id (`cns_...`).")),
    responses(
        (status = 200, description = "The consent, `revoked`.", body = ConsentView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `consent_already_revoked`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/revocation")]
pub async fn revoke(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConsentView>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let view = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        load(conn, &principal.org_id, &id, now)?;
        guichet_store::transaction(conn, |conn| {
            consents::lock(conn, &principal.org_id, &id)?;
            let consent = consents::get(conn, &principal.org_id, &id)?;
            let others: Vec<ConsentStatus> = ConsentStatus::ALL
                .into_iter()
                .filter(|s| *s != ConsentStatus::Revoked)
                .collect();
            if !consents::transition(
                conn,
                &principal.org_id,
                &id,
                &others,
                ConsentStatus::Revoked,
                None,
                now,
            )? {
                return Err(ApiError::new(ProblemCode::ConsentAlreadyRevoked).detail(
                    "Cet accord est déjà révoqué.",
                    "This consent is already revoked.",
                ));
            }
            consents::kill_invitations(conn, &id, now)?;
            consents::add_step(conn, &Step::new(&consent, "revoked", None, now))?;
            record_event(
                conn,
                &id,
                &principal.org_id,
                "revoked",
                actor_of(&principal),
                now,
            )
        })?;
        let consent = consents::get(conn, &principal.org_id, &id)?;
        view(conn, &consent)
    })
    .await??;
    Ok(web::Json(view))
}

// -------------------------------------------------------------- templates

/// `?language=&consent=` of the templates.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    /// `fr` (default) or `en`.
    #[param(value_type = Option<crate::routes::enums::Language>, nullable = false)]
    pub language: Option<String>,
    /// A consent (`cns_...`) whose values fill the placeholders.
    #[param(nullable = false)]
    pub consent: Option<String>,
}

/// One text for the office to send.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentTemplateView {
    /// `inform_client` (the client company) or `inform_cardholder` (so that
    /// they expect the e-mail and do not take it for phishing).
    #[schema(value_type = crate::routes::enums::ConsentTemplateName, example = "inform_cardholder")]
    pub name: &'static str,
    pub subject: String,
    pub body: String,
    /// The placeholders of the text (`{office}`, `{company}`, ...); those a
    /// consent fills are replaced.
    pub placeholders: Vec<&'static str>,
}

/// The texts in one language.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentTemplates {
    #[schema(value_type = crate::routes::enums::Language, example = "fr")]
    pub language: &'static str,
    pub data: Vec<ConsentTemplateView>,
}

/// The two texts to inform the client and the cardholder.
///
/// One to inform the client company, one to tell the cardholder to expect
/// the activation e-mail (and not to take it for phishing). With
/// `consent=`, the office's name, the company, the cardholder, the client
/// reference, the e-mail address and the video link are filled in.
#[utoipa::path(
    operation_id = "getConsentTemplates",
    tag = "consents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(TemplateQuery),
    responses(
        (status = 200, description = "The texts.", body = ConsentTemplates),
        (status = 400, description = "Codes: `invalid_parameter` (a language other than `fr` or `en`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/templates")]
pub async fn templates(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<TemplateQuery>,
) -> Result<web::Json<ConsentTemplates>, ApiError> {
    let query = query.into_inner();
    let locale = match query.language.as_deref() {
        None => Locale::Fr,
        Some(l) => Locale::parse(l).ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail("language vaut fr ou en.", "language must be fr or en.")
                .field("language", "invalid")
        })?,
    };
    let store = state.store.clone();
    let values = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        let org = organizations::get(conn, &principal.org_id)?;
        let settings = consents::settings(conn, &principal.org_id)?;
        let mut values = TemplateValues {
            office: Some(org.name),
            video_url: settings.map(|s| s.video_url),
            ..TemplateValues::default()
        };
        if let Some(id) = query.consent {
            let consent = consents::get(conn, &principal.org_id, &id)?;
            let account = consents::get_account(conn, &principal.org_id, &consent.account_id)?;
            values.company = Some(account.company_name);
            values.client_reference = Some(account.client_reference);
            values.cardholder = Some(consent.cardholder_name);
            values.email = Some(consent.email.unwrap_or(consent.email_masked));
        }
        Ok::<_, ApiError>(values)
    })
    .await??;
    Ok(web::Json(ConsentTemplates {
        language: locale.as_str(),
        data: OfficeTemplate::ALL
            .into_iter()
            .map(|t| {
                let text = t.render(locale, &values);
                ConsentTemplateView {
                    name: t.as_str(),
                    subject: text.subject,
                    body: text.body,
                    placeholders: t.placeholders().to_vec(),
                }
            })
            .collect(),
    }))
}
