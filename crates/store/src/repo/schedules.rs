//! Orders with their schedule: the `orders`, `instalments`, `adjustments`,
//! `refunds` and `cards` tables. Every query is scoped to an organization,
//! and the customer's reads to the customer too.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::card::{CardBrand, CardView, Funding};
use guichet_domain::schedule::{
    Adjustment, AdjustmentKind, Instalment, InstalmentStatus, Schedule, ScheduleStatus,
};
use guichet_domain::{Currency, Money, ids};

use super::{from_db_time, opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{adjustments, cards, instalments, orders, refunds};

/// A card as stored: the gateway's token and what may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    /// The gateway token (never a card number).
    pub token: String,
    pub view: CardView,
    pub created_at: DateTime<Utc>,
}

/// An order and its schedule, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub order_number: String,
    pub merchant_brand: String,
    pub purchase_date: NaiveDate,
    pub card: Card,
    pub schedule: Schedule,
    /// The id of each instalment, by its number.
    pub instalment_ids: BTreeMap<u32, String>,
    /// The refunds its cancellations recorded, oldest first, as stored
    /// (read with the order; not written by [`save_schedule`], which
    /// records new ones from the adjustments).
    pub refunds: Vec<super::refunds::Refund>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// The schedule's status, as derived from its instalments.
    pub fn status(&self) -> ScheduleStatus {
        self.schedule.status()
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("stored {what} {value:?} is invalid"))
}

fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code).map_err(|_| corrupt("currency", code))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cards)]
struct CardRow {
    id: String,
    org_id: String,
    customer_id: String,
    token: String,
    brand: String,
    last4: String,
    exp_month: i32,
    exp_year: i32,
    funding: String,
    created_at: NaiveDateTime,
}

impl TryFrom<CardRow> for Card {
    type Error = StoreError;
    fn try_from(r: CardRow) -> Result<Self, StoreError> {
        Ok(Card {
            view: CardView {
                brand: CardBrand::parse(&r.brand).ok_or_else(|| corrupt("brand", &r.brand))?,
                last4: r.last4,
                exp_month: u8::try_from(r.exp_month).map_err(|_| corrupt("month", "?"))?,
                exp_year: u16::try_from(r.exp_year).map_err(|_| corrupt("year", "?"))?,
                funding: Funding::parse(&r.funding)
                    .ok_or_else(|| corrupt("funding", &r.funding))?,
            },
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            token: r.token,
            created_at: from_db_time(r.created_at),
        })
    }
}

/// The customer's schedules still debited from the card with gateway
/// token `token` (in progress, or unpaid and retried), oldest first: a
/// saved payment method with this token cannot be removed while they are.
pub fn open_orders_with_card_token(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    token: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(orders::table
        .inner_join(cards::table.on(cards::id.eq(orders::card_id)))
        .filter(orders::org_id.eq(org_id))
        .filter(orders::customer_id.eq(customer_id))
        .filter(orders::status.eq_any([
            ScheduleStatus::InProgress.as_str(),
            ScheduleStatus::Unpaid.as_str(),
        ]))
        .filter(cards::token.eq(token))
        .order((orders::created_at.asc(), orders::id.asc()))
        .select(orders::id)
        .load(conn)?)
}

