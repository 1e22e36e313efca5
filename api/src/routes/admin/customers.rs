//! `/v1/admin/customers`: the organization's customers.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::identity::{Customer, SubjectKind, lifetimes};
use guichet_domain::{Locale, ids, secret};
use guichet_store::StoreError;
use guichet_store::repo::codes;
use guichet_store::repo::{contact_changes, customers, sessions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{AUTH_FAILURES, Page, ROLE_FAILURE, next_cursor, present};
use crate::auth::StaffPrincipal;
use crate::auth::flows;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::auth::purpose;
use crate::routes::events;
use crate::routes::security::{self, ContactField};
use crate::state::AppState;
use guichet_domain::events::EventType;

/// A customer, as the business sees it (never a password).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub name: String,
    #[schema(example = "jeanne.durand@example.org")]
    pub email: String,
    /// E.164.
    #[schema(example = "+33612345678")]
    pub mobile: Option<String>,
    #[schema(value_type = crate::routes::enums::Language, example = "fr")]
    pub locale: String,
    pub external_ref: Option<String>,
    /// Whether the customer has set up portal access.
    pub registered: bool,
    pub registered_at: Option<DateTime<Utc>>,
    pub blocked: bool,
    pub blocked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// E-mail or mobile changes asked for by staff or an API key for a
    /// customer with portal access, waiting for the customer to confirm
    /// them: until then `email` and `mobile` above stay in force.
    pub pending_contact_changes: Vec<PendingContactChange>,
}

/// A contact change waiting for the customer's confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingContactChange {
    #[schema(example = "cch_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub field: ContactField,
    /// The value asked for.
    pub value: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Fills in the pending contact changes of `views` (one query).
fn with_pending(
    conn: &mut guichet_store::DbConnection,
    mut views: Vec<CustomerView>,
    now: DateTime<Utc>,
) -> Result<Vec<CustomerView>, StoreError> {
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let pending = contact_changes::pending(conn, &ids, now, None, 2 * ids.len() as i64 + 1)?;
    for change in pending.into_iter().rev() {
        if let Some(view) = views.iter_mut().find(|v| v.id == change.customer_id) {
            view.pending_contact_changes.push(PendingContactChange {
                field: if change.field == "mobile" {
                    ContactField::Mobile
                } else {
                    ContactField::Email
                },
                id: change.id,
                value: change.new_value,
                requested_at: change.created_at,
                expires_at: change.expires_at,
            });
        }
    }
    Ok(views)
}

fn one_with_pending(
    conn: &mut guichet_store::DbConnection,
    customer: Customer,
    now: DateTime<Utc>,
) -> Result<CustomerView, StoreError> {
    with_pending(conn, vec![customer.into()], now)?
        .pop()
        .ok_or(StoreError::NotFound)
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        CustomerView {
            registered: c.registered_at.is_some(),
            blocked: c.blocked_at.is_some(),
            id: c.id,
            name: c.name,
            email: c.email,
            mobile: c.mobile,
            locale: c.locale.as_str().to_owned(),
            external_ref: c.external_ref,
            registered_at: c.registered_at,
            blocked_at: c.blocked_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            pending_contact_changes: Vec::new(),
        }
    }
}

/// A page of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    pub data: Vec<CustomerView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A new customer.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    #[validate(
        length(max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(example = "Claire Martin", max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Unique in the organization: the customer's login.
    #[schema(value_type = String, format = "email", example = "jeanne.durand@example.org")]
    pub email: Email,
    /// E.164 (`+33612345678`): sign-in codes then go by SMS.
    #[schema(value_type = Option<String>, example = "+33612345678", pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub mobile: Option<Msisdn>,
    /// `fr` (default) or `en`: the language of the customer's messages.
    #[schema(value_type = Option<crate::routes::enums::Language>, example = "fr")]
    pub locale: Option<Locale>,
    /// The business's own reference.
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub external_ref: Option<String>,
}

/// Changes to a customer; absent fields stay, `null` clears `mobile` and
/// `external_ref`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[validate(
        length(max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(value_type = Option<String>, format = "email")]
    pub email: Option<Email>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub mobile: Option<Option<Msisdn>>,
    #[schema(value_type = Option<crate::routes::enums::Language>)]
    pub locale: Option<Locale>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = r"\S")]
    pub external_ref: Option<Option<String>>,
}

fn email_taken() -> ApiError {
    ApiError::new(ProblemCode::EmailAlreadyUsed)
        .detail(
            "Un client de l'organisation utilise déjà cette adresse.",
            "A customer of the organization already uses this address.",
        )
        .field("email", "taken")
}

fn map_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => email_taken(),
        other => other.into(),
    }
}

