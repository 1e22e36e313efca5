//! `/v1/me/portal` (the effective portal for the signed-in customer) and
//! `/v1/me/dashboard` (what the portal's dashboard shows at a glance).

use std::collections::BTreeMap;

use actix_web::{get, web};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use guichet_domain::portal::PortalAction;
use guichet_store::repo::bookings;
use guichet_store::repo::conversations::{self, UnreadConversation};
use guichet_store::repo::dashboard::{self, DueKind, DueSource};
use guichet_store::repo::documents::{self, Document};
use guichet_store::repo::{customers, notifications, organizations, portal};
use serde::Serialize;
use utoipa::ToSchema;

use super::notifications::NotificationView;
use super::views::{Branding, EffectiveAction, SignInMethods};
use crate::auth::CustomerToken;
use crate::problem::{ApiError, Problem};
use crate::routes::admin::AUTH_FAILURES;
use crate::state::AppState;

/// Instalments due within this many days count as due soon.
pub const DUE_SOON_DAYS: i64 = 14;
/// Items listed in each section (notifications, new documents, unread
/// conversations).
pub const SECTION_ITEMS: i64 = 5;
/// Bookings listed in the upcoming bookings section.
pub const UPCOMING_BOOKINGS: i64 = 3;

/// The portal as the signed-in customer has it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyPortal {
    #[schema(example = "cabinet-kine")]
    pub slug: String,
    /// Every action in display order, on or off for this customer (the
    /// organization's settings with the customer's overrides on top), with
    /// its label in the customer's language.
    pub actions: Vec<EffectiveAction>,
    pub branding: Branding,
    pub sign_in_methods: SignInMethods,
    /// The organization's test customer (a preview session).
    pub test: bool,
    /// Whether this session is a staff member's preview.
    pub preview: bool,
}

/// The signed-in customer's portal.
///
/// The effective actions, branding and contact details. Read at each
/// request: a change by the business shows at once.
#[utoipa::path(
    operation_id = "getMyPortal",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The portal.", body = MyPortal),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/portal")]
pub async fn my_portal(
    token: CustomerToken,
    state: web::Data<AppState>,
) -> Result<web::Json<MyPortal>, ApiError> {
    let store = state.store.clone();
    let now = state.clock.now();
    let out = web::block(move || {
        let mut conn = store.conn()?;
        let principal = token.authorize(&mut conn)?;
        let customer = customers::get(&mut conn, &principal.org_id, &principal.customer_id)?;
        let s = portal::get(&mut conn, &principal.org_id, now)?;
        let org = organizations::get(&mut conn, &principal.org_id)?;
        let over = portal::overrides(&mut conn, &principal.org_id, &principal.customer_id)?;
        let sha = portal::logo_sha256(&mut conn, &principal.org_id)?;
        Ok::<_, ApiError>(MyPortal {
            slug: s.slug.clone(),
            actions: s
                .actions
                .effective(&over)
                .iter()
                .map(|a| EffectiveAction::new(a, customer.locale))
                .collect(),
            branding: Branding::new(&s, &org.name, sha.as_deref()),
            sign_in_methods: org.login_methods.into(),
            test: s.test_customer_id.as_deref() == Some(principal.customer_id.as_str()),
            preview: principal.preview_by.is_some(),
        })
    })
    .await??;
    Ok(web::Json(out))
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Amount {
    #[schema(example = 4500)]
    pub amount: i64,
    #[schema(example = "EUR")]
    pub currency: String,
}

/// What a due amount comes from.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DueSourceKind {
    /// An instalment of a schedule.
    Instalment,
    /// An account's balance (SEPA).
    Account,
    /// An open invoice or payment request: what is left to pay on it.
    Invoice,
}

/// One amount owed, with a link to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DueItem {
    pub kind: DueSourceKind,
    /// The instalment's or account's id.
    pub id: String,
    pub label: String,
    pub amount: i64,
    pub currency: String,
    /// The instalment's due date; none for a balance.
    pub due_date: Option<NaiveDate>,
    pub overdue: bool,
    /// The API path of the object to pay or read.
    #[schema(example = "/v1/me/schedules/ord_3k9x0d2m7q8r4t6v1w5y")]
    pub link: String,
}

/// The amount due: overdue and due-soon totals by currency, and each
/// source.
#[derive(Debug, Serialize, ToSchema)]
pub struct AmountDue {
    /// Unpaid or past-due amounts, by currency.
    pub overdue: Vec<Amount>,
    /// Amounts due within 14 days, balances owed and open invoices not yet
    /// past due, by currency.
    pub due_soon: Vec<Amount>,
    /// Every source, overdue first.
    pub sources: Vec<DueItem>,
}

/// The notifications section.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsSection {
    #[schema(minimum = 0)]
    pub unread_count: i64,
    /// The latest five, read or not.
    #[schema(max_items = 5)]
    pub latest: Vec<NotificationView>,
}

