//! Customer accounts: `/v1/admin/customers/{id}/accounts`,
//! `/v1/admin/accounts/{id}` with its charges, and `/v1/me/accounts`. An
//! account's balance is what the customer owes; charges raise it,
//! presented collections lower it, rejected ones put it back.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, get, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::{Currency, ids};
use guichet_store::StoreError;
use guichet_store::db::DbConnection;
use guichet_store::repo::accounts::{self, Account, AccountEntry, EntryKind};
use guichet_store::repo::customers;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{CustomerPrincipal, StaffActor, StaffPrincipal};
use crate::edge::json::Json;
use crate::faults::FaultPoint;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::orders::order::MoneyInput;
use crate::routes::admin::{AUTH_FAILURES, Page, ROLE_FAILURE, next_cursor};
use crate::routes::idempotency::{self, Begun, Committed, Replay};
use crate::routes::views::MoneyView;
use crate::state::AppState;

/// The label of the entry that records a non-zero initial balance.
pub const INITIAL_BALANCE_LABEL: &str = "Solde initial";
/// How many entries an account's detail shows (the newest).
pub const ENTRIES_SHOWN: i64 = 100;
/// The largest single charge or initial balance: 10 000 000.00 EUR.
pub const MAX_AMOUNT: i64 = 1_000_000_000;

fn eur() -> Currency {
    Currency::parse("EUR").unwrap_or_else(|_| unreachable!("EUR is a currency"))
}

fn money(amount: i64, currency: &str) -> MoneyView {
    MoneyView {
        amount,
        currency: Currency::parse(currency).unwrap_or_else(|_| eur()),
    }
}

/// A customer account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    #[schema(example = "acc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    #[schema(example = "Appartement 3B, 12 rue des Lilas")]
    pub label: String,
    /// The business's reference, unique in the organization.
    #[schema(example = "LOC-000123")]
    pub reference: String,
    /// What the customer owes now.
    pub balance: MoneyView,
    /// What scheduled (not yet presented) collections will take.
    pub covered: MoneyView,
    /// What a new mandate may still collect: balance minus covered (never
    /// below zero).
    pub collectible: MoneyView,
    /// Whether a signed recurrent mandate is in place (one-off mandates are
    /// then no longer possible on this account).
    pub has_recurring_mandate: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub data: Vec<AccountView>,
    pub next_cursor: Option<String>,
}

/// One change of an account's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    #[schema(example = "ent_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// `charge` (raises the balance), `collection` (a presented collection,
    /// negative) or `collection_rejected` (a rejected collection put back).
    #[schema(example = "charge")]
    pub kind: String,
    /// Signed: positive raises the balance.
    pub amount: MoneyView,
    #[schema(example = "Loyer décembre 2026")]
    pub label: String,
    /// The collection behind a `collection` or `collection_rejected` entry.
    pub collection_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An account with its history, newest entry first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDetail {
    #[serde(flatten)]
    pub account: AccountView,
    /// The 100 newest entries, newest first.
    pub entries: Vec<EntryView>,
}

/// A new account of a customer.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// What the customer sees, 1 to 100 characters.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "Appartement 3B, 12 rue des Lilas",
        min_length = 1,
        max_length = 100,
        pattern = r"\S"
    )]
    pub label: String,
    /// Unique in the organization, 1 to 35 characters.
    #[validate(
        length(min = 1, max = 35),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "LOC-000123",
        min_length = 1,
        max_length = 35,
        pattern = r"\S"
    )]
    pub reference: String,
    /// What the customer already owes (EUR, 0 to 10 000 000.00; default 0).
    /// A non-zero balance is recorded as a first `charge` entry.
    #[schema(schema_with = initial_balance_schema)]
    pub initial_balance: Option<MoneyInput>,
}

/// A charge added to an account.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCharge {
    /// A positive EUR amount, at most 10 000 000.00.
    #[schema(schema_with = charge_amount_schema)]
    pub amount: MoneyInput,
    /// 1 to 140 characters.
    #[validate(
        length(min = 1, max = 140),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "Loyer décembre 2026",
        min_length = 1,
        max_length = 140,
        pattern = r"\S"
    )]
    pub label: String,
}

