//! The demo's small service business (seed 002): a physiotherapy practice
//! with its client portal configured, its test customer, two customers
//! who sign in by a code (one by SMS, one by e-mail), documents shared with
//! each (real PDFs among them, in the blob store), a conversation the
//! practice answered, notifications waiting for them, and its bookings:
//! two practitioners with opening hours, two services, and Julie's
//! upcoming booking, past one and pending request; and its autopay rules
//! (customers may change autopay, nothing is turned on for them, the box
//! starts checked) with Hugo's saved card paying by autopay.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Paris;
use guichet_domain::bookings::{BookingSettings, reminder_due_at};
use guichet_domain::documents::{DocumentType, file_name};
use guichet_domain::identity::LoginMethods;
use guichet_domain::password::hash_password;
use guichet_domain::pdf::{self, A4_HEIGHT, Font, Page};
use guichet_domain::portal::{ActionSetting, NewNotification, PortalAction, PortalActions};
use guichet_domain::{Locale, Organization, ids};
use guichet_store::repo::bookings::{self as repo, BookingRow, ProviderRow, ServiceRow, WindowRow};
use guichet_store::repo::conversations::{self, Conversation, Message};
use guichet_store::repo::documents::{self, Document, KIND_SHARED};
use guichet_store::repo::{codes, customers, notifications, organizations, portal, staff};
use guichet_store::{DbConnection, OptionalExt};
use sha2::{Digest, Sha256};

use super::{DemoAccount, customer};
use crate::blobs::Blobs;
use crate::provision::{self, ProvisionError};
use crate::routes::auth::purpose;
use crate::routes::documents::blob_key;
use crate::routes::portal_hooks;

/// The 30-minute service the README books.
pub const SESSION_SERVICE: &str = "Séance de kinésithérapie";

/// The practice's slug (and its portal's).
pub const SLUG: &str = "kine";
const NAME: &str = "Cabinet de kinésithérapie des Lilas";
const ADMIN: (&str, &str) = ("admin@kine.guichet.localhost", "Admin-Kine-2026!");
/// The patient with a mobile: her code goes by SMS.
pub const JULIE: &str = "julie.moreau@example.com";
/// The patient without one: his code goes by e-mail.
pub const HUGO: &str = "hugo.lefevre@example.com";

/// Who the practice's autopay e-mails go to.
pub const BILLING: &str = "facturation@kine.guichet.localhost";

/// The practice's accounts, for the banner.
pub fn accounts() -> Vec<DemoAccount> {
    vec![
        DemoAccount {
            what: "admin (POST /v1/auth/staff/login; POST /v1/admin/portal/preview-session)",
            email: ADMIN.0,
            password: Some(ADMIN.1),
        },
        DemoAccount {
            what: "patient with a mobile: sign-in code by SMS (POST /v1/auth/otp/start)",
            email: JULIE,
            password: None,
        },
        DemoAccount {
            what: "patient without a mobile: sign-in code by e-mail",
            email: HUGO,
            password: None,
        },
    ]
}

fn action(action: PortalAction, enabled: bool) -> ActionSetting {
    ActionSetting {
        action,
        enabled,
        labels: Default::default(),
    }
}

fn note(kind: &str, title: &str, body: &str) -> impl FnOnce(Locale) -> NewNotification {
    let (kind, title, body) = (kind.to_owned(), title.to_owned(), body.to_owned());
    move |_| NewNotification {
        kind,
        title,
        body,
        link: None,
        object_type: None,
        object_id: None,
    }
}

/// A one-page PDF: a title, the patient, the date, and paragraphs.
fn pdf(title: &str, patient: &str, date: DateTime<Utc>, paragraphs: &[&str]) -> Vec<u8> {
    let (left, width) = (60.0, 475.0);
    let mut page = Page::new();
    let mut y = A4_HEIGHT - 70.0;
    page.text(left, y, Font::Bold, 16.0, NAME);
    y -= 18.0;
    page.text(
        left,
        y,
        Font::Regular,
        10.0,
        "8 rue des Lilas, 75011 Paris · +33 1 43 00 00 00",
    );
    y -= 14.0;
    page.line((left, y), (left + width, y), 0.5);
    y -= 36.0;
    page.text(left, y, Font::Bold, 14.0, title);
    y -= 22.0;
    page.text(
        left,
        y,
        Font::Regular,
        11.0,
        &format!("Patient : {patient}"),
    );
    y -= 15.0;
    let day = date.format("%d/%m/%Y");
    page.text(left, y, Font::Regular, 11.0, &format!("Date : {day}"));
    y -= 28.0;
    for paragraph in paragraphs {
        for line in pdf::wrap_text(paragraph, Font::Regular, 11.0, width) {
            page.text(left, y, Font::Regular, 11.0, &line);
            y -= 15.0;
        }
        y -= 8.0;
    }
    pdf::Document {
        title: title.to_owned(),
        language: Some(Locale::Fr),
        created_at: Some(date),
        conformance: pdf::Conformance::PdfA2u,
        pages: vec![page],
    }
    .to_bytes()
}