/// Create a customer.
///
/// A customer can then set up portal access (first connection, passwordless sign-in, or an
/// activation code).
#[utoipa::path(
    operation_id = "createCustomer",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = CreateCustomer,
    responses(
        (status = 201, description = "Created.", body = CustomerView,
            headers(("Location" = String, description = "The customer's address: `/v1/admin/customers/{id}`."))),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `email_already_used`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<CreateCustomer>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    validate_external_ref(body.external_ref.as_deref())?;
    let now = state.clock.now();
    let customer = Customer {
        id: ids::new_id("cus"),
        org_id: principal.org_id.clone(),
        email: body.email.as_str().to_owned(),
        name: body.name.trim().to_owned(),
        mobile: body.mobile.map(|m| m.as_str().to_owned()),
        locale: body.locale.unwrap_or_default(),
        external_ref: body.external_ref,
        registered_at: None,
        blocked_at: None,
        created_at: now,
        updated_at: now,
    };
    let store = state.store.clone();
    let saved = customer.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            customers::insert(conn, &saved)?;
            events::by_staff(
                conn,
                EventType::CustomerCreated,
                &saved.org_id,
                &saved.id,
                &principal.actor,
                &CustomerView::from(saved.clone()),
                now,
            )
        })
    })
    .await?
    .map_err(map_conflict)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/admin/customers/{}", customer.id)))
        .json(CustomerView::from(customer)))
}

fn validate_external_ref(value: Option<&str>) -> Result<(), ApiError> {
    if value.is_some_and(|v| {
        v.trim().is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control)
    }) {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail("Référence externe invalide.", "Invalid external reference.")
            .field("external_ref", "invalid"));
    }
    Ok(())
}

/// The organization's customers, oldest id first.
#[utoipa::path(
    operation_id = "listCustomers",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(Page),
    responses(
        (status = 200, description = "A page of customers.", body = CustomerList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    page: web::Query<Page>,
) -> Result<web::Json<CustomerList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let now = state.clock.now();
    let store = state.store.clone();
    let (data, next_cursor) = web::block(move || {
        let mut conn = store.conn()?;
        let mut items = customers::list(&mut conn, &principal.org_id, after.as_deref(), limit + 1)?;
        let next_cursor = next_cursor(&mut items, limit, |c| &c.id);
        let views = items.into_iter().map(CustomerView::from).collect();
        Ok::<_, StoreError>((with_pending(&mut conn, views, now)?, next_cursor))
    })
    .await??;
    Ok(web::Json(CustomerList { data, next_cursor }))
}

const NOT_FOUND: &str = "No such customer in your organization. Codes: `not_found`.";

/// One customer.
#[utoipa::path(
    operation_id = "getCustomer",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`).")),
    responses(
        (status = 200, description = "The customer.", body = CustomerView),
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
) -> Result<web::Json<CustomerView>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let view = web::block(move || {
        let mut conn = store.conn()?;
        let customer = customers::get(&mut conn, &principal.org_id, &id)?;
        one_with_pending(&mut conn, customer, now)
    })
    .await??;
    Ok(web::Json(view))
}

/// Change a customer's name, e-mail, mobile, locale or reference.
///
/// Staff can never set or reset a customer's password.
#[utoipa::path(
    operation_id = "updateCustomer",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`).")),
    request_body = UpdateCustomer,
    responses(
        (status = 200, description = "The customer after the change.", body = CustomerView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `email_already_used`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/{id}")]
pub async fn update(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<UpdateCustomer>,
) -> Result<web::Json<CustomerView>, ApiError> {
    let body = body.0;
    if let Some(Some(reference)) = &body.external_ref {
        validate_external_ref(Some(reference))?;
    }
    let id = path.into_inner();
    let now = state.clock.now();
    let state = state.clone();
    let view = web::block(move || {
        let mut conn = state.store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let mut c = customers::get(conn, &principal.org_id, &id)?;
            let before = c.clone();
            // For a customer with portal access, a new e-mail or mobile
            // waits for the customer's confirmation; without access (or to
            // remove the mobile) it applies at once.
            let access = security::has_portal_access(conn, &c)?;
            let mut requested: Vec<(ContactField, String)> = Vec::new();
            let mut direct: Vec<(ContactField, Option<String>)> = Vec::new();
            if let Some(email) = body.email.map(|e| e.as_str().to_owned())
                && email != c.email
            {
                if access {
                    requested.push((ContactField::Email, email));
                } else {
                    direct.push((ContactField::Email, Some(email.clone())));
                    c.email = email;
                }
            }
            if let Some(mobile) = body.mobile.map(|m| m.map(|m| m.as_str().to_owned()))
                && mobile != c.mobile
            {
                match mobile {
                    Some(mobile) if access => requested.push((ContactField::Mobile, mobile)),
                    mobile => {
                        direct.push((ContactField::Mobile, mobile.clone()));
                        c.mobile = mobile;
                    }
                }
            }
            if let Some(name) = body.name {
                c.name = name.trim().to_owned();
            }
            if let Some(locale) = body.locale {
                c.locale = locale;
            }
            if let Some(reference) = body.external_ref {
                c.external_ref = reference;
            }
            let changed = !requested.is_empty()
                || Customer {
                    updated_at: before.updated_at,
                    ..c.clone()
                } != before;
            c.updated_at = now;
            customers::update_profile(conn, &c)?;
            for (field, value) in direct {
                security::record_direct_change(
                    conn,
                    &before,
                    field,
                    value.as_deref(),
                    &principal.actor,
                    now,
                )?;
            }
            for (field, value) in requested {
                security::request_change(
                    conn,
                    &state.secret_key,
                    &c,
                    field,
                    &value,
                    &principal.actor,
                    now,
                )?;
            }
            let view = one_with_pending(conn, c, now)?;
            if changed {
                events::by_staff(
                    conn,
                    EventType::CustomerUpdated,
                    &principal.org_id,
                    &view.id,
                    &principal.actor,
                    &view,
                    now,
                )?;
            }
            Ok(view)
        })
    })
    .await?
    .map_err(map_conflict)?;
    Ok(web::Json(view))
}

