//! Guichet's HTTP API: routes, DTOs, problem+json mapping, OpenAPI assembly
//! and the `guichet` command.

pub mod auth;
pub mod blobs;
pub mod config;
pub mod demo;
pub mod edge;
pub mod faults;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod problem;
pub mod provision;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod webhooks;

#[cfg(test)]
mod tests;