/// Stores a card (its token and display data).
pub fn insert_card(conn: &mut DbConnection, card: &Card) -> Result<(), StoreError> {
    diesel::insert_into(cards::table)
        .values((
            cards::id.eq(&card.id),
            cards::org_id.eq(&card.org_id),
            cards::customer_id.eq(&card.customer_id),
            cards::token.eq(&card.token),
            cards::brand.eq(card.view.brand.as_str()),
            cards::last4.eq(&card.view.last4),
            cards::exp_month.eq(i32::from(card.view.exp_month)),
            cards::exp_year.eq(i32::from(card.view.exp_year)),
            cards::funding.eq(card.view.funding.as_str()),
            cards::created_at.eq(to_db_time(card.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
struct OrderRow {
    id: String,
    org_id: String,
    customer_id: String,
    order_number: String,
    merchant_brand: String,
    purchase_date: NaiveDate,
    total_amount: i64,
    currency: String,
    card_id: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = instalments)]
struct InstalmentRow {
    id: String,
    order_id: String,
    number: i32,
    due_date: NaiveDate,
    amount: i64,
    currency: String,
    status: String,
    paid_at: Option<NaiveDateTime>,
    attempts: i32,
    next_attempt_on: Option<NaiveDate>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = adjustments)]
struct AdjustmentRow {
    order_id: String,
    kind: String,
    amount: i64,
    refund_amount: Option<i64>,
    created_at: NaiveDateTime,
}

/// Stores a new order with its card link, instalments and no adjustment.
pub fn insert_order(conn: &mut DbConnection, order: &Order) -> Result<(), StoreError> {
    let total = order.schedule.total;
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(&order.id),
            orders::org_id.eq(&order.org_id),
            orders::customer_id.eq(&order.customer_id),
            orders::order_number.eq(&order.order_number),
            orders::merchant_brand.eq(&order.merchant_brand),
            orders::purchase_date.eq(order.purchase_date),
            orders::total_amount.eq(total.amount),
            orders::currency.eq(total.currency.as_str()),
            orders::card_id.eq(&order.card.id),
            orders::status.eq(order.status().as_str()),
            orders::created_at.eq(to_db_time(order.created_at)),
            orders::updated_at.eq(to_db_time(order.updated_at)),
        ))
        .execute(conn)?;
    for instalment in &order.schedule.instalments {
        let id = order
            .instalment_ids
            .get(&instalment.number)
            .cloned()
            .ok_or_else(|| StoreError::Database("instalment without id".into()))?;
        insert_instalment(conn, order, &id, instalment)?;
    }
    Ok(())
}

fn insert_instalment(
    conn: &mut DbConnection,
    order: &Order,
    id: &str,
    i: &Instalment,
) -> Result<(), StoreError> {
    diesel::insert_into(instalments::table)
        .values((
            instalments::id.eq(id),
            instalments::order_id.eq(&order.id),
            instalments::org_id.eq(&order.org_id),
            instalments::number.eq(i32::try_from(i.number).unwrap_or(i32::MAX)),
            instalments::due_date.eq(i.due_date),
            instalments::amount.eq(i.amount.amount),
            instalments::currency.eq(i.amount.currency.as_str()),
            instalments::status.eq(i.status.as_str()),
            instalments::paid_at.eq(opt_to_db_time(i.paid_at)),
            instalments::attempts.eq(i32::try_from(i.attempts).unwrap_or(i32::MAX)),
            instalments::next_attempt_on.eq(i.next_attempt_on),
            instalments::debit_on.eq(debit_on(i)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The date a pending instalment is next presented (`None` otherwise).
fn debit_on(i: &Instalment) -> Option<NaiveDate> {
    (i.status == InstalmentStatus::Pending)
        .then(|| i.next_debit_on())
        .flatten()
}

/// Writes back a changed schedule: every instalment's amount, status and
/// attempts, new instalments (numbers without an id get one), the order's
/// status, and the adjustments beyond those already stored (with a refund
/// record for each refund).
pub fn save_schedule(
    conn: &mut DbConnection,
    order: &mut Order,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for instalment in order.schedule.instalments.clone() {
        match order.instalment_ids.get(&instalment.number).cloned() {
            Some(id) => {
                diesel::update(instalments::table.find(&id))
                    .set((
                        instalments::amount.eq(instalment.amount.amount),
                        instalments::status.eq(instalment.status.as_str()),
                        instalments::paid_at.eq(opt_to_db_time(instalment.paid_at)),
                        instalments::attempts
                            .eq(i32::try_from(instalment.attempts).unwrap_or(i32::MAX)),
                        instalments::next_attempt_on.eq(instalment.next_attempt_on),
                        instalments::debit_on.eq(debit_on(&instalment)),
                    ))
                    .execute(conn)?;
            }
            None => {
                let id = ids::new_id("ins");
                insert_instalment(conn, order, &id, &instalment)?;
                order.instalment_ids.insert(instalment.number, id);
            }
        }
    }
    let stored: i64 = adjustments::table
        .filter(adjustments::order_id.eq(&order.id))
        .count()
        .get_result(conn)?;
    for adjustment in order
        .schedule
        .adjustments
        .iter()
        .skip(usize::try_from(stored).unwrap_or(0))
    {
        let adjustment_id = ids::new_id("adj");
        diesel::insert_into(adjustments::table)
            .values((
                adjustments::id.eq(&adjustment_id),
                adjustments::order_id.eq(&order.id),
                adjustments::kind.eq(adjustment.kind.as_str()),
                adjustments::amount.eq(adjustment.amount.amount),
                adjustments::refund_amount.eq(adjustment.refund.map(|r| r.amount)),
                adjustments::created_at.eq(to_db_time(adjustment.at)),
            ))
            .execute(conn)?;
        if let Some(refund) = adjustment.refund.filter(|r| r.amount > 0) {
            diesel::insert_into(refunds::table)
                .values((
                    refunds::id.eq(ids::new_id("rfd")),
                    refunds::order_id.eq(&order.id),
                    refunds::adjustment_id.eq(&adjustment_id),
                    refunds::amount.eq(refund.amount),
                    refunds::currency.eq(refund.currency.as_str()),
                    refunds::status.eq("pending"),
                    refunds::created_at.eq(to_db_time(adjustment.at)),
                ))
                .execute(conn)?;
        }
    }
    order.updated_at = now;
    diesel::update(orders::table.find(&order.id))
        .set((
            orders::status.eq(order.status().as_str()),
            orders::card_id.eq(&order.card.id),
            orders::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A page of a customer's orders, as [`list_for_customer`] selects it.
#[derive(Debug, Clone, Copy)]
struct PageOf<'a> {
    org_id: &'a str,
    customer_id: &'a str,
    status: Option<ScheduleStatus>,
    after: Option<&'a str>,
    limit: i64,
}

impl<'a> PageOf<'a> {
    /// `query` (over `orders`) narrowed to the page, in page order.
    fn narrow<ST: 'a>(
        self,
        mut query: orders::BoxedQuery<'a, Db, ST>,
    ) -> orders::BoxedQuery<'a, Db, ST> {
        query = query
            .filter(orders::org_id.eq(self.org_id))
            .filter(orders::customer_id.eq(self.customer_id));
        if let Some(status) = self.status {
            query = query.filter(orders::status.eq(status.as_str()));
        }
        if let Some(after) = self.after {
            query = query.filter(orders::id.gt(after));
        }
        query.order(orders::id.asc()).limit(self.limit)
    }
}

/// `$column IN (SELECT $selected FROM orders …the page…)`, boxed: the
/// page's filters, order and limit as [`PageOf::narrow`] puts them (an
/// unboxed subquery, which either backend can take).
macro_rules! in_page {
    ($column:expr, $page:expr, $selected:expr) => {{
        let page: PageOf<'_> = $page;
        let orders = orders::table
            .filter(orders::org_id.eq(page.org_id))
            .filter(orders::customer_id.eq(page.customer_id));
        match (page.status, page.after) {
            (Some(status), Some(after)) => Box::new(
                $column.eq_any(
                    orders
                        .filter(orders::status.eq(status.as_str()))
                        .filter(orders::id.gt(after))
                        .order(orders::id.asc())
                        .limit(page.limit)
                        .select($selected),
                ),
            )
                as Box<
                    dyn diesel::expression::BoxableExpression<
                            _,
                            Db,
                            SqlType = diesel::sql_types::Bool,
                        >,
                >,
            (Some(status), None) => Box::new(
                $column.eq_any(
                    orders
                        .filter(orders::status.eq(status.as_str()))
                        .order(orders::id.asc())
                        .limit(page.limit)
                        .select($selected),
                ),
            ),
            (None, Some(after)) => Box::new(
                $column.eq_any(
                    orders
                        .filter(orders::id.gt(after))
                        .order(orders::id.asc())
                        .limit(page.limit)
                        .select($selected),
                ),
            ),
            (None, None) => Box::new(
                $column.eq_any(
                    orders
                        .order(orders::id.asc())
                        .limit(page.limit)
                        .select($selected),
                ),
            ),
        }
    }};
}

/// Which orders [`assemble`] reads the instalments, adjustments, refunds
/// and cards of.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// The orders read, by id: `IN (?, ?, …)` on SQLite, a statement that
    /// SQLite compiles again at each call (its text depends on the count).
    Ids,
    /// A page of a customer's orders, selected again in a subquery: on
    /// SQLite, statements of one text whatever the page holds, which the
    /// connection's statement cache keeps compiled.
    Page(PageOf<'a>),
}

/// The backend of [`DbConnection`] (either database).
type Db = <DbConnection as diesel::Connection>::Backend;

/// A `WHERE` condition on table `T`, chosen at run time.
type Filter<'a, T> =
    Box<dyn diesel::expression::BoxableExpression<T, Db, SqlType = diesel::sql_types::Bool> + 'a>;

fn assemble(conn: &mut DbConnection, rows: Vec<OrderRow>) -> Result<Vec<Order>, StoreError> {
    assemble_in(conn, rows, Scope::Ids)
}

fn assemble_in(
    conn: &mut DbConnection,
    rows: Vec<OrderRow>,
    scope: Scope<'_>,
) -> Result<Vec<Order>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&String> = rows.iter().map(|r| &r.id).collect();
    let card_ids: Vec<&String> = rows.iter().map(|r| &r.card_id).collect();
    let instalments_filter: Filter<'_, instalments::table> = match scope {
        Scope::Ids => Box::new(instalments::order_id.eq_any(ids.clone())),
        Scope::Page(page) => in_page!(instalments::order_id, page, orders::id),
    };
    let mut by_order: BTreeMap<String, Vec<InstalmentRow>> = BTreeMap::new();
    for row in instalments::table
        .filter(instalments_filter)
        .order((instalments::order_id.asc(), instalments::number.asc()))
        .select(InstalmentRow::as_select())
        .load(conn)?
    {
        by_order.entry(row.order_id.clone()).or_default().push(row);
    }
    let adjustments_filter: Filter<'_, adjustments::table> = match scope {
        Scope::Ids => Box::new(adjustments::order_id.eq_any(ids.clone())),
        Scope::Page(page) => in_page!(adjustments::order_id, page, orders::id),
    };
    let mut adjustments_by_order: BTreeMap<String, Vec<AdjustmentRow>> = BTreeMap::new();
    for row in adjustments::table
        .filter(adjustments_filter)
        .order((adjustments::created_at.asc(), adjustments::id.asc()))
        .select(AdjustmentRow::as_select())
        .load(conn)?
    {
        adjustments_by_order
            .entry(row.order_id.clone())
            .or_default()
            .push(row);
    }
    // A refund is recorded with the cancellation (adjustment) it pays
    // back (`refunds.adjustment_id`, not null): orders without any have
    // none.
    let order_ids: Vec<&str> = adjustments_by_order.keys().map(String::as_str).collect();
    let mut refunds_by_order: BTreeMap<String, Vec<super::refunds::Refund>> = BTreeMap::new();
    if !order_ids.is_empty() {
        for refund in super::refunds::for_orders(conn, &order_ids)? {
            refunds_by_order
                .entry(refund.order_id.clone())
                .or_default()
                .push(refund);
        }
    }
    let cards_filter: Filter<'_, cards::table> = match scope {
        Scope::Ids => Box::new(cards::id.eq_any(card_ids.clone())),
        Scope::Page(page) => in_page!(cards::id, page, orders::card_id),
    };
    let mut cards_by_id: BTreeMap<String, Card> = BTreeMap::new();
    for row in cards::table
        .filter(cards_filter)
        .select(CardRow::as_select())
        .load(conn)?
    {
        let card = Card::try_from(row)?;
        cards_by_id.insert(card.id.clone(), card);
    }
    rows.into_iter()
        .map(|r| {
            let cur = currency(&r.currency)?;
            let mut instalment_ids = BTreeMap::new();
            let mut list = Vec::new();
            for i in by_order.remove(&r.id).unwrap_or_default() {
                let number = u32::try_from(i.number).map_err(|_| corrupt("number", "?"))?;
                instalment_ids.insert(number, i.id);
                list.push(Instalment {
                    number,
                    due_date: i.due_date,
                    amount: Money::new(i.amount, currency(&i.currency)?),
                    status: InstalmentStatus::parse(&i.status)
                        .ok_or_else(|| corrupt("status", &i.status))?,
                    paid_at: opt_from_db_time(i.paid_at),
                    attempts: u32::try_from(i.attempts).unwrap_or(0),
                    next_attempt_on: i.next_attempt_on,
                });
            }
            let adjustments = adjustments_by_order
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    Ok(Adjustment {
                        kind: AdjustmentKind::parse(&a.kind)
                            .ok_or_else(|| corrupt("kind", &a.kind))?,
                        amount: Money::new(a.amount, cur),
                        at: from_db_time(a.created_at),
                        refund: a.refund_amount.map(|v| Money::new(v, cur)),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Order {
                card: cards_by_id
                    .get(&r.card_id)
                    .cloned()
                    .ok_or_else(|| StoreError::Database("order without card".into()))?,
                schedule: Schedule {
                    total: Money::new(r.total_amount, cur),
                    instalments: list,
                    adjustments,
                },
                instalment_ids,
                refunds: refunds_by_order.remove(&r.id).unwrap_or_default(),
                id: r.id,
                org_id: r.org_id,
                customer_id: r.customer_id,
                order_number: r.order_number,
                merchant_brand: r.merchant_brand,
                purchase_date: r.purchase_date,
                created_at: from_db_time(r.created_at),
                updated_at: from_db_time(r.updated_at),
            })
        })
        .collect()
}

/// The order `id` of organization `org_id`.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Order, StoreError> {
    let row = orders::table
        .filter(orders::org_id.eq(org_id))
        .filter(orders::id.eq(id))
        .select(OrderRow::as_select())
        .first(conn)?;
    assemble(conn, vec![row])?.pop().ok_or(StoreError::NotFound)
}

/// Orders read or written at once by one statement: within both backends'
/// limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The orders named by `keys` (organization, order id), in any order; an
/// order of another organization is left out, as one that does not exist.
pub fn get_many(conn: &mut DbConnection, keys: &[(&str, &str)]) -> Result<Vec<Order>, StoreError> {
    let wanted: BTreeSet<(&str, &str)> = keys.iter().copied().collect();
    let mut ids: Vec<&str> = wanted.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = Vec::with_capacity(ids.len());
    for part in ids.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<OrderRow> = orders::table
            .filter(orders::id.eq_any(part))
            .select(OrderRow::as_select())
            .load(conn)?;
        let rows = rows
            .into_iter()
            .filter(|r| wanted.contains(&(r.org_id.as_str(), r.id.as_str())))
            .collect();
        found.extend(assemble(conn, rows)?);
    }
    Ok(found)
}