/// A document shared by the practice's admin: its row, and its bytes for
/// the blob store.
struct Shared {
    row: Document,
    bytes: Vec<u8>,
}

fn shared(
    org_id: &str,
    customer_id: &str,
    admin_id: &str,
    title: &str,
    kind: DocumentType,
    bytes: Vec<u8>,
    at: DateTime<Utc>,
) -> Shared {
    let id = ids::new_id("doc");
    Shared {
        row: Document {
            blob_key: blob_key(org_id, &id),
            id,
            org_id: org_id.to_owned(),
            customer_id: customer_id.to_owned(),
            kind: KIND_SHARED.to_owned(),
            title: title.to_owned(),
            filename: file_name(title, kind),
            content_type: kind.mime().to_owned(),
            size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            sha256: hex::encode(Sha256::digest(&bytes)),
            created_by_kind: "staff".to_owned(),
            created_by: admin_id.to_owned(),
            created_at: at,
            first_opened_at: None,
            withdrawn_at: None,
            withdrawn_by: None,
        },
        bytes,
    }
}

/// The documents the practice shared: Julie's assessment (a PDF) and her
/// exercises (text), Hugo's certificate of attendance (a PDF).
fn documents_of(
    org_id: &str,
    admin_id: &str,
    julie: &str,
    hugo: &str,
    now: DateTime<Utc>,
) -> Vec<Shared> {
    let assessment_at = now - Duration::days(1);
    let certificate_at = now - Duration::hours(5);
    vec![
        shared(
            org_id,
            julie,
            admin_id,
            "Bilan kinésithérapique initial",
            DocumentType::Pdf,
            pdf(
                "Bilan kinésithérapique initial",
                "Julie Moreau",
                assessment_at,
                &[
                    "Motif : lombalgie commune évoluant depuis six semaines, sans irradiation.",
                    "Examen : raideur lombaire modérée, flexion antérieure limitée (distance doigts-sol 25 cm), pas de déficit neurologique.",
                    "Objectifs : diminuer la douleur, retrouver la mobilité, reprendre la course à pied.",
                    "Plan : 10 séances, deux par semaine ; exercices d'auto-rééducation à domicile.",
                ],
            ),
            assessment_at,
        ),
        shared(
            org_id,
            julie,
            admin_id,
            "Exercices à domicile",
            DocumentType::Text,
            "Exercices à faire chaque jour :\n\n1. Bascule du bassin, allongée : 3 × 10.\n2. Étirement des ischio-jambiers : 3 × 30 s de chaque côté.\n3. Gainage ventral : 3 × 20 s.\n"
                .as_bytes()
                .to_vec(),
            assessment_at + Duration::minutes(5),
        ),
        shared(
            org_id,
            hugo,
            admin_id,
            "Attestation de séances",
            DocumentType::Pdf,
            pdf(
                "Attestation de séances",
                "Hugo Lefèvre",
                certificate_at,
                &[
                    "Le cabinet atteste que M. Hugo Lefèvre a suivi 6 séances de rééducation du genou droit entre le 2 et le 20 du mois.",
                    "Attestation délivrée pour servir et valoir ce que de droit.",
                ],
            ),
            certificate_at,
        ),
    ]
}

