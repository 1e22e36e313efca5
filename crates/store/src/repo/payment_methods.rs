//! The `payment_methods` table: the cards (gateway tokens) and signed
//! recurring SEPA mandates a customer saved. A removed method keeps its
//! row (`removed_at`) for history; every read here but [`get_any`] skips
//! it. Every query is scoped to one organization and one customer.
//!
//! Writers lock the customer first (`customers::lock`) so that a
//! customer's methods and autopay change one request at a time; the
//! partial unique indexes (one default, one live method per token or
//! mandate) hold whatever a writer forgets.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::autopay::MethodKind;
use guichet_domain::card::{CardBrand, CardView, Funding};

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::payment_methods;

/// What a method is, with what a charge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodDetails {
    /// A card: the gateway token to charge, and what may be shown.
    Card { token: String, view: CardView },
    /// A signed recurring SEPA mandate: collections are presented under
    /// `mandate_id`; the masked IBAN and the reference are what is shown.
    SepaDebit {
        mandate_id: String,
        iban_masked: String,
        umr: String,
    },
}

impl MethodDetails {
    pub fn kind(&self) -> MethodKind {
        match self {
            MethodDetails::Card { .. } => MethodKind::Card,
            MethodDetails::SepaDebit { .. } => MethodKind::SepaDebit,
        }
    }

    /// The method as people see it: `Visa •••• 4242`, or `SEPA FR76 ****
    /// ... ***0 189`.
    pub fn label(&self) -> String {
        match self {
            MethodDetails::Card { view, .. } => guichet_domain::autopay::card_label(view),
            MethodDetails::SepaDebit { iban_masked, .. } => {
                guichet_domain::autopay::sepa_label(iban_masked)
            }
        }
    }
}

/// A saved payment method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub details: MethodDetails,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payment_methods)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    kind: String,
    card_token: Option<String>,
    card_brand: Option<String>,
    card_last4: Option<String>,
    card_exp_month: Option<i32>,
    card_exp_year: Option<i32>,
    card_funding: Option<String>,
    mandate_id: Option<String>,
    iban_masked: Option<String>,
    umr: Option<String>,
    is_default: bool,
    created_at: NaiveDateTime,
    removed_at: Option<NaiveDateTime>,
}

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::Database(format!("stored payment method {id} has an invalid {what}"))
}

impl TryFrom<Row> for PaymentMethod {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let details = match MethodKind::parse(&r.kind) {
            Some(MethodKind::Card) => MethodDetails::Card {
                token: r.card_token.ok_or_else(|| corrupt(&r.id, "token"))?,
                view: CardView {
                    brand: r
                        .card_brand
                        .as_deref()
                        .and_then(CardBrand::parse)
                        .ok_or_else(|| corrupt(&r.id, "brand"))?,
                    last4: r.card_last4.ok_or_else(|| corrupt(&r.id, "last4"))?,
                    exp_month: r
                        .card_exp_month
                        .and_then(|m| u8::try_from(m).ok())
                        .ok_or_else(|| corrupt(&r.id, "month"))?,
                    exp_year: r
                        .card_exp_year
                        .and_then(|y| u16::try_from(y).ok())
                        .ok_or_else(|| corrupt(&r.id, "year"))?,
                    funding: r
                        .card_funding
                        .as_deref()
                        .and_then(Funding::parse)
                        .ok_or_else(|| corrupt(&r.id, "funding"))?,
                },
            },
            Some(MethodKind::SepaDebit) => MethodDetails::SepaDebit {
                mandate_id: r.mandate_id.ok_or_else(|| corrupt(&r.id, "mandate"))?,
                iban_masked: r.iban_masked.unwrap_or_default(),
                umr: r.umr.unwrap_or_default(),
            },
            None => return Err(corrupt(&r.id, "kind")),
        };
        Ok(PaymentMethod {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            details,
            is_default: r.is_default,
            created_at: from_db_time(r.created_at),
            removed_at: opt_from_db_time(r.removed_at),
        })
    }
}

