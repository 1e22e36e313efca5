//! The OpenAPI document, assembled from the same route registrations the
//! server uses.

use actix_web::App;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, ObjectBuilder, OpenApi as Spec, RefOr, Required, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::problem::{FieldError, Problem, ProblemCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guichet API",
        description = "Customer self-service payment portal: instalment schedules, cards, \
regularization, SEPA mandates, autopay. Errors are RFC 9457 problem details \
(`application/problem+json`) with a stable `code`; `title` and `detail` follow \
`Accept-Language` (fr, en; default fr). Money is integer minor units with an ISO 4217 currency.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        Problem,
        ProblemCode,
        FieldError,
        crate::routes::schedules::contact::ContactChannelList,
        crate::routes::schedules::contact::CollectionsView,
        crate::routes::views::MoneyView,
        crate::routes::enums::CardBrand,
        crate::routes::enums::MandateStatus,
        crate::routes::enums::BookingListView,
        crate::routes::enums::BookingStatusName,
        crate::routes::enums::InvoiceStatus,
        crate::routes::enums::MyInvoiceStatus,
        crate::routes::enums::InvoiceKind,
        crate::routes::invoices::InvoiceEventData,
        crate::routes::events::InstalmentEventData,
        crate::routes::events::RefundEventData,
        crate::routes::events::PingData,
        crate::routes::sepa::collections::CollectionView,
        crate::routes::sepa::mandates::MandateReview,
        crate::routes::admin::customers::CustomerView,
        crate::routes::views::ScheduleView,
        crate::routes::payment_methods::PaymentMethodEventData,
        crate::routes::payment_methods::AutopayEventData,
    )),
    servers((url = "/", description = "The server that serves this document.")),
    modifiers(&SecuritySchemes, &ProblemExtensions, &CommonResponses),
    tags(
        (name = "operations", description = "Health, readiness and metrics."),
        (name = "auth", description = "Sign-in for customers and staff: password, first connection, one-time codes, activation codes, password recovery, sessions. Rate limited per IP."),
        (name = "me", description = "The signed-in customer's own data (customer token)."),
        (name = "admin", description = "The business side: customers, staff, API keys, settings (staff token or API key)."),
        (name = "webhooks", description = "Webhook endpoints: where the organization's events are sent, signed the Standard Webhooks way; their delivery log, test pings and redeliveries (admin token or API key); and, in `webhooks`, the events sent to them, one per type (the same JSON as `GET /v1/admin/events/{id}`)."),
        (name = "portal", description = "The client portal: what the business configures (actions, sign-in methods, branding, slug, logo, per-customer overrides, preview), and the public sign-in page data."),
        (name = "schedules", description = "The customer's instalment schedules: card change, regularization, contact channels (customer token)."),
        (name = "consents", description = "Consent invitations: the business orders a service for a client account and tracks it (staff token or API key); the cardholder activates it alone by link (public, by the link's token)."),
        (name = "bookings", description = "Bookings: the business's services, providers, availability and online-booking settings, its bookings (staff token or API key); the customer's free slots, requests, cancellations and reschedules (customer token, while the portal's `bookings` action is on)."),
        (name = "invoices", description = "Invoices and payment requests: the business writes, issues (numbered, PDF shared and e-mailed), voids and records offline payments (staff token or API key); the customer reads and pays them online (`/v1/me/invoices`, customer token, while the portal's `payments` action is on)."),
        (name = "payments", description = "Saved payment methods (cards as gateway tokens, signed recurring SEPA mandates) and autopay, under the business's autopay settings (customer token, while the portal's `payments` action is on)."),
        (name = "sandbox", description = "The built-in sandbox payment gateway: tokenization of test cards, and its ledger of the charges and refunds it received (served only when the sandbox is the gateway)."),
        (name = "documents", description = "Documents the business shares with one customer (staff), and the customer's documents with their signed mandates (customer token). Bytes are streamed, checked against their SHA-256."),
        (name = "messages", description = "Conversations between a customer and the business: the customer writes (customer token), staff answer, assign, close and reopen (staff token or API key)."),
    ),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Spec) {
        // One scheme for every bearer credential, so that whatever is pasted
        // into Swagger UI's "Authorize" is sent: a customer's or staff
        // member's access token, or an organization's API key.
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <credential>`. The credential is an access token \
(a JWT from /v1/auth/..., valid 15 minutes: customers use /v1/me, staff /v1/admin) or, on the \
operations marked `x-api-key: true` (their description says so too), an organization's \
server-to-server API key (`gk_...`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The members some problems add to the body, as optional typed
/// properties of `Problem` (which still allows others).
struct ProblemExtensions;

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

fn described(schema: ObjectBuilder, description: &str) -> RefOr<Schema> {
    schema.description(Some(description)).into()
}

fn with_description(name: &str, description: &str) -> RefOr<Schema> {
    // A $ref's siblings are allowed in OpenAPI 3.1.
    let mut reference = utoipa::openapi::Ref::from_schema_name(name);
    reference.description = description.to_owned();
    RefOr::Ref(reference)
}

impl Modify for ProblemExtensions {
    fn modify(&self, openapi: &mut Spec) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("Problem") else {
            return;
        };
        let date = || string_schema().format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)));
        let count = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
        };
        let members: [(&str, RefOr<Schema>); 11] = [
            (
                "remaining_attempts",
                described(
                    count(),
                    "With `invalid_code`: wrong entries left before the code is void.",
                ),
            ),
            (
                "next_debit_on",
                described(
                    date(),
                    "With `debit_already_scheduled`: the date of the next debit.",
                ),
            ),
            (
                "notice_days",
                described(
                    count(),
                    "With `debit_already_scheduled`: the days of notice a card change needs before a debit.",
                ),
            ),
            (
                "accepted_brands",
                ArrayBuilder::new()
                    .items(schema_ref("CardBrand"))
                    .description(Some(
                        "With `card_brand_not_accepted`: the brands the organization accepts.",
                    ))
                    .into(),
            ),
            (
                "last_due_date",
                described(
                    date(),
                    "With `card_expires_before_last_instalment`: the last due date the card must cover.",
                ),
            ),
            (
                "reason",
                described(
                    string_schema(),
                    "With `payment_failed`: the payment gateway's code for the refusal.",
                ),
            ),
            (
                "collections",
                with_description(
                    "CollectionsView",
                    "With the payment refusals: the collections phone with its `tel:` link.",
                ),
            ),
            (
                "contact_channels",
                with_description(
                    "ContactChannelList",
                    "With the payment refusals: the contact channels and whether each is open now.",
                ),
            ),
            (
                "mandate_status",
                with_description(
                    "MandateStatus",
                    "With `mandate_not_draft` and `mandate_not_signed`: the mandate's status.",
                ),
            ),
            (
                "used_by",
                ArrayBuilder::new()
                    .items(string_schema())
                    .description(Some(
                        "With `payment_method_in_use`: what the method pays: `autopay`, and the ids (`ord_...`) of the schedules debited from the card.",
                    ))
                    .into(),
            ),
            (
                "collectible",
                with_description(
                    "MoneyView",
                    "With `amount_exceeds_balance`: what the account may still have collected.",
                ),
            ),
        ];
        for (name, schema) in members {
            problem.properties.insert(name.to_owned(), schema);
        }
    }
}

/// Adds what every operation shares, so that nothing goes undocumented:
/// - the answers any operation can give: 431 and 500 everywhere; 400, 413
///   and 415 wherever a body is read; 503 wherever the database is used;
/// - the `Accept-Language` parameter;
/// - the response headers the edge sets: `X-Request-Id` on every answer,
///   `WWW-Authenticate` on 401, `Retry-After` on 429, `Idempotent-Replayed`
///   on the successes of operations that take an `Idempotency-Key`;
/// - `security: []` for the public operations, which say `security(())`;
/// - a sentence in the description of operations marked `x-api-key`.
struct CommonResponses;

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn header(schema: ObjectBuilder, description: &str) -> Header {
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

/// `Accept-Language`, which every operation reads: problem titles and
/// details, and some bodies, follow it.
fn accept_language(op: &mut Operation) {
    let parameters = op.parameters.get_or_insert_with(Vec::new);
    if parameters
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("Accept-Language"))
    {
        return;
    }
    parameters.push(
        ParameterBuilder::new()
            .name("Accept-Language")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The language of problem titles and details (and of the texts and documents that \
have one): `fr` or `en`, with the usual quality values (`en-GB,en;q=0.9`). Default `fr`.",
            ))
            .schema(Some(string_schema().examples(["en"])))
            .build(),
    );
}

fn takes_idempotency_key(op: &Operation) -> bool {
    op.parameters.as_ref().is_some_and(|parameters| {
        parameters
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case("Idempotency-Key"))
    })
}

/// The response headers the edge and the idempotency layer set.
fn response_headers(op: &mut Operation) {
    let idempotent = takes_idempotency_key(op);
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let headers = &mut response.headers;
        headers.entry("X-Request-Id".to_owned()).or_insert_with(|| {
            header(
                string_schema(),
                "The request's id: the caller's own `X-Request-Id` when it sent a valid one, \
otherwise a new one. Logged with the request; quote it to support.",
            )
        });
        match status.as_str() {
            "401" => {
                headers
                    .entry("WWW-Authenticate".to_owned())
                    .or_insert_with(|| {
                        header(
                            string_schema().enum_values(Some(["Bearer"])),
                            "Always `Bearer`.",
                        )
                    });
            }
            "429" => {
                headers.entry("Retry-After".to_owned()).or_insert_with(|| {
                    header(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                        "Whole seconds to wait before a retry may go through.",
                    )
                });
            }
            _ => {}
        }
        if idempotent && status.starts_with('2') {
            headers
                .entry("Idempotent-Replayed".to_owned())
                .or_insert_with(|| {
                    header(
                        string_schema().enum_values(Some(["true"])),
                        "`true` when this answer is the stored answer to an earlier request \
with the same `Idempotency-Key`; absent otherwise.",
                    )
                });
        }
    }
}

/// Public operations are annotated `security(())`, which utoipa writes as
/// one empty requirement; the document says `security: []`.
fn public_security(op: &mut Operation) {
    if let Some(requirements) = &mut op.security
        && requirements
            .iter()
            .all(|r| *r == SecurityRequirement::default())
    {
        requirements.clear();
    }
}

const API_KEY_NOTE: &str = "Staff access token or organization API key (`x-api-key: true`).";

fn api_key_note(op: &mut Operation) {
    let marked = op
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("x-api-key") == Some(&serde_json::Value::Bool(true)));
    if !marked {
        return;
    }
    let description = op.description.get_or_insert_with(String::new);
    if description.contains(API_KEY_NOTE) {
        return;
    }
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(API_KEY_NOTE);
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                )))),
            )
            .build(),
    )
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut Spec) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let uses_database = path.starts_with("/v1/") && path != "/v1/auth/challenge";
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                public_security(op);
                api_key_note(op);
                let has_body = op.request_body.is_some();
                let has_parameters = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                accept_language(op);
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, text: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(text));
                };
                if has_body {
                    add(
                        "400",
                        "Malformed body, a body or field of the wrong JSON type, a control character in a string, or a card number anywhere in the body. Codes: `malformed_json`, `unknown_field`, `invalid_field`, `card_number_refused`.",
                    );
                    add(
                        "413",
                        "Body over the size limit. Codes: `payload_too_large`.",
                    );
                    add(
                        "415",
                        "Body not sent as application/json. Codes: `unsupported_media_type`.",
                    );
                }
                if has_parameters {
                    add(
                        "400",
                        "A path or query-string parameter is malformed or holds a control character. Codes: `invalid_parameter`.",
                    );
                }
                if uses_database {
                    add(
                        "503",
                        "The database cannot be reached; retry later. Codes: `database_unavailable`.",
                    );
                }
                add(
                    "431",
                    "Request headers over the size limit. Codes: `request_header_too_large`.",
                );
                add(
                    "500",
                    "Unexpected error; the body carries only the request id. Codes: `internal_error`.",
                );
                response_headers(op);
            }
        }
    }
}

/// A file in a response body: `type: string, format: binary`, used inline
/// with the file's media type (`body = inline(Binary)`).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

/// A postal address line: 1 to 70 characters, not blank, on one line (no
/// line break nor other control character but tab).
const ADDRESS_LINE: &str = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$";

fn address_line() -> ObjectBuilder {
    string_schema()
        .min_length(Some(1))
        .max_length(Some(70))
        .pattern(Some(ADDRESS_LINE))
}

/// The creditor's address (`schema_with`): 1 to 4 lines.
pub fn creditor_address() -> Schema {
    ArrayBuilder::new()
        .items(address_line())
        .min_items(Some(1))
        .max_items(Some(4))
        .description(Some("1 to 4 lines of 1 to 70 characters."))
        .examples([serde_json::json!([
            "12 rue des Lilas",
            "75011 Paris",
            "France"
        ])])
        .build()
        .into()
}

/// A debtor's address in a mandate request (`schema_with`): up to 4
/// lines, or null.
pub fn debtor_address() -> Schema {
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(address_line())
        .max_items(Some(4))
        .description(Some(
            "The debtor's postal address, one entry per line (at most 4 lines of 70 characters).",
        ))
        .build()
        .into()
}

/// The complete OpenAPI document of this build.
pub fn spec() -> Spec {
    let (_, spec) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    let mut spec = spec;
    // Modifiers of ApiDoc ran before the routes were added; run again the
    // ones that read the paths, or a schema the routes register again.
    ProblemExtensions.modify(&mut spec);
    CommonResponses.modify(&mut spec);
    new_password_rule(&mut spec);
    sandbox_card_rule(&mut spec);
    order_plan_forms(&mut spec);
    payment_method_forms(&mut spec);
    time_zone_names(&mut spec);
    at_least_one_property(&mut spec);
    edge_string_rules(&mut spec);
    spec.info.version = env!("CARGO_PKG_VERSION").to_owned();
    spec
}

/// The properties in which a client chooses a new password
/// (`(component, property)`), checked with `guichet_domain::password`.
pub const NEW_PASSWORD_FIELDS: [(&str, &str); 5] = [
    ("RegisterRequest", "password"),
    ("ActivateRequest", "password"),
    ("ResetRequest", "password"),
    ("StaffSetupRequest", "password"),
    ("ChangePassword", "new_password"),
];

/// Writes the password rule into the schema of every new password: the
/// lengths as keywords, the rest in words with its codes. (A `pattern`
/// with lookaheads and `\p{Lu}`-style classes would state the composition
/// exactly in ECMA-262, but the OpenAPI validators read patterns as Python
/// regular expressions, which have no Unicode categories; and the common
/// password and personal data rules cannot be stated anyway.)
fn new_password_rule(spec: &mut Spec) {
    use guichet_domain::password::{MAX_LENGTH, MIN_LENGTH};
    let Some(components) = &mut spec.components else {
        return;
    };
    for (component, property) in NEW_PASSWORD_FIELDS {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(component) else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property) else {
            continue;
        };
        field.min_length = Some(MIN_LENGTH);
        field.max_length = Some(MAX_LENGTH);
        field.pattern = None;
        field.description = Some(format!(
            "{MIN_LENGTH} to {MAX_LENGTH} characters. The rest of the password rule answers 422 \
with one code per unmet rule: an upper-case letter (Unicode category `Lu`, \
`password_missing_uppercase`), a lower-case letter (`Ll`, `password_missing_lowercase`), a \
digit (any number, `N`, `password_missing_digit`), a special character (neither a letter, nor a \
number, nor white space, `password_missing_special`), not one of the 30,000 most common \
passwords with their decorations undone (`password_too_common`), nor containing the person's \
or the organization's name or e-mail (`password_contains_personal_data`)."
        ));
    }
}

/// White space as Rust's `str::trim` reads it (the Unicode `White_Space`
/// property), spelled out: `\s` differs between Rust and ECMA-262.
const WHITE_SPACE: &str =
    "\\t\\n\\v\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";

/// The sandbox's tokenization takes its test cards only: the number is one
/// of them, with spaces or hyphens anywhere and white space around
/// (`guichet_domain::gateway::Pan::parse`); the security code is 3 or 4
/// digits with white space around (`Cvc::parse`).
fn sandbox_card_rule(spec: &mut Spec) {
    use guichet_domain::gateway::TEST_CARDS;
    let Some(components) = &mut spec.components else {
        return;
    };
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut("NewCardToken") else {
        return;
    };
    let cards: Vec<String> = TEST_CARDS
        .iter()
        .map(|(number, _)| {
            number
                .chars()
                .map(|digit| format!("[ -]*{digit}"))
                .collect::<String>()
        })
        .collect();
    let number = format!(
        "^[{WHITE_SPACE}]*(?:{})[ -]*[{WHITE_SPACE}]*$",
        cards.join("|")
    );
    if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut("number") {
        field.pattern = Some(number);
        field.description = Some(
            "One of the sandbox's test card numbers (spaces or hyphens allowed between digits); \
any other number is refused."
                .to_owned(),
        );
    }
    if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut("cvc") {
        field.pattern = Some(format!("^[{WHITE_SPACE}]*[0-9]{{3,4}}[{WHITE_SPACE}]*$"));
        field.description = Some(
            "The security code: 4 digits for American Express, 3 for the others (a wrong \
length for the brand answers 422 `invalid_card`)."
                .to_owned(),
        );
    }
}

/// An order gives its instalments in one of two forms: equal instalments
/// (`instalments` with `first_due_date`) or an explicit `plan`, never both
/// (`routes::admin::orders::order::build_schedule`). A null counts as
/// absent. The two forms exclude each other by their members' types, so
/// `anyOf` states them exactly; Redocly's recommended rules take a `oneOf`
/// for overlapping unless a member is required in both, which neither form
/// can be.
fn order_plan_forms(spec: &mut Spec) {
    use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder};
    let Some(components) = &mut spec.components else {
        return;
    };
    let Some(order) = components.schemas.get_mut("CreateOrder") else {
        return;
    };
    let typed = |kind: Type| ObjectBuilder::new().schema_type(kind).build();
    let null = || typed(Type::Null);
    let equal = ObjectBuilder::new()
        .title(Some("Equal instalments"))
        .required("instalments")
        .required("first_due_date")
        .property("instalments", typed(Type::Integer))
        .property("first_due_date", typed(Type::String))
        .property("plan", null())
        .build();
    let explicit = ObjectBuilder::new()
        .title(Some("Explicit plan"))
        .required("plan")
        .property("plan", typed(Type::Array))
        .property("instalments", null())
        .property("first_due_date", null())
        .build();
    let forms = AnyOfBuilder::new().item(equal).item(explicit).build();
    let original = std::mem::replace(order, RefOr::T(Schema::Object(Default::default())));
    *order = RefOr::T(Schema::AllOf(
        AllOfBuilder::new()
            .item(original)
            .item(RefOr::T(Schema::AnyOf(forms)))
            .build(),
    ));
}

/// A method to save is a card (`type: card` with `card_token`) or a SEPA
/// mandate (`type: sepa_debit` with `mandate_id`), never both
/// (`routes::payment_methods::customer::create`). A null counts as absent.
fn payment_method_forms(spec: &mut Spec) {
    use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder};
    let Some(components) = &mut spec.components else {
        return;
    };
    let Some(body) = components.schemas.get_mut("NewPaymentMethod") else {
        return;
    };
    let typed = |kind: Type| ObjectBuilder::new().schema_type(kind).build();
    let kind = |name: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([name]))
            .build()
    };
    let card = ObjectBuilder::new()
        .title(Some("Card"))
        .required("type")
        .required("card_token")
        .property("type", kind("card"))
        .property("card_token", typed(Type::String))
        .property("mandate_id", typed(Type::Null))
        .build();
    let sepa = ObjectBuilder::new()
        .title(Some("SEPA direct debit"))
        .required("type")
        .required("mandate_id")
        .property("type", kind("sepa_debit"))
        .property("mandate_id", typed(Type::String))
        .property("card_token", typed(Type::Null))
        .build();
    let forms = AnyOfBuilder::new().item(card).item(sepa).build();
    let original = std::mem::replace(body, RefOr::T(Schema::Object(Default::default())));
    *body = RefOr::T(Schema::AllOf(
        AllOfBuilder::new()
            .item(original)
            .item(RefOr::T(Schema::AnyOf(forms)))
            .build(),
    ));
}

/// Objects that need one of their optional members at least: utoipa-gen
/// 5.5 writes `#[schema(min_properties = N)]` as `maxProperties`, so the
/// bound is set here.
fn at_least_one_property(spec: &mut Spec) {
    let Some(components) = &mut spec.components else {
        return;
    };
    for schema in ["ServiceNames"] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) {
            object.min_properties = Some(1);
        }
    }
}

