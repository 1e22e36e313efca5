//! The black-box suite: one binary, one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod me;
mod openapi;
mod passwords;
mod platform;
mod schema;