/// A document shared with the customer and not opened yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewDocument {
    #[schema(example = "doc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "Compte rendu de séance")]
    pub title: String,
    /// From the file's first bytes.
    #[schema(example = "application/pdf")]
    pub content_type: String,
    /// Bytes.
    #[schema(minimum = 0)]
    pub size: i64,
    pub shared_at: DateTime<Utc>,
    /// The API path that downloads it (and clears `new`).
    #[schema(example = "/v1/me/documents/doc_3k9x0d2m7q8r4t6v1w5y/content")]
    pub link: String,
}

impl From<Document> for NewDocument {
    fn from(d: Document) -> Self {
        NewDocument {
            link: format!("/v1/me/documents/{}/content", d.id),
            id: d.id,
            title: d.title,
            content_type: d.content_type,
            size: d.size_bytes,
            shared_at: d.created_at,
        }
    }
}

/// The new documents section: documents the business shared and the
/// customer has not opened yet. Present when the `documents` action is on
/// for the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewDocumentsSection {
    /// How many there are.
    #[schema(minimum = 0)]
    pub count: i64,
    /// The five most recently shared.
    #[schema(max_items = 5)]
    pub latest: Vec<NewDocument>,
}

/// A conversation with answers from the business the customer has not
/// read.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadConversationView {
    #[schema(example = "cnv_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub subject: String,
    #[schema(value_type = crate::routes::enums::ConversationStatus, example = "open")]
    pub status: String,
    pub last_message_at: DateTime<Utc>,
    /// Messages from the business not read yet.
    #[schema(minimum = 1)]
    pub unread: i64,
    /// The API path of the conversation.
    #[schema(example = "/v1/me/conversations/cnv_3k9x0d2m7q8r4t6v1w5y")]
    pub link: String,
}

impl From<UnreadConversation> for UnreadConversationView {
    fn from(c: UnreadConversation) -> Self {
        UnreadConversationView {
            link: format!("/v1/me/conversations/{}", c.id),
            id: c.id,
            subject: c.subject,
            status: c.status,
            last_message_at: c.last_message_at,
            unread: c.unread,
        }
    }
}

/// The unread messages section: messages from the business the customer
/// has not read, by conversation. Present when the `messages` action is
/// on for the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadMessagesSection {
    /// Messages from the business not read yet, over every conversation.
    #[schema(minimum = 0)]
    pub unread_count: i64,
    /// Conversations holding them.
    #[schema(minimum = 0)]
    pub conversation_count: i64,
    /// The five most recently active of those conversations.
    #[schema(max_items = 5)]
    pub conversations: Vec<UnreadConversationView>,
}

/// A booking still to come.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpcomingBooking {
    #[schema(example = "bkg_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `confirmed`, or `pending` (waiting for the business).
    #[schema(value_type = crate::routes::enums::BookingStatusName)]
    pub status: String,
    /// The service's name in the customer's language.
    #[schema(example = "Séance de kinésithérapie")]
    pub service: String,
    #[schema(example = "Claire Petit")]
    pub provider_name: String,
    /// `/v1/me/bookings/{id}`.
    pub link: String,
}

/// The upcoming bookings section: the next three, confirmed or pending.
/// Present when the `bookings` action is on for the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpcomingBookingsSection {
    /// Soonest first.
    #[schema(max_items = 3)]
    pub next: Vec<UpcomingBooking>,
}

/// What the dashboard shows at a glance. Sections of actions turned off
/// for the customer are absent: `amount_due` goes with `payments`,
/// `new_documents` with `documents`, `messages` with `messages`,
/// `upcoming_bookings` with `bookings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_due: Option<AmountDue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upcoming_bookings: Option<UpcomingBookingsSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_documents: Option<NewDocumentsSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<UnreadMessagesSection>,
    pub notifications: NotificationsSection,
}

fn totals<'a>(items: impl Iterator<Item = &'a DueItem>) -> Vec<Amount> {
    let mut by: BTreeMap<&str, i64> = BTreeMap::new();
    for i in items {
        *by.entry(i.currency.as_str()).or_default() += i.amount;
    }
    by.into_iter()
        .map(|(c, amount)| Amount {
            amount,
            currency: c.to_owned(),
        })
        .collect()
}

fn item(s: DueSource) -> DueItem {
    let (kind, link) = match s.kind {
        DueKind::Instalment => (
            DueSourceKind::Instalment,
            format!(
                "/v1/me/schedules/{}",
                s.parent_id.as_deref().unwrap_or_default()
            ),
        ),
        DueKind::Account => (DueSourceKind::Account, "/v1/me/accounts".to_owned()),
    };
    DueItem {
        kind,
        id: s.id,
        label: s.label,
        amount: s.amount,
        currency: s.currency,
        due_date: s.due_date,
        overdue: s.overdue,
        link,
    }
}

