//! The `webhooks` section of the OpenAPI document: one entry per event
//! type, whose request body is the event with its type's snapshot schema.
//! utoipa 5's `OpenApi` has no `webhooks` field, so the section is added to
//! the serialized document (`crate::openapi::document`).

use guichet_domain::events::EventType;
use serde_json::{Value, json};

/// The component schema of `kind`'s `data`.
pub fn data_schema(kind: EventType) -> &'static str {
    match kind {
        EventType::Ping => "PingData",
        EventType::CustomerCreated
        | EventType::CustomerUpdated
        | EventType::CustomerBlocked
        | EventType::CustomerUnblocked => "CustomerView",
        EventType::OrderCreated
        | EventType::OrderCancelled
        | EventType::ScheduleCardChanged
        | EventType::ScheduleRegularized
        | EventType::ScheduleUnpaid => "ScheduleView",
        EventType::InstalmentPaid | EventType::InstalmentFailed => "InstalmentEventData",
        EventType::RefundPaid | EventType::RefundFailed => "RefundEventData",
        EventType::MandateSigned | EventType::MandateRevoked => "MandateReview",
        EventType::CollectionPresented
        | EventType::CollectionPaid
        | EventType::CollectionRejected => "CollectionView",
        EventType::ConsentInvitationSent
        | EventType::ConsentOpened
        | EventType::ConsentActivated
        | EventType::ConsentFailed
        | EventType::ConsentExpired
        | EventType::ConsentRevoked => "ConsentView",
        EventType::DocumentShared | EventType::DocumentWithdrawn => "DocumentView",
        EventType::ConversationCreated
        | EventType::ConversationClosed
        | EventType::ConversationReopened => "ConversationView",
        EventType::MessageCreated => "MessageView",
        EventType::BookingRequested
        | EventType::BookingConfirmed
        | EventType::BookingDeclined
        | EventType::BookingCancelled
        | EventType::BookingRescheduled
        | EventType::BookingCompleted
        | EventType::BookingNoShow
        | EventType::BookingReminderSent => "BookingView",
        EventType::InvoiceIssued
        | EventType::InvoicePaid
        | EventType::InvoicePartiallyPaid
        | EventType::InvoicePaymentFailed
        | EventType::InvoiceVoided => "InvoiceEventData",
        EventType::PaymentMethodSaved | EventType::PaymentMethodRemoved => "PaymentMethodEventData",
        EventType::CustomerAutopayUpdated => "AutopayEventData",
    }
}

/// Who may cause `kind` (the envelope's `actor`).
pub fn actors(kind: EventType) -> &'static [&'static str] {
    match kind {
        EventType::Ping => &["staff"],
        EventType::CustomerCreated
        | EventType::CustomerUpdated
        | EventType::CustomerBlocked
        | EventType::CustomerUnblocked
        | EventType::OrderCreated
        | EventType::OrderCancelled
        | EventType::MandateRevoked
        | EventType::CollectionPaid
        | EventType::CollectionRejected => &["staff", "api_key"],
        EventType::ScheduleCardChanged
        | EventType::MandateSigned
        | EventType::PaymentMethodSaved
        | EventType::PaymentMethodRemoved
        | EventType::CustomerAutopayUpdated => &["customer"],
        EventType::ConsentInvitationSent => &["staff", "api_key"],
        EventType::ConsentRevoked => &["staff", "api_key"],
        EventType::ConsentOpened | EventType::ConsentActivated => &["cardholder"],
        EventType::ConsentFailed => &["cardholder"],
        EventType::ConsentExpired => &["system"],
        EventType::DocumentShared
        | EventType::DocumentWithdrawn
        | EventType::ConversationClosed
        | EventType::ConversationReopened => &["staff", "api_key"],
        EventType::ConversationCreated => &["customer"],
        EventType::MessageCreated => &["customer", "staff", "api_key"],
        EventType::BookingRequested | EventType::BookingRescheduled => &["customer"],
        EventType::BookingConfirmed | EventType::BookingCancelled => {
            &["customer", "staff", "api_key"]
        }
        EventType::BookingDeclined | EventType::BookingCompleted | EventType::BookingNoShow => {
            &["staff", "api_key"]
        }
        EventType::BookingReminderSent => &["system"],
        EventType::InvoiceIssued | EventType::InvoiceVoided => &["staff", "api_key"],
        EventType::InvoicePaid | EventType::InvoicePartiallyPaid => {
            &["customer", "staff", "api_key", "system"]
        }
        EventType::InvoicePaymentFailed => &["customer", "system"],
        EventType::ScheduleRegularized => &["customer", "system"],
        EventType::ScheduleUnpaid
        | EventType::InstalmentPaid
        | EventType::InstalmentFailed
        | EventType::RefundPaid
        | EventType::RefundFailed
        | EventType::CollectionPresented => &["system"],
    }
}

/// `customer.created` → `customerCreatedEvent`.
fn operation_id(kind: EventType) -> String {
    let mut id = String::new();
    let mut upper = false;
    for c in kind.as_str().chars() {
        if c == '.' || c == '_' {
            upper = true;
        } else if upper {
            id.extend(c.to_uppercase());
            upper = false;
        } else {
            id.push(c);
        }
    }
    id.push_str("Event");
    id
}

/// The `webhooks` section.
pub fn webhooks() -> Value {
    let mut hooks = serde_json::Map::new();
    for kind in EventType::ALL {
        let name = kind.as_str();
        let actor_list = actors(*kind)
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let schema = json!({
            "allOf": [
                { "$ref": "#/components/schemas/Event" },
                {
                    "type": "object",
                    "properties": {
                        "type": { "const": name },
                        "object": {
                            "type": "object",
                            "properties": { "type": { "const": kind.object_type() } }
                        },
                        "actor": { "enum": actors(*kind) },
                        "data": { "$ref": format!("#/components/schemas/{}", data_schema(*kind)) }
                    }
                }
            ]
        });
        hooks.insert(
            name.to_owned(),
            json!({
                "post": {
                    "tags": ["webhooks"],
                    "operationId": operation_id(*kind),
                    "summary": name,
                    "description": format!(
                        "{} Actor: {actor_list}. Object: `{}`. Sent with the Standard Webhooks \
                         headers `webhook-id` (the event id), `webhook-timestamp` and \
                         `webhook-signature`.",
                        kind.description(),
                        kind.object_type()
                    ),
                    "security": [],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": schema } }
                    },
                    "responses": {
                        "200": { "description": "Received: any 2xx answer within 15 s is a success." },
                        "400": { "description": "Refused: any other answer (or none) is retried with backoff for 3 days." }
                    }
                }
            }),
        );
    }
    Value::Object(hooks)
}
