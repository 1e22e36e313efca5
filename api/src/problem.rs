//! RFC 9457 problem details: the one error type of the HTTP layer.
//!
//! Handlers return [`ApiError`]; the edge middleware renders it in the
//! request's language with the request id. Internal causes are logged, never
//! sent.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use guichet_domain::Locale;
use guichet_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The content type of every error answer.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

macro_rules! problem_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $fr:literal, $en:literal), )*) => {
        /// Stable, machine-readable problem codes: what clients branch on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            /// The code as it appears in `code` and at the end of `type`.
            pub fn as_str(self) -> &'static str {
                match self { $(ProblemCode::$variant => $code,)* }
            }

            /// The status this code is answered with.
            pub fn status(self) -> StatusCode {
                let status = match self { $(ProblemCode::$variant => $status,)* };
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            /// The short human title, in French and English.
            pub fn title(self, locale: Locale) -> &'static str {
                match (self, locale) {
                    $((ProblemCode::$variant, Locale::Fr) => $fr,
                      (ProblemCode::$variant, Locale::En) => $en,)*
                }
            }
        }
    };
}

problem_codes! {
    /// The body is not valid JSON (syntax, encoding, nesting depth).
    MalformedJson = ("malformed_json", 400, "Corps JSON illisible", "Malformed JSON body"),
    /// The body has a field the operation does not know.
    UnknownField = ("unknown_field", 400, "Champ inconnu", "Unknown field"),
    /// A field is missing, of the wrong type or out of range.
    InvalidField = ("invalid_field", 400, "Champ invalide", "Invalid field"),
    /// A query-string or path parameter, or the `Idempotency-Key` header, is missing, malformed or out of range.
    InvalidParameter = ("invalid_parameter", 400, "Paramètre invalide", "Invalid parameter"),
    /// Any other malformed request.
    BadRequest = ("bad_request", 400, "Requête invalide", "Bad request"),
    /// No credentials were given.
    Unauthenticated = ("unauthenticated", 401, "Authentification requise", "Authentication required"),
    /// The access token or API key is malformed, expired, revoked or not ours.
    InvalidToken = ("invalid_token", 401, "Jeton invalide", "Invalid token"),
    /// Wrong e-mail or password (the two are never told apart).
    InvalidCredentials = ("invalid_credentials", 401, "Identifiants incorrects", "Invalid credentials"),
    /// Too many failures: solve a challenge from `GET /v1/auth/challenge` first.
    ChallengeRequired = ("challenge_required", 401, "Vérification anti-robot requise", "Challenge required"),
    /// The challenge answer is wrong, expired or already used.
    ChallengeInvalid = ("challenge_invalid", 401, "Vérification anti-robot invalide", "Invalid challenge"),
    /// The refresh token is unknown, spent or its session has ended.
    InvalidRefreshToken = ("invalid_refresh_token", 401, "Session expirée", "Invalid refresh token"),
    /// The caller's role may not do this.
    Forbidden = ("forbidden", 403, "Accès refusé", "Forbidden"),
    /// The account is blocked by the business; contact it.
    AccountBlocked = ("account_blocked", 403, "Compte bloqué", "Account blocked"),
    /// The business has turned this portal action off (for everyone or for this customer).
    PortalActionDisabled = ("portal_action_disabled", 403, "Action désactivée", "Portal action disabled"),
    /// The organization does not offer this sign-in method.
    LoginMethodDisabled = ("login_method_disabled", 403, "Mode de connexion non proposé", "Sign-in method not offered"),
    /// The request's `Origin` is not an allowed origin.
    OriginNotAllowed = ("origin_not_allowed", 403, "Origine non autorisée", "Origin not allowed"),
    /// No such route, or the resource does not exist or is not yours.
    NotFound = ("not_found", 404, "Ressource introuvable", "Not found"),
    /// The route exists but not with this method (see `Allow`).
    MethodNotAllowed = ("method_not_allowed", 405, "Méthode non autorisée", "Method not allowed"),
    /// This e-mail is already used by another customer or staff member of the organization.
    EmailAlreadyUsed = ("email_already_used", 409, "Adresse e-mail déjà utilisée", "E-mail already used"),
    /// The customer already has a password: activation is for first access only.
    AlreadyRegistered = ("already_registered", 409, "Accès déjà activé", "Already registered"),
    /// Another organization's portal already answers at this slug.
    SlugTaken = ("slug_taken", 409, "Adresse du portail déjà prise", "Slug taken"),
    /// The organization would be left without an active admin.
    LastAdmin = ("last_admin", 409, "Dernier administrateur", "Last admin"),
    /// The link or code has expired; ask for a new one.
    LinkExpired = ("link_expired", 410, "Lien expiré", "Link expired"),
    /// The body is larger than the configured limit.
    PayloadTooLarge = ("payload_too_large", 413, "Requête trop volumineuse", "Payload too large"),
    /// The body is not `application/json`.
    UnsupportedMediaType = ("unsupported_media_type", 415, "Type de contenu non pris en charge", "Unsupported media type"),
    /// The one-time code is wrong.
    InvalidCode = ("invalid_code", 422, "Code incorrect", "Invalid code"),
    /// No code is waiting (never sent, expired or already used); ask for a new one.
    CodeExpired = ("code_expired", 422, "Code expiré", "Code expired"),
    /// The reset link, activation code or setup token is not valid.
    InvalidLink = ("invalid_link", 422, "Lien ou code invalide", "Invalid link or code"),
    /// The current password given is wrong.
    CurrentPasswordIncorrect = ("current_password_incorrect", 422, "Mot de passe actuel incorrect", "Current password incorrect"),
    /// The password has fewer than 8 characters.
    PasswordTooShort = ("password_too_short", 422, "Mot de passe trop court", "Password too short"),
    /// The password has more than 128 characters.
    PasswordTooLong = ("password_too_long", 422, "Mot de passe trop long", "Password too long"),
    /// The password has no upper-case letter.
    PasswordMissingUppercase = ("password_missing_uppercase", 422, "Majuscule manquante", "Upper-case letter missing"),
    /// The password has no lower-case letter.
    PasswordMissingLowercase = ("password_missing_lowercase", 422, "Minuscule manquante", "Lower-case letter missing"),
    /// The password has no digit.
    PasswordMissingDigit = ("password_missing_digit", 422, "Chiffre manquant", "Digit missing"),
    /// The password has no special character.
    PasswordMissingSpecial = ("password_missing_special", 422, "Caractère spécial manquant", "Special character missing"),
    /// The password, once normalized, is in the list of common passwords.
    PasswordTooCommon = ("password_too_common", 422, "Mot de passe trop courant", "Password too common"),
    /// The password contains the person's or the organization's name or e-mail.
    PasswordContainsPersonalData = ("password_contains_personal_data", 422, "Mot de passe trop personnel", "Password contains personal data"),
    /// The request head (headers) is too large.
    RequestHeaderTooLarge = ("request_header_too_large", 431, "En-têtes de requête trop volumineux", "Request header too large"),
    /// Too many requests; retry after `Retry-After` seconds.
    RateLimited = ("rate_limited", 429, "Trop de requêtes", "Too many requests"),
    /// Too many failed sign-ins: the account is locked until `Retry-After`.
    AccountLocked = ("account_locked", 429, "Compte temporairement verrouillé", "Account temporarily locked"),
    /// Five wrong codes: this code is void; ask for a new one.
    CodeAttemptsExceeded = ("code_attempts_exceeded", 429, "Trop d'essais", "Too many attempts"),
    /// The body carries what looks like a card number: Guichet never takes
    /// one (cards arrive as gateway tokens).
    CardNumberRefused = ("card_number_refused", 400, "Numéro de carte refusé", "Card number refused"),
    /// Another order of the organization already has this order number.
    OrderNumberTaken = ("order_number_taken", 409, "Numéro de commande déjà utilisé", "Order number taken"),
    /// The card token is unknown to the payment gateway.
    CardTokenInvalid = ("card_token_invalid", 422, "Jeton de carte invalide", "Invalid card token"),
    /// The instalment plan breaks a schedule rule (see `errors`).
    InvalidSchedule = ("invalid_schedule", 422, "Échéancier invalide", "Invalid schedule"),
    /// The cancellation cannot be applied to this schedule (see `errors`).
    InvalidCancellation = ("invalid_cancellation", 422, "Annulation impossible", "Invalid cancellation"),
    /// The opening hours or time zone are not valid (see `errors`).
    InvalidOpeningHours = ("invalid_opening_hours", 422, "Horaires d'ouverture invalides", "Invalid opening hours"),
    /// The card's network is not accepted by the organization (see `accepted_brands`).
    CardBrandNotAccepted = ("card_brand_not_accepted", 422, "Réseau de carte non accepté", "Card brand not accepted"),
    /// The card expires before the last instalment it would pay (see `last_due_date`).
    CardExpiresBeforeLastInstalment = ("card_expires_before_last_instalment", 422, "La carte expire avant la dernière échéance", "Card expires before the last instalment"),
    /// The next debit is within the notice period: the card can no longer change before it.
    DebitAlreadyScheduled = ("debit_already_scheduled", 422, "Prélèvement déjà programmé", "Debit already scheduled"),
    /// The schedule is unpaid: regularize it instead of changing the card.
    ScheduleUnpaid = ("schedule_unpaid", 422, "Échéancier impayé", "Schedule unpaid"),
    /// The card has expired.
    CardExpired = ("card_expired", 422, "Carte expirée", "Card expired"),
    /// The schedule is completed or cancelled: nothing is left to pay.
    ScheduleClosed = ("schedule_closed", 422, "Échéancier clos", "Schedule closed"),
    /// The card issuer declined the card.
    CardDeclined = ("card_declined", 422, "Carte refusée", "Card declined"),
    /// The card details are not usable (expiry, security code).
    InvalidCard = ("invalid_card", 422, "Carte invalide", "Invalid card"),
    /// The payment gateway cannot be reached right now; retry later (same idempotency key).
    GatewayUnavailable = ("gateway_unavailable", 503, "Passerelle de paiement indisponible", "Payment gateway unavailable"),
    /// The payment gateway did not answer in time: the payment's outcome is not known yet; retry with the same idempotency key, which looks it up before anything is charged again.
    GatewayTimeout = ("gateway_timeout", 503, "Réponse de la passerelle de paiement en attente", "Payment gateway answer pending"),
    /// The schedule has nothing unpaid.
    NothingToRegularize = ("nothing_to_regularize", 409, "Rien à régulariser", "Nothing to regularize"),
    /// This number of payments is not offered for this amount.
    RegularizationOfferUnavailable = ("regularization_offer_unavailable", 422, "Offre de régularisation indisponible", "Regularization offer unavailable"),
    /// A payment needs an `Idempotency-Key` header.
    IdempotencyKeyRequired = ("idempotency_key_required", 400, "Clé d'idempotence requise", "Idempotency key required"),
    /// The idempotency key was already used with another request body.
    IdempotencyKeyReused = ("idempotency_key_reused", 422, "Clé d'idempotence déjà utilisée", "Idempotency key reused"),
    /// Another request with this idempotency key may still be running: retry after `Retry-After` seconds.
    IdempotencyKeyInUse = ("idempotency_key_in_use", 409, "Clé d'idempotence en cours d'utilisation", "Idempotency key in use"),
    /// The payment was refused (see `reason`, `collections` and `contact_channels`).
    PaymentFailed = ("payment_failed", 422, "Paiement refusé", "Payment failed"),
    /// Another regularization of this schedule is running; retry shortly.
    RegularizationInProgress = ("regularization_in_progress", 409, "Régularisation déjà en cours", "Regularization already in progress"),
    /// The IBAN's format or check digits are wrong ("Format de l'IBAN incorrect").
    IbanInvalid = ("iban_invalid", 422, "Format de l'IBAN incorrect", "Invalid IBAN format"),
    /// The BIC is not an ISO 9362 BIC.
    BicInvalid = ("bic_invalid", 422, "BIC invalide", "Invalid BIC"),
    /// The BIC's country is not the IBAN's.
    BicCountryMismatch = ("bic_country_mismatch", 422, "Le BIC ne correspond pas au pays de l'IBAN", "BIC country does not match the IBAN"),
    /// No BIC can be proposed for this IBAN: give it.
    BicRequired = ("bic_required", 422, "BIC requis", "BIC required"),
    /// The organization has not set its SEPA creditor settings yet.
    CreditorNotConfigured = ("creditor_not_configured", 409, "Créancier SEPA non configuré", "SEPA creditor not configured"),
    /// The amount is above what the account still owes (balance minus what is already scheduled).
    AmountExceedsBalance = ("amount_exceeds_balance", 422, "Montant supérieur au solde", "Amount exceeds the balance"),
    /// The account owes nothing that is not already scheduled for collection.
    NothingToCollect = ("nothing_to_collect", 409, "Rien à prélever", "Nothing to collect"),
    /// The account has a signed recurrent mandate: one-off mandates are no longer possible.
    RecurringMandateExists = ("recurring_mandate_exists", 409, "Prélèvement automatique déjà en place", "Recurring mandate exists"),
    /// The customer has no mobile number: the code cannot go by SMS.
    NoMobile = ("no_mobile", 422, "Aucun numéro de mobile", "No mobile number"),
    /// The mandate is no longer a draft (signed, revoked or expired).
    MandateNotDraft = ("mandate_not_draft", 409, "Mandat déjà signé ou clos", "Mandate is not a draft"),
    /// Only a signed mandate can be revoked.
    MandateNotSigned = ("mandate_not_signed", 409, "Mandat non signé", "Mandate is not signed"),
    /// The SEPA creditor identifier's format or check digits are wrong.
    CreditorIdInvalid = ("creditor_id_invalid", 422, "Identifiant créancier SEPA invalide", "Invalid SEPA creditor identifier"),
    /// Another account of the organization already has this reference.
    AccountReferenceTaken = ("account_reference_taken", 409, "Référence de compte déjà utilisée", "Account reference taken"),
    /// No collection of the organization is due that day: there is no pain.008 file to make.
    NoCollections = ("no_collections", 404, "Aucun prélèvement ce jour-là", "No collections that day"),
    /// Only a presented collection can receive the bank's result.
    CollectionNotPresented = ("collection_not_presented", 409, "Prélèvement non présenté", "Collection not presented"),
    /// The organization has not set its consent settings (activation page, video, terms).
    ConsentSettingsMissing = ("consent_settings_missing", 409, "Paramètres des invitations manquants", "Consent settings missing"),
    /// Another client account of the organization has this client reference.
    ClientReferenceTaken = ("client_reference_taken", 409, "Référence client déjà utilisée", "Client reference taken"),
    /// The consent is active or revoked: its contacts cannot be edited nor a new invitation sent.
    ConsentNotReinvitable = ("consent_not_reinvitable", 409, "Invitation impossible dans cet état", "Consent cannot be invited again"),
    /// The consent is already revoked.
    ConsentAlreadyRevoked = ("consent_already_revoked", 409, "Accord déjà révoqué", "Consent already revoked"),
    /// The consent is already active: the link has served.
    ConsentAlreadyActive = ("consent_already_active", 409, "Service déjà activé", "Consent already active"),
    /// The activation link has expired (14 days); the office can send a new one.
    InvitationExpired = ("invitation_expired", 410, "Lien d'activation expiré", "Activation link expired"),
    /// The consent was revoked by the office.
    ConsentRevoked = ("consent_revoked", 410, "Accord révoqué", "Consent revoked"),
    /// An earlier step of the activation is missing (the SMS code first), or its step token is spent or expired.
    StepNotCompleted = ("step_not_completed", 403, "Étape précédente non terminée", "Previous step not completed"),
    /// The bank step has not started: confirm the card first.
    BankStepNotStarted = ("bank_step_not_started", 409, "Étape bancaire non commencée", "Bank step not started"),
    /// The cardholder has not finished on the bank's page yet.
    BankAuthenticationPending = ("bank_authentication_pending", 409, "Authentification bancaire en attente", "Bank authentication pending"),
    /// The bank did not authenticate the cardholder; `reason` says what to check.
    BankAuthenticationFailed = ("bank_authentication_failed", 422, "Authentification bancaire échouée", "Bank authentication failed"),
    /// The card does not match the client reference the office ordered for.
    CardReferenceMismatch = ("card_reference_mismatch", 422, "La carte ne correspond pas à la référence client", "Card does not match the client reference"),
    /// A debit card: the service needs a credit card.
    CardNotCredit = ("card_not_credit", 422, "Ce n'est pas une carte de crédit", "Not a credit card"),
    /// The client reference confirmed is not the one the office entered.
    ClientReferenceMismatch = ("client_reference_mismatch", 422, "Référence client différente", "Client reference mismatch"),
    /// The terms were not accepted, or not in their current version.
    TermsNotAccepted = ("terms_not_accepted", 422, "Conditions non acceptées", "Terms not accepted"),
    /// The sandbox issuer's session was already answered.
    ScaAlreadyDecided = ("sca_already_decided", 409, "Authentification déjà terminée", "Authentication already finished"),
    /// The `Range` asked for lies outside the document (see `Content-Range`).
    RangeNotSatisfiable = ("range_not_satisfiable", 416, "Plage non disponible", "Range not satisfiable"),
    /// The conversation is closed: the business may reopen it.
    ConversationClosed = ("conversation_closed", 409, "Conversation close", "Conversation closed"),
    /// The business does not take bookings online now.
    OnlineBookingDisabled = ("online_booking_disabled", 403, "Réservation en ligne fermée", "Online booking disabled"),
    /// The start is sooner than the business's minimum notice or beyond how far ahead it takes bookings.
    OutsideBookingWindow = ("outside_booking_window", 422, "Hors de la période de réservation", "Outside the booking window"),
    /// The start is not a free slot of the service (closed, not on the grid, or the service would not fit).
    SlotUnavailable = ("slot_unavailable", 422, "Créneau indisponible", "Slot unavailable"),
    /// Another booking took the slot (or overlaps it) first.
    SlotTaken = ("slot_taken", 409, "Créneau déjà pris", "Slot taken"),
    /// The customer already holds as many pending requests as the business allows.
    TooManyPending = ("too_many_pending", 409, "Trop de demandes en attente", "Too many pending requests"),
    /// The business does not let customers cancel online.
    CancellationNotAllowed = ("cancellation_not_allowed", 409, "Annulation en ligne non proposée", "Cancellation not allowed"),
    /// Too close to the start to cancel online (see `cancel_until`).
    TooLateToCancel = ("too_late_to_cancel", 409, "Trop tard pour annuler", "Too late to cancel"),
    /// The business does not let customers reschedule online.
    RescheduleNotAllowed = ("reschedule_not_allowed", 409, "Report en ligne non proposé", "Reschedule not allowed"),
    /// Too close to the start to reschedule online (see `reschedule_until`).
    TooLateToReschedule = ("too_late_to_reschedule", 409, "Trop tard pour reporter", "Too late to reschedule"),
    /// The booking's status does not allow this (already cancelled, declined, done or past).
    BookingStatusConflict = ("booking_status_conflict", 409, "Réservation dans un autre état", "Booking status conflict"),
    /// The booking has not started yet: it cannot be completed or marked no-show.
    BookingNotStarted = ("booking_not_started", 409, "Rendez-vous pas encore commencé", "Booking not started"),
    /// The invoice is void: nothing can be paid or changed on it.
    InvoiceVoid = ("invoice_void", 409, "Facture annulée", "Invoice void"),
    /// The invoice is already paid in full.
    InvoiceAlreadyPaid = ("invoice_already_paid", 409, "Facture déjà payée", "Invoice already paid"),
    /// Only a draft can be issued.
    InvoiceNotDraft = ("invoice_not_draft", 409, "Facture déjà émise", "Invoice not a draft"),
    /// Part of the invoice is paid (or a payment is under way): it cannot be voided.
    InvoiceHasPayments = ("invoice_has_payments", 409, "Facture déjà en partie payée", "Invoice has payments"),
    /// Another payment of this invoice is under way; retry after `Retry-After`.
    InvoicePaymentInProgress = ("invoice_payment_in_progress", 409, "Paiement déjà en cours", "Payment in progress"),
    /// The organization already has an invoice with this number.
    InvoiceNumberTaken = ("invoice_number_taken", 409, "Numéro de facture déjà pris", "Invoice number taken"),
    /// The amount is more than what is due on the invoice (see `amount_due`).
    AmountAboveDue = ("amount_above_due", 422, "Montant supérieur au dû", "Amount above what is due"),
    /// This saved payment method cannot pay an invoice at once (a SEPA mandate).
    PaymentMethodNotSupported = ("payment_method_not_supported", 422, "Moyen de paiement non accepté ici", "Payment method not supported"),
    /// The business takes only payment in full (see `amount_due`).
    PartialPaymentNotAllowed = ("partial_payment_not_allowed", 422, "Paiement partiel non accepté", "Partial payment not allowed"),
    /// The customer already saved this card token or mandate (a live method).
    PaymentMethodExists = ("payment_method_exists", 409, "Moyen de paiement déjà enregistré", "Payment method already saved"),
    /// The mandate is not signed, revoked or expired, or one-off: only a signed recurring mandate can be saved.
    MandateNotUsable = ("mandate_not_usable", 422, "Mandat inutilisable", "Mandate not usable"),
    /// The business does not let customers change their autopay (method or on/off).
    AutopayChangeNotAllowed = ("autopay_change_not_allowed", 403, "Modification du paiement automatique non autorisée", "Autopay change not allowed"),
    /// The method pays an active autopay or a schedule in progress (see `used_by`).
    PaymentMethodInUse = ("payment_method_in_use", 409, "Moyen de paiement utilisé", "Payment method in use"),
    /// Autopay needs a payment method: give one, or save one first.
    PaymentMethodRequired = ("payment_method_required", 422, "Moyen de paiement requis", "Payment method required"),
    /// A value breaks a rule of the field beyond its type and length (see
    /// `errors`; e.g. a webhook URL that is not `https://`).
    ValidationFailed = ("validation_failed", 422, "Valeur refusée", "Validation failed"),
    /// The webhook URL's host leads to a loopback, private, link-local,
    /// multicast, unspecified or otherwise internal address.
    WebhookUrlForbidden = ("webhook_url_forbidden", 422, "Adresse de webhook interdite", "Webhook URL forbidden"),
    /// An event type is not in the catalogue (docs/EVENTS.md) and is not `*`.
    UnknownEventType = ("unknown_event_type", 422, "Type d'événement inconnu", "Unknown event type"),
    /// An unexpected error; quote the request id to support.
    InternalError = ("internal_error", 500, "Erreur interne", "Internal error"),
    /// The database cannot be reached right now; retry later.
    DatabaseUnavailable = ("database_unavailable", 503, "Base de données indisponible", "Database unavailable"),
}

