//! The customer's security: contact changes requested by staff, which the
//! customer confirms (`/v1/me/contact-changes`), and the security history
//! (`/v1/me/security-events`).
//!
//! When staff or an API key change the e-mail or mobile of a customer who
//! has portal access, the new value does not go into the `customers` row:
//! it waits in `contact_changes`, so no sign-in, reset or signing code can
//! use it, until the customer, signed in, gives the code sent to it. The
//! old contact is told of the request.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Duration, Utc};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::identity::{CODE_MAX_ATTEMPTS, Customer, SubjectKind};
use guichet_domain::{Locale, ids, secret};
use guichet_store::repo::contact_changes::{self, ContactChange};
use guichet_store::repo::outbox::{self, Message};
use guichet_store::repo::security_events::{self, Actor, Kind, SecurityEvent};
use guichet_store::repo::{customers, organizations, sessions};
use guichet_store::{DbConnection, OptionalExt, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::admin::{Page, page_end, parse_time_cursor, time_cursor};
use crate::auth::CustomerPrincipal;
use crate::auth::principal::StaffActor;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// What the keyed hash of a contact-change code is bound to.
pub const PURPOSE: &str = "contact_change";

/// How long a requested change waits for the customer's confirmation (and
/// its code stays valid).
pub fn change_lifetime() -> Duration {
    Duration::days(7)
}

/// The contact a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Email,
    Mobile,
}

impl ContactField {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactField::Email => "email",
            ContactField::Mobile => "mobile",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "email" => Some(ContactField::Email),
            "mobile" => Some(ContactField::Mobile),
            _ => None,
        }
    }
}

/// A contact value masked as the API masks them (`c***@example.com`,
/// `+33 6** ** ** 78`).
pub fn mask(field: ContactField, value: &str) -> String {
    match field {
        ContactField::Email => Email::parse(value).map(|e| e.masked()).unwrap_or_default(),
        ContactField::Mobile => Msisdn::parse(value).map(|m| m.masked()).unwrap_or_default(),
    }
}

fn actor_of(actor: &StaffActor) -> (Actor, &str) {
    match actor {
        StaffActor::Staff { id, .. } => (Actor::Staff, id),
        StaffActor::ApiKey { id } => (Actor::ApiKey, id),
    }
}

/// Whether the customer has portal access: a password, or a sign-in ever.
pub fn has_portal_access(conn: &mut DbConnection, customer: &Customer) -> Result<bool, StoreError> {
    if customer.registered_at.is_some() || customers::password_hash(conn, &customer.id)?.is_some() {
        return Ok(true);
    }
    sessions::ever_opened(conn, SubjectKind::Customer, &customer.id)
}

/// Queues a message straight into the outbox (the texts below are this
/// module's own).
#[allow(clippy::too_many_arguments)]
fn queue(
    conn: &mut DbConnection,
    org_id: &str,
    sms: bool,
    recipient: &str,
    template: &str,
    subject: String,
    body: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    outbox::enqueue(
        conn,
        &Message {
            id: ids::new_id("msg"),
            org_id: Some(org_id.to_owned()),
            channel: if sms { "sms" } else { "email" }.to_owned(),
            recipient: recipient.to_owned(),
            subject: if sms { String::new() } else { subject },
            body,
            template: template.to_owned(),
            attempts: 0,
            created_at: now,
        },
    )
}

