//! The snapshots the jobs and the store build without the API's views
//! (`guichet_store::snapshots`) have exactly the views' JSON.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use guichet_domain::card::{CardBrand, CardView, Funding};
use guichet_domain::events::EventType;
use guichet_domain::schedule::{InstalmentStatus, Schedule};
use guichet_domain::sepa::pain008::SequenceType;
use guichet_domain::{Currency, Money};
use guichet_store::repo::collections::{Collection, CollectionStatus};
use guichet_store::repo::events::Event;
use guichet_store::repo::refunds::Refund;
use guichet_store::repo::schedules::{Card, Order};
use guichet_store::snapshots;
use serde_json::json;

use super::{InstalmentEventData, RefundEventData};
use crate::routes::events::admin::EventView;
use crate::routes::sepa::collections::CollectionView;
use crate::routes::views::{InstalmentView, RefundView, ScheduleView};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn order() -> Order {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let mut schedule = Schedule::new(
        eur(30000),
        vec![
            (date(2026, 12, 5), eur(10000)),
            (date(2027, 1, 5), eur(10000)),
            (date(2027, 2, 5), eur(10000)),
        ],
    )
    .unwrap();
    schedule.instalments[0].status = InstalmentStatus::Paid;
    schedule.instalments[0].paid_at = Some(at);
    schedule.instalments[0].attempts = 1;
    schedule.instalments[1].status = InstalmentStatus::Unpaid;
    schedule.instalments[1].attempts = 3;
    schedule.cancel(eur(5000), at).unwrap();
    let refund = Refund {
        id: "rfd_3k9x0d2m7q8r4t6v1w5y".into(),
        org_id: "org_1".into(),
        order_id: "ord_3k9x0d2m7q8r4t6v1w5y".into(),
        amount: eur(1200),
        status: "failed".into(),
        failure_code: Some("card_declined".into()),
        created_at: at,
        settled_at: Some(at),
    };
    Order {
        id: "ord_3k9x0d2m7q8r4t6v1w5y".into(),
        org_id: "org_1".into(),
        customer_id: "cus_3k9x0d2m7q8r4t6v1w5y".into(),
        order_number: "CMD-1".into(),
        merchant_brand: "Maison & Jardin".into(),
        purchase_date: date(2026, 11, 20),
        card: Card {
            id: "crd_1".into(),
            org_id: "org_1".into(),
            customer_id: "cus_3k9x0d2m7q8r4t6v1w5y".into(),
            token: "tok_secret".into(),
            view: CardView {
                brand: CardBrand::Mastercard,
                last4: "4444".into(),
                exp_month: 3,
                exp_year: 2029,
                funding: Funding::Debit,
            },
            created_at: at,
        },
        schedule,
        instalment_ids: (1..=3)
            .map(|n| (n, format!("ins_{n}")))
            .collect::<BTreeMap<_, _>>(),
        refunds: vec![refund],
        created_at: at,
        updated_at: at,
    }
}

#[test]
fn an_order_snapshot_is_its_schedule_view() {
    let order = order();
    let view = serde_json::to_value(ScheduleView::from(&order)).unwrap();
    assert_eq!(snapshots::order(&order), view);
    assert!(!view.to_string().contains("tok_secret"));
}

#[test]
fn an_instalment_snapshot_is_its_event_data() {
    let order = order();
    for number in 1..=3 {
        let (id, data) = snapshots::instalment(&order, number).unwrap();
        let instalment = order.schedule.instalment(number).unwrap();
        let expected = InstalmentEventData {
            id: format!("ins_{number}"),
            order_id: order.id.clone(),
            customer_id: order.customer_id.clone(),
            instalment: InstalmentView::from(instalment),
            schedule: ScheduleView::from(&order),
        };
        assert_eq!(id, format!("ins_{number}"));
        assert_eq!(data, serde_json::to_value(expected).unwrap());
    }
    assert!(snapshots::instalment(&order, 4).is_none());
}

#[test]
fn a_refund_snapshot_is_its_event_data() {
    let order = order();
    let refund = &order.refunds[0];
    let expected = RefundEventData {
        refund: RefundView::from(refund),
        order_id: order.id.clone(),
    };
    assert_eq!(
        snapshots::refund(refund),
        serde_json::to_value(expected).unwrap()
    );
}

#[test]
fn a_collection_snapshot_is_its_view() {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let mut c = Collection::scheduled(
        "org_1",
        "mdt_1",
        "acc_1",
        SequenceType::First,
        12999,
        date(2026, 12, 1),
        Some(at),
        at,
    );
    c.status = CollectionStatus::Rejected;
    c.presented_at = Some(at);
    c.settled_at = Some(at);
    c.reject_reason = Some("AM04".into());
    assert_eq!(
        snapshots::collection(&c),
        serde_json::to_value(CollectionView::from(&c)).unwrap()
    );
}

