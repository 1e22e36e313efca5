//! Event snapshots built from store types, for the places that record an
//! event without the API's views (the background jobs, and the store
//! transactions that commit a change themselves). Each has exactly the
//! JSON shape of the API view it stands for; the API checks this in its
//! tests (`api/src/routes/events.rs`), so the two cannot drift apart.

use guichet_domain::Money;
use guichet_domain::card::{Action, available_action};
use guichet_domain::schedule::Instalment;
use serde_json::{Value, json};

use crate::repo::bookings::BookingRow;
use crate::repo::collections::Collection;
use crate::repo::consents::{self, Consent, ConsentAccount, Step};
use crate::repo::invoices::{self, Invoice, Payment};
use crate::repo::payment_methods::{MethodDetails, PaymentMethod};
use crate::repo::refunds::Refund;
use crate::repo::schedules::Order;

fn money(m: Money) -> Value {
    json!({ "amount": m.amount, "currency": m.currency })
}

fn instalment_view(i: &Instalment) -> Value {
    json!({
        "number": i.number,
        "due_date": i.due_date,
        "amount": money(i.amount),
        "status": i.status.as_str(),
        "paid_at": i.paid_at,
        "next_attempt_on": i.next_attempt_on,
    })
}

fn refund_view(r: &Refund) -> Value {
    let status = match r.status.as_str() {
        "paid" => "paid",
        "failed" => "failed",
        _ => "pending",
    };
    json!({
        "id": r.id,
        "amount": money(r.amount),
        "status": status,
        "created_at": r.created_at,
        "settled_at": r.settled_at,
    })
}

/// An order with its schedule, as `ScheduleView`.
pub fn order(o: &Order) -> Value {
    let s = &o.schedule;
    let c = &o.card.view;
    json!({
        "id": o.id,
        "customer_id": o.customer_id,
        "order_number": o.order_number,
        "merchant_brand": o.merchant_brand,
        "purchase_date": o.purchase_date,
        "amount": money(s.remaining_total()),
        "status": s.status().as_str(),
        "paid": money(s.paid_amount()),
        "pending": money(s.pending_amount()),
        "unpaid": money(s.unpaid_amount()),
        "card": {
            "brand": c.brand.as_str(),
            "last4": c.last4,
            "exp_month": c.exp_month,
            "exp_year": c.exp_year,
            "funding": c.funding.as_str(),
        },
        "instalments": s.instalments.iter().map(instalment_view).collect::<Vec<_>>(),
        "adjustments": s.adjustments.iter().map(|a| json!({
            "kind": a.kind.as_str(),
            "amount": money(a.amount),
            "refund": a.refund.map(money),
            "at": a.at,
        })).collect::<Vec<_>>(),
        "refunds": o.refunds.iter().map(refund_view).collect::<Vec<_>>(),
        "actions": match available_action(s) {
            Some(Action::ChangeCard) => vec!["change_card"],
            Some(Action::Regularize) => vec!["regularize"],
            None => vec![],
        },
    })
}

/// Instalment `number` of `o`, as `InstalmentEventData`: its id, its
/// order and customer, the `InstalmentView` fields, and the whole order
/// after the change as `schedule`. `None` when there is no such instalment.
pub fn instalment(o: &Order, number: u32) -> Option<(String, Value)> {
    let i = o.schedule.instalments.iter().find(|i| i.number == number)?;
    let id = o.instalment_ids.get(&number)?.clone();
    let mut data = instalment_view(i);
    if let Value::Object(map) = &mut data {
        map.insert("id".into(), json!(id));
        map.insert("order_id".into(), json!(o.id));
        map.insert("customer_id".into(), json!(o.customer_id));
        map.insert("schedule".into(), order(o));
    }
    Some((id, data))
}

/// A refund, as `RefundEventData`: the `RefundView` fields and its order.
pub fn refund(r: &Refund) -> Value {
    let mut data = refund_view(r);
    if let Value::Object(map) = &mut data {
        map.insert("order_id".into(), json!(r.order_id));
    }
    data
}

/// A SEPA collection, as `CollectionView`.
pub fn collection(c: &Collection) -> Value {
    json!({
        "id": c.id,
        "mandate_id": c.mandate_id,
        "account_id": c.account_id,
        "end_to_end_id": c.end_to_end_id,
        "sequence_type": c.sequence_type.code(),
        "amount": c.amount,
        "currency": c.currency,
        "due_date": c.due_date,
        "status": c.status.as_str(),
        "prenotified_at": c.prenotified_at,
        "presented_at": c.presented_at,
        "settled_at": c.settled_at,
        "reject_reason": c.reject_reason,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "invoice_id": c.invoice.as_ref().map(|l| &l.invoice_id),
        "invoice_payment_id": c.invoice.as_ref().map(|l| &l.payment_id),
    })
}