/// The code message to the new contact: e-mail for an e-mail, SMS for a
/// mobile.
fn code_message(
    org_name: &str,
    field: ContactField,
    code: &str,
    locale: Locale,
) -> (String, String) {
    let fr = locale == Locale::Fr;
    match (field, fr) {
        (ContactField::Mobile, true) => (
            String::new(),
            format!(
                "{org_name} : code {code} pour confirmer ce numéro dans votre espace client. Valable 7 jours."
            ),
        ),
        (ContactField::Mobile, false) => (
            String::new(),
            format!(
                "{org_name}: code {code} to confirm this number in your customer space. Valid for 7 days."
            ),
        ),
        (ContactField::Email, true) => (
            format!("{org_name} : confirmez votre nouvelle adresse"),
            format!(
                "Bonjour,\n\n{org_name} a demandé à faire de cette adresse celle de votre espace client. Pour la confirmer, connectez-vous à votre espace client et saisissez ce code dans « Sécurité » :\n\n{code}\n\nIl est valable 7 jours. Tant que vous ne l'avez pas saisi, votre adresse actuelle reste en vigueur. Si vous n'êtes pas concerné, ignorez ce message.\n"
            ),
        ),
        (ContactField::Email, false) => (
            format!("{org_name}: confirm your new address"),
            format!(
                "Hello,\n\n{org_name} asked to make this address the one of your customer space. To confirm it, sign in to your customer space and enter this code under \"Security\":\n\n{code}\n\nIt is valid for 7 days. Until you enter it, your current address stays in force. If this is not about you, ignore this message.\n"
            ),
        ),
    }
}

/// The notice to the old contact: a change was asked for, nothing changes
/// until the customer confirms it.
fn notice_message(
    org_name: &str,
    field: ContactField,
    masked_new: &str,
    locale: Locale,
    sms: bool,
) -> (String, String) {
    let fr = locale == Locale::Fr;
    let what_fr = match field {
        ContactField::Email => "adresse e-mail",
        ContactField::Mobile => "numéro de mobile",
    };
    let what_en = match field {
        ContactField::Email => "e-mail address",
        ContactField::Mobile => "mobile number",
    };
    if sms {
        let body = if fr {
            format!(
                "{org_name} : un changement de votre {what_fr} vers {masked_new} a été demandé. Il ne prendra effet que si vous le confirmez depuis votre espace client. Pas vous ? Contactez {org_name}."
            )
        } else {
            format!(
                "{org_name}: a change of your {what_en} to {masked_new} was requested. It takes effect only if you confirm it in your customer space. Not you? Contact {org_name}."
            )
        };
        return (String::new(), body);
    }
    if fr {
        (
            format!("{org_name} : demande de changement de votre {what_fr}"),
            format!(
                "Bonjour,\n\n{org_name} a demandé à remplacer l'{what_fr} de votre espace client par {masked_new}. Rien ne change tant que vous ne l'avez pas confirmé depuis votre espace client, avec le code envoyé à la nouvelle {what_fr}. Votre {what_fr} actuelle reste en vigueur.\n\nSi vous n'êtes pas à l'origine de cette demande, ne confirmez rien et contactez {org_name}.\n"
            ),
        )
    } else {
        (
            format!("{org_name}: a change of your {what_en} was requested"),
            format!(
                "Hello,\n\n{org_name} asked to replace the {what_en} of your customer space with {masked_new}. Nothing changes until you confirm it in your customer space, with the code sent to the new {what_en}. Your current {what_en} stays in force.\n\nIf you did not ask for this, confirm nothing and contact {org_name}.\n"
            ),
        )
    }
}