/// The time zone of the contact-channel and booking settings is one of the
/// IANA names the server knows (`OrgTimeZone::parse`).
fn time_zone_names(spec: &mut Spec) {
    use guichet_domain::contact_channels::OrgTimeZone;
    let Some(components) = &mut spec.components else {
        return;
    };
    // A pattern rather than an enum: generated clients make an enum a type
    // with one member per name, and `GMT+0`, `GMT-0` and `GMT0` collide
    // there.
    let names: Vec<String> = OrgTimeZone::names().map(regex_escape).collect();
    let pattern = format!("^(?:{})$", names.join("|"));
    for schema in [
        "ContactChannelsView",
        "BookingSettingsBody",
        "BookingSettingsView",
    ] {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
            continue;
        };
        if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut("time_zone") {
            field.pattern = Some(pattern.clone());
        }
    }
}

/// `text` as a regular expression matching only itself.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A string with no control character but tab, carriage return and line
/// feed: what the edge lets through in every body string and every path or
/// query parameter (`guichet_domain::free_text::is_refused_control`, the
/// Unicode `Cc` category).
const NO_CONTROL: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// The same, with at least one character that is not white space (the
/// fields the server refuses blank, documented with the pattern `\S`).
const NO_CONTROL_NOT_BLANK: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// An id in a path: a type prefix, `_` and random base-32 characters
/// (`guichet_domain::ids`).
const PATH_ID: &str = "^[A-Za-z0-9_-]{1,64}$";