/// The customer's open invoices as due items: overdue past their due
/// date, else due soon (every open invoice is owed).
fn invoice_items(
    conn: &mut guichet_store::DbConnection,
    org: &str,
    cus: &str,
    today: chrono::NaiveDate,
) -> Result<Vec<DueItem>, ApiError> {
    Ok(
        guichet_store::repo::invoices::open_of_customer(conn, org, cus)?
            .into_iter()
            .map(|inv| DueItem {
                kind: DueSourceKind::Invoice,
                label: inv.number.clone().unwrap_or_else(|| inv.id.clone()),
                amount: inv.amount_due(),
                currency: inv.currency.as_str().to_owned(),
                due_date: Some(inv.due_date),
                overdue: inv.due_date < today,
                link: format!("/v1/me/invoices/{}", inv.id),
                id: inv.id,
            })
            .collect(),
    )
}

/// The customer's dashboard.
///
/// In one call: the amount due (overdue and due-soon by currency, each
/// source listed with a link), the new documents (shared and not opened
/// yet), the next three bookings, the conversations with unread answers
/// from the business, and the
/// unread notifications count with the latest five. Sections of actions
/// turned off for the customer (by the organization or by the customer's
/// override) are absent.
#[utoipa::path(
    operation_id = "getMyDashboard",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dashboard.", body = Dashboard),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/dashboard")]
pub async fn my_dashboard(
    token: CustomerToken,
    state: web::Data<AppState>,
) -> Result<web::Json<Dashboard>, ApiError> {
    let store = state.store.clone();
    let today = state.clock.today();
    let now = state.clock.now();
    let out = web::block(move || {
        let mut conn = store.conn()?;
        let principal = token.authorize(&mut conn)?;
        let (org, cus) = (principal.org_id.as_str(), principal.customer_id.as_str());
        let actions = portal::effective_actions(&mut conn, org, cus)?;
        let on = |a: PortalAction| actions.iter().any(|s| s.action == a && s.enabled);
        let amount_due = if on(PortalAction::Payments) {
            let mut sources: Vec<DueItem> = dashboard::instalments_due(
                &mut conn,
                org,
                cus,
                today,
                today + Duration::days(DUE_SOON_DAYS),
            )?
            .into_iter()
            .chain(dashboard::account_balances(&mut conn, org, cus)?)
            .map(item)
            .chain(invoice_items(&mut conn, org, cus, today)?)
            .collect();
            sources.sort_by_key(|s| !s.overdue);
            Some(AmountDue {
                overdue: totals(sources.iter().filter(|s| s.overdue)),
                due_soon: totals(sources.iter().filter(|s| !s.overdue)),
                sources,
            })
        } else {
            None
        };
        let new_documents = if on(PortalAction::Documents) {
            Some(NewDocumentsSection {
                count: documents::count_new(&mut conn, org, cus)?,
                latest: documents::list_new(&mut conn, org, cus, SECTION_ITEMS)?
                    .into_iter()
                    .map(NewDocument::from)
                    .collect(),
            })
        } else {
            None
        };
        let messages = if on(PortalAction::Messages) {
            let unread = conversations::unread_conversations(&mut conn, org, cus)?;
            Some(UnreadMessagesSection {
                unread_count: unread.iter().map(|c| c.unread).sum(),
                conversation_count: i64::try_from(unread.len()).unwrap_or(i64::MAX),
                conversations: unread
                    .into_iter()
                    .take(SECTION_ITEMS as usize)
                    .map(UnreadConversationView::from)
                    .collect(),
            })
        } else {
            None
        };
        let upcoming_bookings = if on(PortalAction::Bookings) {
            let locale = customers::get(&mut conn, org, cus)?.locale;
            let mut next = Vec::new();
            for b in bookings::next_upcoming(&mut conn, org, cus, now, UPCOMING_BOOKINGS)? {
                let service = bookings::get_service(&mut conn, org, &b.service_id)?;
                let provider = bookings::get_provider(&mut conn, org, &b.provider_id)?;
                next.push(UpcomingBooking {
                    link: format!("/v1/me/bookings/{}", b.id),
                    service: service
                        .names
                        .get(locale.as_str())
                        .or_else(|| service.names.values().next())
                        .cloned()
                        .unwrap_or_default(),
                    provider_name: provider.name,
                    id: b.id,
                    start: b.start_at,
                    end: b.end_at,
                    status: b.status,
                });
            }
            Some(UpcomingBookingsSection { next })
        } else {
            None
        };
        let unread_count = notifications::unread_count(&mut conn, org, cus)?;
        let latest = notifications::list(&mut conn, org, cus, false, None, SECTION_ITEMS)?;
        Ok::<_, ApiError>(Dashboard {
            amount_due,
            upcoming_bookings,
            new_documents,
            messages,
            notifications: NotificationsSection {
                unread_count,
                latest: latest.into_iter().map(NotificationView::from).collect(),
            },
        })
    })
    .await??;
    Ok(web::Json(out))
}