/// Block a customer: no sign-in, and every session ends at once.
#[utoipa::path(
    operation_id = "blockCustomer",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`).")),
    responses(
        (status = 200, description = "Blocked (blocking twice keeps the first date).", body = CustomerView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/block")]
pub async fn block(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<CustomerView>, ApiError> {
    set_blocked(principal, state, path.into_inner(), true).await
}

/// Unblock a customer (sessions ended by the block stay ended).
#[utoipa::path(
    operation_id = "unblockCustomer",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`).")),
    responses(
        (status = 200, description = "Unblocked.", body = CustomerView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/unblock")]
pub async fn unblock(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<CustomerView>, ApiError> {
    set_blocked(principal, state, path.into_inner(), false).await
}

async fn set_blocked(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    id: String,
    blocked: bool,
) -> Result<web::Json<CustomerView>, ApiError> {
    let now = state.clock.now();
    let store = state.store.clone();
    let customer = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let current = customers::get(conn, &principal.org_id, &id)?;
            let at = if blocked {
                Some(current.blocked_at.unwrap_or(now))
            } else {
                None
            };
            customers::set_blocked(conn, &principal.org_id, &id, at)?;
            if blocked {
                sessions::revoke_all(conn, SubjectKind::Customer, &id, None, now)?;
            }
            if blocked != current.blocked_at.is_some() {
                security::record_block(
                    conn,
                    &principal.org_id,
                    &id,
                    blocked,
                    &principal.actor,
                    now,
                )?;
            }
            let customer = customers::get(conn, &principal.org_id, &id)?;
            let view = one_with_pending(conn, customer, now)?;
            if blocked != current.blocked_at.is_some() {
                let kind = if blocked {
                    EventType::CustomerBlocked
                } else {
                    EventType::CustomerUnblocked
                };
                events::by_staff(
                    conn,
                    kind,
                    &principal.org_id,
                    &id,
                    &principal.actor,
                    &view,
                    now,
                )?;
            }
            Ok::<_, StoreError>(view)
        })
    })
    .await??;
    Ok(web::Json(customer))
}

/// A new activation code, shown once, to print on a letter.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationCode {
    /// Give it to the customer (by letter); it is not stored readable.
    #[schema(example = "ABCD-EFGH-JKMN")]
    pub activation_code: String,
    pub expires_at: DateTime<Utc>,
}

/// Generate a one-time access code for a customer without access.
///
/// Generate a one-time access code for a customer who has no access yet
/// (valid 30 days; a new code voids the previous one). The customer
/// activates with it at `POST /v1/auth/activate` and sets a password.
#[utoipa::path(
    operation_id = "createActivationCode",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`).")),
    responses(
        (status = 201, description = "The code, shown this once.", body = ActivationCode),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The customer already has access (staff cannot reset passwords). Codes: `already_registered`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/activation-codes")]
pub async fn create_activation_code(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let state = state.clone();
    let issued = web::block(move || {
        let mut conn = state.store.conn()?;
        let customer = customers::get(&mut conn, &principal.org_id, &id)?;
        // Only for a customer with no working access (no password, never
        // signed in): staff see the code, so it must never replace an
        // access the customer has.
        if security::has_portal_access(&mut conn, &customer)? {
            return Err(ApiError::new(ProblemCode::AlreadyRegistered).detail(
                "Ce client a déjà un accès : il peut utiliser « Mot de passe oublié ».",
                "This customer already has access: they can use \"Forgot password\".",
            ));
        }
        let code = secret::activation_code();
        let normalized = secret::normalize_activation_code(&code);
        let record = flows::link_record(
            &state.secret_key,
            &customer.org_id,
            SubjectKind::Customer,
            &customer.id,
            purpose::ACTIVATION,
            &normalized,
            None,
            lifetimes::activation_code(),
            now,
        );
        let expires_at = record.expires_at;
        guichet_store::transaction(&mut conn, |conn| {
            codes::void_all(conn, &customer.id, purpose::ACTIVATION, now)?;
            codes::insert(conn, &record)
        })?;
        Ok(ActivationCode {
            activation_code: code,
            expires_at,
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(issued))
}
