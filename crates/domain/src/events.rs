//! The catalogue of events: every state change a business may want to
//! learn of, named `noun.verb`. An event names the object it is about (its
//! kind and id) and carries a snapshot of it as the API shows it; what that
//! snapshot is for each type is documented in docs/EVENTS.md and in the
//! OpenAPI document's `webhooks`.

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The customer, signed in to the portal.
    Customer,
    /// A staff member of the business.
    Staff,
    /// The business's server, with an API key.
    ApiKey,
    /// Guichet itself: a background job, or time (an expiry).
    System,
    /// A cardholder following a consent invitation's link (no account).
    Cardholder,
}

impl Actor {
    pub const ALL: [Actor; 5] = [
        Actor::Customer,
        Actor::Staff,
        Actor::ApiKey,
        Actor::System,
        Actor::Cardholder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Customer => "customer",
            Actor::Staff => "staff",
            Actor::ApiKey => "api_key",
            Actor::System => "system",
            Actor::Cardholder => "cardholder",
        }
    }
}

macro_rules! catalogue {
    ($( $variant:ident = ($name:literal, $object:literal, $description:literal), )*) => {
        /// An event type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( #[doc = $description] $variant, )*
        }

        impl EventType {
            /// Every type, in catalogue order.
            pub const ALL: &'static [EventType] = &[$( EventType::$variant, )*];

            /// The type's name, `noun.verb`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( EventType::$variant => $name, )*
                }
            }

            /// The kind of object the event is about (`object.type` of the
            /// envelope).
            pub fn object_type(self) -> &'static str {
                match self {
                    $( EventType::$variant => $object, )*
                }
            }

            /// What happened, in one line.
            pub fn description(self) -> &'static str {
                match self {
                    $( EventType::$variant => $description, )*
                }
            }

            /// The type named `name`, if any.
            pub fn parse(name: &str) -> Option<EventType> {
                match name {
                    $( $name => Some(EventType::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

catalogue! {
    Ping = ("ping", "webhook_endpoint",
        "A test event sent to one webhook endpoint on request; nothing changed."),
    CustomerCreated = ("customer.created", "customer",
        "A customer was created by staff or an API key."),
    CustomerUpdated = ("customer.updated", "customer",
        "A customer's name, e-mail, mobile, locale or reference changed (a contact change waiting for the customer's confirmation is listed in the snapshot)."),
    CustomerBlocked = ("customer.blocked", "customer",
        "A customer was blocked: no sign-in, every session ended."),
    CustomerUnblocked = ("customer.unblocked", "customer",
        "A blocked customer was unblocked."),
    OrderCreated = ("order.created", "order",
        "An order was created with its instalment schedule."),
    OrderCancelled = ("order.cancelled", "order",
        "Part or all of what was left of an order was cancelled (the snapshot's last adjustment says which, and its refunds what is paid back)."),
    ScheduleCardChanged = ("schedule.card_changed", "schedule",
        "The customer put another card on a schedule."),
    ScheduleRegularized = ("schedule.regularized", "schedule",
        "The unpaid instalments of a schedule were paid by a regularization payment."),
    ScheduleUnpaid = ("schedule.unpaid", "schedule",
        "An instalment of the schedule became unpaid after its last debit attempt failed."),
    InstalmentPaid = ("instalment.paid", "instalment",
        "An instalment was debited from the card."),
    InstalmentFailed = ("instalment.failed", "instalment",
        "A debit of an instalment failed: it is presented again on `next_attempt_on`, or it is now unpaid."),
    RefundPaid = ("refund.paid", "refund",
        "A refund of a cancellation was paid back to the card."),
    RefundFailed = ("refund.failed", "refund",
        "The gateway refused a refund: the business pays it back another way."),
    MandateSigned = ("mandate.signed", "mandate",
        "The customer signed a SEPA mandate with the code sent to them."),
    MandateRevoked = ("mandate.revoked", "mandate",
        "A signed SEPA mandate was revoked: its scheduled collections are cancelled."),
    CollectionPresented = ("collection.presented", "collection",
        "A SEPA collection was presented to the bank (it is in the next export)."),
    CollectionPaid = ("collection.paid", "collection",
        "The bank paid a presented SEPA collection."),
    CollectionRejected = ("collection.rejected", "collection",
        "The bank rejected a presented SEPA collection; its amount is owed again."),
    ConsentInvitationSent = ("consent.invitation_sent", "consent",
        "A consent was ordered, or a new invitation sent: the cardholder has a new activation link."),
    ConsentOpened = ("consent.opened", "consent",
        "The cardholder opened the activation link for the first time."),
    ConsentActivated = ("consent.activated", "consent",
        "The bank authenticated the cardholder: the consent is active from `effective_from`."),
    ConsentFailed = ("consent.failed", "consent",
        "The card or bank step failed (`failure_reason`); the cardholder may retry while the link is valid."),
    ConsentExpired = ("consent.expired", "consent",
        "The activation link expired before the consent was active."),
    ConsentRevoked = ("consent.revoked", "consent",
        "The office revoked the consent."),
    DocumentShared = ("document.shared", "document",
        "Staff shared a document with a customer."),
    DocumentWithdrawn = ("document.withdrawn", "document",
        "Staff withdrew a shared document: the customer no longer sees it."),
    ConversationCreated = ("conversation.created", "conversation",
        "A customer wrote to the business: a new conversation."),
    MessageCreated = ("message.created", "message",
        "A message was written in a conversation, by the customer or by staff."),
    ConversationClosed = ("conversation.closed", "conversation",
        "Staff closed a conversation."),
    ConversationReopened = ("conversation.reopened", "conversation",
        "Staff reopened a closed conversation."),
    BookingRequested = ("booking.requested", "booking",
        "A customer asked for a slot; the request waits, pending, for staff to approve it."),
    BookingConfirmed = ("booking.confirmed", "booking",
        "A booking is confirmed: a customer's request confirmed at once or approved by staff, or a booking staff made."),
    BookingDeclined = ("booking.declined", "booking",
        "Staff declined a pending request (`reason`)."),
    BookingCancelled = ("booking.cancelled", "booking",
        "The customer or staff cancelled a booking (`cancelled_by`, `reason`)."),
    BookingRescheduled = ("booking.rescheduled", "booking",
        "The customer moved a booking to another start."),
    BookingCompleted = ("booking.completed", "booking",
        "Staff marked a past booking completed."),
    BookingNoShow = ("booking.no_show", "booking",
        "Staff marked a past booking as a no-show."),
    InvoiceIssued = ("invoice.issued", "invoice",
        "Staff issued an invoice or payment request: it is numbered, its PDF shared with the customer and e-mailed."),
    InvoicePaid = ("invoice.paid", "invoice",
        "An invoice is paid in full (by the customer, by autopay, or recorded by staff); `payment` is the payment that paid it."),
    InvoicePartiallyPaid = ("invoice.partially_paid", "invoice",
        "Part of an invoice was paid; `amount_due` is what is left."),
    InvoicePaymentFailed = ("invoice.payment_failed", "invoice",
        "A payment of an invoice was refused (`payment.failure_code`); the invoice is unchanged."),
    InvoiceVoided = ("invoice.voided", "invoice",
        "Staff voided an invoice: nothing is due on it any more."),
    BookingReminderSent = ("booking.reminder_sent", "booking",
        "The reminder of a confirmed booking went to its customer (e-mail, and SMS when they have a mobile)."),
    PaymentMethodSaved = ("payment_method.saved", "payment_method",
        "A customer saved a payment method (a card token or a signed recurring SEPA mandate)."),
    PaymentMethodRemoved = ("payment_method.removed", "payment_method",
        "A customer removed a saved payment method: it is no longer shown nor charged."),
    CustomerAutopayUpdated = ("customer.autopay_updated", "customer",
        "A customer saved a payment method (autopay turned on with it or not: `enabled`), or turned autopay on or off, changed its method, or removed its method for another (`source`)."),
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.as_str()), "duplicate {}", t.as_str());
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(seen.len(), EventType::ALL.len());
    }

    #[test]
    fn names_are_noun_dot_verb_of_their_object() {
        for t in EventType::ALL {
            assert!(!t.description().is_empty());
            if *t == EventType::Ping {
                continue;
            }
            let (noun, verb) = t.as_str().split_once('.').expect("noun.verb");
            let first = t.object_type().split('_').next().unwrap_or("");
            assert!(noun == t.object_type() || noun == first, "{t}");
            assert!(!verb.is_empty() && verb.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn unknown_names_do_not_parse() {
        for name in [
            "",
            "*",
            "order",
            "order.",
            "Order.Created",
            "order.created ",
            "ping.x",
        ] {
            assert_eq!(EventType::parse(name), None, "{name}");
        }
    }

    #[test]
    fn actors_have_stable_names() {
        let names: Vec<&str> = Actor::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            ["customer", "staff", "api_key", "system", "cardholder"]
        );
    }
}