/// A key of the `Idempotency-Key` header: 1 to 255 visible ASCII characters.
const IDEMPOTENCY_KEY: &str = "^[\\x21-\\x7E]{1,255}$";

/// Whether a schema object describes a free string: a string (maybe
/// nullable) with no enum or format to constrain it already.
fn is_free_string(object: &utoipa::openapi::schema::Object) -> bool {
    use utoipa::openapi::schema::SchemaType;
    let is_string = match &object.schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    };
    is_string && object.enum_values.is_none() && object.format.is_none()
}

/// Writes the edge's rule on control characters into every free string
/// schema within `schema` (a pattern `\S` becomes its stricter twin),
/// noting in `refs` the components it refers to.
fn refuse_controls(schema: &mut RefOr<Schema>, refs: &mut Vec<String>) {
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems};
    let schema = match schema {
        RefOr::Ref(reference) => {
            if let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") {
                refs.push(name.to_owned());
            }
            return;
        }
        RefOr::T(schema) => schema,
    };
    match schema {
        Schema::Object(object) => {
            if is_free_string(object) {
                match object.pattern.as_deref() {
                    None => object.pattern = Some(NO_CONTROL.to_owned()),
                    Some("\\S") => object.pattern = Some(NO_CONTROL_NOT_BLANK.to_owned()),
                    Some(_) => {}
                }
            }
            for property in object.properties.values_mut() {
                refuse_controls(property, refs);
            }
            if let Some(additional) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(inner) = additional
            {
                refuse_controls(inner, refs);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                refuse_controls(items, refs);
            }
        }
        Schema::OneOf(one_of) => one_of
            .items
            .iter_mut()
            .for_each(|s| refuse_controls(s, refs)),
        Schema::AllOf(all_of) => all_of
            .items
            .iter_mut()
            .for_each(|s| refuse_controls(s, refs)),
        Schema::AnyOf(any_of) => any_of
            .items
            .iter_mut()
            .for_each(|s| refuse_controls(s, refs)),
        _ => {}
    }
}

