//! Assembles the actix application and runs the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, Service, ServiceFactory, ServiceRequest, ServiceResponse, Transform};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use guichet_domain::Clock;
use guichet_store::Store;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Settings;
use crate::edge::cors::CorsPolicy;
use crate::edge::json::BodyLimit;
use crate::edge::routes::{RouteTable, fallback};
use crate::edge::{EdgeConfig, edge};
use crate::metrics::Metrics;
use crate::problem::{ApiError, ProblemCode};
use crate::state::AppState;

/// Everything the application needs, built once and shared by the workers.
#[derive(Clone)]
pub struct Parts {
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
    edge: web::Data<EdgeConfig>,
    body_limit: web::Data<BodyLimit>,
    routes: web::Data<RouteTable>,
    document: Arc<serde_json::Value>,
}

impl Parts {
    pub fn new(settings: &Settings, store: Store, clock: Arc<dyn Clock>) -> Self {
        let spec = Arc::new(crate::openapi::spec());
        let metrics = Arc::new(Metrics::default());
        Parts {
            routes: web::Data::new(RouteTable::from_spec(&spec)),
            state: web::Data::new(AppState {
                store: store.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                tokens: Arc::new(crate::auth::tokens::TokenService::new(settings.jwt.clone())),
                secret_key: Arc::new(settings.secret_key.clone()),
                auth_limits: settings.auth_limits,
                trusted_proxies: settings.trusted_proxies.clone(),
                limiter: Arc::new(crate::auth::ratelimit::RateLimiter::default()),
                hash_slots: Arc::new(crate::auth::slots::HashSlots::new(
                    settings.password_hash_concurrency,
                )),
                gateway: match settings.payment_gateway {
                    crate::config::PaymentGatewayKind::Sandbox => {
                        Arc::new(guichet_gateway::SandboxGateway::with_token_key(
                            store.clone(),
                            clock.clone(),
                            &settings.secret_key,
                        ))
                    }
                },
                sandbox: settings.payment_gateway == crate::config::PaymentGatewayKind::Sandbox,
                bank_directory: settings.bank_directory.clone(),
                idempotency_lock: settings.idempotency_lock,
                faults: settings.faults.clone(),
                webhooks: crate::webhooks::WebhookState::new(&settings.webhooks),
                blobs: settings.blobs.clone(),
                document_max_bytes: settings.document_max_bytes,
            }),
            metrics: web::Data::from(metrics),
            edge: web::Data::new(EdgeConfig {
                body_limit: settings.body_limit,
                upload_limit: settings.document_max_bytes,
                header_limit: settings.header_limit,
                cors: CorsPolicy::new(&settings.cors_origins),
            }),
            body_limit: web::Data::new(BodyLimit(settings.body_limit)),
            document: Arc::new(crate::openapi::document()),
        }
    }
}

impl Parts {
    /// Starts the webhook dispatcher thread (`guichet serve`), counting
    /// into this application's `/metrics`; `None` when disabled.
    pub fn spawn_webhooks(&self, settings: &Settings) -> Option<guichet_jobs::runner::Periodic> {
        crate::webhooks::spawn(
            &settings.webhooks,
            &self.state.webhooks,
            self.state.store.clone(),
            self.state.clock.clone(),
            &settings.secret_key,
        )
    }
}

/// The application: every route, the edge middleware, Swagger UI and the
/// 404/405 fallback. `extra` lets in-crate tests mount probe routes.
pub fn app(
    parts: Parts,
    extra: fn(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(parts.state.clone())
        .app_data(parts.metrics.clone())
        .app_data(parts.edge.clone())
        .app_data(parts.body_limit.clone())
        .app_data(parts.routes.clone())
        .app_data(query_config())
        .app_data(path_config())
        .configure(crate::routes::configure)
        .split_for_parts();
    app.configure(extra)
        .service(
            SwaggerUi::new("/swagger-ui/{_:.*}")
                .external_url_unchecked("/api-docs/openapi.json", (*parts.document).clone()),
        )
        .route(
            "/swagger-ui",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/swagger-ui/"))
                    .finish()
            }),
        )
        .default_service(web::to(fallback))
        .wrap(from_fn(edge))
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _| {
        ApiError::new(ProblemCode::InvalidParameter)
            .detail(
                "Paramètre de requête invalide.",
                "Invalid query-string parameter.",
            )
            .cause(error.to_string())
            .into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _| {
        ApiError::new(ProblemCode::InvalidParameter)
            .detail("Paramètre de chemin invalide.", "Invalid path parameter.")
            .cause(error.to_string())
            .into()
    })
}

/// The outermost wrapper of each worker's application: built last, once the
/// worker's services exist, it gives the memory freed while building them
/// back to the operating system, and then stays out of the way (the
/// service it returns is the inner one).
///
/// Each worker registers the routes through utoipa-actix-web, which also
/// builds (and drops) the whole OpenAPI document: several MiB per worker
/// that glibc keeps in that thread's arena, pinned there by the
/// application's long-lived allocations made after it. `malloc_trim`
/// returns those free pages (docs/BENCHMARKS.md, idle RSS).
struct ReleaseStartupGarbage;

impl<S> Transform<S, ServiceRequest> for ReleaseStartupGarbage
where
    S: Service<ServiceRequest>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Transform = S;
    type InitError = ();
    type Future = std::future::Ready<Result<S, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        release_startup_garbage();
        std::future::ready(Ok(service))
    }
}

/// Releases the allocator's free memory, once per worker at start-up.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_startup_garbage() {
    // SAFETY: `malloc_trim` takes no pointer, only inspects glibc's own
    // allocator state under its locks, and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_startup_garbage() {}

/// Starts serving on `listener`; the returned server resolves when it has
/// stopped. SIGTERM stops it gracefully (in-flight requests get
/// `shutdown_timeout` seconds); SIGINT and SIGQUIT stop it at once.
pub fn start(settings: &Settings, parts: Parts, listener: TcpListener) -> std::io::Result<Server> {
    let server = HttpServer::new(move || app(parts.clone(), |_| {}).wrap(ReleaseStartupGarbage))
        .workers(settings.workers)
        .shutdown_timeout(settings.shutdown_timeout)
        .client_request_timeout(Duration::from_secs(10))
        .listen(listener)?
        .run();
    Ok(server)
}