#[test]
fn a_consent_snapshot_is_its_view_without_the_contacts() {
    use guichet_domain::consent::ConsentStatus;
    use guichet_store::repo::consents::{Consent, ConsentAccount, Step};

    let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let consent = Consent {
        id: "cns_1".into(),
        org_id: "org_1".into(),
        account_id: "cac_1".into(),
        cardholder_name: "Anne Martin".into(),
        email: Some("anne@example.com".into()),
        mobile: Some("+32470123467".into()),
        email_masked: "a***@example.com".into(),
        mobile_masked: "+32 4** ** ** 67".into(),
        language: "fr".into(),
        status: ConsentStatus::Failed,
        failure_reason: Some("card_blocked".into()),
        expires_at: at + chrono::Duration::days(14),
        effective_from: Some(date(2026, 12, 1)),
        sca_session_id: Some("sca_1".into()),
        created_at: at,
        updated_at: at,
    };
    let account = ConsentAccount {
        id: "cac_1".into(),
        org_id: "org_1".into(),
        company_name: "Boulangerie Martin SRL".into(),
        client_reference: "BE-CARO-0042-4242".into(),
        created_at: at,
    };
    let steps: Vec<Step> = [
        ("invitation_sent", Some("a***@example.com")),
        ("bank_started", Some("visa 4242")),
        ("bank_failed", Some("card_blocked")),
        ("contacts_erased", None),
    ]
    .into_iter()
    .map(|(kind, detail)| Step::new(&consent, kind, detail.map(str::to_owned), at))
    .collect();
    let mut view = crate::routes::consents::view_of(&consent, account.clone(), steps.clone());
    view.email = None;
    view.mobile = None;
    let snapshot = snapshots::consent(&consent, &account, &steps);
    assert_eq!(snapshot, serde_json::to_value(view).unwrap());
    assert_eq!(snapshot["card"]["last4"], "4242");
    assert!(!snapshot.to_string().contains("anne@example.com"));
    assert!(!snapshot.to_string().contains("+32470123467"));
}

#[test]
fn the_event_schema_has_the_envelopes_shape() {
    let event = Event::new(
        EventType::ScheduleCardChanged,
        "org_1",
        "ord_1",
        Some("cus_1"),
        guichet_domain::events::Actor::Customer,
        &json!({"id": "ord_1"}),
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(EventView::from(event.clone())).unwrap(),
        event.envelope()
    );
    assert_eq!(event.envelope()["object"]["type"], "schedule");
}

#[test]
fn a_booking_snapshot_is_its_view() {
    use guichet_store::repo::bookings::BookingRow;

    let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let mut booking = BookingRow {
        id: "bkg_1".into(),
        org_id: "org_1".into(),
        customer_id: "cus_1".into(),
        service_id: "svc_1".into(),
        provider_id: "prv_1".into(),
        start_at: at + chrono::Duration::days(1),
        end_at: at + chrono::Duration::days(1) + chrono::Duration::minutes(30),
        busy_until: at + chrono::Duration::days(1) + chrono::Duration::minutes(45),
        status: "cancelled".into(),
        note: Some("Première visite".into()),
        created_by_kind: "customer".into(),
        created_by: "cus_1".into(),
        reason: Some("Praticien absent".into()),
        cancelled_by_kind: Some("staff".into()),
        sequence: 2,
        test: true,
        reminder_due_at: Some(at),
        reminder_sent_at: None,
        created_at: at,
        updated_at: at,
    };
    assert_eq!(
        snapshots::booking(&booking),
        serde_json::to_value(crate::routes::bookings::BookingView::from(booking.clone())).unwrap()
    );
    booking.note = None;
    booking.reason = None;
    booking.cancelled_by_kind = None;
    assert_eq!(
        snapshots::booking(&booking),
        serde_json::to_value(crate::routes::bookings::BookingView::from(booking)).unwrap()
    );
}

#[test]
fn a_payment_method_snapshot_is_its_view_and_event_data() {
    use guichet_store::repo::payment_methods::{MethodDetails, PaymentMethod};
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let today = date(2026, 11, 22);
    let card = PaymentMethod {
        id: "pm_3k9x0d2m7q8r4t6v1w5y".into(),
        org_id: "org_1".into(),
        customer_id: "cus_3k9x0d2m7q8r4t6v1w5y".into(),
        details: MethodDetails::Card {
            token: "tok_secret".into(),
            view: CardView {
                brand: CardBrand::Visa,
                last4: "4242".into(),
                exp_month: 10,
                exp_year: 2026,
                funding: Funding::Debit,
            },
        },
        is_default: true,
        created_at: at,
        removed_at: None,
    };
    let sepa = PaymentMethod {
        id: "pm_4k9x0d2m7q8r4t6v1w5y".into(),
        details: MethodDetails::SepaDebit {
            mandate_id: "mdt_1".into(),
            iban_masked: "FR76 **** **** **** **** ***0 189".into(),
            umr: "GCH2026".into(),
        },
        is_default: false,
        ..card.clone()
    };
    for (m, autopay) in [(&card, true), (&sepa, false)] {
        let view = crate::routes::payment_methods::PaymentMethodView::new(m, autopay, today);
        assert_eq!(
            snapshots::payment_method(m, autopay, today),
            serde_json::to_value(&view).unwrap()
        );
        let data = crate::routes::payment_methods::PaymentMethodEventData {
            customer_id: m.customer_id.clone(),
            method: view,
        };
        let json = snapshots::payment_method_event(m, autopay, today);
        assert_eq!(json, serde_json::to_value(data).unwrap());
        assert!(!json.to_string().contains("tok_secret"));
    }
    assert_eq!(
        snapshots::payment_method(&card, true, today)["card"]["expired"],
        true
    );
}
