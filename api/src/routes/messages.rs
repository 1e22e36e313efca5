//! Messages ("Contacter l'entreprise"): a customer opens conversations with
//! the business and answers in them (`/v1/me/conversations`), with up to
//! five attachments uploaded first (`/v1/me/attachments`); staff list,
//! answer, assign, close and reopen them (`/v1/admin/conversations`).
//! Customer messages are rate limited (20 per hour per customer, across
//! nodes).

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use guichet_domain::ids;
use guichet_store::DbConnection;
use guichet_store::StoreError;
use guichet_store::repo::conversations::{self, Conversation, ListFilter, Message};
use guichet_store::repo::documents::{self, Document, KIND_ATTACHMENT};
use guichet_store::repo::{events, staff};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::admin::{AUTH_FAILURES, ROLE_FAILURE, page_end, time_cursor};
use super::documents::{UploadQuery, blob_key, check_title, discard, receive};
use crate::auth::principal::StaffActor;
use crate::auth::{CustomerPrincipal, StaffPrincipal};
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// Customer messages allowed per customer per hour.
pub const MESSAGES_PER_HOUR: u32 = 20;
/// Longest message body, in characters.
pub const BODY_MAX: u64 = 10_000;
/// Most attachments per message.
pub const ATTACHMENTS_MAX: u64 = 5;

const CUSTOMER_AUTH: &str = "Codes: `unauthenticated`, `invalid_token`.";
const CUSTOMER_FORBIDDEN: &str =
    "Messages are off for you, or a staff token. Codes: `portal_action_disabled`, `forbidden`.";
const NOT_FOUND: &str = "No such conversation (of yours). Codes: `not_found`.";

/// A file attached to a message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentView {
    #[schema(example = "doc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub filename: String,
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    pub sha256: String,
}

impl From<Document> for AttachmentView {
    fn from(d: Document) -> Self {
        AttachmentView {
            id: d.id,
            filename: d.filename,
            content_type: d.content_type,
            size: d.size_bytes,
            sha256: d.sha256,
        }
    }
}

/// One message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    #[schema(example = "cvm_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// `customer`, `staff` or `api_key`.
    pub author: String,
    pub body: String,
    pub attachments: Vec<AttachmentView>,
    pub created_at: DateTime<Utc>,
    /// When the other side read it.
    pub read_at: Option<DateTime<Utc>>,
}

/// A conversation, without its messages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationView {
    #[schema(example = "cnv_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub customer_id: String,
    pub subject: String,
    /// `open` or `closed`.
    #[schema(example = "open")]
    pub status: String,
    /// Staff only: the staff member in charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_staff_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Messages from the other side not read yet.
    pub unread: i64,
}

/// A conversation with its messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationView,
    pub messages: Vec<MessageView>,
}

/// A page of conversations, most recently active first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationList {
    pub data: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

/// A new conversation.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub subject: String,
    #[validate(
        length(min = 1, max = 10000),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub body: String,
    /// Ids from `POST /v1/me/attachments`, each used once.
    #[validate(length(max = 5))]
    #[schema(max_items = 5)]
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// A new message.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    #[validate(
        length(min = 1, max = 10000),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub body: String,
    /// Customers only: ids from `POST /v1/me/attachments`, each used once.
    #[validate(length(max = 5))]
    #[schema(max_items = 5)]
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// A staff answer: text only (files go to the customer as shared
/// documents).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffMessage {
    #[validate(
        length(min = 1, max = 10000),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub body: String,
}

/// Who a conversation is assigned to.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// A staff member of the organization (`stf_...`), or null for nobody.
    #[validate(length(max = 64))]
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub staff_id: Option<String>,
}

/// `?status=&customer=&limit=&cursor=` of the staff's list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// `open` or `closed`.
    #[param(nullable = false, pattern = "^(open|closed)$")]
    pub status: Option<String>,
    /// Only this customer's (`cus_...`).
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub customer: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

