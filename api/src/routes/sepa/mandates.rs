//! The customer's SEPA mandates ("Paiement en ligne"): a draft for one of
//! their accounts, its review and unsigned PDF, a one-time code by SMS or
//! e-mail, the signature (the signed PDF written once, the collections
//! scheduled and pre-notified) and the history.
//!
//! `POST /v1/me/accounts/{id}/mandates`, `GET /v1/me/mandates`,
//! `GET /v1/me/mandates/{id}`, `GET /v1/me/mandates/{id}/document`,
//! `POST /v1/me/mandates/{id}/otp`, `POST /v1/me/mandates/{id}/signature`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::identity::{CODE_MAX_ATTEMPTS, SubjectKind, lifetimes};
use guichet_domain::schedule::plan_equal;
use guichet_domain::sepa::mandate_pdf::{
    MandateDocument, SignatureChannel, SignatureEvidence, document_hash, file_name, render_mandate,
    signer_town,
};
use guichet_domain::sepa::pain008::SequenceType;
use guichet_domain::sepa::{
    BankDirectory, Bic, CreditorId, Iban, PaymentType, check_bic_matches_iban,
};
use guichet_domain::{Currency, Locale, Money, ids, secret};
use guichet_store::DbConnection;
use guichet_store::repo::accounts::{self, Account};
use guichet_store::repo::codes::{self, OneTimeCode};
use guichet_store::repo::collections::{self, Collection};
use guichet_store::repo::creditor::{self, CreditorSettings, DEFAULT_PRENOTIFICATION_DAYS};
use guichet_store::repo::mandates::{self, Mandate, MandateStatus};
use guichet_store::repo::outbox::Attachment;
use guichet_store::repo::{customers, organizations};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::CustomerPrincipal;
use crate::auth::flows::{self, ClientInfo};
use crate::edge::json::Json;
use crate::faults::FaultPoint;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{Page, next_cursor};
use crate::routes::auth::CodeSent;
use crate::routes::idempotency::{self, Begun, Committed, Ticket};
use crate::routes::views::MoneyView;
use crate::state::AppState;

/// The one-time-code purpose of a mandate signature; the code's subject is
/// the mandate (its id), so a code signs that mandate and no other.
pub const SIGNATURE_PURPOSE: &str = "mandate_signature";

const AUTH_FAILURES: &str = "Codes: `unauthenticated`, `invalid_token`.";
const ROLE_FAILURE: &str = "Not a customer token. Codes: `forbidden`.";
const NOT_FOUND: &str = "No such mandate of yours. Codes: `not_found`.";

// ------------------------------------------------------------------ views

/// How often the mandate lets the creditor debit: `one_off` (a single
/// debit, "ponctuel", the default) or `recurring` (automatic debits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MandateMode {
    OneOff,
    Recurring,
}

impl MandateMode {
    fn of(payment_type: PaymentType) -> Self {
        match payment_type {
            PaymentType::OneOff => MandateMode::OneOff,
            PaymentType::Recurrent => MandateMode::Recurring,
        }
    }
}

/// The evidence of the signature by one-time code.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureView {
    pub signed_at: DateTime<Utc>,
    /// `sms` or `email`: how the code was sent.
    #[schema(value_type = crate::routes::enums::SentChannel, example = "sms")]
    pub channel: String,
    /// Where it was sent, masked.
    #[schema(example = "+33 6** ** ** 78")]
    pub destination: String,
    /// The signer's IP address.
    pub ip: String,
    /// The signer's browser `User-Agent`.
    pub user_agent: String,
    /// SHA-256 (hex) of the unsigned PDF the customer reviewed (what
    /// `GET .../document` gave before signature), printed on the signed
    /// document.
    pub reviewed_document_sha256: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A mandate as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateSummary {
    #[schema(example = "mdt_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// `draft`, `signed`, `revoked` or `expired`.
    #[schema(value_type = crate::routes::enums::MandateStatus, example = "signed")]
    pub status: &'static str,
    pub mode: MandateMode,
    pub account_id: String,
    pub customer_id: String,
    /// Masked.
    #[schema(example = "FR76 **** **** **** **** ***0 189")]
    pub iban: String,
    #[schema(example = "AGRIFRPP")]
    pub bic: String,
    /// Where the confirmation (and an e-mailed code) goes.
    pub email: String,
    /// One-off: the amount to collect; recurring: null.
    pub amount: Option<MoneyView>,
    /// Recurring: the balance spread over 1 or 3 monthly collections.
    pub spread_months: Option<i32>,
    pub debtor_name: String,
    /// The debtor's address, one entry per line.
    pub debtor_address: Vec<String>,
    /// The unique mandate reference, from the signature on.
    #[schema(example = "GCH20261122K7M2Q9X4V8T1")]
    pub umr: Option<String>,
    pub signature: Option<SignatureView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The creditor, as printed on the mandate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditorView {
    pub name: String,
    /// One entry per line.
    pub address: Vec<String>,
    /// The SEPA creditor identifier (ICS).
    #[schema(example = "FR72ZZZ123456")]
    pub creditor_id: String,
}

/// The account a mandate collects for.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateAccount {
    pub id: String,
    pub label: String,
    pub reference: String,
    /// What the customer owes now.
    pub balance: MoneyView,
    /// What a new mandate may still collect: the balance minus the
    /// collections already scheduled.
    pub collectible: MoneyView,
}

/// A collection of the mandate: planned (a draft: what signing now would
/// schedule) or scheduled and after.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateCollection {
    /// Null for a planned collection of a draft.
    pub id: Option<String>,
    /// `FRST`, `RCUR` or `OOFF`.
    #[schema(value_type = crate::routes::enums::SequenceType, example = "OOFF")]
    pub sequence_type: &'static str,
    pub amount: MoneyView,
    pub due_date: NaiveDate,
    /// `planned` (draft), `scheduled`, `presented`, `paid`, `rejected` or
    /// `cancelled`.
    #[schema(value_type = crate::routes::enums::MandateCollectionStatus, example = "scheduled")]
    pub status: &'static str,
}