/// A text in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized {
    pub fr: String,
    pub en: String,
}

impl Localized {
    pub fn new(fr: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            fr: fr.into(),
            en: en.into(),
        }
    }

    pub fn get(&self, locale: Locale) -> &str {
        match locale {
            Locale::Fr => &self.fr,
            Locale::En => &self.en,
        }
    }
}

/// One field-level reason inside a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name (dotted path for nested fields); empty for the body.
    pub field: String,
    /// A stable code for this field's refusal.
    pub code: String,
}

/// The RFC 9457 body every error answers with.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://guichet.dev/problems/unknown-field",
    "title": "Champ inconnu",
    "status": 400,
    "code": "unknown_field",
    "detail": "Le champ « colour » n'est pas attendu.",
    "request_id": "req_0123456789abcdefghjk",
    "errors": [{"field": "colour", "code": "unknown"}]
}))]
pub struct Problem {
    /// A URI naming the problem type; its last segment is `code` in kebab-case.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary in the negotiated language (`Accept-Language`: fr or en).
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable code clients branch on.
    pub code: ProblemCode,
    /// What happened in this case, in the negotiated language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id, also in the `X-Request-Id` header; quote it to support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level reasons, when the problem is about the request's fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Members particular to some problems, e.g. `remaining_attempts`.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ProblemCode,
    pub detail: Option<Box<Localized>>,
    pub errors: Vec<FieldError>,
    /// A status other than the code's own, for framework errors that have
    /// no code of their own (e.g. 408): the status is kept, the code is the
    /// generic one.
    pub status_override: Option<StatusCode>,
    /// Extra headers such as `Allow` or `Retry-After`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The internal cause: logged with the request id, never sent.
    pub cause: Option<String>,
    /// Members added to the body (e.g. `remaining_attempts`).
    pub extensions: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(code: ProblemCode) -> Self {
        Self {
            code,
            detail: None,
            errors: Vec::new(),
            status_override: None,
            headers: Vec::new(),
            cause: None,
            extensions: Vec::new(),
        }
    }