/// Records a pending change of `field` to `new_value` asked for by
/// `requester`, sends its code to the new contact, tells the old one, and
/// records the request in the customer's history: call it inside the
/// transaction of the update. An e-mail already used by another customer
/// of the organization is a `Conflict`.
pub fn request_change(
    conn: &mut DbConnection,
    secret_key: &[u8],
    customer: &Customer,
    field: ContactField,
    new_value: &str,
    requester: &StaffActor,
    now: DateTime<Utc>,
) -> Result<ContactChange, StoreError> {
    if field == ContactField::Email
        && customers::find_by_email(conn, &customer.org_id, new_value)
            .optional()?
            .is_some_and(|other| other.id != customer.id)
    {
        return Err(StoreError::Conflict("email already used".into()));
    }
    let org = organizations::get(conn, &customer.org_id)?;
    let code = secret::numeric_code(6);
    let (actor, requester_id) = actor_of(requester);
    let change = ContactChange {
        id: ids::new_id("cch"),
        org_id: customer.org_id.clone(),
        customer_id: customer.id.clone(),
        field: field.as_str().to_owned(),
        new_value: new_value.to_owned(),
        requested_by: actor.as_str().to_owned(),
        requester_id: requester_id.to_owned(),
        code_hash: secret::keyed_hash(secret_key, PURPOSE, &code),
        attempts: 0,
        max_attempts: CODE_MAX_ATTEMPTS,
        expires_at: now + change_lifetime(),
        status: contact_changes::PENDING.to_owned(),
        created_at: now,
        decided_at: None,
    };
    contact_changes::insert(conn, &change)?;
    let masked_new = mask(field, new_value);
    let (subject, body) = code_message(&org.name, field, &code, customer.locale);
    // The code is stored sealed, opened only at delivery.
    let body = crate::notify::OutboxKey::derive(secret_key).seal(&body);
    queue(
        conn,
        &org.id,
        field == ContactField::Mobile,
        new_value,
        "contact_change_code",
        subject,
        body,
        now,
    )?;
    // The old contact of the same kind when there is one, else the e-mail.
    let (old, old_by_sms) = match (field, customer.mobile.as_deref()) {
        (ContactField::Mobile, Some(mobile)) => (mobile.to_owned(), true),
        _ => (customer.email.clone(), false),
    };
    let (subject, body) =
        notice_message(&org.name, field, &masked_new, customer.locale, old_by_sms);
    queue(
        conn,
        &org.id,
        old_by_sms,
        &old,
        "contact_change_requested",
        subject,
        body,
        now,
    )?;
    security_events::insert(
        conn,
        &SecurityEvent::new(
            &customer.org_id,
            &customer.id,
            Kind::ContactChangeRequested,
            actor,
            now,
        )
        .contact(field.as_str(), Some(masked_new)),
    )?;
    Ok(change)
}

/// Records in the customer's history a contact changed by staff at once (a
/// customer without portal access, or a mobile removed).
pub fn record_direct_change(
    conn: &mut DbConnection,
    customer: &Customer,
    field: ContactField,
    new_value: Option<&str>,
    requester: &StaffActor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (actor, _) = actor_of(requester);
    security_events::insert(
        conn,
        &SecurityEvent::new(
            &customer.org_id,
            &customer.id,
            Kind::ContactChanged,
            actor,
            now,
        )
        .contact(field.as_str(), new_value.map(|v| mask(field, v))),
    )
}

/// Records a block or an unblock by staff.
pub fn record_block(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    blocked: bool,
    requester: &StaffActor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kind = if blocked {
        Kind::Blocked
    } else {
        Kind::Unblocked
    };
    security_events::record(conn, org_id, customer_id, kind, actor_of(requester).0, now)
}

// ------------------------------------------------------------ customer side

/// Who asked for a contact change.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requester {
    Staff,
    ApiKey,
}

/// A contact change waiting for the customer's confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactChangeView {
    #[schema(example = "cch_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub field: ContactField,
    /// The new value, masked: `c***@example.com`, `+33 6** ** ** 78`.
    #[schema(example = "c***@example.com")]
    pub new_value: String,
    pub requested_by: Requester,
    pub requested_at: DateTime<Utc>,
    /// After this, the change and its code are void.
    pub expires_at: DateTime<Utc>,
    /// `pending`, or `confirmed` once confirmed.
    #[schema(example = "pending")]
    pub status: String,
}