/// Julie asked to move her session; the practice answered (not read yet).
fn conversation(
    conn: &mut DbConnection,
    org_id: &str,
    admin_id: &str,
    julie: &str,
    now: DateTime<Utc>,
) -> Result<(), ProvisionError> {
    let asked = now - Duration::hours(20);
    let answered = now - Duration::hours(2);
    let conv = Conversation {
        id: ids::new_id("cnv"),
        org_id: org_id.to_owned(),
        customer_id: julie.to_owned(),
        subject: "Séance de jeudi".to_owned(),
        status: "open".to_owned(),
        assigned_staff_id: Some(admin_id.to_owned()),
        created_at: asked,
        last_message_at: asked,
        closed_at: None,
    };
    conversations::insert(conn, &conv)?;
    let message = |author_kind: &str, author_id: &str, body: &str, at, read_at| Message {
        id: ids::new_id("cvm"),
        conversation_id: conv.id.clone(),
        org_id: org_id.to_owned(),
        author_kind: author_kind.to_owned(),
        author_id: author_id.to_owned(),
        body: body.to_owned(),
        created_at: at,
        read_at,
    };
    conversations::add_message(
        conn,
        &message(
            "customer",
            julie,
            "Bonjour, pourrais-je décaler ma séance de jeudi à 18 h ? Merci.",
            asked,
            Some(answered),
        ),
    )?;
    conversations::add_message(
        conn,
        &message(
            "staff",
            admin_id,
            "Bonjour Julie, c'est noté : jeudi à 18 h. Pensez à votre serviette. À jeudi !",
            answered,
            None,
        ),
    )?;
    portal_hooks::answer_notification(conn, &conv, answered)?;
    Ok(())
}