/// An amount in euro cents from `minimum` to `MAX_AMOUNT`, as accounts take it.
fn eur_money_schema(
    minimum: i64,
    nullable: bool,
    description: &str,
) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{
        AdditionalProperties, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
    };
    let kind = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::Type(Type::Object)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(description))
        .property(
            "amount",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some("Minor units (cents)."))
                .minimum(Some(minimum))
                .maximum(Some(MAX_AMOUNT))
                .examples([12999]),
        )
        .required("amount")
        .property(
            "currency",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["EUR"])),
        )
        .required("currency")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build()
}

fn initial_balance_schema() -> utoipa::openapi::schema::Object {
    eur_money_schema(
        0,
        true,
        "What the customer already owes (EUR, 0 to 10 000 000.00; default 0). A non-zero balance is recorded as a first `charge` entry.",
    )
}

fn charge_amount_schema() -> utoipa::openapi::schema::Object {
    eur_money_schema(1, false, "A positive EUR amount, at most 10 000 000.00.")
}

fn amount_problem(field: &str, fr: &str, en: &str, code: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(fr, en)
        .field(field, code)
}

/// Checks a money input: EUR, within `min..=MAX_AMOUNT`.
fn eur_amount(input: MoneyInput, field: &str, min: i64) -> Result<i64, ApiError> {
    if input.currency != eur() {
        return Err(amount_problem(
            &format!("{field}.currency"),
            "Les comptes sont tenus en euros (EUR).",
            "Accounts are kept in euros (EUR).",
            "unsupported_currency",
        ));
    }
    if input.amount < min || input.amount > MAX_AMOUNT {
        return Err(amount_problem(
            &format!("{field}.amount"),
            &format!("Le montant va de {min} à {MAX_AMOUNT} centimes."),
            &format!("The amount must be {min} to {MAX_AMOUNT} cents."),
            "range",
        ));
    }
    Ok(input.amount)
}

/// The view of `account`, with what its scheduled collections cover.
pub fn account_view(conn: &mut DbConnection, account: Account) -> Result<AccountView, StoreError> {
    let covered = accounts::covered(conn, &account.id)?;
    let has_recurring_mandate = accounts::has_recurring_mandate(conn, &account.id)?;
    Ok(AccountView {
        covered: money(covered, &account.currency),
        collectible: money(
            account.balance.saturating_sub(covered).max(0),
            &account.currency,
        ),
        balance: money(account.balance, &account.currency),
        has_recurring_mandate,
        id: account.id,
        customer_id: account.customer_id,
        label: account.label,
        reference: account.reference,
        created_at: account.created_at,
        updated_at: account.updated_at,
    })
}

fn entry_view(entry: AccountEntry, currency: &str) -> EntryView {
    EntryView {
        id: entry.id,
        kind: entry.kind.as_str().to_owned(),
        amount: money(entry.amount, currency),
        label: entry.label,
        collection_id: entry.collection_id,
        created_at: entry.created_at,
    }
}