/// Everything to review before signing, or the signed mandate.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateReview {
    #[serde(flatten)]
    pub mandate: MandateSummary,
    pub account: MandateAccount,
    /// Null while the organization has not set its creditor settings.
    pub creditor: Option<CreditorView>,
    /// A draft: what signing today would schedule; signed: the collections.
    pub collections: Vec<MandateCollection>,
}

/// The customer's mandates, newest first, and the IBAN to propose.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateHistory {
    pub data: Vec<MandateSummary>,
    pub next_cursor: Option<String>,
    /// The masked IBAN of the newest mandate: a new draft reuses it with
    /// `use_last_iban: true` instead of `iban`.
    #[schema(example = "FR76 **** **** **** **** ***0 189")]
    pub last_iban: Option<String>,
}

fn masked_iban(iban: &str) -> String {
    Iban::parse(iban).map_or_else(|_| "****".to_owned(), |i| i.masked())
}

fn address_lines(address: Option<&str>) -> Vec<String> {
    address
        .filter(|a| !a.is_empty())
        .map(|a| a.split('\n').map(str::to_owned).collect())
        .unwrap_or_default()
}

impl From<&Mandate> for MandateSummary {
    fn from(m: &Mandate) -> Self {
        MandateSummary {
            id: m.id.clone(),
            status: m.status.as_str(),
            mode: MandateMode::of(m.payment_type),
            account_id: m.account_id.clone(),
            customer_id: m.customer_id.clone(),
            iban: masked_iban(&m.iban),
            bic: m.bic.clone(),
            email: m.email.clone(),
            amount: m.amount.map(|a| Money::new(a, Currency::EUR).into()),
            spread_months: m.spread_months,
            debtor_name: m.debtor_name.clone(),
            debtor_address: address_lines(m.debtor_address.as_deref()),
            umr: m.umr.clone(),
            signature: m.signature.as_ref().map(|s| SignatureView {
                signed_at: s.signed_at,
                channel: s.channel.clone(),
                destination: s.destination.clone(),
                ip: s.ip.clone(),
                user_agent: s.user_agent.clone(),
                reviewed_document_sha256: s.document_sha256.clone(),
                revoked_at: s.revoked_at,
            }),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

fn eur(amount: i64) -> MoneyView {
    Money::new(amount, Currency::EUR).into()
}

/// What the account may still have collected: balance minus scheduled.
fn collectible(conn: &mut DbConnection, account: &Account) -> Result<i64, ApiError> {
    Ok(account.balance - accounts::covered(conn, &account.id)?)
}

/// The earliest allowed due date for a signature on `today`.
pub(crate) fn earliest_due(today: NaiveDate, creditor: Option<&CreditorSettings>) -> NaiveDate {
    let days = creditor.map_or(DEFAULT_PRENOTIFICATION_DAYS, |c| c.prenotification_days);
    today + chrono::Duration::days(i64::from(days))
}

/// The collections a signature schedules: one-off → one `OOFF` of the
/// amount; recurring → the collectible balance as one `FRST`, or spread
/// over 3 months as `FRST`, `RCUR`, `RCUR` (remainder cents first); nothing
/// when there is nothing to collect.
pub fn plan(
    mandate: &Mandate,
    collectible: i64,
    due: NaiveDate,
) -> Vec<(SequenceType, i64, NaiveDate)> {
    match mandate.payment_type {
        PaymentType::OneOff => match mandate.amount {
            Some(amount) if amount > 0 => vec![(SequenceType::OneOff, amount, due)],
            _ => Vec::new(),
        },
        PaymentType::Recurrent => {
            if collectible <= 0 {
                return Vec::new();
            }
            let months = mandate.spread_months.unwrap_or(1);
            if months == 3
                && let Ok(parts) = plan_equal(Money::new(collectible, Currency::EUR), 3, due)
            {
                return parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (date, money))| {
                        let sequence = if i == 0 {
                            SequenceType::First
                        } else {
                            SequenceType::Recurrent
                        };
                        (sequence, money.amount, date)
                    })
                    .collect();
            }
            vec![(SequenceType::First, collectible, due)]
        }
    }
}

/// The review of `mandate`: its account, creditor and collections.
pub fn review(
    conn: &mut DbConnection,
    mandate: &Mandate,
    today: NaiveDate,
) -> Result<MandateReview, ApiError> {
    let account = accounts::get(conn, &mandate.org_id, &mandate.account_id)?;
    let collectible = collectible(conn, &account)?;
    let creditor = creditor::get(conn, &mandate.org_id)?;
    let collections = if mandate.status == MandateStatus::Draft {
        plan(mandate, collectible, earliest_due(today, creditor.as_ref()))
            .into_iter()
            .map(|(sequence, amount, due_date)| MandateCollection {
                id: None,
                sequence_type: sequence.code(),
                amount: eur(amount),
                due_date,
                status: "planned",
            })
            .collect()
    } else {
        collections::list_for_mandate(conn, &mandate.id)?
            .into_iter()
            .map(|c| MandateCollection {
                id: Some(c.id),
                sequence_type: c.sequence_type.code(),
                amount: eur(c.amount),
                due_date: c.due_date,
                status: c.status.as_str(),
            })
            .collect()
    };
    Ok(MandateReview {
        mandate: MandateSummary::from(mandate),
        account: MandateAccount {
            balance: Money::new(account.balance, Currency::EUR).into(),
            collectible: eur(collectible.max(0)),
            id: account.id,
            label: account.label,
            reference: account.reference,
        },
        creditor: creditor.map(|c| CreditorView {
            name: c.name,
            address: c.address,
            creditor_id: c.creditor_id,
        }),
        collections,
    })
}

// ------------------------------------------------------------- problems

fn creditor_not_configured() -> ApiError {
    ApiError::new(ProblemCode::CreditorNotConfigured).detail(
        "Le créancier n'a pas encore renseigné ses coordonnées SEPA : le mandat ne peut pas être établi pour l'instant.",
        "The creditor has not set its SEPA details yet: the mandate cannot be drawn up for now.",
    )
}

fn not_draft(mandate: &Mandate) -> ApiError {
    ApiError::new(ProblemCode::MandateNotDraft)
        .detail(
            format!(
                "Ce mandat n'est plus un brouillon (statut : {}).",
                mandate.status.as_str()
            ),
            format!(
                "This mandate is no longer a draft (status: {}).",
                mandate.status.as_str()
            ),
        )
        .extension("mandate_status", mandate.status.as_str().into())
}

fn invalid_field(field: &str, code: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(fr, en)
        .field(field, code)
}

fn recurring_exists() -> ApiError {
    ApiError::new(ProblemCode::RecurringMandateExists).detail(
        "Ce compte est en prélèvement automatique : le prélèvement ponctuel n'est plus possible.",
        "This account has automatic debits: one-off debits are no longer possible.",
    )
}

fn nothing_to_collect() -> ApiError {
    ApiError::new(ProblemCode::NothingToCollect).detail(
        "Ce compte n'a rien à prélever qui ne soit déjà programmé.",
        "This account owes nothing that is not already scheduled.",
    )
}

fn exceeds(collectible: i64) -> ApiError {
    let max = Money::new(collectible.max(0), Currency::EUR);
    ApiError::new(ProblemCode::AmountExceedsBalance)
        .detail(
            format!("Le montant dépasse le solde à prélever ({max})."),
            format!("The amount is above the balance to collect ({max})."),
        )
        .field("amount", "exceeds_balance")
        .extension("collectible", serde_json::json!(eur(collectible.max(0))))
}

/// The one-off rules on an account: no signed recurrent mandate, something
/// to collect, an amount within it. Returns the amount.
fn check_one_off(
    conn: &mut DbConnection,
    account: &Account,
    amount: Option<i64>,
) -> Result<i64, ApiError> {
    if mandates::has_signed_recurrent(conn, &account.id)? {
        return Err(recurring_exists());
    }
    let collectible = collectible(conn, account)?;
    if collectible <= 0 {
        return Err(nothing_to_collect());
    }
    let amount = amount.unwrap_or(collectible);
    if amount > collectible {
        return Err(exceeds(collectible));
    }
    Ok(amount)
}

// ------------------------------------------------------------------ draft

/// A new mandate draft for one of the customer's accounts.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMandate {
    /// The account to debit, as typed (spaces and case do not matter).
    /// Required unless `use_last_iban` is true.
    #[validate(length(min = 1, max = 64))]
    #[schema(
        example = "FR76 3000 6000 0112 3456 7890 189",
        min_length = 1,
        max_length = 64
    )]
    pub iban: Option<String>,
    /// Reuse the IBAN of the customer's newest mandate (`last_iban` of
    /// `GET /v1/me/mandates`) instead of giving `iban`.
    #[serde(default)]
    pub use_last_iban: bool,
    /// The bank's BIC. When absent it is proposed from the IBAN's bank code
    /// (the review shows it; give it to correct it).
    #[validate(length(min = 1, max = 20))]
    #[schema(
        example = "AGRIFRPP",
        min_length = 1,
        max_length = 20,
        pattern = r"^ *([A-Za-z] *){6}[A-Za-z2-9] *[A-NP-Za-np-z0-9] *(([A-Za-z0-9] *){3})?$"
    )]
    pub bic: Option<String>,
    /// Where the confirmation goes (and the code, by e-mail); defaults to
    /// the customer's e-mail.
    #[validate(length(min = 3, max = 254))]
    #[schema(min_length = 3, max_length = 254)]
    pub email: Option<String>,
    /// `one_off` (default) or `recurring`.
    pub mode: Option<MandateMode>,
    /// One-off only: the amount in EUR cents, positive and at most the
    /// collectible balance (default: all of it).
    #[validate(range(min = 1))]
    #[schema(example = 12999, minimum = 1)]
    pub amount: Option<i64>,
    /// Recurring only: 1 (default) or 3 monthly collections of the balance.
    #[schema(example = 3)]
    pub spread_months: Option<i32>,
    /// The debtor's postal address, one entry per line (at most 4 lines of
    /// 70 characters).
    #[validate(length(max = 4), custom(function = "address_lines_ok"))]
    #[schema(schema_with = crate::openapi::debtor_address)]
    pub debtor_address: Option<Vec<String>>,
}