impl From<&ContactChange> for ContactChangeView {
    fn from(c: &ContactChange) -> Self {
        let field = ContactField::parse(&c.field).unwrap_or(ContactField::Email);
        ContactChangeView {
            id: c.id.clone(),
            field,
            new_value: mask(field, &c.new_value),
            requested_by: if c.requested_by == Actor::ApiKey.as_str() {
                Requester::ApiKey
            } else {
                Requester::Staff
            },
            requested_at: c.created_at,
            expires_at: c.expires_at,
            status: c.status.clone(),
        }
    }
}

/// A page of pending contact changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactChangeList {
    pub data: Vec<ContactChangeView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

const AUTH_FAILURES: &str = "Codes: `unauthenticated`, `invalid_token`.";
const NOT_CUSTOMER: &str = "Not a customer token. Codes: `forbidden`.";

/// `?limit=&cursor=` of the lists ordered by time, newest first: the
/// cursor is the last item's time in microseconds since 1970, `.` and its id.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimePage {
    /// Items per page, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// A position in a time-ordered list: the last item's time and id.
type TimePosition = (DateTime<Utc>, String);

impl TimePage {
    /// The limit, and the position after which the page starts.
    fn resolve(&self) -> Result<(i64, Option<TimePosition>), ApiError> {
        let (limit, _) = Page {
            limit: self.limit,
            cursor: None,
        }
        .resolve()?;
        let Some(cursor) = &self.cursor else {
            return Ok((limit, None));
        };
        let after = parse_time_cursor(cursor).ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail("Curseur invalide.", "Invalid cursor.")
                .field("cursor", "invalid")
        })?;
        Ok((limit, Some(after)))
    }
}

/// The contact changes that wait for the customer's confirmation.
#[utoipa::path(
    tag = "me",
    operation_id = "listMyContactChanges",
    security(("bearer" = [])),
    params(TimePage),
    responses(
        (status = 200, description = "Pending changes, newest first, values masked.", body = ContactChangeList),
        (status = 400, description = "Codes: `invalid_parameter` (`limit` outside 1–100, bad cursor).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NOT_CUSTOMER, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/contact-changes")]
pub async fn list_contact_changes(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    page: web::Query<TimePage>,
) -> Result<web::Json<ContactChangeList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let now = state.clock.now();
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        contact_changes::pending(&mut conn, &[principal.customer_id], now, after, limit + 1)
    })
    .await??;
    let next_cursor = page_end(&mut items, limit, |c| time_cursor(c.created_at, &c.id));
    Ok(web::Json(ContactChangeList {
        data: items.iter().map(ContactChangeView::from).collect(),
        next_cursor,
    }))
}

/// The code sent to the new contact.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmContactChange {
    /// The 6-digit code.
    #[validate(length(min = 1, max = 12))]
    #[schema(example = "123456", min_length = 1, max_length = 12)]
    pub code: String,
}

