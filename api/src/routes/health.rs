//! Operational endpoints: liveness, readiness and metrics.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process can serve: its database answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The storage backend in use: `sqlite` or `postgres`.
    #[schema(value_type = crate::routes::enums::DatabaseBackend, example = "sqlite")]
    pub database: &'static str,
}

/// Liveness: answers as long as the process serves HTTP; touches nothing.
#[utoipa::path(
    operation_id = "getHealth",
    security(()),
    tag = "operations",
    responses((status = 200, description = "The process is up.", body = Health)),
)]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness: pings the database.
///
/// Readiness: pings the database; 503 while it cannot be reached, 200 again
/// as soon as it answers (no restart needed).
#[utoipa::path(
    operation_id = "getReadiness",
    security(()),
    tag = "operations",
    responses(
        (status = 200, description = "The database answers.", body = Readiness),
        (status = 503, description = "The database cannot be reached. Codes: `database_unavailable`.",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Readiness>, ApiError> {
    let store = state.store.clone();
    web::block(move || store.ping(Duration::from_secs(2))).await??;
    Ok(web::Json(Readiness {
        status: "ready",
        database: state.store.backend().as_str(),
    }))
}

/// Prometheus metrics.
///
/// Prometheus metrics: request counts and latency histograms per route,
/// method and status; database pool state; webhook deliveries by outcome,
/// queue depth and the oldest due delivery's wait.
#[utoipa::path(
    operation_id = "getMetrics",
    security(()),
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.",
        body = String, content_type = "text/plain; version=0.0.4")),
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut text = state
        .metrics
        .render(state.store.pool_state(), state.store.backend().as_str());
    let now = state.clock.now();
    let store = state.store.clone();
    // The queue is the database's: without it, the gauges are left out
    // rather than reported as zero.
    let queue = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::repo::webhooks::queue_stats(&mut conn, now)
    })
    .await
    .ok()
    .and_then(Result::ok);
    text.push_str(&crate::webhooks::render_metrics(
        &state.webhooks.counters,
        queue,
        now,
    ));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
