//! `guichet dev webhook-receiver`: a local receiver for trying webhooks.
//! It listens on 127.0.0.1 only, checks each request's Standard Webhooks
//! signature against the given secrets, answers 200, and prints one line
//! per event: when, its id, its type, whether the signature verified.

use std::io::Write as _;
use std::net::TcpListener;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use guichet_domain::webhooks::{self, Secret};

/// What the receiver checks requests with.
#[derive(Debug, Clone)]
struct Keys(Vec<Secret>);

/// One request, judged: `(webhook id, event type, verified)`.
pub fn judge(secrets: &[Secret], headers: &[(&str, &str)], body: &[u8]) -> (String, String, bool) {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let id = header("webhook-id").unwrap_or("-").to_owned();
    let event_type = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned());
    let verified = match (
        header("webhook-timestamp").and_then(|t| t.trim().parse::<i64>().ok()),
        header("webhook-signature"),
    ) {
        (Some(timestamp), Some(signature)) => secrets
            .iter()
            .any(|s| webhooks::verify(s, &id, timestamp, body, signature)),
        _ => false,
    };
    (id, event_type, verified)
}

async fn receive(req: HttpRequest, body: web::Bytes, keys: web::Data<Keys>) -> HttpResponse {
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let (id, event_type, verified) = judge(&keys.0, &headers, &body);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{now} {id} {event_type} verified: {}",
        if verified { "yes" } else { "no" }
    );
    let _ = out.flush();
    HttpResponse::Ok().finish()
}

/// Runs the receiver on 127.0.0.1:`port` until SIGINT/SIGTERM.
pub fn run(port: u16, secrets: Vec<Secret>) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let keys = web::Data::new(Keys(secrets));
    println!(
        "guichet webhook receiver on http://{address}/ (any path), checking {} secret(s); one line per event:",
        keys.0.len()
    );
    println!("<received at> <webhook-id> <event type> verified: yes|no");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(keys.clone())
                .app_data(web::PayloadConfig::new(1024 * 1024))
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_signed_with_one_of_the_secrets_verifies() {
        let secret = Secret::generate();
        let body = br#"{"id":"evt_1","type":"ping"}"#;
        let signature = webhooks::sign(secret.key(), "evt_1", 1_700_000_000, body);
        let headers = [
            ("Webhook-Id", "evt_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", signature.as_str()),
        ];
        let other = Secret::generate();
        assert_eq!(
            judge(&[other.clone(), secret], &headers, body),
            ("evt_1".to_owned(), "ping".to_owned(), true)
        );
        assert!(!judge(&[other], &headers, body).2);
        assert!(!judge(&[Secret::generate()], &[], b"not json").2);
    }
}