fn address_lines_ok(lines: &[String]) -> Result<(), validator::ValidationError> {
    if lines
        .iter()
        .any(|l| l.trim().is_empty() || l.chars().count() > 70 || l.contains(['\n', '\r']))
    {
        return Err(validator::ValidationError::new("invalid_line"));
    }
    Ok(())
}

/// The IBAN and BIC of a draft, checked.
fn bank_details(
    directory: &BankDirectory,
    iban: &str,
    bic: Option<&str>,
) -> Result<(Iban, Bic), ApiError> {
    let iban = Iban::parse(iban).map_err(|e| {
        ApiError::new(ProblemCode::IbanInvalid)
            .detail(
                "Format de l'IBAN incorrect.",
                "The IBAN's format is incorrect.",
            )
            .field("iban", e.code())
    })?;
    let bic = match bic {
        Some(bic) => {
            let bic = Bic::parse(bic).map_err(|e| {
                ApiError::new(ProblemCode::BicInvalid)
                    .detail(
                        "Le BIC doit compter 8 ou 11 caractères (banque, pays, lieu, agence).",
                        "A BIC has 8 or 11 characters (bank, country, location, branch).",
                    )
                    .field("bic", e.code())
            })?;
            check_bic_matches_iban(&bic, &iban).map_err(|e| {
                ApiError::new(ProblemCode::BicCountryMismatch)
                    .detail(
                        format!(
                            "Le BIC ({}) n'est pas du pays de l'IBAN ({}).",
                            bic.country(),
                            iban.country()
                        ),
                        format!(
                            "The BIC ({}) is not from the IBAN's country ({}).",
                            bic.country(),
                            iban.country()
                        ),
                    )
                    .field("bic", e.code())
            })?;
            bic
        }
        None => directory
            .lookup_iban(&iban)
            .map(|bank| bank.bic.clone())
            .ok_or_else(|| {
                ApiError::new(ProblemCode::BicRequired)
                    .detail(
                        "Aucun BIC ne peut être proposé pour cet IBAN : indiquez-le.",
                        "No BIC can be proposed for this IBAN: give it.",
                    )
                    .field("bic", "required")
            })?,
    };
    Ok((iban, bic))
}