/// The practice, created unless it exists; whether it was created. Its
/// documents' bytes are written to `blobs` before their rows are committed
/// (the start-up reset deletes those of the previous start).
pub fn seed(
    conn: &mut DbConnection,
    blobs: &Blobs,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<(Organization, bool), ProvisionError> {
    if let Some(org) = organizations::find_by_slug(conn, SLUG).optional()? {
        return Ok((org, false));
    }
    let admin_hash = hash_password(ADMIN.1).map_err(|e| ProvisionError::Invalid(e.to_string()))?;
    let org = guichet_store::transaction(conn, |conn| {
        let new = provision::insert_organization(conn, secret_key, SLUG, NAME, ADMIN.0, now)?;
        let mut org = new.organization;
        org.login_methods = LoginMethods::Passwordless;
        org.support_email = Some("accueil@kine.guichet.localhost".into());
        org.support_phone = Some("+33143000000".into());
        organizations::update_settings(conn, &org)?;
        staff::set_password(conn, &new.admin.id, &admin_hash)?;
        codes::void_all(conn, &new.admin.id, purpose::STAFF_SETUP, now)?;

        let actions = PortalActions::new(vec![
            action(PortalAction::Documents, true),
            action(PortalAction::Messages, true),
            action(PortalAction::Payments, true),
            action(PortalAction::Bookings, true),
        ])
        .map_err(|e| ProvisionError::Invalid(e.to_string()))?;
        let mut settings = portal::PortalSettings::defaults(&org.id, SLUG, now);
        settings.actions = actions;
        settings.display_name = Some("Kiné des Lilas".into());
        settings.accent_color = Some("#0a7d6b".into());
        settings.contact_email = Some("accueil@kine.guichet.localhost".into());
        settings.phone = Some("+33143000000".into());
        settings.address = Some("8 rue des Lilas, 75011 Paris".into());
        settings.website = Some("https://kine.guichet.localhost".into());
        // Each of the three autopay settings shows: customers may change
        // autopay, a new method does not turn it on by itself, and the
        // box starts checked.
        settings.autopay = guichet_domain::autopay::AutopaySettings {
            customers_can_change: true,
            auto_enable_on_new_method: false,
            checkbox_default: true,
        };
        settings.billing_contact_email = Some(BILLING.into());
        portal::save(conn, &settings)?;
        crate::routes::portal::settings::test_customer(conn, &org.id, now)?;

        let julie = customer(&org.id, JULIE, "Julie Moreau", Some("+33611223344"), now);
        customers::insert(conn, &julie)?;
        let hugo = customer(&org.id, HUGO, "Hugo Lefèvre", None, now);
        customers::insert(conn, &hugo)?;
        notifications::notify(
            conn,
            &org.id,
            &julie.id,
            now - Duration::days(2),
            note(
                "practice.welcome",
                "Bienvenue dans votre espace",
                "Retrouvez ici vos documents et écrivez au cabinet.",
            ),
        )?;
        notifications::notify(
            conn,
            &org.id,
            &julie.id,
            now - Duration::hours(3),
            note(
                "practice.reminder",
                "Séance de jeudi",
                "Pensez à apporter votre ordonnance et une serviette.",
            ),
        )?;
        notifications::notify(
            conn,
            &org.id,
            &hugo.id,
            now - Duration::days(1),
            note(
                "practice.welcome",
                "Bienvenue dans votre espace",
                "Retrouvez ici vos documents et écrivez au cabinet.",
            ),
        )?;
        let docs = documents_of(&org.id, &new.admin.id, &julie.id, &hugo.id, now);
        blobs
            .put_all_blocking(
                docs.iter()
                    .map(|d| (d.row.blob_key.clone(), d.bytes.clone()))
                    .collect(),
            )
            .map_err(|e| ProvisionError::Invalid(e.to_string()))?;
        for d in &docs {
            documents::insert(conn, &d.row)?;
            portal_hooks::document_shared(conn, &d.row, d.row.created_at)?;
        }
        // Julie has read her exercises already; the rest is new.
        if let Some(exercises) = docs.get(1) {
            documents::mark_opened(conn, &org.id, &exercises.row.id, now - Duration::hours(12))?;
        }
        conversation(conn, &org.id, &new.admin.id, &julie.id, now)?;
        bookings(conn, &org.id, &julie.id, now)?;
        autopay_card(conn, &org.id, &hugo.id, secret_key, now)?;
        Ok::<_, ProvisionError>((org, julie.id, new.admin.id))
    })?;
    let (org, julie_id, admin_id) = org;
    invoices(conn, blobs, &org.id, &julie_id, &admin_id, now)?;
    Ok((org, true))
}

/// Julie's invoices: one overdue, one due next week, one paid (by cheque,
/// recorded by the practice). Each issued with its PDF shared.
fn invoices(
    conn: &mut DbConnection,
    blobs: &Blobs,
    org_id: &str,
    julie_id: &str,
    admin_id: &str,
    now: DateTime<Utc>,
) -> Result<(), ProvisionError> {
    use guichet_domain::events::Actor;
    use guichet_domain::invoice::{Kind, Line, Status, totals};
    use guichet_domain::{Currency, Money};
    use guichet_store::repo::invoices::{self, Invoice, Payment};
    let today = now.date_naive();
    let year = today.year();
    let session = |n: i64| Line {
        description: "Séance de kinésithérapie (30 min)".into(),
        quantity: n,
        unit_amount: 4500,
        tax_rate_bp: 0,
    };
    let band = Line {
        description: "Bande élastique de rééducation".into(),
        quantity: 1,
        unit_amount: 1250,
        tax_rate_bp: 2000,
    };
    let plan = [
        (1, vec![session(2)], 24, -6, false),
        (2, vec![session(1), band], 3, 7, false),
        (3, vec![session(3)], 40, -10, true),
    ];
    for (seq, lines, issued_days_ago, due_in_days, paid) in plan {
        let t = totals(&lines).map_err(|e| ProvisionError::Invalid(e.to_string()))?;
        let issued_at = now - Duration::days(issued_days_ago);
        let id = ids::new_id("inv");
        let inv = Invoice {
            id: id.clone(),
            org_id: org_id.to_owned(),
            customer_id: julie_id.to_owned(),
            kind: Kind::Invoice,
            number: Some(format!("F-{year}-{seq:05}")),
            status: Status::Draft,
            currency: Currency::EUR,
            subtotal: t.subtotal,
            tax: t.tax,
            total: t.total,
            amount_paid: 0,
            reason: None,
            note: Some("Règlement à réception. Merci !".into()),
            issue_date: issued_at.date_naive(),
            due_date: today + Duration::days(due_in_days),
            document_id: None,
            created_at: issued_at,
            updated_at: issued_at,
            issued_at: None,
            paid_at: None,
            voided_at: None,
            void_reason: None,
            lines,
        };
        invoices::insert(conn, &inv)?;
        let pdf = guichet_jobs::invoices::invoice_pdf(conn, &inv)?;
        let doc_id = format!("doc_{}", id.trim_start_matches("inv_"));
        let doc = Document {
            id: doc_id.clone(),
            org_id: org_id.to_owned(),
            customer_id: julie_id.to_owned(),
            kind: KIND_SHARED.to_owned(),
            title: format!("Facture F-{year}-{seq:05}"),
            filename: format!("facture-F-{year}-{seq:05}.pdf"),
            content_type: "application/pdf".into(),
            size_bytes: i64::try_from(pdf.len()).unwrap_or(i64::MAX),
            sha256: hex::encode(Sha256::digest(&pdf)),
            blob_key: blob_key(org_id, &doc_id),
            created_by_kind: "staff".into(),
            created_by: admin_id.to_owned(),
            created_at: issued_at,
            first_opened_at: None,
            withdrawn_at: None,
            withdrawn_by: None,
        };
        blobs
            .put_all_blocking(vec![(doc.blob_key.clone(), pdf)])
            .map_err(|e| ProvisionError::Invalid(e.to_string()))?;
        documents::insert(conn, &doc)?;
        invoices::issue(conn, &inv, &doc_id, issued_at)?;
        if paid {
            let p = Payment {
                id: ids::new_id("ipy"),
                org_id: org_id.to_owned(),
                invoice_id: id.clone(),
                customer_id: julie_id.to_owned(),
                amount: Money::new(t.total, Currency::EUR),
                source: "staff".into(),
                method: "cheque".into(),
                status: invoices::SUCCEEDED.into(),
                gateway_key: None,
                gateway_charge_id: None,
                failure_code: None,
                request: None,
                details: None,
                reference: Some("Chèque n° 0042137".into()),
                paid_on: Some(issued_at.date_naive() + Duration::days(5)),
                created_at: issued_at + Duration::days(5),
                completed_at: Some(issued_at + Duration::days(5)),
            };
            invoices::record_offline(conn, &p, Actor::Staff, issued_at + Duration::days(5))?;
            // She has read the invoice she paid.
            documents::mark_opened(conn, org_id, &doc_id, issued_at + Duration::days(1))?;
        }
    }
    Ok(())
}

/// Hugo's saved Visa (a sandbox token under the server key), his default,
/// with autopay on.
fn autopay_card(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<(), ProvisionError> {
    use guichet_domain::gateway::sandbox::SandboxTokens;
    use guichet_domain::gateway::{CardDetails, Cvc, Pan, test_cards};
    use guichet_store::repo::payment_methods::{self, MethodDetails, PaymentMethod};
    let invalid = |e: String| ProvisionError::Invalid(e);
    let today = now.date_naive();
    let card = SandboxTokens::new(secret_key)
        .tokenize(
            CardDetails {
                number: Pan::parse(test_cards::VISA).map_err(|e| invalid(e.to_string()))?,
                exp_month: 9,
                exp_year: u16::try_from(today.year() + 3).unwrap_or(2029),
                cvc: Cvc::parse("123").map_err(|e| invalid(e.to_string()))?,
            },
            today,
        )
        .map_err(|e| invalid(format!("sandbox card: {e}")))?;
    let method = PaymentMethod {
        id: ids::new_id("pm"),
        org_id: org_id.to_owned(),
        customer_id: customer_id.to_owned(),
        details: MethodDetails::Card {
            token: card.token,
            view: card.card,
        },
        is_default: true,
        created_at: now - Duration::days(20),
        removed_at: None,
    };
    payment_methods::insert(conn, &method)?;
    guichet_store::repo::autopay::set(
        conn,
        org_id,
        customer_id,
        true,
        Some(&method.id),
        now - Duration::days(20),
    )?;
    Ok(())
}

/// `day` at `hour:minute` in Paris.
fn paris(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    Paris
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap_or_default())
        .earliest()
        .map_or_else(
            || day.and_time(NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// The first weekday (Monday to Friday) on or after `day`.
fn weekday_from(mut day: NaiveDate) -> NaiveDate {
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().unwrap_or(day);
    }
    day
}

/// The online-booking setup (automatic confirmation, cancel and
/// reschedule until 24 hours before), Claire (Monday to Friday) and Marc
/// (Tuesday to Saturday), a 30-minute session with both and a 60-minute
/// assessment with Claire, and Julie's bookings: one to come, one past
/// (completed) and a pending request.
fn bookings(
    conn: &mut DbConnection,
    org_id: &str,
    julie: &str,
    now: DateTime<Utc>,
) -> Result<(), ProvisionError> {
    let settings = BookingSettings {
        online_booking: true,
        ..BookingSettings::default()
    };
    repo::put_settings(
        conn,
        &crate::routes::bookings::to_row(org_id, &settings, now),
    )?;
    let provider = |name: &str| ProviderRow {
        id: ids::new_id("prv"),
        org_id: org_id.to_owned(),
        name: name.to_owned(),
        kind: "staff".to_owned(),
        staff_id: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    let (claire, marc) = (provider("Claire Petit"), provider("Marc Durand"));
    repo::insert_provider(conn, &claire)?;
    repo::insert_provider(conn, &marc)?;
    let window = |p: &ProviderRow, weekday: i32, start: i32, end: i32| WindowRow {
        id: ids::new_id("bwn"),
        org_id: org_id.to_owned(),
        provider_id: p.id.clone(),
        weekday,
        start_minute: start,
        end_minute: end,
    };
    let claire_week: Vec<WindowRow> = (1..=5)
        .flat_map(|d| {
            [
                window(&claire, d, 9 * 60, 12 * 60 + 30),
                window(&claire, d, 14 * 60, 19 * 60),
            ]
        })
        .collect();
    repo::replace_windows(conn, org_id, &claire.id, &claire_week)?;
    let marc_week: Vec<WindowRow> = (2..=6)
        .map(|d| window(&marc, d, 8 * 60 + 30, 13 * 60))
        .collect();
    repo::replace_windows(conn, org_id, &marc.id, &marc_week)?;
    let service = |fr: &str, en: &str, duration: i32, buffer: i32, price: i64| ServiceRow {
        id: ids::new_id("svc"),
        org_id: org_id.to_owned(),
        names: [
            ("fr".to_owned(), fr.to_owned()),
            ("en".to_owned(), en.to_owned()),
        ]
        .into(),
        duration_minutes: duration,
        buffer_after_minutes: buffer,
        price_amount: Some(price),
        price_currency: Some("EUR".to_owned()),
        active: true,
        created_at: now,
        updated_at: now,
        provider_ids: Vec::new(),
    };
    let session = service(SESSION_SERVICE, "Physiotherapy session", 30, 0, 3_500);
    repo::insert_service(conn, &session, &[claire.id.clone(), marc.id.clone()])?;
    let assessment = service("Bilan initial", "Initial assessment", 60, 15, 6_000);
    repo::insert_service(conn, &assessment, std::slice::from_ref(&claire.id))?;

    let today = now.with_timezone(&Paris).date_naive();
    let booking = |start: DateTime<Utc>,
                   minutes: i64,
                   buffer: i64,
                   status: &str,
                   provider: &ProviderRow,
                   service: &ServiceRow| {
        let end = start + Duration::minutes(minutes);
        BookingRow {
            id: ids::new_id("bkg"),
            org_id: org_id.to_owned(),
            customer_id: julie.to_owned(),
            service_id: service.id.clone(),
            provider_id: provider.id.clone(),
            start_at: start,
            end_at: end,
            busy_until: end + Duration::minutes(buffer),
            status: status.to_owned(),
            note: None,
            created_by_kind: "customer".to_owned(),
            created_by: julie.to_owned(),
            reason: None,
            cancelled_by_kind: None,
            sequence: 0,
            test: false,
            reminder_due_at: Some(reminder_due_at(&settings, start)),
            reminder_sent_at: None,
            created_at: now - Duration::days(10),
            updated_at: now - Duration::days(10),
        }
    };
    let upcoming = weekday_from(today + Duration::days(3));
    repo::insert_booking(
        conn,
        &booking(
            paris(upcoming, 10, 0),
            30,
            0,
            "confirmed",
            &claire,
            &session,
        ),
    )?;
    let past = weekday_from(today - Duration::days(9));
    let mut done = booking(paris(past, 9, 0), 60, 15, "completed", &claire, &assessment);
    done.reminder_sent_at = done.reminder_due_at;
    repo::insert_booking(conn, &done)?;
    let requested = weekday_from(upcoming + Duration::days(4));
    repo::insert_booking(
        conn,
        &booking(paris(requested, 17, 0), 30, 0, "pending", &claire, &session),
    )?;
    Ok(())
}