/// A consent with its account and timeline, as `ConsentView` with the
/// e-mail address and mobile number in clear set to `null` (what every
/// consent event carries; their masked forms stay).
pub fn consent(c: &Consent, account: &ConsentAccount, steps: &[Step]) -> Value {
    let card = steps
        .iter()
        .rev()
        .find(|s| s.kind == consents::BANK_STARTED)
        .and_then(|s| s.detail.as_deref())
        .and_then(|d| d.split_once(' '))
        .map(|(brand, last4)| json!({ "brand": brand, "last4": last4 }));
    json!({
        "id": c.id,
        "status": c.status.as_str(),
        "failure_reason": c.failure_reason,
        "account": {
            "id": account.id,
            "company_name": account.company_name,
            "client_reference": account.client_reference,
            "created_at": account.created_at,
        },
        "cardholder_name": c.cardholder_name,
        "email": Value::Null,
        "mobile": Value::Null,
        "email_masked": c.email_masked,
        "mobile_masked": c.mobile_masked,
        "language": c.language,
        "expires_at": c.expires_at,
        "effective_from": c.effective_from,
        "card": card,
        "contacts_erased": steps.iter().any(|s| s.kind == consents::CONTACTS_ERASED),
        "timeline": steps.iter().map(|s| json!({
            "step": s.kind,
            "at": s.at,
            "detail": s.detail,
        })).collect::<Vec<_>>(),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

/// A booking as `GET /v1/admin/bookings/{id}` shows it (`BookingView`).
pub fn booking(b: &BookingRow) -> Value {
    json!({
        "id": b.id,
        "customer_id": b.customer_id,
        "service_id": b.service_id,
        "provider_id": b.provider_id,
        "start": b.start_at,
        "end": b.end_at,
        "status": b.status,
        "note": b.note,
        "reason": b.reason,
        "created_by": b.created_by_kind,
        "cancelled_by": b.cancelled_by_kind,
        "test": b.test,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    })
}

/// An invoice as `GET /v1/admin/invoices/{id}` shows it (`InvoiceView`) on
/// `today` (its shown status: `overdue` once past due).
pub fn invoice(inv: &Invoice, today: chrono::NaiveDate) -> Value {
    let totals = guichet_domain::invoice::totals(&inv.lines).ok();
    let lines: Vec<Value> = inv
        .lines
        .iter()
        .map(|l| {
            let a = l
                .amounts()
                .unwrap_or(guichet_domain::invoice::LineAmounts { net: 0, tax: 0 });
            json!({
                "description": l.description,
                "quantity": l.quantity,
                "unit_amount": l.unit_amount,
                "tax_rate_bp": l.tax_rate_bp,
                "net": a.net,
                "tax": a.tax,
            })
        })
        .collect();
    let taxes: Vec<Value> = totals
        .map(|t| {
            t.taxes
                .iter()
                .map(|x| json!({"rate_bp": x.rate_bp, "base": x.base, "tax": x.tax}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": inv.id,
        "kind": inv.kind.as_str(),
        "number": inv.number,
        "customer_id": inv.customer_id,
        "status": guichet_domain::invoice::shown(inv.status, inv.due_date, today).as_str(),
        "currency": inv.currency,
        "lines": lines,
        "subtotal": inv.subtotal,
        "taxes": taxes,
        "tax": inv.tax,
        "total": inv.total,
        "amount_paid": inv.amount_paid,
        "amount_due": inv.amount_due(),
        "reason": inv.reason,
        "note": inv.note,
        "issue_date": inv.issue_date,
        "due_date": inv.due_date,
        "document_id": inv.document_id,
        "created_at": inv.created_at,
        "issued_at": inv.issued_at,
        "paid_at": inv.paid_at,
        "voided_at": inv.voided_at,
        "void_reason": inv.void_reason,
    })
}

/// A payment of an invoice as the API shows it (`InvoicePaymentView`):
/// never the card's token.
pub fn invoice_payment(p: &Payment) -> Value {
    let card = invoices::Details::of(p)
        .ok()
        .flatten()
        .map(|d| json!({"brand": d.card.brand, "last4": d.card.last4}));
    json!({
        "id": p.id,
        "invoice_id": p.invoice_id,
        "amount": p.amount.amount,
        "currency": p.amount.currency,
        "source": p.source,
        "method": p.method,
        "status": p.status,
        "failure_code": p.failure_code,
        "card": card,
        "collection_id": invoices::collection_id(p),
        "reference": p.reference,
        "paid_on": p.paid_on,
        "created_at": p.created_at,
        "completed_at": p.completed_at,
    })
}

/// The data of an `invoice.*` event (`InvoiceEventData`): the invoice, and
/// the payment the event is about, if any.
pub fn invoice_event(inv: &Invoice, payment: Option<&Payment>, today: chrono::NaiveDate) -> Value {
    json!({
        "invoice": invoice(inv, today),
        "payment": payment.map(invoice_payment),
    })
}

/// A saved payment method as `PaymentMethodView` (`autopay`: the method
/// autopay charges while it is on; `today` decides `expired`).
pub fn payment_method(m: &PaymentMethod, autopay: bool, today: chrono::NaiveDate) -> Value {
    let (card, sepa_debit) = match &m.details {
        MethodDetails::Card { view, .. } => (
            json!({
                "brand": view.brand.as_str(),
                "last4": view.last4,
                "exp_month": view.exp_month,
                "exp_year": view.exp_year,
                "expired": view.is_expired(today),
            }),
            Value::Null,
        ),
        MethodDetails::SepaDebit {
            mandate_id,
            iban_masked,
            umr,
        } => (
            Value::Null,
            json!({"iban_masked": iban_masked, "umr": umr, "mandate_id": mandate_id}),
        ),
    };
    json!({
        "id": m.id,
        "type": m.details.kind().as_str(),
        "card": card,
        "sepa_debit": sepa_debit,
        "default": m.is_default,
        "autopay": autopay,
        "created_at": m.created_at,
    })
}

/// The data of `payment_method.*` events (`PaymentMethodEventData`).
pub fn payment_method_event(m: &PaymentMethod, autopay: bool, today: chrono::NaiveDate) -> Value {
    let mut v = payment_method(m, autopay, today);
    if let Value::Object(map) = &mut v {
        map.insert("customer_id".to_owned(), json!(m.customer_id));
    }
    v
}
