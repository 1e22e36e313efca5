//! Where documents and messages meet the portal settings: whether an
//! action is on for a customer, and the customer's notifications.

use chrono::{DateTime, Utc};
use guichet_store::DbConnection;
use guichet_store::StoreError;
use guichet_store::repo::conversations::{Conversation, Message};
use guichet_store::repo::documents::Document;

use crate::auth::CustomerPrincipal;
use crate::problem::ApiError;

/// Whether `action` (`documents`, `messages`) is on for this customer;
/// 403 `portal_action_disabled` when it is off.
pub fn require_action(
    _conn: &mut DbConnection,
    _principal: &CustomerPrincipal,
    _action: &str,
) -> Result<(), ApiError> {
    Ok(())
}

/// The customer's notification of a newly shared document, in the
/// transaction that shares it.
pub fn document_shared(
    _conn: &mut DbConnection,
    _doc: &Document,
    _now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Ok(())
}

/// A customer wrote (a new conversation or an answer): the business's
/// contact e-mail is told, with a link and never the attachments.
pub fn customer_wrote(
    _conn: &mut DbConnection,
    _conversation: &Conversation,
    _message: &Message,
    _now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Ok(())
}

/// Staff answered: the customer gets a notification and an e-mail.
pub fn staff_answered(
    _conn: &mut DbConnection,
    _conversation: &Conversation,
    _message: &Message,
    _now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Ok(())
}