/// Write a mandate draft for one of your accounts.
///
/// The IBAN is checked ("Format de l'IBAN incorrect"), the BIC proposed from it when absent, the
/// e-mail defaults to yours. A one-off mandate collects `amount` (default: the collectible balance,
/// i.e. the balance minus what is already scheduled); a recurring one collects the collectible
/// balance at signature, at once or over 3 months, and later charges. The answer is the review to
/// read before asking for a code.
#[utoipa::path(
    operation_id = "createMyMandate",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id (`acc_...`).")),
    request_body = CreateMandate,
    responses(
        (status = 201, description = "The draft, as its review; `Location` is its address.", body = MandateReview,
            headers(("Location" = String, description = "The mandate's address: `/v1/me/mandates/{id}`."))),
        (status = 400, description = "Malformed body, unknown field, wrong type, `amount` not positive, `amount` with `recurring`, `spread_months` other than 1 or 3 or with `one_off`, both or neither of `iban` and `use_last_iban`, an invalid e-mail or address line. Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account of yours. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `recurring_mandate_exists` (one-off asked on an account with a signed recurring mandate), `nothing_to_collect` (one-off: the balance is already covered by scheduled collections).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `iban_invalid` (\"Format de l'IBAN incorrect\"; also `use_last_iban` without a previous mandate), `bic_invalid`, `bic_country_mismatch`, `bic_required` (no BIC given and none known for the IBAN's bank), `amount_exceeds_balance` (`collectible` is the most that may be asked).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/me/accounts/{id}/mandates")]
pub async fn create(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<CreateMandate>,
) -> Result<HttpResponse, ApiError> {
    let account_id = path.into_inner();
    let body = body.0;
    let mode = body.mode.unwrap_or(MandateMode::OneOff);
    match mode {
        MandateMode::OneOff if body.spread_months.is_some() => {
            return Err(invalid_field(
                "spread_months",
                "unexpected",
                "spread_months ne s'applique qu'au prélèvement automatique (recurring).",
                "spread_months only applies to recurring mandates.",
            ));
        }
        MandateMode::Recurring if body.amount.is_some() => {
            return Err(invalid_field(
                "amount",
                "unexpected",
                "Le prélèvement automatique prélève le solde : amount ne s'applique qu'au prélèvement ponctuel.",
                "Recurring mandates collect the balance: amount only applies to one-off mandates.",
            ));
        }
        MandateMode::Recurring if !matches!(body.spread_months, None | Some(1) | Some(3)) => {
            return Err(invalid_field(
                "spread_months",
                "range",
                "spread_months vaut 1 ou 3.",
                "spread_months must be 1 or 3.",
            ));
        }
        _ => {}
    }
    if body.iban.is_some() == body.use_last_iban {
        return Err(invalid_field(
            "iban",
            if body.use_last_iban {
                "exclusive"
            } else {
                "required"
            },
            "Donnez soit iban, soit use_last_iban: true.",
            "Give either iban or use_last_iban: true.",
        ));
    }
    let email = match &body.email {
        Some(e) => Some(Email::parse(e).map_err(|_| {
            invalid_field(
                "email",
                "invalid",
                "Adresse e-mail invalide.",
                "Invalid e-mail address.",
            )
        })?),
        None => None,
    };
    let now = state.clock.now();
    let today = state.clock.today();
    let store = state.store.clone();
    let directory = state.bank_directory.clone();
    let review = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        let account = accounts::get_for_customer(
            conn,
            &principal.org_id,
            &principal.customer_id,
            &account_id,
        )?;
        let customer = customers::get(conn, &principal.org_id, &principal.customer_id)?;
        let iban_text = match body.iban {
            Some(iban) => iban,
            None => mandates::last_iban(conn, &principal.org_id, &principal.customer_id)?
                .ok_or_else(|| {
                    ApiError::new(ProblemCode::IbanInvalid)
                        .detail(
                            "Aucun IBAN n'a encore été saisi : indiquez-le.",
                            "No IBAN was entered before: give it.",
                        )
                        .field("use_last_iban", "no_previous_iban")
                })?,
        };
        let (iban, bic) = bank_details(&directory, &iban_text, body.bic.as_deref())?;
        let (payment_type, amount, spread) = match mode {
            MandateMode::OneOff => (
                PaymentType::OneOff,
                Some(check_one_off(conn, &account, body.amount)?),
                None,
            ),
            MandateMode::Recurring => (
                PaymentType::Recurrent,
                None,
                Some(body.spread_months.unwrap_or(1)),
            ),
        };
        let mandate = Mandate {
            id: ids::new_id("mdt"),
            org_id: principal.org_id.clone(),
            customer_id: customer.id.clone(),
            account_id: account.id.clone(),
            status: MandateStatus::Draft,
            payment_type,
            iban: iban.as_str().to_owned(),
            bic: bic.as_str().to_owned(),
            email: email.map_or(customer.email.clone(), |e| e.as_str().to_owned()),
            amount,
            spread_months: spread,
            debtor_name: customer.name.clone(),
            debtor_address: body
                .debtor_address
                .filter(|lines| !lines.is_empty())
                .map(|lines| {
                    lines
                        .iter()
                        .map(|l| l.trim())
                        .collect::<Vec<_>>()
                        .join("\n")
                }),
            umr: None,
            signature: None,
            created_at: now,
            updated_at: now,
        };
        mandates::insert(conn, &mandate)?;
        review(conn, &mandate, today)
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/me/mandates/{}", review.mandate.id)))
        .json(review))
}

// --------------------------------------------------------------- reading

/// `?limit=&cursor=` of the mandate history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// Your mandates, newest first.
///
/// Your mandates, newest first (drafts, signed, revoked, expired), with
/// the masked IBAN of the newest one to propose for the next draft.
#[utoipa::path(
    operation_id = "listMyMandates",
    tag = "me",
    security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "A page of mandates.", body = MandateHistory),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/mandates")]
