//! Guichet's payment-gateway adapters. The [`PaymentGateway`] trait, the
//! card types and the sandbox's pure rules stay in the domain crate
//! (`guichet_domain::gateway`); this crate holds the implementations that do
//! I/O: today the sandbox, whose ledger lives in the database, and later a
//! real PSP.
//!
//! [`PaymentGateway`]: guichet_domain::gateway::PaymentGateway

pub mod sandbox;

pub use sandbox::SandboxGateway;