    /// Adds a member to the problem body.
    pub fn extension(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.extensions.push((name, value));
        self
    }

    pub fn detail(mut self, fr: impl Into<String>, en: impl Into<String>) -> Self {
        self.detail = Some(Box::new(Localized::new(fr, en)));
        self
    }

    pub fn field(mut self, field: impl Into<String>, code: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            code: code.into(),
        });
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// An unexpected failure: the client sees a generic problem only.
    pub fn internal(cause: impl Into<String>) -> Self {
        ApiError::new(ProblemCode::InternalError).cause(cause)
    }

    pub fn not_found() -> Self {
        ApiError::new(ProblemCode::NotFound)
    }

    pub fn status(&self) -> StatusCode {
        self.status_override.unwrap_or_else(|| self.code.status())
    }

    /// The body in `locale`, carrying `request_id`.
    pub fn to_problem(&self, locale: Locale, request_id: Option<&str>) -> Problem {
        Problem {
            type_uri: format!(
                "https://guichet.dev/problems/{}",
                self.code.as_str().replace('_', "-")
            ),
            title: self.code.title(locale).to_owned(),
            status: self.status().as_u16(),
            code: self.code,
            detail: self.detail.as_ref().map(|d| d.get(locale).to_owned()),
            request_id: request_id.map(str::to_owned),
            errors: self.errors.clone(),
            extensions: self
                .extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    /// The full HTTP answer in `locale`.
    pub fn render(&self, locale: Locale, request_id: Option<&str>) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        response.content_type(PROBLEM_CONTENT_TYPE);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            response.insert_header((
                actix_web::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            ));
        }
        response.json(self.to_problem(locale, request_id))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    /// The default rendering (French, no request id); the edge middleware
    /// renders it again in the request's language with its id.
    fn error_response(&self) -> HttpResponse {
        self.render(Locale::Fr, None)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::SlotTaken => crate::routes::bookings::slot_taken(),
            StoreError::Unavailable(cause) => {
                ApiError::new(ProblemCode::DatabaseUnavailable).cause(cause)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::internal(format!("blocking task failed: {error}"))
    }
}