pub async fn history(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<HistoryQuery>,
) -> Result<web::Json<MandateHistory>, ApiError> {
    let query = query.into_inner();
    let (limit, after) = Page {
        limit: query.limit,
        cursor: query.cursor,
    }
    .resolve()?;
    let store = state.store.clone();
    let (mut items, last) = web::block(move || {
        let mut conn = store.conn()?;
        let items = mandates::list_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            after.as_deref(),
            limit + 1,
        )?;
        let last = mandates::last_iban(&mut conn, &principal.org_id, &principal.customer_id)?;
        Ok::<_, ApiError>((items, last))
    })
    .await??;
    let next_cursor = next_cursor(&mut items, limit, |m| &m.id);
    Ok(web::Json(MandateHistory {
        data: items.iter().map(MandateSummary::from).collect(),
        next_cursor,
        last_iban: last.as_deref().map(masked_iban),
    }))
}

fn load(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    id: &str,
) -> Result<Mandate, ApiError> {
    Ok(mandates::get_for_customer(
        conn,
        &principal.org_id,
        &principal.customer_id,
        id,
    )?)
}

/// One of your mandates with everything to review.
///
/// One of your mandates with everything to review: masked IBAN, BIC,
/// e-mail, mode, amount, the account's balance, the collections signing
/// would schedule (or has scheduled), the creditor, and once signed its
/// reference and the evidence of the signature.
#[utoipa::path(
    operation_id = "getMyMandate",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Mandate id (`mdt_...`).")),
    responses(
        (status = 200, description = "The review.", body = MandateReview),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/mandates/{id}")]
pub async fn get_one(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MandateReview>, ApiError> {
    let id = path.into_inner();
    let today = state.clock.today();
    let store = state.store.clone();
    let review = web::block(move || {
        let mut conn = store.conn()?;
        let mandate = load(&mut conn, &principal, &id)?;
        review(&mut conn, &mandate, today)
    })
    .await??;
    Ok(web::Json(review))
}

/// What an organization prints on its mandates besides its creditor
/// details: its portal logo, and its time zone (the one of its contact
/// channels, Europe/Paris by default) for the time of signature.
pub(crate) struct Letterhead {
    pub logo: Option<Vec<u8>>,
    pub time_zone: chrono_tz::Tz,
}

/// The letterhead of `org_id`.
pub(crate) fn letterhead(conn: &mut DbConnection, org_id: &str) -> Result<Letterhead, ApiError> {
    let logo = guichet_store::repo::portal::logo(conn, org_id)?.map(|logo| logo.content);
    let time_zone = crate::routes::admin::orders::settings::stored_contact_channels(conn, org_id)?
        .time_zone
        .tz();
    Ok(Letterhead { logo, time_zone })
}

/// The document of `mandate` as printed, with `signature` once signed.
pub(crate) fn document_of(
    mandate: &Mandate,
    creditor: &CreditorSettings,
    locale: Locale,
    letterhead: &Letterhead,
    signature: Option<SignatureEvidence>,
) -> Result<MandateDocument, ApiError> {
    Ok(MandateDocument {
        locale,
        creditor_name: creditor.name.clone(),
        creditor_address: creditor.address.clone(),
        creditor_id: CreditorId::parse(&creditor.creditor_id)
            .map_err(|e| ApiError::internal(format!("stored creditor id: {e}")))?,
        reference: mandate.umr.clone(),
        debtor_name: mandate.debtor_name.clone(),
        debtor_address: address_lines(mandate.debtor_address.as_deref()),
        iban: Iban::parse(&mandate.iban)
            .map_err(|e| ApiError::internal(format!("stored IBAN: {e}")))?,
        bic: Bic::parse(&mandate.bic).ok(),
        payment_type: mandate.payment_type,
        signature,
        logo: letterhead.logo.clone(),
    })
}

/// The unsigned PDF of a draft, in the customer's language: what the
/// customer reviews, and what the signature's `document_hash` is the
/// SHA-256 of.
fn unsigned_pdf(
    conn: &mut DbConnection,
    mandate: &Mandate,
) -> Result<(Vec<u8>, CreditorSettings, Locale, Letterhead), ApiError> {
    let creditor = creditor::get(conn, &mandate.org_id)?.ok_or_else(creditor_not_configured)?;
    let customer = customers::get(conn, &mandate.org_id, &mandate.customer_id)?;
    let letterhead = letterhead(conn, &mandate.org_id)?;
    let pdf = render_mandate(&document_of(
        mandate,
        &creditor,
        customer.locale,
        &letterhead,
        None,
    )?);
    Ok((pdf, creditor, customer.locale, letterhead))
}

fn pdf_response(pdf: Vec<u8>, file_name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/pdf"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("inline; filename=\"{file_name}\""),
        ))
        .body(pdf)
}

/// The mandate as a PDF, in your language.
///
/// The mandate as a PDF, in your language: a draft is rendered now,
/// unsigned (no reference, "Non signé"); a signed mandate is the document
/// written at signature, the same bytes every time.
#[utoipa::path(
    operation_id = "getMyMandateDocument",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Mandate id (`mdt_...`).")),
    responses(
        (status = 200, description = "The PDF.", body = inline(crate::openapi::Binary), content_type = "application/pdf",
            headers(("Content-Disposition" = String, description = "In the customer's language, as the signature e-mail's attachment: `inline; filename=\"mandat-<RUM>.pdf\"` (French) or `inline; filename=\"mandate-<UMR>.pdf\"` (English) once signed; `inline; filename=\"mandat-brouillon-<id>.pdf\"` or `inline; filename=\"mandate-draft-<id>.pdf\"` for a draft."))),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A draft cannot be printed before the organization sets its creditor details. Codes: `creditor_not_configured`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/mandates/{id}/document")]
pub async fn document(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let (pdf, name) = web::block(move || {
        let mut conn = store.conn()?;
        let mandate = load(&mut conn, &principal, &id)?;
        // A signed mandate is served from the bytes stored at signature,
        // never rendered again.
        if mandate.status != MandateStatus::Draft
            && let Some((pdf, _)) = mandates::document(&mut conn, &mandate.id)?
        {
            let locale = customers::get(&mut conn, &mandate.org_id, &mandate.customer_id)?.locale;
            let name = file_name(
                locale,
                Some(mandate.umr.as_deref().unwrap_or_default()),
                &mandate.id,
            );
            return Ok::<_, ApiError>((pdf, name));
        }
        let (pdf, _, locale, _) = unsigned_pdf(&mut conn, &mandate)?;
        Ok((pdf, file_name(locale, None, &mandate.id)))
    })
    .await??;
    Ok(pdf_response(pdf, &name))
}

// ------------------------------------------------------------ one-time code

/// How to receive the signature code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeChannel {
    Sms,
    Email,
}

