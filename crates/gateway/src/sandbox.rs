//! The sandbox gateway: a payment gateway for development, demos and tests
//! that behaves like an external PSP, driven by documented test cards
//! (`guichet_domain::gateway::TEST_CARDS`).
//!
//! - Tokens are derived and decoded without stored state
//!   ([`SandboxTokens`]), so every node reads them, before and after a
//!   restart.
//! - Every charge and refund is recorded in the `sandbox_ledger` table by
//!   merchant (organization) and idempotency key, in its own statement or
//!   transaction on its own pooled connection, never inside the caller's
//!   transaction. The ledger is shared by every instance on the same
//!   database and survives restarts, so idempotency holds across nodes: the
//!   same key with the same card and amount answers the recorded outcome and
//!   never moves money twice; with another card or amount it is refused.
//! - The test cards simulate what a real PSP does: answers lost after the
//!   charge was made (timeout), processing errors, slow answers, failing
//!   refunds.
//! - [`SandboxGateway::set_unavailable`] simulates this node losing the PSP.
//!
//! No card number or security code is stored: a charge row keeps the token,
//! the brand and the last four digits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use guichet_domain::Clock;
use guichet_domain::Money;
use guichet_domain::card::CardView;
use guichet_domain::gateway::sandbox::{
    ChargeBalance, Decision, Delivery, SandboxTokens, charge_decision, charge_id,
    reference_matches, refund_decision, refund_id, sca_outcome, sca_session_id,
};
use guichet_domain::gateway::{
    AuthenticationFailure, AuthenticationOutcome, AuthenticationSession, CardDetails, CardToken,
    ChargeReceipt, GatewayError, Lookup, PaymentGateway, RefundReceipt,
};
use guichet_store::repo::sandbox::{self as ledger, Entry, Kind, Outcome};
use guichet_store::repo::sca::{self, ScaSession};
use guichet_store::{DbConnection, Store, StoreError};

/// How long a charge of the slow test card waits before answering, unless
/// set otherwise.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(15);

/// The sandbox gateway over a store (see the module documentation).
pub struct SandboxGateway {
    store: Store,
    clock: Arc<dyn Clock>,
    tokens: SandboxTokens,
    unavailable: AtomicBool,
    slow_delay_ms: AtomicU64,
}

impl std::fmt::Debug for SandboxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxGateway")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why a refund's transaction did not commit.
enum RefundTx {
    Store(StoreError),
    /// A concurrent refund took what was left.
    Exceeds,
}

impl From<StoreError> for RefundTx {
    fn from(e: StoreError) -> Self {
        RefundTx::Store(e)
    }
}

fn unavailable(error: StoreError) -> GatewayError {
    tracing::warn!(%error, "sandbox gateway: ledger unavailable");
    GatewayError::Unavailable
}

fn receipt_of_charge(entry: &Entry) -> Result<ChargeReceipt, GatewayError> {
    match entry.outcome {
        Outcome::Succeeded => Ok(ChargeReceipt {
            charge_id: entry.id.clone(),
            amount: entry.amount,
            idempotency_key: entry.idempotency_key.clone(),
        }),
        Outcome::Failed => Err(recorded_failure(entry)),
    }
}

fn receipt_of_refund(entry: &Entry) -> Result<RefundReceipt, GatewayError> {
    match entry.outcome {
        Outcome::Succeeded => Ok(RefundReceipt {
            refund_id: entry.id.clone(),
            charge_id: entry.reference.clone(),
            amount: entry.amount,
            idempotency_key: entry.idempotency_key.clone(),
        }),
        Outcome::Failed => Err(recorded_failure(entry)),
    }
}

fn recorded_failure(entry: &Entry) -> GatewayError {
    entry
        .failure_code
        .as_deref()
        .and_then(GatewayError::from_code)
        .unwrap_or(GatewayError::ProcessingError)
}