/// Confirm a contact change with the code sent to the new contact.
///
/// Confirm a contact change with the code sent to the new contact: the new
/// e-mail or mobile is then in force (sign-in, codes and resets go to it).
/// Five wrong codes void the change.
#[utoipa::path(
    tag = "me",
    operation_id = "confirmMyContactChange",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Contact change id (`cch_...`).")),
    request_body = ConfirmContactChange,
    responses(
        (status = 200, description = "Confirmed: the new value is in force.", body = ContactChangeView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NOT_CUSTOMER, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pending change of yours. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another customer now uses this e-mail. Codes: `email_already_used`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `invalid_code` (with `remaining_attempts`), `code_expired` (the change is older than 7 days: ask the business again).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Five wrong codes: the change is void. Codes: `code_attempts_exceeded`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/contact-changes/{id}/confirmation")]
pub async fn confirm_contact_change(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ConfirmContactChange>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let code = body.0.code;
    let now = state.clock.now();
    let state = state.clone();
    let confirmed = web::block(move || {
        let mut conn = state.store.conn()?;
        let conn = &mut *conn;
        let change = contact_changes::get(conn, &principal.customer_id, &id)?;
        if change.status != contact_changes::PENDING {
            return Err(ApiError::not_found());
        }
        let expired = || {
            ApiError::new(ProblemCode::CodeExpired).detail(
                "Cette demande a expiré : demandez au service client de la refaire.",
                "This request has expired: ask customer service to make it again.",
            )
        };
        let exceeded = || {
            ApiError::new(ProblemCode::CodeAttemptsExceeded).detail(
                "Trop d'essais : cette demande n'est plus valable.",
                "Too many attempts: this request is void.",
            )
        };
        if change.expires_at <= now {
            return Err(expired());
        }
        // One attempt is reserved before the code is compared, in one
        // conditional statement: concurrent guesses cannot exceed the limit.
        let Some(used) = contact_changes::reserve_attempt(conn, &change.id, now)? else {
            return Err(exceeded());
        };
        let given = secret::keyed_hash(&state.secret_key, PURPOSE, code.trim());
        if !secret::constant_time_eq(&change.code_hash, &given) {
            let remaining = change.max_attempts - used;
            if remaining <= 0 {
                return Err(exceeded());
            }
            return Err(ApiError::new(ProblemCode::InvalidCode)
                .detail(
                    format!("Code incorrect : encore {remaining} essai(s)."),
                    format!("Wrong code: {remaining} attempt(s) left."),
                )
                .field("code", "incorrect")
                .extension("remaining_attempts", remaining.into()));
        }
        let field = ContactField::parse(&change.field)
            .ok_or_else(|| ApiError::internal("unknown contact field"))?;
        guichet_store::transaction(conn, |conn| {
            if !contact_changes::confirm(conn, &change.id, now)? {
                return Err(ApiError::not_found());
            }
            let mut customer = customers::get(conn, &principal.org_id, &principal.customer_id)?;
            match field {
                ContactField::Email => customer.email = change.new_value.clone(),
                ContactField::Mobile => customer.mobile = Some(change.new_value.clone()),
            }
            customer.updated_at = now;
            customers::update_profile(conn, &customer).map_err(|e| match e {
                StoreError::Conflict(_) => ApiError::new(ProblemCode::EmailAlreadyUsed)
                    .detail(
                        "Un autre client utilise désormais cette adresse.",
                        "Another customer now uses this address.",
                    )
                    .field("email", "taken"),
                other => other.into(),
            })?;
            security_events::insert(
                conn,
                &SecurityEvent::new(
                    &customer.org_id,
                    &customer.id,
                    Kind::ContactChangeConfirmed,
                    Actor::Customer,
                    now,
                )
                .contact(field.as_str(), Some(mask(field, &change.new_value)))
                .session(&principal.session_id, None),
            )?;
            Ok(())
        })?;
        let done = contact_changes::get(conn, &principal.customer_id, &change.id)?;
        Ok::<_, ApiError>(ContactChangeView::from(&done))
    })
    .await??;
    Ok(HttpResponse::Ok().json(confirmed))
}

// --------------------------------------------------------- security history

/// What happened, in a security event.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventType {
    SignedIn,
    PasswordChanged,
    PasswordReset,
    ContactChangeRequested,
    ContactChangeConfirmed,
    ContactChanged,
    SessionEnded,
    Blocked,
    Unblocked,
}

impl From<Kind> for SecurityEventType {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::SignedIn => SecurityEventType::SignedIn,
            Kind::PasswordChanged => SecurityEventType::PasswordChanged,
            Kind::PasswordReset => SecurityEventType::PasswordReset,
            Kind::ContactChangeRequested => SecurityEventType::ContactChangeRequested,
            Kind::ContactChangeConfirmed => SecurityEventType::ContactChangeConfirmed,
            Kind::ContactChanged => SecurityEventType::ContactChanged,
            Kind::SessionEnded => SecurityEventType::SessionEnded,
            Kind::Blocked => SecurityEventType::Blocked,
            Kind::Unblocked => SecurityEventType::Unblocked,
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventActor {
    Customer,
    Staff,
    ApiKey,
    System,
}

impl From<Actor> for EventActor {
    fn from(actor: Actor) -> Self {
        match actor {
            Actor::Customer => EventActor::Customer,
            Actor::Staff => EventActor::Staff,
            Actor::ApiKey => EventActor::ApiKey,
            Actor::System => EventActor::System,
        }
    }
}

/// One event of the customer's security history. Details are masked: never
/// a code, token, hash or full contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventView {
    #[schema(example = "sev_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: SecurityEventType,
    pub occurred_at: DateTime<Utc>,
    pub actor: EventActor,
    /// For contact events: `email` or `mobile`.
    pub field: Option<ContactField>,
    /// For contact events: the new value, masked.
    #[schema(example = "c***@example.com")]
    pub value: Option<String>,
    /// The session signed in, or ended.
    pub session_id: Option<String>,
    /// The address a sign-in came from.
    pub ip: Option<String>,
}

impl From<SecurityEvent> for SecurityEventView {
    fn from(e: SecurityEvent) -> Self {
        SecurityEventView {
            id: e.id,
            kind: e.kind.into(),
            occurred_at: e.created_at,
            actor: e.actor.into(),
            field: e.field.as_deref().and_then(ContactField::parse),
            value: e.value,
            session_id: e.session_id,
            ip: e.ip,
        }
    }
}

/// A page of security events.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventList {
    pub data: Vec<SecurityEventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The customer's security history.
///
/// The customer's security history: sign-ins, password changes and resets,
/// contact changes (requested by staff, confirmed), sessions ended, blocks
/// and unblocks, newest first.
#[utoipa::path(
    tag = "me",
    operation_id = "listMySecurityEvents",
    security(("bearer" = [])),
    params(TimePage),
    responses(
        (status = 200, description = "A page of events, newest first.", body = SecurityEventList),
        (status = 400, description = "Codes: `invalid_parameter` (`limit` outside 1–100, bad cursor).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NOT_CUSTOMER, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/security-events")]
pub async fn list_security_events(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    page: web::Query<TimePage>,
) -> Result<web::Json<SecurityEventList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let after = after.map(|(created_at, id)| security_events::After { created_at, id });
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        security_events::list(&mut conn, &principal.customer_id, after.as_ref(), limit + 1)
    })
    .await??;
    let next_cursor = page_end(&mut items, limit, |e| time_cursor(e.created_at, &e.id));
    Ok(web::Json(SecurityEventList {
        data: items.into_iter().map(SecurityEventView::from).collect(),
        next_cursor,
    }))
}