/// The order `id` if it belongs to this customer.
pub fn get_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Order, StoreError> {
    let row = orders::table
        .filter(orders::org_id.eq(org_id))
        .filter(orders::customer_id.eq(customer_id))
        .filter(orders::id.eq(id))
        .select(OrderRow::as_select())
        .first(conn)?;
    assemble(conn, vec![row])?.pop().ok_or(StoreError::NotFound)
}

/// A page of the customer's orders in id order, optionally of one status,
/// after the order id `after`.
pub fn list_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    status: Option<ScheduleStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Order>, StoreError> {
    let page = PageOf {
        org_id,
        customer_id,
        status,
        after,
        limit,
    };
    let orders = || page.narrow(orders::table.select(OrderRow::as_select()).into_boxed());
    match conn {
        // The page's instalments, adjustments and cards are read through a
        // subquery that selects the page again (by the same index), so
        // that their statements keep one text and stay compiled; all on
        // one snapshot, so that the subquery finds the very orders read.
        DbConnection::Sqlite(_) => crate::tx::snapshot(conn, |conn| {
            let rows = orders().load(conn)?;
            assemble_in(conn, rows, Scope::Page(page))
        }),
        // PostgreSQL takes the ids as one array parameter (`= ANY($1)`),
        // a statement of one text already.
        DbConnection::Postgresql(_) => {
            let rows = orders().load(conn)?;
            assemble(conn, rows)
        }
    }
}