/// The channel of the signature code.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendCode {
    /// `sms` (to your mobile on file) or `email` (to the mandate's e-mail).
    pub channel: CodeChannel,
}

/// Send the 6-digit code that signs this draft.
///
/// Send the 6-digit code that signs this draft, by SMS to your mobile or
/// by e-mail to the mandate's address. It is valid 10 minutes, once, and
/// void after 5 wrong entries; a new code replaces the previous one.
#[utoipa::path(
    operation_id = "sendMyMandateCode",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Mandate id (`mdt_...`).")),
    request_body = SendCode,
    responses(
        (status = 202, description = "The code was sent; the masked destination.", body = CodeSent),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `mandate_not_draft`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "SMS asked but no mobile number is on file. Codes: `no_mobile`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many codes sent from this address or to this destination; see `Retry-After`. Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/me/mandates/{id}/otp")]
pub async fn send_code(
    req: HttpRequest,
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<SendCode>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let channel = body.0.channel;
    let now = state.clock.now();
    // Checked before the per-IP limit counts: a refused request sends
    // nothing.
    let state_for = state.clone();
    let principal_for = principal.clone();
    let id_for = id.clone();
    let (mandate, customer) = web::block(move || {
        let mut conn = state_for.store.conn()?;
        let mandate = load(&mut conn, &principal_for, &id_for)?;
        if mandate.status != MandateStatus::Draft {
            return Err(not_draft(&mandate));
        }
        let customer = customers::get(&mut conn, &principal_for.org_id, &mandate.customer_id)?;
        Ok::<_, ApiError>((mandate, customer))
    })
    .await??;
    let (notify_channel, raw, masked) = match channel {
        CodeChannel::Sms => {
            let mobile = customer
                .mobile
                .as_deref()
                .and_then(|m| Msisdn::parse(m).ok())
                .ok_or_else(|| {
                    ApiError::new(ProblemCode::NoMobile)
                        .detail(
                            "Aucun numéro de mobile n'est enregistré : recevez le code par e-mail.",
                            "No mobile number is on file: receive the code by e-mail.",
                        )
                        .field("channel", "no_mobile")
                })?;
            (Channel::Sms, mobile.as_str().to_owned(), mobile.masked())
        }
        CodeChannel::Email => {
            let masked =
                Email::parse(&mandate.email).map_or_else(|_| "***".to_owned(), |e| e.masked());
            (Channel::Email, mandate.email.clone(), masked)
        }
    };
    flows::limit_sends(&state, &req).await?;
    let state_for = state.clone();
    let sent_masked = masked.clone();
    web::block(move || {
        let state = &*state_for;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        let key = flows::destination_key(state, &raw);
        if !flows::may_send(conn, state, &key, now)? {
            return Err(crate::auth::ratelimit::rate_limited(3600));
        }
        let org = organizations::get(conn, &principal.org_id)?;
        let code = secret::numeric_code(6);
        let record = OneTimeCode {
            id: ids::new_id("otc"),
            org_id: principal.org_id.clone(),
            subject_kind: SubjectKind::Customer,
            subject_id: mandate.id.clone(),
            purpose: SIGNATURE_PURPOSE.to_owned(),
            code_hash: flows::code_hash(state, SIGNATURE_PURPOSE, &code),
            channel: notify_channel.as_str().to_owned(),
            destination: sent_masked,
            destination_key: key,
            payload: Some(principal.customer_id.clone()),
            attempts: 0,
            max_attempts: CODE_MAX_ATTEMPTS,
            expires_at: now + lifetimes::one_time_code(),
            consumed_at: None,
            created_at: now,
        };
        guichet_store::transaction(conn, |conn| {
            codes::void_all(conn, &mandate.id, SIGNATURE_PURPOSE, now)?;
            codes::insert(conn, &record)?;
            let (channel, to) =
                crate::routes::portal_hooks::recipient(conn, &principal, notify_channel, &raw)?;
            notify::queue_sealed(
                conn,
                &state.outbox_key(),
                Some(&principal.org_id),
                channel,
                &to,
                &Template::MandateCode {
                    org_name: org.name.clone(),
                    code,
                },
                customer.locale,
                now,
            )
        })?;
        Ok::<_, ApiError>(())
    })
    .await??;
    Ok(HttpResponse::Accepted().json(CodeSent {
        channel: notify_channel.as_str(),
        destination: masked,
        expires_in_minutes: lifetimes::one_time_code().num_minutes(),
    }))
}

// -------------------------------------------------------------- signature

/// The code received.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignMandate {
    /// The 6-digit code of `POST .../otp`.
    #[validate(length(min = 1, max = 12))]
    #[schema(example = "482913", min_length = 1, max_length = 12)]
    pub code: String,
}

fn request_hash(mandate_id: &str, code: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"mandate_signature\0");
    hasher.update(mandate_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(code.trim().as_bytes());
    hex::encode(hasher.finalize())
}

/// A fresh unique mandate reference: `GCH`, the signature date and 16
/// random base-32 characters (27 characters of the SEPA set).
pub(crate) fn new_umr(today: NaiveDate) -> String {
    let random = ids::new_id("x");
    let random = random.split_once('_').map_or(random.as_str(), |(_, r)| r);
    format!(
        "GCH{}{}",
        today.format("%Y%m%d"),
        random[..16].to_ascii_uppercase()
    )
}

/// The town printed as the place of signature: the signer's, from the
/// address they gave on the mandate (its last line, after the postcode),
/// or "en ligne" / "online" when they gave none.
pub(crate) fn place_of(mandate: &Mandate, locale: Locale) -> String {
    let town = signer_town(&address_lines(mandate.debtor_address.as_deref()));
    town.unwrap_or_else(|| match locale {
        Locale::Fr => "en ligne".to_owned(),
        Locale::En => "online".to_owned(),
    })
}