/// The rules the edge applies to every request, written into the
/// document: no control character in a body string or in a path or query
/// parameter, ids in paths, and the shape of an `Idempotency-Key`. Only
/// the schemas of request bodies get the rule: a response may name a
/// refused field (a problem's `errors[].field`) as it was sent.
fn edge_string_rules(spec: &mut Spec) {
    let mut refs = Vec::new();
    for item in spec.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            for parameter in op.parameters.iter_mut().flatten() {
                let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema else {
                    continue;
                };
                if !is_free_string(object) {
                    continue;
                }
                if object.pattern.as_deref() == Some("\\S") {
                    object.pattern = Some(NO_CONTROL_NOT_BLANK.to_owned());
                    continue;
                }
                if object.pattern.is_some() {
                    continue;
                }
                let pattern = match (&parameter.parameter_in, parameter.name.as_str()) {
                    (ParameterIn::Path, "id") => PATH_ID,
                    (ParameterIn::Path | ParameterIn::Query, _) => NO_CONTROL,
                    (ParameterIn::Header, name) if name.eq_ignore_ascii_case("Idempotency-Key") => {
                        IDEMPOTENCY_KEY
                    }
                    _ => continue,
                };
                object.pattern = Some(pattern.to_owned());
            }
            if let Some(body) = &mut op.request_body {
                for content in body.content.values_mut() {
                    if let Some(schema) = &mut content.schema {
                        refuse_controls(schema, &mut refs);
                    }
                }
            }
        }
    }
    let mut done = std::collections::BTreeSet::new();
    if let Some(components) = &mut spec.components {
        while let Some(name) = refs.pop() {
            if done.insert(name.clone())
                && let Some(schema) = components.schemas.get_mut(&name)
            {
                refuse_controls(schema, &mut refs);
            }
        }
    }
}

/// The document as pretty JSON, exactly what `guichet openapi` prints and
/// what `openapi/openapi.json` holds.
pub fn spec_json() -> String {
    let json = spec().to_pretty_json().unwrap_or_else(|e| {
        // Serializing our own document cannot fail short of a bug.
        panic!("the OpenAPI document does not serialize: {e}")
    });
    // utoipa 5 has no `webhooks`: the section is added after the last
    // member of the serialized document.
    let hooks = serde_json::to_string_pretty(&crate::routes::events::docs::webhooks())
        .unwrap_or_else(|e| panic!("the webhooks section does not serialize: {e}"));
    let hooks = hooks.replace('\n', "\n  ");
    let Some(body) = json.trim_end().strip_suffix('}') else {
        panic!("the OpenAPI document is not a JSON object");
    };
    format!("{}{},\n  \"webhooks\": {hooks}\n}}\n", body.trim_end(), "")
}

/// The complete document as JSON, with its `webhooks`: what
/// `/api-docs/openapi.json` serves.
pub fn document() -> serde_json::Value {
    serde_json::from_str(&spec_json())
        .unwrap_or_else(|e| panic!("the OpenAPI document is not JSON: {e}"))
}