/// A page of the organization's orders by id, after `after`.
pub fn list_for_org(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Order>, StoreError> {
    let mut query = orders::table
        .filter(orders::org_id.eq(org_id))
        .select(OrderRow::as_select())
        .order(orders::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(customer_id) = customer_id {
        query = query.filter(orders::customer_id.eq(customer_id.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(orders::id.gt(after.to_owned()));
    }
    let rows = query.load(conn)?;
    assemble(conn, rows)
}

/// An instalment claimed by a debit run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedInstalment {
    pub instalment_id: String,
    pub order_id: String,
    pub org_id: String,
}

/// Claims up to `limit` pending instalments whose debit date is on or
/// before `as_of` and that no other run holds, for `lease`, oldest debit
/// date first (in the order of the `instalments_due` index within a date:
/// sorting by id too would read every due instalment at each claim). On
/// PostgreSQL
/// the rows are picked with `FOR UPDATE SKIP LOCKED`, so concurrent runs
/// (several nodes) split the work; on SQLite the claim runs in a
/// `BEGIN IMMEDIATE` transaction, which serializes runs.
pub fn claim_due(
    conn: &mut DbConnection,
    as_of: NaiveDate,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    limit: i64,
    token: &str,
) -> Result<Vec<ClaimedInstalment>, StoreError> {
    use diesel::sql_types::{BigInt, Date, Text, Timestamp};
    let until = to_db_time(now + lease);
    let now_db = to_db_time(now);
    match conn {
        DbConnection::Postgresql(pg) => {
            #[derive(QueryableByName)]
            struct Claimed {
                #[diesel(sql_type = Text)]
                id: String,
                #[diesel(sql_type = Text)]
                order_id: String,
                #[diesel(sql_type = Text)]
                org_id: String,
            }
            let rows: Vec<Claimed> = diesel::sql_query(
                "UPDATE instalments SET claim_token = $1, claimed_until = $2 \
                 WHERE id IN (SELECT id FROM instalments \
                   WHERE status = 'pending' AND debit_on <= $3 \
                     AND (claimed_until IS NULL OR claimed_until < $4) \
                   ORDER BY debit_on LIMIT $5 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, order_id, org_id",
            )
            .bind::<Text, _>(token)
            .bind::<Timestamp, _>(until)
            .bind::<Date, _>(as_of)
            .bind::<Timestamp, _>(now_db)
            .bind::<BigInt, _>(limit)
            .load(pg)?;
            Ok(rows
                .into_iter()
                .map(|r| ClaimedInstalment {
                    instalment_id: r.id,
                    order_id: r.order_id,
                    org_id: r.org_id,
                })
                .collect())
        }
        DbConnection::Sqlite(_) => crate::transaction(conn, |conn| {
            let picked: Vec<(String, String, String)> = instalments::table
                .filter(instalments::status.eq("pending"))
                .filter(instalments::debit_on.le(as_of))
                .filter(
                    instalments::claimed_until
                        .is_null()
                        .or(instalments::claimed_until.lt(now_db)),
                )
                .order(instalments::debit_on.asc())
                .limit(limit)
                .select((instalments::id, instalments::order_id, instalments::org_id))
                .load(conn)?;
            let ids: Vec<&String> = picked.iter().map(|p| &p.0).collect();
            diesel::update(instalments::table.filter(instalments::id.eq_any(&ids)))
                .set((
                    instalments::claim_token.eq(token),
                    instalments::claimed_until.eq(until),
                ))
                .execute(conn)?;
            Ok(picked
                .into_iter()
                .map(|(instalment_id, order_id, org_id)| ClaimedInstalment {
                    instalment_id,
                    order_id,
                    org_id,
                })
                .collect())
        }),
    }
}

/// Lets go of a claimed instalment.
pub fn release_claim(conn: &mut DbConnection, instalment_id: &str) -> Result<(), StoreError> {
    diesel::update(instalments::table.find(instalment_id))
        .set((
            instalments::claim_token.eq(None::<String>),
            instalments::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Lets go of claimed instalments.
pub fn release_claims(conn: &mut DbConnection, ids: &[&str]) -> Result<(), StoreError> {
    for part in ids.chunks(ROWS_PER_STATEMENT) {
        diesel::update(instalments::table.filter(instalments::id.eq_any(part)))
            .set((
                instalments::claim_token.eq(None::<String>),
                instalments::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// [`lock`] for several orders: locked in the order of their ids, so that
/// two writers locking overlapping sets never wait for each other in a
/// cycle.
pub fn lock_many(conn: &mut DbConnection, ids: &[&str]) -> Result<(), StoreError> {
    let DbConnection::Postgresql(pg) = conn else {
        return Ok(());
    };
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for part in ids.chunks(ROWS_PER_STATEMENT) {
        orders::table
            .filter(orders::id.eq_any(part))
            .select(orders::id)
            .order(orders::id.asc())
            .for_update()
            .load::<String>(pg)?;
    }
    Ok(())
}

/// Writes back what debit results changed, for many orders at once: the
/// status, payment date, attempts and next attempt of the instalments
/// `(order, number)` (and, with `release`, lets go of their claims in the
/// same statement), and the status of their orders. Nothing else of a
/// schedule changes when a debit result is recorded ([`save_schedule`]
/// writes everything). Instalments left in the same state share one
/// statement.
pub fn save_debits(
    conn: &mut DbConnection,
    changed: &[(&Order, u32)],
    release: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    type State = (
        &'static str,
        Option<NaiveDateTime>,
        i32,
        Option<NaiveDate>,
        Option<NaiveDate>,
    );
    let mut instalment_states: BTreeMap<State, Vec<&str>> = BTreeMap::new();
    let mut order_states: BTreeMap<&str, &'static str> = BTreeMap::new();
    for (order, number) in changed {
        let id = order
            .instalment_ids
            .get(number)
            .ok_or_else(|| StoreError::Database("instalment without id".into()))?;
        let instalment = order
            .schedule
            .instalments
            .iter()
            .find(|i| i.number == *number)
            .ok_or(StoreError::NotFound)?;
        let state = (
            instalment.status.as_str(),
            opt_to_db_time(instalment.paid_at),
            i32::try_from(instalment.attempts).unwrap_or(i32::MAX),
            instalment.next_attempt_on,
            debit_on(instalment),
        );
        instalment_states.entry(state).or_default().push(id);
        order_states.insert(&order.id, order.status().as_str());
    }
    let mut order_statuses: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    for (id, status) in order_states {
        order_statuses.entry(status).or_default().push(id);
    }
    for ((status, paid_at, attempts, next_attempt_on, debit_on), ids) in instalment_states {
        for part in ids.chunks(ROWS_PER_STATEMENT) {
            let state = (
                instalments::status.eq(status),
                instalments::paid_at.eq(paid_at),
                instalments::attempts.eq(attempts),
                instalments::next_attempt_on.eq(next_attempt_on),
                instalments::debit_on.eq(debit_on),
            );
            let rows = instalments::table.filter(instalments::id.eq_any(part));
            if release {
                diesel::update(rows)
                    .set((
                        state,
                        instalments::claim_token.eq(None::<String>),
                        instalments::claimed_until.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
            } else {
                diesel::update(rows).set(state).execute(conn)?;
            }
        }
    }
    for (status, ids) in order_statuses {
        for part in ids.chunks(ROWS_PER_STATEMENT) {
            diesel::update(orders::table.filter(orders::id.eq_any(part)))
                .set((
                    orders::status.eq(status),
                    orders::updated_at.eq(to_db_time(now)),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Locks the order until the end of the transaction, so that two writers
/// (a debit run and a cancellation, two runs on two instalments of one
/// order) never save stale copies of the same schedule. PostgreSQL takes a
/// row lock (`FOR UPDATE`); SQLite writers are already serialized by
/// `BEGIN IMMEDIATE`. Call it inside the transaction, before reading the
/// order.
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            orders::table
                .filter(orders::org_id.eq(org_id))
                .filter(orders::id.eq(id))
                .select(orders::id)
                .for_update()
                .first::<String>(pg)?;
            Ok(())
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// What is left due after a debit run: pending instalments whose debit date
/// is on or before `as_of`, and of those, the ones whose claim another run
/// holds at `now` (with the end of the last such claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueLeft {
    pub due: i64,
    pub held: i64,
    pub held_until: Option<DateTime<Utc>>,
}

/// Counts what is left due on or before `as_of` (see [`DueLeft`]).
pub fn due_left(
    conn: &mut DbConnection,
    as_of: NaiveDate,
    now: DateTime<Utc>,
) -> Result<DueLeft, StoreError> {
    let due: i64 = instalments::table
        .filter(instalments::status.eq("pending"))
        .filter(instalments::debit_on.le(as_of))
        .count()
        .get_result(conn)?;
    let held = instalments::table
        .filter(instalments::status.eq("pending"))
        .filter(instalments::debit_on.le(as_of))
        .filter(instalments::claimed_until.ge(to_db_time(now)));
    let count: i64 = held.count().get_result(conn)?;
    let until: Option<NaiveDateTime> = held
        .select(diesel::dsl::max(instalments::claimed_until))
        .first(conn)?;
    Ok(DueLeft {
        due,
        held: count,
        held_until: opt_from_db_time(until),
    })
}