/// Signs the draft: checks the code, then in one transaction spends it,
/// writes the signature and the signed PDF, schedules the collections and
/// queues the confirmation e-mail with the PDF attached.
fn sign(
    state: &AppState,
    principal: &CustomerPrincipal,
    id: &str,
    code: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
    ticket: Option<&Ticket>,
) -> Result<Committed, ApiError> {
    let mut conn = state.store.conn()?;
    let conn = &mut conn;
    let mandate = load(conn, principal, id)?;
    if mandate.status != MandateStatus::Draft {
        return Err(not_draft(&mandate));
    }
    if creditor::get(conn, &mandate.org_id)?.is_none() {
        return Err(creditor_not_configured());
    }
    let record = flows::check_code(conn, state, Some(&mandate.id), SIGNATURE_PURPOSE, code, now)?;
    // Rendered once the code is right: wrong entries (and a burst of them)
    // cost no rendering.
    let (unsigned, creditor, locale, letterhead) = unsigned_pdf(conn, &mandate)?;
    let today = now.date_naive();
    let org = organizations::get(conn, &principal.org_id)?;
    // The signature, its collections, its e-mail and the answer commit
    // together.
    let signed = idempotency::commit(
        conn,
        state,
        FaultPoint::MandateSignature,
        ticket,
        StatusCode::OK,
        |conn| {
            accounts::lock(conn, &mandate.org_id, &mandate.account_id)?;
            mandates::lock(conn, &mandate.org_id, &mandate.id)?;
            let mut mandate = load(conn, principal, id)?;
            if mandate.status != MandateStatus::Draft {
                return Err(not_draft(&mandate));
            }
            let account = accounts::get(conn, &mandate.org_id, &mandate.account_id)?;
            if mandate.payment_type == PaymentType::OneOff {
                check_one_off(conn, &account, mandate.amount)?;
            }
            if !codes::consume(conn, &record.id, now)? {
                return Err(ApiError::new(ProblemCode::CodeExpired).detail(
                    "Ce code a déjà servi : demandez-en un nouveau.",
                    "This code was already used: ask for a new one.",
                ));
            }
            let collectible = collectible(conn, &account)?;
            let umr = new_umr(today);
            let evidence = SignatureEvidence {
                place: place_of(&mandate, locale),
                // Printed in the organization's time zone.
                signed_at: now.with_timezone(&letterhead.time_zone).fixed_offset(),
                channel: if record.channel == "sms" {
                    SignatureChannel::Sms
                } else {
                    SignatureChannel::Email
                },
                masked_destination: record.destination.clone(),
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone().unwrap_or_else(|| "-".to_owned()),
                document_hash: document_hash(&unsigned),
            };
            mandate.umr = Some(umr.clone());
            let pdf = render_mandate(&document_of(
                &mandate,
                &creditor,
                locale,
                &letterhead,
                Some(evidence.clone()),
            )?);
            let signature = mandates::Signature {
                signed_at: now,
                channel: record.channel.clone(),
                destination: record.destination.clone(),
                ip: evidence.ip.clone(),
                user_agent: evidence.user_agent.clone(),
                document_sha256: evidence.document_hash.clone(),
                last_collected_at: None,
                revoked_at: None,
                expired_at: None,
            };
            let pdf_sha256 = document_hash(&pdf);
            if !mandates::sign(
                conn,
                &mandate.org_id,
                &mandate.id,
                &umr,
                &signature,
                &pdf,
                &pdf_sha256,
                now,
            )? {
                return Err(not_draft(&mandate));
            }
            let due = earliest_due(today, Some(&creditor));
            let mut listed = Vec::new();
            for (sequence, amount, due_date) in plan(&mandate, collectible, due) {
                let collection = Collection::scheduled(
                    &mandate.org_id,
                    &mandate.id,
                    &mandate.account_id,
                    sequence,
                    amount,
                    due_date,
                    Some(now),
                    now,
                );
                collections::insert(conn, &collection)?;
                listed.push((
                    due_date.to_string(),
                    Money::new(amount, Currency::EUR).to_string(),
                ));
            }
            let iban_masked = masked_iban(&mandate.iban);
            let filename = file_name(locale, Some(&umr), &mandate.id);
            let (channel, to) = crate::routes::portal_hooks::recipient(
                conn,
                principal,
                Channel::Email,
                &mandate.email,
            )?;
            notify::queue_with_attachments(
                conn,
                Some(&mandate.org_id),
                channel,
                &to,
                &Template::MandateSigned {
                    org_name: org.name.clone(),
                    creditor_name: creditor.name.clone(),
                    umr: umr.clone(),
                    recurrent: mandate.payment_type == PaymentType::Recurrent,
                    masked_iban: iban_masked,
                    creditor_id: creditor.creditor_id.clone(),
                    collections: listed,
                },
                locale,
                now,
                &[Attachment {
                    filename,
                    content_type: "application/pdf".to_owned(),
                    content: pdf,
                    render: None,
                }],
            )?;
            let mandate = mandates::get(conn, &mandate.org_id, &mandate.id)?;
            let review = review(conn, &mandate, today)?;
            crate::routes::events::by_customer(
                conn,
                guichet_domain::events::EventType::MandateSigned,
                &mandate.org_id,
                &principal.customer_id,
                &mandate.id,
                &review,
                now,
            )?;
            serde_json::to_string(&review).map_err(|e| ApiError::internal(e.to_string()))
        },
    )?;
    Ok(signed)
}

