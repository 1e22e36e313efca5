//! `guichet dev webhook-receiver`: a receiver of webhooks for trying them
//! on a development machine. It listens on 127.0.0.1 only, checks each
//! request as a Standard Webhooks receiver does (`webhook-id`,
//! `webhook-timestamp` within the tolerance of this machine's clock, one
//! `v1,` signature of `webhook-signature` matching one of the given
//! secrets), prints the event, and answers 200, or 400 with the reason
//! when the request does not verify (so that the sender logs a failure and
//! tries again).

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use guichet_domain::webhooks::{self, Secret};

use crate::config::WebhookReceiverArgs;

/// What the receiver checks requests against.
struct Checks {
    secrets: Vec<Secret>,
    tolerance: i64,
}

/// Why a request does not verify, or the event's id, type and timestamp.
fn check(
    checks: &Checks,
    req: &HttpRequest,
    body: &[u8],
    now: i64,
) -> Result<(String, i64), String> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no {name} header"))
    };
    let id = header("webhook-id")?;
    let timestamp: i64 = header("webhook-timestamp")?
        .parse()
        .map_err(|_| "webhook-timestamp is not a number".to_owned())?;
    let signature = header("webhook-signature")?;
    if (now - timestamp).abs() > checks.tolerance {
        return Err(format!(
            "webhook-timestamp {timestamp} is {} s away from this clock (tolerance {} s)",
            now - timestamp,
            checks.tolerance
        ));
    }
    if !checks
        .secrets
        .iter()
        .any(|secret| webhooks::verify(secret, id, timestamp, body, signature))
    {
        return Err("no signature matches the given secret(s)".to_owned());
    }
    Ok((id.to_owned(), timestamp))
}

async fn receive(req: HttpRequest, body: web::Bytes, checks: web::Data<Checks>) -> HttpResponse {
    let now = chrono::Utc::now().timestamp();
    let mut out = std::io::stdout().lock();
    match check(&checks, &req, &body, now) {
        Ok((id, timestamp)) => {
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let kind = event["type"].as_str().unwrap_or("?");
            let _ = writeln!(
                out,
                "verified {id} {kind} (webhook-timestamp {timestamp}, {} s ago)",
                now - timestamp
            );
            let pretty = serde_json::to_string_pretty(&event)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            let _ = writeln!(out, "{pretty}");
            let _ = out.flush();
            HttpResponse::Ok().content_type("text/plain").body("ok")
        }
        Err(reason) => {
            let _ = writeln!(out, "REJECTED {} {}: {reason}", req.method(), req.path());
            let _ = out.flush();
            HttpResponse::BadRequest()
                .content_type("text/plain")
                .body(reason)
        }
    }
}

/// Runs the receiver until interrupted.
pub fn webhook_receiver(args: &WebhookReceiverArgs) -> ExitCode {
    let mut secrets = Vec::new();
    for text in &args.secrets {
        match Secret::parse(text.trim()) {
            Ok(secret) => secrets.push(secret),
            Err(e) => {
                eprintln!("guichet dev webhook-receiver: --secret: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match TcpListener::bind(("127.0.0.1", args.port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "guichet dev webhook-receiver: cannot listen on 127.0.0.1:{}: {e}",
                args.port
            );
            return ExitCode::from(2);
        }
    };
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    let checks = web::Data::new(Checks {
        secrets,
        tolerance: i64::from(args.tolerance_secs),
    });
    println!("Webhook receiver listening on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
    let result = actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(checks.clone())
                .app_data(web::PayloadConfig::new(1024 * 1024))
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)?
        .run()
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guichet dev webhook-receiver: {e}");
            ExitCode::FAILURE
        }
    }
}