/// Stores a new method. A live method with the same card token or mandate
/// of the same customer, or a second default, is a `Conflict`.
pub fn insert(conn: &mut DbConnection, m: &PaymentMethod) -> Result<(), StoreError> {
    let (token, card, mandate) = match &m.details {
        MethodDetails::Card { token, view } => (Some(token.as_str()), Some(view), None),
        MethodDetails::SepaDebit {
            mandate_id,
            iban_masked,
            umr,
        } => (
            None,
            None,
            Some((mandate_id.as_str(), iban_masked.as_str(), umr.as_str())),
        ),
    };
    diesel::insert_into(payment_methods::table)
        .values((
            payment_methods::id.eq(&m.id),
            payment_methods::org_id.eq(&m.org_id),
            payment_methods::customer_id.eq(&m.customer_id),
            payment_methods::kind.eq(m.details.kind().as_str()),
            payment_methods::card_token.eq(token),
            payment_methods::card_brand.eq(card.map(|c| c.brand.as_str())),
            payment_methods::card_last4.eq(card.map(|c| c.last4.as_str())),
            payment_methods::card_exp_month.eq(card.map(|c| i32::from(c.exp_month))),
            payment_methods::card_exp_year.eq(card.map(|c| i32::from(c.exp_year))),
            payment_methods::card_funding.eq(card.map(|c| c.funding.as_str())),
            payment_methods::mandate_id.eq(mandate.map(|m| m.0)),
            payment_methods::iban_masked.eq(mandate.map(|m| m.1)),
            payment_methods::umr.eq(mandate.map(|m| m.2)),
            payment_methods::is_default.eq(m.is_default),
            payment_methods::created_at.eq(to_db_time(m.created_at)),
            payment_methods::removed_at.eq(m.removed_at.map(to_db_time)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The customer's live methods: the default first, then newest first.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<PaymentMethod>, StoreError> {
    payment_methods::table
        .filter(payment_methods::org_id.eq(org_id))
        .filter(payment_methods::customer_id.eq(customer_id))
        .filter(payment_methods::removed_at.is_null())
        .order((
            payment_methods::is_default.desc(),
            payment_methods::created_at.desc(),
            payment_methods::id.desc(),
        ))
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(PaymentMethod::try_from)
        .collect()
}

/// The customer's live method `id` (`NotFound` when it is removed, another
/// customer's, or unknown).
pub fn get(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<PaymentMethod, StoreError> {
    payment_methods::table
        .filter(payment_methods::org_id.eq(org_id))
        .filter(payment_methods::customer_id.eq(customer_id))
        .filter(payment_methods::id.eq(id))
        .filter(payment_methods::removed_at.is_null())
        .select(Row::as_select())
        .first(conn)?
        .try_into()
}

/// The customer's method `id`, removed or not.
pub fn get_any(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<PaymentMethod, StoreError> {
    payment_methods::table
        .filter(payment_methods::org_id.eq(org_id))
        .filter(payment_methods::customer_id.eq(customer_id))
        .filter(payment_methods::id.eq(id))
        .select(Row::as_select())
        .first(conn)?
        .try_into()
}

/// The customer's live method for this card token or mandate, if any.
pub fn find_live(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    details: &MethodDetails,
) -> Result<Option<PaymentMethod>, StoreError> {
    let query = payment_methods::table
        .filter(payment_methods::org_id.eq(org_id))
        .filter(payment_methods::customer_id.eq(customer_id))
        .filter(payment_methods::removed_at.is_null())
        .select(Row::as_select())
        .into_boxed();
    let query = match details {
        MethodDetails::Card { token, .. } => {
            query.filter(payment_methods::card_token.eq(token.clone()))
        }
        MethodDetails::SepaDebit { mandate_id, .. } => {
            query.filter(payment_methods::mandate_id.eq(mandate_id.clone()))
        }
    };
    query
        .first::<Row>(conn)
        .optional()?
        .map(PaymentMethod::try_from)
        .transpose()
}

/// Makes `id` the customer's only default (the previous one first loses
/// it, so that the one-default index holds at every step).
pub fn set_default(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    diesel::update(
        payment_methods::table
            .filter(payment_methods::org_id.eq(org_id))
            .filter(payment_methods::customer_id.eq(customer_id))
            .filter(payment_methods::is_default.eq(true))
            .filter(payment_methods::id.ne(id)),
    )
    .set(payment_methods::is_default.eq(false))
    .execute(conn)?;
    let n = diesel::update(
        payment_methods::table
            .filter(payment_methods::org_id.eq(org_id))
            .filter(payment_methods::customer_id.eq(customer_id))
            .filter(payment_methods::id.eq(id))
            .filter(payment_methods::removed_at.is_null()),
    )
    .set(payment_methods::is_default.eq(true))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Removes the live method `id` (kept for history, no longer default);
/// when it was the default, the newest remaining method becomes the
/// default. Returns the new default, if one was chosen.
pub fn remove(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let was = get(conn, org_id, customer_id, id)?;
    diesel::update(
        payment_methods::table
            .filter(payment_methods::org_id.eq(org_id))
            .filter(payment_methods::id.eq(id)),
    )
    .set((
        payment_methods::removed_at.eq(Some(to_db_time(now))),
        payment_methods::is_default.eq(false),
    ))
    .execute(conn)?;
    if !was.is_default {
        return Ok(None);
    }
    let Some(next) = list(conn, org_id, customer_id)?.into_iter().next() else {
        return Ok(None);
    };
    set_default(conn, org_id, customer_id, &next.id)?;
    Ok(Some(next.id))
}

/// Whether the customer has a live default method.
pub fn has_default(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<bool, StoreError> {
    let n: i64 = payment_methods::table
        .filter(payment_methods::org_id.eq(org_id))
        .filter(payment_methods::customer_id.eq(customer_id))
        .filter(payment_methods::removed_at.is_null())
        .filter(payment_methods::is_default.eq(true))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