/// Sign the draft with the code received.
///
/// Sign the draft with the code received: the mandate gets its unique
/// reference (UMR) and is signed; the signed PDF (with the evidence: time,
/// channel, masked destination, IP address, browser, place, and the
/// SHA-256 of the unsigned PDF you reviewed) is written once; the
/// collections are scheduled at the earliest allowed date (the signature
/// date plus the creditor's pre-notification days) — one-off: one `OOFF`
/// of the amount; recurring: the collectible balance as one `FRST`, or over
/// 3 months `FRST`, `RCUR`, `RCUR` — and a confirmation e-mail with the
/// signed PDF attached lists them (it is their pre-notification). An
/// optional `Idempotency-Key` replays a success (same key and code) for 24
/// hours.
#[utoipa::path(
    operation_id = "signMyMandate",
    tag = "me",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Mandate id (`mdt_...`)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: 1 to 255 visible ASCII characters, scoped to the customer; the same key and code replay the first success."),
    ),
    request_body = SignMandate,
    responses(
        (status = 200, description = "Signed: the mandate's review with its reference, signature and collections (also the replay of a first success, with `Idempotent-Replayed: true`).", body = MandateReview),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`, `invalid_parameter` (a malformed `Idempotency-Key`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `mandate_not_draft`, `creditor_not_configured`, `recurring_mandate_exists`, `nothing_to_collect` (one-off: the balance changed since the draft), `idempotency_key_in_use` (another request with this key may still be running: retry after `Retry-After` seconds).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: whole seconds (at least 1) until the key's lock ends; a retry after it finishes the request."))),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `invalid_code` (wrong code; `remaining_attempts` says how many tries are left), `code_expired` (no code waiting: ask for one), `amount_exceeds_balance` (one-off: the balance changed since the draft), `idempotency_key_reused` (this key was used with another code or mandate).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The fifth wrong code voids it: ask for a new one. Codes: `code_attempts_exceeded`, `rate_limited` (too many codes entered from this address; see `Retry-After`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/me/mandates/{id}/signature")]
pub async fn create_signature(
    req: HttpRequest,
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<SignMandate>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let code = body.0.code;
    let key = idempotency::optional_key(&req)?;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    let mut ticket = None;
    if let Some(key) = key {
        let scope = principal.customer_id.clone();
        let hash = request_hash(&id, &code);
        match idempotency::begin(&state, scope, key, hash, now).await? {
            // A first attempt that never answered committed nothing: its
            // signature commits with its answer. Sign now.
            Begun::Fresh(t) | Begun::Resumed(t) => ticket = Some(t),
            Begun::Replay(replay) => return Ok(replay.respond(|_| {})),
        }
    }
    flows::limit_code_entries(&state, &req).await?;
    let state_for = state.clone();
    let principal_for = principal.clone();
    let ticket_for = ticket.clone();
    let outcome = web::block(move || {
        sign(
            &state_for,
            &principal_for,
            &id,
            &code,
            &client,
            now,
            ticket_for.as_ref(),
        )
    })
    .await?;
    // A refusal changed nothing (but a wrong code's count), so the key may
    // be used again.
    idempotency::answer(
        &state,
        ticket,
        outcome,
        |json| {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(json)
        },
        |_| {},
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use guichet_domain::sepa::text::is_sepa_identifier;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn mandate(payment_type: PaymentType, amount: Option<i64>, spread: Option<i32>) -> Mandate {
        let now = Utc::now();
        Mandate {
            id: "mdt_x".into(),
            org_id: "org_x".into(),
            customer_id: "cus_x".into(),
            account_id: "acc_x".into(),
            status: MandateStatus::Draft,
            payment_type,
            iban: "FR7630006000011234567890189".into(),
            bic: "AGRIFRPP".into(),
            email: "a@example.com".into(),
            amount,
            spread_months: spread,
            debtor_name: "A".into(),
            debtor_address: None,
            umr: None,
            signature: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn plans_follow_the_mode() {
        let due = date(2027, 1, 31);
        let one_off = mandate(PaymentType::OneOff, Some(1500), None);
        assert_eq!(
            plan(&one_off, 99_999, due),
            vec![(SequenceType::OneOff, 1500, due)]
        );
        let once = mandate(PaymentType::Recurrent, None, Some(1));
        assert_eq!(
            plan(&once, 10_000, due),
            vec![(SequenceType::First, 10_000, due)]
        );
        assert!(plan(&once, 0, due).is_empty());
        let spread = mandate(PaymentType::Recurrent, None, Some(3));
        assert_eq!(
            plan(&spread, 10_001, due),
            vec![
                (SequenceType::First, 3334, due),
                (SequenceType::Recurrent, 3334, date(2027, 2, 28)),
                (SequenceType::Recurrent, 3333, date(2027, 3, 31)),
            ]
        );
        // Too little to spread: one collection.
        assert_eq!(plan(&spread, 2, due), vec![(SequenceType::First, 2, due)]);
    }

    #[test]
    fn references_are_sepa_identifiers_of_27_characters() {
        let a = new_umr(date(2026, 11, 22));
        let b = new_umr(date(2026, 11, 22));
        assert_ne!(a, b);
        assert_eq!(a.len(), 27);
        assert!(a.starts_with("GCH20261122"));
        assert!(is_sepa_identifier(&a), "{a}");
    }

    #[test]
    fn the_place_is_the_signers_town() {
        let mut mandate = Mandate {
            id: "mdt_x".into(),
            org_id: "org_x".into(),
            customer_id: "cus_x".into(),
            account_id: "acc_x".into(),
            status: MandateStatus::Draft,
            payment_type: PaymentType::Recurrent,
            iban: "FR7630006000011234567890189".into(),
            bic: "AGRIFRPP".into(),
            email: "a@example.fr".into(),
            amount: None,
            spread_months: None,
            debtor_name: "Ξένια".into(),
            debtor_address: Some("3 rue de l'Église\n69003 Lyon".into()),
            umr: None,
            signature: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(place_of(&mandate, Locale::Fr), "Lyon");
        mandate.debtor_address = Some("75011".into());
        assert_eq!(place_of(&mandate, Locale::Fr), "en ligne");
        mandate.debtor_address = None;
        assert_eq!(place_of(&mandate, Locale::En), "online");
    }

    #[test]
    fn the_earliest_due_date_follows_the_prenotification() {
        let mut creditor = CreditorSettings {
            org_id: "org_x".into(),
            name: "C".into(),
            address: vec!["10, av. de Rouargues".into(), "34980 Saint-Clément".into()],
            creditor_id: "FR72ZZZ123456".into(),
            iban: "FR7630006000011234567890189".into(),
            bic: "AGRIFRPP".into(),
            prenotification_days: 14,
            updated_at: Utc::now(),
        };
        assert_eq!(
            earliest_due(date(2026, 11, 22), Some(&creditor)),
            date(2026, 12, 6)
        );
        creditor.prenotification_days = 2;
        assert_eq!(
            earliest_due(date(2026, 11, 22), Some(&creditor)),
            date(2026, 11, 24)
        );
        assert_eq!(earliest_due(date(2026, 11, 22), None), date(2026, 12, 6));
    }
}
