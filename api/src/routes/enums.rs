//! The closed sets of strings the API sends or reads, as OpenAPI enums.
//!
//! The JSON is produced elsewhere (domain `as_str` functions, `&'static str`
//! fields); these types only describe it: fields keep their Rust type and
//! point here with `#[schema(value_type = ...)]`.

#![allow(dead_code)]

use utoipa::ToSchema;

/// A schedule's status: `completed` is paid off ("soldé").
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ScheduleStatus {
    InProgress,
    Completed,
    Unpaid,
    Cancelled,
}

/// A card network.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Other,
}

/// How a card is funded.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CardFunding {
    Credit,
    Debit,
    Prepaid,
}

/// What changed a schedule after the order.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AdjustmentKind {
    PartialCancellation,
    TotalCancellation,
    Regularization,
}

/// A contact channel's kind.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ChannelKind {
    Chat,
    Whatsapp,
    ContactForm,
    Chatbot,
    Faq,
    Phone,
    Email,
}

/// A supported language.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Language {
    Fr,
    En,
}

/// How customers may sign in.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum LoginMethods {
    Password,
    Passwordless,
    Both,
}

/// Where a one-time code was sent.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SentChannel {
    Sms,
    Email,
}

/// A staff member's role.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum StaffRole {
    Admin,
    Agent,
}

/// A SEPA mandate's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum MandateStatus {
    Draft,
    Signed,
    Revoked,
    Expired,
}

/// A SEPA direct-debit sequence type: first, recurring, one-off.
#[derive(ToSchema)]
#[schema(rename_all = "UPPERCASE")]
pub enum SequenceType {
    Frst,
    Rcur,
    Ooff,
}

/// A SEPA collection's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CollectionStatus {
    Scheduled,
    Presented,
    Paid,
    Rejected,
    Cancelled,
}

/// A mandate's collection: `planned` while the mandate is a draft, then a
/// collection's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum MandateCollectionStatus {
    Planned,
    Scheduled,
    Presented,
    Paid,
    Rejected,
    Cancelled,
}

/// The storage backend.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

/// A consent's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ConsentStatus {
    InvitationSent,
    Opened,
    CodeSent,
    CodeVerified,
    AwaitingBank,
    Active,
    Failed,
    Expired,
    Revoked,
}

/// A step of a consent's timeline.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ConsentStep {
    InvitationSent,
    LinkOpened,
    CodeSent,
    CodeVerified,
    CardRefused,
    BankStarted,
    BankSucceeded,
    BankFailed,
    ConfirmationSent,
    ContactsErased,
    ContactsEdited,
    Expired,
    Revoked,
}

/// Why the bank did not authenticate the cardholder.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BankFailure {
    OnlinePaymentsDisabled,
    CardBlocked,
    CardNotActivated,
    WrongData,
    TechnicalError,
}

/// The answers of the sandbox issuer's page.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ScaOutcome {
    Succeeded,
    OnlinePaymentsDisabled,
    CardBlocked,
    CardNotActivated,
    WrongData,
    TechnicalError,
}

/// A consent template for the office.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ConsentTemplateName {
    InformClient,
    InformCardholder,
}

/// A conversation's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Closed,
}

/// How a customer's booking request is confirmed.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BookingConfirmation {
    /// At once.
    Automatic,
    /// Held `pending` until staff approve it.
    Manual,
}

/// What delivers a service.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ProviderKind {
    Staff,
    Resource,
}

/// How an exception changes a provider's day.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ExceptionKindName {
    Closed,
    Open,
}

/// A booking's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BookingStatusName {
    Pending,
    Confirmed,
    Declined,
    Cancelled,
    Completed,
    NoShow,
}

/// One of the customer's three lists of bookings.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BookingListView {
    Upcoming,
    Pending,
    History,
}

/// An invoice with lines, or a payment request (an amount and a reason).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InvoiceKind {
    Invoice,
    PaymentRequest,
}

/// An invoice's status: `overdue` is an open invoice past its due date.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Overdue,
    Paid,
    Void,
}

/// The statuses a customer filters their invoices by: `open` is every
/// invoice left to pay (overdue ones too).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum MyInvoiceStatus {
    Open,
    Overdue,
    Paid,
}

/// Who paid: the customer online, the autopay debit run, or staff
/// recording an offline payment.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InvoicePaymentSource {
    Customer,
    Autopay,
    Staff,
}

/// How an invoice was paid.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InvoicePaymentMethod {
    Card,
    SepaDebit,
    Cash,
    Cheque,
    BankTransfer,
    Other,
}

/// Where a payment stands.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InvoicePaymentStatus {
    Pending,
    Succeeded,
    Failed,
}

/// How a payment received outside Guichet was made.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OfflineMethod {
    Cash,
    Cheque,
    BankTransfer,
    Other,
}

/// A saved payment method's type.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PaymentMethodType {
    Card,
    SepaDebit,
}

/// What caused a `customer.autopay_updated` event.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AutopaySourceName {
    MethodSaved,
    AutopayChanged,
    MethodRemoved,
}
