//! The black-box suite: one binary, one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod auth_limits;
mod autopay_sepa;
mod bookings;
mod collections;
mod consents;
mod dashboard;
mod debits;
mod demo;
mod documents;
mod events;
mod hygiene;
mod idempotency;
mod invoices;
mod mandates;
mod me;
mod messages;
mod openapi;
mod orders;
mod passwords;
mod payment_methods;
mod platform;
mod portal;
mod preview;
mod refunds;
mod sandbox;
mod schedules;
mod schema;
mod sepa_accounts;
mod staff_powers;
mod webhook_delivery;
mod webhooks;