fn detail(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<AccountDetail, StoreError> {
    let account = accounts::get(conn, org_id, id)?;
    let currency = account.currency.clone();
    let entries = accounts::entries(conn, org_id, id, ENTRIES_SHOWN)?
        .into_iter()
        .map(|e| entry_view(e, &currency))
        .collect();
    Ok(AccountDetail {
        account: account_view(conn, account)?,
        entries,
    })
}

fn to_list(
    conn: &mut DbConnection,
    mut items: Vec<Account>,
    limit: i64,
) -> Result<AccountList, StoreError> {
    let next_cursor = next_cursor(&mut items, limit, |a| &a.id);
    let data = items
        .into_iter()
        .map(|a| account_view(conn, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AccountList { data, next_cursor })
}

fn reference_taken() -> ApiError {
    ApiError::new(ProblemCode::AccountReferenceTaken)
        .detail(
            "Un compte de l'organisation porte déjà cette référence.",
            "An account of the organization already has this reference.",
        )
        .field("reference", "taken")
}

const CUSTOMER_NOT_FOUND: &str = "No such customer in your organization. Codes: `not_found`.";
const ACCOUNT_NOT_FOUND: &str = "No such account in your organization. Codes: `not_found`.";

/// Open an account for a customer.
#[utoipa::path(
    operation_id = "createAccount",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`).")),
    request_body = CreateAccount,
    responses(
        (status = 201, description = "Created; `Location` is the account's address.", body = AccountDetail,
            headers(("Location" = String, description = "The account's address: `/v1/admin/accounts/{id}`."))),
        (status = 400, description = "Malformed body, unknown field, wrong type, blank label or reference, initial balance negative, too large or not in EUR. Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = CUSTOMER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another account of the organization has this reference. Codes: `account_reference_taken`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/customers/{id}/accounts")]
pub async fn create(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<CreateAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let initial = match body.initial_balance {
        Some(input) => eur_amount(input, "initial_balance", 0)?,
        None => 0,
    };
    let customer_id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let org_id = principal.org_id;
    let detail = web::block(move || -> Result<AccountDetail, ApiError> {
        let mut conn = store.conn()?;
        let customer = customers::get(&mut conn, &org_id, &customer_id)?;
        let account = Account {
            id: ids::new_id("acc"),
            org_id: org_id.clone(),
            customer_id: customer.id,
            label: body.label.trim().to_owned(),
            reference: body.reference.trim().to_owned(),
            balance: 0,
            currency: "EUR".to_owned(),
            created_at: now,
            updated_at: now,
        };
        let created = guichet_store::transaction(&mut conn, |conn| {
            if accounts::reference_taken(conn, &org_id, &account.reference)? {
                return Ok(false);
            }
            accounts::insert(conn, &account)?;
            if initial > 0 {
                accounts::add_entry(
                    conn,
                    &account.id,
                    &org_id,
                    EntryKind::Charge,
                    initial,
                    INITIAL_BALANCE_LABEL,
                    None,
                    now,
                )?;
            }
            Ok::<_, StoreError>(true)
        })
        .map_err(|e| match e {
            StoreError::Conflict(_) => reference_taken(),
            other => other.into(),
        })?;
        if !created {
            return Err(reference_taken());
        }
        Ok(detail(&mut conn, &org_id, &account.id)?)
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/v1/admin/accounts/{}", detail.account.id),
        ))
        .json(detail))
}

/// A customer's accounts, by id.
#[utoipa::path(
    operation_id = "listCustomerAccounts",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`)."), Page),
    responses(
        (status = 200, description = "A page of accounts.", body = AccountList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = CUSTOMER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/customers/{id}/accounts")]
pub async fn list_for_customer(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Page>,
) -> Result<web::Json<AccountList>, ApiError> {
    let (limit, after) = query.resolve()?;
    let customer_id = path.into_inner();
    let store = state.store.clone();
    let list = web::block(move || {
        let mut conn = store.conn()?;
        let customer = customers::get(&mut conn, &principal.org_id, &customer_id)?;
        let items = accounts::list_for_customer(
            &mut conn,
            &principal.org_id,
            &customer.id,
            after.as_deref(),
            limit + 1,
        )?;
        to_list(&mut conn, items, limit)
    })
    .await??;
    Ok(web::Json(list))
}

/// One account with its balance history.
#[utoipa::path(
    operation_id = "getAccount",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Account id (`acc_...`).")),
    responses(
        (status = 200, description = "The account and its 100 newest entries, newest first.", body = AccountDetail),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = ACCOUNT_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/accounts/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<AccountDetail>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let detail = web::block(move || {
        let mut conn = store.conn()?;
        detail(&mut conn, &principal.org_id, &id)
    })
    .await??;
    Ok(web::Json(detail))
}

/// The idempotency scope of a caller's charges.
fn charge_scope(principal: &StaffPrincipal) -> String {
    match &principal.actor {
        StaffActor::Staff { id, .. } | StaffActor::ApiKey { id } => format!("account-charge:{id}"),
    }
}

fn charge_hash(account_id: &str, amount: i64, label: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"account-charge\0");
    hasher.update(account_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(amount.to_be_bytes());
    hasher.update(label.as_bytes());
    hex::encode(hasher.finalize())
}

fn charged(account_id: &str, body: String) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header(("Location", format!("/v1/admin/accounts/{account_id}")))
        .body(body)
}

/// Add a charge to an account.
///
/// Add a charge to an account: its balance rises by the amount. With an
/// `Idempotency-Key`, the same key and body answer the first response
/// again without charging twice.
#[utoipa::path(
    operation_id = "createAccountCharge",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(
        ("id" = String, Path, description = "Account id (`acc_...`)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional, 1 to 255 visible ASCII characters: the same key and body replay the first answer (with `Idempotent-Replayed: true`) for 24 hours; keys are scoped to the caller."),
    ),
    request_body = CreateCharge,
    responses(
        (status = 201, description = "The charge is recorded; the account after it, with its history.", body = AccountDetail,
            headers(("Location" = String, description = "The account's address: `/v1/admin/accounts/{id}`."))),
        (status = 400, description = "Malformed body, unknown field, wrong type, blank label, amount not positive, too large or not in EUR; a malformed `Idempotency-Key`. Codes: `malformed_json`, `unknown_field`, `invalid_field`, `invalid_parameter` (the `Idempotency-Key`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = ACCOUNT_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another request with this idempotency key may still be running: retry after `Retry-After` seconds. Codes: `idempotency_key_in_use`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: whole seconds (at least 1) until the key's lock ends; a retry after it finishes the request."))),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The idempotency key was used with another body. Codes: `idempotency_key_reused`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/accounts/{id}/charges")]
pub async fn charge(
    req: HttpRequest,
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<CreateCharge>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let amount = eur_amount(body.amount, "amount", 1)?;
    let label = body.label.trim().to_owned();
    let id = path.into_inner();
    let key = idempotency::optional_key(&req)?;
    let scope = charge_scope(&principal);
    let now = state.clock.now();
    let mut ticket = None;
    if let Some(key) = key {
        let hash = charge_hash(&id, amount, &label);
        match idempotency::begin(&state, scope, key, hash, now).await? {
            // A first attempt that never answered committed nothing: its
            // charge commits with its answer. Charge now.
            Begun::Fresh(t) | Begun::Resumed(t) => ticket = Some(t),
            Begun::Replay(replay) => return Ok(replay_charge(&id, replay)),
        }
    }
    let store = state.store.clone();
    let state_for = state.clone();
    let org_id = principal.org_id.clone();
    let account_id = id.clone();
    let ticket_for = ticket.clone();
    let outcome = web::block(move || -> Result<Committed, ApiError> {
        let mut conn = store.conn()?;
        idempotency::commit(
            &mut conn,
            &state_for,
            FaultPoint::AccountCharge,
            ticket_for.as_ref(),
            StatusCode::CREATED,
            |conn| {
                accounts::lock(conn, &org_id, &account_id)?;
                accounts::add_entry(
                    conn,
                    &account_id,
                    &org_id,
                    EntryKind::Charge,
                    amount,
                    &label,
                    None,
                    now,
                )?;
                let detail = detail(conn, &org_id, &account_id)?;
                serde_json::to_string(&detail).map_err(|e| ApiError::internal(e.to_string()))
            },
        )
    })
    .await?;
    // A refusal charged nothing, so the key may be used again.
    idempotency::answer(
        &state,
        ticket,
        outcome,
        |json| charged(&id, json),
        |response| location(response, &id),
    )
    .await
}

fn location(response: &mut HttpResponseBuilder, account_id: &str) {
    response.insert_header(("Location", format!("/v1/admin/accounts/{account_id}")));
}

fn replay_charge(account_id: &str, replay: Replay) -> HttpResponse {
    replay.respond(|response| location(response, account_id))
}

/// The customer's accounts, with what each owes.
///
/// The customer's accounts, with what each owes and what a new mandate may
/// still collect.
#[utoipa::path(
    operation_id = "listMyAccounts",
    tag = "me",
    security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of the customer's accounts.", body = AccountList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = crate::routes::schedules::AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = crate::routes::schedules::ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/accounts")]
pub async fn list_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<Page>,
) -> Result<web::Json<AccountList>, ApiError> {
    let (limit, after) = query.resolve()?;
    let store = state.store.clone();
    let list = web::block(move || {
        let mut conn = store.conn()?;
        let items = accounts::list_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            after.as_deref(),
            limit + 1,
        )?;
        to_list(&mut conn, items, limit)
    })
    .await??;
    Ok(web::Json(list))
}