fn view(
    conn: &mut DbConnection,
    c: Conversation,
    reader: &str,
    staff_view: bool,
) -> Result<ConversationView, StoreError> {
    let unread = conversations::unread_in(conn, &c.org_id, &c.id, reader)?;
    Ok(ConversationView {
        id: c.id,
        customer_id: c.customer_id,
        subject: c.subject,
        status: c.status,
        assigned_staff_id: if staff_view {
            c.assigned_staff_id
        } else {
            None
        },
        created_at: c.created_at,
        last_message_at: c.last_message_at,
        closed_at: c.closed_at,
        unread,
    })
}

fn message_views(
    conn: &mut DbConnection,
    org_id: &str,
    messages: Vec<Message>,
) -> Result<Vec<MessageView>, StoreError> {
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let mut attached = conversations::attachments(conn, org_id, &ids)?;
    Ok(messages
        .into_iter()
        .map(|m| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                attached.drain(..).partition(|(mid, _)| *mid == m.id);
            attached = rest;
            MessageView {
                id: m.id,
                author: m.author_kind,
                body: m.body,
                attachments: mine.into_iter().map(|(_, d)| d.into()).collect(),
                created_at: m.created_at,
                read_at: m.read_at,
            }
        })
        .collect())
}

fn detail(
    conn: &mut DbConnection,
    c: Conversation,
    reader: &str,
    staff_view: bool,
) -> Result<ConversationDetail, StoreError> {
    let messages = conversations::messages(conn, &c.org_id, &c.id)?;
    let org_id = c.org_id.clone();
    Ok(ConversationDetail {
        conversation: view(conn, c, reader, staff_view)?,
        messages: message_views(conn, &org_id, messages)?,
    })
}

fn event(
    conversation: &Conversation,
    event_type: &str,
    object_type: &str,
    object_id: &str,
    actor: &str,
    data: &impl Serialize,
    now: DateTime<Utc>,
) -> events::Event {
    events::Event {
        id: ids::new_id("evt"),
        org_id: conversation.org_id.clone(),
        event_type: event_type.to_owned(),
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
        customer_id: Some(conversation.customer_id.clone()),
        actor: actor.to_owned(),
        data: serde_json::to_string(data).unwrap_or_default(),
        created_at: now,
    }
}

fn attachments_not_found() -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(
            "Une pièce jointe est inconnue ou déjà utilisée.",
            "An attachment is unknown or already used.",
        )
        .field("attachments", "not_found")
}

fn closed() -> ApiError {
    ApiError::new(ProblemCode::ConversationClosed).detail(
        "Cette conversation est close.",
        "This conversation is closed.",
    )
}

/// Reserves one of the customer's messages of the hour, or 429.
fn reserve(state: &AppState, customer_id: &str) -> Result<(), ApiError> {
    crate::auth::flows::limit(
        state,
        &format!("messages:{customer_id}"),
        MESSAGES_PER_HOUR,
        3600,
    )
}