// ------------------------------------------------ one-line recording helpers

/// Records `kind` done by the customer themselves (password change, reset).
pub fn record(
    conn: &mut DbConnection,
    customer: &Customer,
    kind: Kind,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    security_events::record(
        conn,
        &customer.org_id,
        &customer.id,
        kind,
        Actor::Customer,
        now,
    )
}

/// Records a customer's sign-in into session `session_id` from `ip`.
pub fn record_sign_in(
    conn: &mut DbConnection,
    customer: &Customer,
    session_id: &str,
    ip: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    security_events::insert(
        conn,
        &SecurityEvent::new(
            &customer.org_id,
            &customer.id,
            Kind::SignedIn,
            Actor::Customer,
            now,
        )
        .session(session_id, Some(ip)),
    )
}

/// Records that a session was ended by its customer (sign-out), when it is
/// a customer's.
pub fn record_session_end(
    conn: &mut DbConnection,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let session = sessions::get(conn, session_id)?;
    if session.subject_kind != SubjectKind::Customer {
        return Ok(());
    }
    security_events::insert(
        conn,
        &SecurityEvent::new(
            &session.org_id,
            &session.subject_id,
            Kind::SessionEnded,
            Actor::Customer,
            now,
        )
        .session(session_id, session.ip.as_deref()),
    )
}
