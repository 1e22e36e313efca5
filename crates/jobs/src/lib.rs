//! Guichet's background jobs: the debit run ([`debit`]), the SEPA
//! collections step ([`sepa`]), the refunds run ([`refunds`]), the
//! events' retention ([`retention`]) and the consents' expiry
//! ([`consents`]), with what
//! they share ([`runner`]: one way to claim work with a lease, to stop on a
//! signal, and to report counts and an exit status), and the messages they
//! queue ([`notify`]).
//!
//! `guichet serve` runs them periodically on their own threads; `guichet
//! jobs ...` runs them once. This crate knows nothing of HTTP (no actix, no
//! utoipa): the API crate depends on it, never the other way round.

pub mod autopay;
pub mod bookings;
pub mod consents;
pub mod debit;
pub mod invoices;
pub mod notify;
pub mod refunds;
pub mod retention;
pub mod runner;
pub mod sepa;
pub mod webhooks;

/// Which payment gateway charges cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PaymentGatewayKind {
    /// The built-in sandbox: test cards only, no money moves.
    Sandbox,
}