/// Upload an attachment for your next message.
///
/// The raw body is the file (PDF, PNG, JPEG or plain text by its first
/// bytes; at most `--document-max-bytes`), `?title=` its name. Attach it
/// with `attachments` when writing; the business sees it with the message.
#[utoipa::path(
    operation_id = "uploadAttachment",
    tag = "messages",
    security(("bearer" = [])),
    params(UploadQuery),
    request_body(content((inline(crate::openapi::Binary) = "application/octet-stream"))),
    responses(
        (status = 201, description = "Uploaded.", body = AttachmentView),
        (status = 400, description = "Codes: `invalid_parameter`, `invalid_field`, `bad_request`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = CUSTOMER_AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Codes: `payload_too_large`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn upload_attachment(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let title = check_title(query.title.as_deref().unwrap_or("attachment"))?;
    {
        let store = state.store.clone();
        let p = principal.clone();
        web::block(move || {
            let mut conn = store.conn()?;
            crate::routes::portal_hooks::require_action(
                &mut conn,
                &p,
                guichet_domain::portal::PortalAction::Messages,
            )
        })
        .await??;
    }
    let id = ids::new_id("doc");
    let key = blob_key(&principal.org_id, &id);
    let received = receive(&state, key.clone(), payload, state.document_max_bytes).await?;
    let now = state.clock.now();
    let doc = Document {
        id,
        org_id: principal.org_id.clone(),
        customer_id: principal.customer_id.clone(),
        kind: KIND_ATTACHMENT.to_owned(),
        filename: guichet_domain::documents::file_name(&title, received.kind),
        title,
        content_type: received.kind.mime().to_owned(),
        size_bytes: received.size,
        sha256: received.sha256,
        blob_key: received.blob_key,
        created_by_kind: "customer".to_owned(),
        created_by: principal.customer_id.clone(),
        created_at: now,
        first_opened_at: None,
        withdrawn_at: None,
        withdrawn_by: None,
    };
    let store = state.store.clone();
    let saved = doc.clone();
    let written = web::block(move || {
        let mut conn = store.conn()?;
        documents::insert(&mut conn, &saved)
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(HttpResponse::Created().json(AttachmentView::from(doc))),
        Ok(Err(e)) => {
            discard(&state, &key).await;
            Err(e.into())
        }
        Err(e) => {
            discard(&state, &key).await;
            Err(e.into())
        }
    }
}

/// Write to the business: a new conversation.
///
/// Rate limited to 20 messages per hour per customer (429 with
/// `Retry-After`). The business's contact e-mail (`branding.contact_email`
/// of the portal settings) is told by e-mail, with a link to the
/// conversation, never the text nor the attachments; when the business has
/// no contact e-mail, no e-mail is sent (staff see the conversation in
/// their list). Records `conversation.created` and `message.created`.
#[utoipa::path(
    operation_id = "createConversation",
    tag = "messages",
    security(("bearer" = [])),
    request_body = NewConversation,
    responses(
        (status = 201, description = "Created, with its first message.", body = ConversationDetail),
        (status = 400, description = "Codes: `malformed_json`, `invalid_field`, `unknown_field`, `missing_field`, `bad_request`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = CUSTOMER_AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "20 messages in the last hour. Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    body: Json<NewConversation>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let now = state.clock.now();
    let st = state.clone();
    let detail = web::block(move || {
        {
            let mut conn = st.store.conn()?;
            crate::routes::portal_hooks::require_action(
                &mut conn,
                &principal,
                guichet_domain::portal::PortalAction::Messages,
            )?;
        }
        reserve(&st, &principal.customer_id)?;
        let mut conn = st.store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let conv = Conversation {
                id: ids::new_id("cnv"),
                org_id: principal.org_id.clone(),
                customer_id: principal.customer_id.clone(),
                subject: body.subject.trim().to_owned(),
                status: "open".to_owned(),
                assigned_staff_id: None,
                created_at: now,
                last_message_at: now,
                closed_at: None,
            };
            conversations::insert(conn, &conv)?;
            let msg = customer_message(
                conn,
                &principal,
                &conv.id,
                &body.body,
                &body.attachments,
                now,
            )?;
            let d = detail(conn, conv.clone(), "customer", false)?;
            events::record(
                conn,
                &event(
                    &conv,
                    "conversation.created",
                    "conversation",
                    &conv.id,
                    "customer",
                    &d.conversation,
                    now,
                ),
            )?;
            record_message(conn, &conv, &d, &msg.id, "customer", now)?;
            crate::routes::portal_hooks::customer_wrote(conn, &principal, &conv, &msg, now)?;
            Ok::<_, ApiError>(d)
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(detail))
}

fn customer_message(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    conversation_id: &str,
    body: &str,
    attachments: &[String],
    now: DateTime<Utc>,
) -> Result<Message, ApiError> {
    let msg = Message {
        id: ids::new_id("cvm"),
        conversation_id: conversation_id.to_owned(),
        org_id: principal.org_id.clone(),
        author_kind: "customer".to_owned(),
        author_id: principal.customer_id.clone(),
        body: body.to_owned(),
        created_at: now,
        read_at: None,
    };
    conversations::add_message(conn, &msg)?;
    match conversations::attach(
        conn,
        &principal.org_id,
        &principal.customer_id,
        &msg.id,
        attachments,
    ) {
        Ok(()) => Ok(msg),
        Err(StoreError::NotFound) => Err(attachments_not_found()),
        Err(e) => Err(e.into()),
    }
}

fn record_message(
    conn: &mut DbConnection,
    conv: &Conversation,
    d: &ConversationDetail,
    message_id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(m) = d.messages.iter().find(|m| m.id == message_id) {
        events::record(
            conn,
            &event(
                conv,
                "message.created",
                "message",
                message_id,
                actor,
                m,
                now,
            ),
        )?;
    }
    Ok(())
}

/// Your conversations, most recently active first.
#[utoipa::path(
    operation_id = "listMyConversations",
    tag = "messages",
    security(("bearer" = [])),
    params(super::admin::TimePage),
    responses(
        (status = 200, description = "A page of conversations.", body = ConversationList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = CUSTOMER_AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_FORBIDDEN, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    page: web::Query<super::admin::TimePage>,
) -> Result<web::Json<ConversationList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let store = state.store.clone();
    let page = web::block(move || {
        let mut conn = store.conn()?;
        crate::routes::portal_hooks::require_action(
            &mut conn,
            &principal,
            guichet_domain::portal::PortalAction::Messages,
        )?;
        let filter = ListFilter {
            customer_id: Some(principal.customer_id.clone()),
            status: None,
        };
        page_of(
            &mut conn,
            &principal.org_id,
            &filter,
            after,
            limit,
            "customer",
            false,
        )
    })
    .await??;
    Ok(web::Json(page))
}

fn page_of(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
    after: Option<super::admin::TimePosition>,
    limit: i64,
    reader: &str,
    staff_view: bool,
) -> Result<ConversationList, ApiError> {
    let mut items = conversations::list(
        conn,
        org_id,
        filter,
        after.as_ref().map(|(at, id)| (*at, id.as_str())),
        limit + 1,
    )?;
    let next = page_end(&mut items, limit, |c| time_cursor(c.last_message_at, &c.id));
    let mut data = Vec::with_capacity(items.len());
    for c in items {
        data.push(view(conn, c, reader, staff_view)?);
    }
    Ok(ConversationList {
        data,
        next_cursor: next,
    })
}

/// One of your conversations with its messages.
#[utoipa::path(
    operation_id = "getMyConversation",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    responses(
        (status = 200, description = "The conversation.", body = ConversationDetail),
        (status = 401, description = CUSTOMER_AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConversationDetail>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let d = web::block(move || {
        let mut conn = store.conn()?;
        crate::routes::portal_hooks::require_action(
            &mut conn,
            &principal,
            guichet_domain::portal::PortalAction::Messages,
        )?;
        let c = conversations::get_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            &id,
        )?;
        Ok::<_, ApiError>(detail(&mut conn, c, "customer", false)?)
    })
    .await??;
    Ok(web::Json(d))
}

/// Answer in one of your conversations.
///
/// Counts toward the 20 messages per hour. A closed conversation takes no
/// more messages (409): write a new one. The business's contact e-mail is
/// told as for a new conversation (a link only; no e-mail when the business
/// has no contact e-mail).
#[utoipa::path(
    operation_id = "postMyMessage",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Sent.", body = MessageView),
        (status = 400, description = "Codes: `malformed_json`, `invalid_field`, `unknown_field`, `missing_field`, `bad_request`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = CUSTOMER_AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `conversation_closed`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "20 messages in the last hour. Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/messages")]
pub async fn post_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.0;
    let now = state.clock.now();
    let st = state.clone();
    let m = web::block(move || {
        {
            let mut conn = st.store.conn()?;
            crate::routes::portal_hooks::require_action(
                &mut conn,
                &principal,
                guichet_domain::portal::PortalAction::Messages,
            )?;
            let c = conversations::get_for_customer(
                &mut conn,
                &principal.org_id,
                &principal.customer_id,
                &id,
            )?;
            if c.status != "open" {
                return Err(closed());
            }
        }
        reserve(&st, &principal.customer_id)?;
        let mut conn = st.store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let conv = conversations::get_for_customer(
                conn,
                &principal.org_id,
                &principal.customer_id,
                &id,
            )?;
            let msg = customer_message(
                conn,
                &principal,
                &conv.id,
                &body.body,
                &body.attachments,
                now,
            )?;
            let d = detail(conn, conv.clone(), "customer", false)?;
            record_message(conn, &conv, &d, &msg.id, "customer", now)?;
            crate::routes::portal_hooks::customer_wrote(conn, &principal, &conv, &msg, now)?;
            d.messages
                .into_iter()
                .find(|m| m.id == msg.id)
                .ok_or_else(|| ApiError::internal("message vanished"))
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(m))
}

/// Mark the business's messages of a conversation read.
#[utoipa::path(
    operation_id = "readMyConversation",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    responses(
        (status = 204, description = "Read."),
        (status = 401, description = CUSTOMER_AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/read")]
pub async fn read_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        crate::routes::portal_hooks::require_action(
            &mut conn,
            &principal,
            guichet_domain::portal::PortalAction::Messages,
        )?;
        let c = conversations::get_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            &id,
        )?;
        conversations::mark_read(&mut conn, &principal.org_id, &c.id, "customer", now)?;
        Ok::<_, ApiError>(())
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}

fn staff_actor(p: &StaffPrincipal) -> (&'static str, String) {
    match &p.actor {
        StaffActor::Staff { id, .. } => ("staff", id.clone()),
        StaffActor::ApiKey { id } => ("api_key", id.clone()),
    }
}

/// The organization's conversations, most recently active first.
#[utoipa::path(
    operation_id = "listConversations",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(ConversationQuery),
    responses(
        (status = 200, description = "A page of conversations.", body = ConversationList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<ConversationQuery>,
) -> Result<web::Json<ConversationList>, ApiError> {
    let q = query.into_inner();
    let (limit, after) = super::admin::resolve_time_page(q.limit, q.cursor.as_deref())?;
    if q.customer
        .as_deref()
        .is_some_and(|c| !super::admin::is_id_cursor(c))
    {
        return Err(ApiError::new(ProblemCode::InvalidParameter)
            .detail("Identifiant de client invalide.", "Invalid customer id.")
            .field("customer", "invalid"));
    }
    let status = super::admin::status_filter(
        q.status.as_deref(),
        |s| matches!(s, "open" | "closed").then(|| s.to_owned()),
        &["open", "closed"],
    )?;
    let store = state.store.clone();
    let page = web::block(move || {
        let mut conn = store.conn()?;
        let filter = ListFilter {
            customer_id: q.customer,
            status,
        };
        page_of(
            &mut conn,
            &principal.org_id,
            &filter,
            after,
            limit,
            "staff",
            true,
        )
    })
    .await??;
    Ok(web::Json(page))
}

/// One conversation with its messages.
#[utoipa::path(
    operation_id = "getConversation",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    responses(
        (status = 200, description = "The conversation.", body = ConversationDetail),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConversationDetail>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let d = web::block(move || {
        let mut conn = store.conn()?;
        let c = conversations::get(&mut conn, &principal.org_id, &id)?;
        Ok::<_, ApiError>(detail(&mut conn, c, "staff", true)?)
    })
    .await??;
    Ok(web::Json(d))
}

/// Answer a customer.
///
/// The customer gets a portal notification (`message.answered`) and an
/// e-mail in their language, with a link to the conversation, not the
/// text. Answering a closed conversation is 409: reopen it first.
#[utoipa::path(
    operation_id = "answerConversation",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    request_body = StaffMessage,
    responses(
        (status = 201, description = "Sent.", body = MessageView),
        (status = 400, description = "Attachments are for customers. Codes: `malformed_json`, `invalid_field`, `unknown_field`, `missing_field`, `bad_request`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `conversation_closed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/messages")]
pub async fn answer(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<StaffMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.0;
    let now = state.clock.now();
    let (actor_kind, actor_id) = staff_actor(&principal);
    let store = state.store.clone();
    let m = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let conv = conversations::get(conn, &principal.org_id, &id)?;
            if conv.status != "open" {
                return Err(closed());
            }
            let msg = Message {
                id: ids::new_id("cvm"),
                conversation_id: conv.id.clone(),
                org_id: conv.org_id.clone(),
                author_kind: actor_kind.to_owned(),
                author_id: actor_id.clone(),
                body: body.body.clone(),
                created_at: now,
                read_at: None,
            };
            conversations::add_message(conn, &msg)?;
            // Answering reads what the customer wrote.
            conversations::mark_read(conn, &conv.org_id, &conv.id, "staff", now)?;
            let d = detail(conn, conv.clone(), "staff", true)?;
            record_message(conn, &conv, &d, &msg.id, actor_kind, now)?;
            crate::routes::portal_hooks::staff_answered(conn, &conv, &msg, now)?;
            d.messages
                .into_iter()
                .find(|m| m.id == msg.id)
                .ok_or_else(|| ApiError::internal("message vanished"))
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(m))
}

async fn set_status(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    id: String,
    status: &'static str,
) -> Result<web::Json<ConversationView>, ApiError> {
    let now = state.clock.now();
    let (actor_kind, _) = staff_actor(&principal);
    let store = state.store.clone();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let c = conversations::get(conn, &principal.org_id, &id)?;
            if c.status != status {
                conversations::set_status(conn, &principal.org_id, &id, status, now)?;
                let c = conversations::get(conn, &principal.org_id, &id)?;
                let v = view(conn, c.clone(), "staff", true)?;
                let kind = if status == "closed" {
                    "conversation.closed"
                } else {
                    "conversation.reopened"
                };
                events::record(
                    conn,
                    &event(&c, kind, "conversation", &c.id, actor_kind, &v, now),
                )?;
                return Ok::<_, ApiError>(v);
            }
            Ok(view(conn, c, "staff", true)?)
        })
    })
    .await??;
    Ok(web::Json(v))
}

/// Close a conversation (closing twice is harmless).
#[utoipa::path(
    operation_id = "closeConversation",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    responses(
        (status = 200, description = "Closed.", body = ConversationView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/close")]
pub async fn close(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConversationView>, ApiError> {
    set_status(principal, state, path.into_inner(), "closed").await
}

/// Reopen a closed conversation (reopening an open one is harmless).
#[utoipa::path(
    operation_id = "reopenConversation",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    responses(
        (status = 200, description = "Open.", body = ConversationView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/reopen")]
pub async fn reopen(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ConversationView>, ApiError> {
    set_status(principal, state, path.into_inner(), "open").await
}

/// Assign a conversation to a staff member, or to nobody.
#[utoipa::path(
    operation_id = "assignConversation",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    request_body = Assignment,
    responses(
        (status = 200, description = "Assigned.", body = ConversationView),
        (status = 400, description = "Codes: `malformed_json`, `invalid_field`, `unknown_field`, `missing_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such staff member in your organization. Codes: `invalid_field`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/{id}/assignee")]
pub async fn assign(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Assignment>,
) -> Result<web::Json<ConversationView>, ApiError> {
    let id = path.into_inner();
    let staff_id = body.0.staff_id;
    let store = state.store.clone();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            conversations::get(conn, &principal.org_id, &id)?;
            if let Some(s) = &staff_id
                && staff::get(conn, &principal.org_id, s).is_err()
            {
                let mut error = ApiError::new(ProblemCode::InvalidField);
                error.status_override = Some(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
                return Err(error
                    .detail("Membre de l'équipe inconnu.", "No such staff member.")
                    .field("staff_id", "not_found"));
            }
            conversations::assign(conn, &principal.org_id, &id, staff_id.as_deref())?;
            let c = conversations::get(conn, &principal.org_id, &id)?;
            Ok::<_, ApiError>(view(conn, c, "staff", true)?)
        })
    })
    .await??;
    Ok(web::Json(v))
}

/// Mark the customer's messages of a conversation read.
#[utoipa::path(
    operation_id = "readConversation",
    tag = "messages",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Conversation id (`cnv_...`).")),
    responses(
        (status = 204, description = "Read."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/read")]
pub async fn read(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        let c = conversations::get(&mut conn, &principal.org_id, &id)?;
        conversations::mark_read(&mut conn, &principal.org_id, &c.id, "staff", now)?;
        Ok::<_, ApiError>(())
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}
