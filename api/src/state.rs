//! What handlers share.

use std::sync::Arc;

use guichet_domain::Clock;
use guichet_store::Store;

use crate::auth::ratelimit::RateLimiter;
use crate::auth::tokens::TokenService;
use crate::config::AuthLimits;
use crate::metrics::Metrics;

/// The application state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenService>,
    /// Keys code hashes and signs challenges.
    pub secret_key: Arc<Vec<u8>>,
    pub auth_limits: AuthLimits,
    /// Whose `X-Forwarded-For` gives the client's address.
    pub trusted_proxies: crate::edge::client_ip::TrustedProxies,
    pub limiter: Arc<RateLimiter>,
    /// Bounds concurrent password hashing.
    pub hash_slots: Arc<crate::auth::slots::HashSlots>,
    /// Charges, refunds and card tokens.
    pub gateway: Arc<dyn guichet_domain::gateway::PaymentGateway>,
    /// Whether `gateway` is the built-in sandbox (its tokenization route is
    /// served only then).
    pub sandbox: bool,
    /// Proposes a BIC and bank name for an IBAN.
    pub bank_directory: Arc<guichet_domain::sepa::BankDirectory>,
    /// How long an `Idempotency-Key` stays locked for a request that may
    /// still be running (`--idempotency-lock-seconds`).
    pub idempotency_lock: chrono::Duration,
    /// Where document bytes go.
    pub blobs: crate::blobs::Blobs,
    /// Largest document upload, in bytes (`--document-max-bytes`).
    pub document_max_bytes: u64,
    /// Test-only pauses before a COMMIT (`--fault-pause`).
    pub faults: crate::faults::Faults,
    /// Webhook URL rules and delivery counters.
    pub webhooks: crate::webhooks::WebhookState,
}

impl AppState {
    /// The key messages carrying a secret are sealed with in the outbox.
    pub fn outbox_key(&self) -> guichet_jobs::notify::OutboxKey {
        guichet_jobs::notify::OutboxKey::derive(&self.secret_key)
    }

    /// How long an idempotency key (and a regularization payment) may stay
    /// in progress before a retry may take it over.
    pub fn idempotency_lease(&self) -> chrono::Duration {
        self.idempotency_lock
    }
}