/// The recorded answer to a request sent again under its key: the same
/// outcome for the same reference and amount, a refusal otherwise.
fn replay<T>(
    entry: &Entry,
    reference: &str,
    amount: Money,
    receipt: fn(&Entry) -> Result<T, GatewayError>,
) -> Result<T, GatewayError> {
    if entry.reference != reference || entry.amount != amount {
        return Err(GatewayError::IdempotencyKeyReused);
    }
    receipt(entry)
}

impl SandboxGateway {
    /// A sandbox keeping its ledger in `store`, reading dates from `clock`,
    /// with the default token key.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self::with_tokens(store, clock, SandboxTokens::default())
    }

    /// A sandbox whose tokens are derived under `key` (the server secret
    /// key, so that the server and its jobs read the same tokens).
    pub fn with_token_key(store: Store, clock: Arc<dyn Clock>, key: &[u8]) -> Self {
        Self::with_tokens(store, clock, SandboxTokens::new(key))
    }

    fn with_tokens(store: Store, clock: Arc<dyn Clock>, tokens: SandboxTokens) -> Self {
        Self {
            store,
            clock,
            tokens,
            unavailable: AtomicBool::new(false),
            slow_delay_ms: AtomicU64::new(millis(DEFAULT_SLOW_DELAY)),
        }
    }

    /// The same sandbox, whose slow test card answers after `delay`.
    pub fn with_slow_delay(self, delay: Duration) -> Self {
        self.set_slow_delay(delay);
        self
    }

    /// How long a charge of the slow test card waits before answering
    /// (default [`DEFAULT_SLOW_DELAY`]).
    pub fn set_slow_delay(&self, delay: Duration) {
        self.slow_delay_ms.store(millis(delay), Ordering::SeqCst);
    }

    /// Simulates this node losing the PSP: while set, every call fails with
    /// [`GatewayError::Unavailable`] and nothing is recorded.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn check_available(&self) -> Result<(), GatewayError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(GatewayError::Unavailable)
        } else {
            Ok(())
        }
    }

    fn conn(&self) -> Result<guichet_store::db::PooledConn, GatewayError> {
        self.store.conn().map_err(unavailable)
    }

    /// How many times money was actually taken under `idempotency_key`, all
    /// merchants together (0 or 1 per merchant, however often the charge was
    /// retried). For tests.
    pub fn charge_count(&self, idempotency_key: &str) -> Result<u32, StoreError> {
        let count = ledger::successful_charges_under(&mut *self.store.conn()?, idempotency_key)?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The number of successful charges, all merchants and keys together.
    pub fn successful_charges(&self) -> Result<u32, StoreError> {
        let count = ledger::successful_charge_amounts(&mut *self.store.conn()?)?.len();
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The sum of successful charges in minor units (all merchants and
    /// currencies together; the sandbox is for tests).
    pub fn total_charged(&self) -> Result<i64, StoreError> {
        let rows = ledger::successful_charge_amounts(&mut *self.store.conn()?)?;
        Ok(rows.iter().map(|(amount, _)| amount).sum())
    }

    /// The sum of successful refunds in minor units.
    pub fn total_refunded(&self) -> Result<i64, StoreError> {
        let rows = ledger::successful_charge_amounts(&mut *self.store.conn()?)?;
        Ok(rows.iter().map(|(_, refunded)| refunded).sum())
    }

    /// Records `entry` unless its key is already known; the recorded entry
    /// when it is (a concurrent call with the same key won the insert).
    fn record(conn: &mut DbConnection, entry: &Entry) -> Result<Option<Entry>, GatewayError> {
        match ledger::insert(conn, entry) {
            Ok(()) => Ok(None),
            Err(StoreError::Conflict(_)) => {
                ledger::find(conn, &entry.merchant, entry.kind, &entry.idempotency_key)
                    .map_err(unavailable)?
                    .map(Some)
                    .ok_or(GatewayError::Unavailable)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

impl PaymentGateway for SandboxGateway {
    fn tokenize(&self, card: CardDetails) -> Result<CardToken, GatewayError> {
        self.check_available()?;
        self.tokens.tokenize(card, self.clock.today())
    }

    fn charge(
        &self,
        merchant: &str,
        token: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ChargeReceipt, GatewayError> {
        self.check_available()?;
        let mut conn = self.conn()?;
        if let Some(entry) =
            ledger::find(&mut conn, merchant, Kind::Charge, idempotency_key).map_err(unavailable)?
        {
            return replay(&entry, token, amount, receipt_of_charge);
        }
        let card = self.tokens.decode(token);
        let decision = charge_decision(card.as_ref(), amount, self.clock.today())?;
        let Some(card) = card else {
            return Err(GatewayError::UnknownToken);
        };
        let (outcome, failure_code) = match &decision {
            Decision::Proceed => (Outcome::Succeeded, None),
            Decision::Fail(error) => (Outcome::Failed, Some(error.code().to_owned())),
        };
        let entry = Entry {
            merchant: merchant.to_owned(),
            kind: Kind::Charge,
            idempotency_key: idempotency_key.to_owned(),
            id: charge_id(merchant, idempotency_key),
            reference: token.to_owned(),
            amount,
            brand: Some(card.view.brand.as_str().to_owned()),
            last4: Some(card.view.last4.clone()),
            outcome,
            failure_code,
            refunded: 0,
            created_at: self.clock.now(),
        };
        // One statement, committed on its own: the charge is made (or its
        // failure recorded) before anything is answered.
        if let Some(recorded) = Self::record(&mut conn, &entry)? {
            return replay(&recorded, token, amount, receipt_of_charge);
        }
        drop(conn);
        let receipt = receipt_of_charge(&entry)?;
        match card.behaviour.delivery() {
            Delivery::Immediate => Ok(receipt),
            Delivery::Lost => Err(GatewayError::Timeout),
            Delivery::Late => {
                let delay = self.slow_delay_ms.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(delay));
                Ok(receipt)
            }
        }
    }

    fn find_charge(
        &self,
        merchant: &str,
        idempotency_key: &str,
    ) -> Result<Lookup<ChargeReceipt>, GatewayError> {
        self.check_available()?;
        let entry = ledger::find(&mut *self.conn()?, merchant, Kind::Charge, idempotency_key)
            .map_err(unavailable)?;
        Ok(entry.as_ref().map(receipt_of_charge))
    }

    fn refund(
        &self,
        merchant: &str,
        charge_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, GatewayError> {
        self.check_available()?;
        let mut conn = self.conn()?;
        if let Some(entry) =
            ledger::find(&mut conn, merchant, Kind::Refund, idempotency_key).map_err(unavailable)?
        {
            return replay(&entry, charge_id, amount, receipt_of_refund);
        }
        let charge = ledger::find_by_id(&mut conn, merchant, Kind::Charge, charge_id)
            .map_err(unavailable)?
            .filter(|c| c.outcome == Outcome::Succeeded);
        let balance = charge.as_ref().map(|c| ChargeBalance {
            charged: c.amount,
            refunded: c.refunded,
            refunds_fail: self
                .tokens
                .decode(&c.reference)
                .is_some_and(|card| card.behaviour.refunds_fail()),
        });
        let decision = refund_decision(balance.as_ref(), amount)?;
        let Some(charge) = charge else {
            return Err(GatewayError::UnknownCharge);
        };
        let (outcome, failure_code) = match &decision {
            Decision::Proceed => (Outcome::Succeeded, None),
            Decision::Fail(error) => (Outcome::Failed, Some(error.code().to_owned())),
        };
        let entry = Entry {
            merchant: merchant.to_owned(),
            kind: Kind::Refund,
            idempotency_key: idempotency_key.to_owned(),
            id: refund_id(merchant, idempotency_key),
            reference: charge_id.to_owned(),
            amount,
            brand: charge.brand.clone(),
            last4: charge.last4.clone(),
            outcome,
            failure_code,
            refunded: 0,
            created_at: self.clock.now(),
        };
        // The refund and the charge's running total in one transaction; the
        // total only grows while it stays within the charge.
        let committed = guichet_store::transaction(&mut conn, |conn| {
            ledger::insert(conn, &entry)?;
            if decision == Decision::Proceed
                && !ledger::add_refunded(conn, merchant, charge_id, amount.amount)?
            {
                return Err(RefundTx::Exceeds);
            }
            Ok(())
        });
        match committed {
            Ok(()) => receipt_of_refund(&entry),
            Err(RefundTx::Exceeds) => Err(GatewayError::RefundExceedsCharge),
            Err(RefundTx::Store(StoreError::Conflict(_))) => {
                // A concurrent refund under the same key was recorded first.
                let recorded = ledger::find(&mut conn, merchant, Kind::Refund, idempotency_key)
                    .map_err(unavailable)?
                    .ok_or(GatewayError::Unavailable)?;
                replay(&recorded, charge_id, amount, receipt_of_refund)
            }
            Err(RefundTx::Store(e)) => Err(unavailable(e)),
        }
    }

    fn find_refund(
        &self,
        merchant: &str,
        idempotency_key: &str,
    ) -> Result<Lookup<RefundReceipt>, GatewayError> {
        self.check_available()?;
        let entry = ledger::find(&mut *self.conn()?, merchant, Kind::Refund, idempotency_key)
            .map_err(unavailable)?;
        Ok(entry.as_ref().map(receipt_of_refund))
    }

    fn card(&self, token: &str) -> Result<CardView, GatewayError> {
        self.check_available()?;
        self.tokens
            .decode(token)
            .map(|card| card.view)
            .ok_or(GatewayError::UnknownToken)
    }

    fn card_matches_reference(
        &self,
        _merchant: &str,
        token: &str,
        client_reference: &str,
    ) -> Result<bool, GatewayError> {
        self.check_available()?;
        let card = self
            .tokens
            .decode(token)
            .ok_or(GatewayError::UnknownToken)?;
        Ok(reference_matches(client_reference, &card.view.last4))
    }

    fn start_authentication(
        &self,
        merchant: &str,
        token: &str,
        idempotency_key: &str,
    ) -> Result<AuthenticationSession, GatewayError> {
        self.check_available()?;
        if self.tokens.decode(token).is_none() {
            return Err(GatewayError::UnknownToken);
        }
        let mut conn = self.conn()?;
        let session = ScaSession {
            id: sca_session_id(merchant, idempotency_key),
            merchant: merchant.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            card_token: token.to_owned(),
            outcome: None,
            created_at: self.clock.now(),
            decided_at: None,
        };
        let recorded = match sca::insert(&mut conn, &session) {
            Ok(()) => session,
            Err(StoreError::Conflict(_)) => sca::find_by_key(&mut conn, merchant, idempotency_key)
                .map_err(unavailable)?
                .ok_or(GatewayError::Unavailable)?,
            Err(e) => return Err(unavailable(e)),
        };
        if recorded.card_token != token {
            return Err(GatewayError::IdempotencyKeyReused);
        }
        Ok(AuthenticationSession {
            redirect_url: format!("/v1/sandbox/sca/{}", recorded.id),
            id: recorded.id,
        })
    }

    fn authentication_outcome(
        &self,
        merchant: &str,
        session_id: &str,
    ) -> Result<AuthenticationOutcome, GatewayError> {
        self.check_available()?;
        let session = sca::get(&mut *self.conn()?, session_id)
            .map_err(unavailable)?
            .filter(|s| s.merchant == merchant)
            .ok_or(GatewayError::UnknownToken)?;
        Ok(match session.outcome.as_deref() {
            None => AuthenticationOutcome::Pending,
            Some(name) => sca_outcome(name).unwrap_or(AuthenticationOutcome::Failed(
                AuthenticationFailure::TechnicalError,
            )),
        })
    }
}

#[cfg(test)]
mod tests;
