//! What is measured. A scenario prepares whatever it needs through the API
//! (once, before the measurement) and returns the request to repeat.
//!
//! [`me`] shows an endpoint that needs a token: it signs in as the demo
//! customer during set-up and puts the access token in the request.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::http::{Conn, RequestSpec};

/// The scenario every other one is compared with.
pub const BASELINE: &str = "healthz";

/// `login`, in turns with argon2 verifications in the bench itself.
pub const LOGIN: &str = "login";
pub const ME: &str = "me";
/// `me` alone, in turns with `me` while other connections hammer `login`.
pub const LOGIN_STORM: &str = "login_storm";
/// The demo customer's 20 schedules, big database against small.
pub const SCHEDULES: &str = "schedules";
/// The demo customer's dashboard (20 documents, 5 conversations, 50
/// notifications) in turns with `GET /v1/me`.
pub const DASHBOARD: &str = "dashboard";
/// 16 concurrent downloads of a 20 MiB document, server RSS sampled.
pub const DOWNLOADS: &str = "downloads";
/// A service's free slots over 31 days (5 providers, 2 000 bookings) in
/// turns with `GET /v1/me`.
pub const BOOKING_SLOTS: &str = "booking_slots";
/// 64 customers racing for 10 slots, in rounds.
pub const BOOKING_RACE: &str = "booking_race";
/// The demo customer paying a different open invoice with each request,
/// in turns with `GET /v1/me`.
pub const INVOICE_PAYMENTS: &str = "invoice_payments";

/// The demo customer `guichet serve --demo` creates (`api/src/demo.rs`).
pub const DEMO_ORGANIZATION: &str = "demo";
pub const DEMO_EMAIL: &str = "claire.martin@example.com";
pub const DEMO_PASSWORD: &str = "Claire-Demo-2026!";

#[derive(Debug)]
pub enum Kind {
    /// One request, prepared once, repeated on the main connections.
    Http {
        prepare: fn(&mut Setup<'_>) -> Result<RequestSpec, String>,
    },
    /// [`login`] on the login connections, in turns with verifications of
    /// the demo password in the bench process on one thread per core.
    LoginVsRawArgon2,
    /// [`me`] on the main connections alone, in turns with [`me`] while
    /// [`login`] runs on the login connections.
    Storm,
    /// `GET /v1/me/schedules` on a big and a small database, each in turns
    /// with `GET /readyz` of the same server, and on the big one with
    /// `GET /v1/me` (`schedules.rs`).
    Schedules,
    /// `GET /v1/me/dashboard` in turns with `GET /v1/me`, same token
    /// (`dashboard.rs`).
    Dashboard,
    /// Rounds of concurrent downloads of one 20 MiB document, each body
    /// hashed and checked, the server's RSS sampled (`downloads.rs`).
    Downloads,
    /// `GET /v1/me/booking-slots` over 31 days in turns with `GET /v1/me`,
    /// same token (`bookings.rs`).
    BookingSlots,
    /// Rounds of 64 customers asking at once for 10 slots, each round
    /// checked against the database (`bookings.rs`).
    BookingRace,
    /// `POST /v1/me/invoices/{id}/payments`, each request paying another
    /// open invoice seeded before the server started, in turns with
    /// `GET /v1/me`, same token (`invoice_payments.rs`).
    InvoicePayments,
}

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub kind: Kind,
    /// Needs the demo data (`guichet serve --demo`).
    pub demo: bool,
}

/// `POST /v1/auth/login` as the demo customer.
pub fn login(_: &mut Setup<'_>) -> Result<RequestSpec, String> {
    let body = serde_json::json!({
        "organization": DEMO_ORGANIZATION,
        "email": DEMO_EMAIL,
        "password": DEMO_PASSWORD,
    });
    Ok(RequestSpec::json("POST", "/v1/auth/login", &body))
}

/// `POST /v1/auth/staff/login` as the demo organization's admin.
pub fn staff_login() -> RequestSpec {
    let body = serde_json::json!({
        "organization": DEMO_ORGANIZATION,
        "email": crate::schedules::ADMIN_EMAIL,
        "password": crate::schedules::ADMIN_PASSWORD,
    });
    RequestSpec::json("POST", "/v1/auth/staff/login", &body)
}

/// The string member `name` of a JSON answer to `what`.
pub fn string_field(answer: &serde_json::Value, name: &str, what: &str) -> Result<String, String> {
    answer[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what}: no {name} in the answer"))
}

/// `GET /v1/me` with an access token of the demo customer (15 minutes).
pub fn me(setup: &mut Setup<'_>) -> Result<RequestSpec, String> {
    let login = login(setup)?;
    let token = setup
        .send(&login)?
        .expect(200)
        .map_err(|e| format!("login: {e}"))?
        .json()?["access_token"]
        .as_str()
        .ok_or("login: no access_token in the answer")?
        .to_owned();
    Ok(RequestSpec::get("/v1/me").bearer(&token))
}

/// All scenarios, the baseline first.
pub fn all() -> Vec<Scenario> {
    let http = |name, demo, prepare| Scenario {
        name,
        kind: Kind::Http { prepare },
        demo,
    };
    vec![
        http(BASELINE, false, |_| Ok(RequestSpec::get("/healthz"))),
        http("readyz", false, |_| Ok(RequestSpec::get("/readyz"))),
        Scenario {
            name: LOGIN,
            kind: Kind::LoginVsRawArgon2,
            demo: true,
        },
        http(ME, true, me),
        Scenario {
            name: LOGIN_STORM,
            kind: Kind::Storm,
            demo: true,
        },
        Scenario {
            name: DASHBOARD,
            kind: Kind::Dashboard,
            demo: true,
        },
        Scenario {
            name: DOWNLOADS,
            kind: Kind::Downloads,
            demo: true,
        },
        Scenario {
            name: BOOKING_SLOTS,
            kind: Kind::BookingSlots,
            demo: true,
        },
        Scenario {
            name: BOOKING_RACE,
            kind: Kind::BookingRace,
            demo: true,
        },
        Scenario {
            name: INVOICE_PAYMENTS,
            kind: Kind::InvoicePayments,
            demo: true,
        },
        // Last: it fills the database with a million instalments.
        Scenario {
            name: SCHEDULES,
            kind: Kind::Schedules,
            demo: true,
        },
    ]
}

/// The baseline plus `only` (all of them without `only`).
pub fn select(all: Vec<Scenario>, only: Option<&str>) -> Result<Vec<Scenario>, String> {
    let Some(only) = only else {
        return Ok(all);
    };
    if !all.iter().any(|s| s.name == only) {
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        return Err(format!(
            "no scenario {only:?}; there are: {}",
            names.join(", ")
        ));
    }
    Ok(all
        .into_iter()
        .filter(|s| s.name == BASELINE || s.name == only)
        .collect())
}

/// A response to a set-up request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// `self` if its status is `status`, an error showing the body if not.
    pub fn expect(self, status: u16) -> Result<Response, String> {
        if self.status == status {
            Ok(self)
        } else {
            Err(self.unexpected(&format!("{status}")))
        }
    }

    /// `self` if its status is 2xx.
    pub fn expect_success(self) -> Result<Response, String> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(self.unexpected("2xx"))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(500)]);
        format!("expected status {wanted}, got {}: {body}", self.status)
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("response is not JSON: {e}"))
    }
}

/// Sends set-up requests to the server under test, one at a time.
pub struct Setup<'a> {
    runtime: &'a Runtime,
    host: String,
    conn: Conn,
    counter: u64,
}

impl<'a> Setup<'a> {
    pub fn new(runtime: &'a Runtime, addr: SocketAddr) -> Setup<'a> {
        Setup {
            runtime,
            host: addr.to_string(),
            conn: Conn::new(addr),
            counter: 0,
        }
    }

    /// The `Host` header value of the server.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn send(&mut self, spec: &RequestSpec) -> Result<Response, String> {
        let wire = spec.encode(&self.host)?;
        let mut body = Vec::new();
        let conn = &mut self.conn;
        let exchange = async {
            tokio::time::timeout(Duration::from_secs(30), conn.round_trip(&wire, &mut body)).await
        };
        let status = match self.runtime.block_on(exchange) {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("{} {}: {e}", spec.method, spec.path)),
            Err(_) => {
                self.conn.reset();
                return Err(format!(
                    "{} {}: no answer within 30 s",
                    spec.method, spec.path
                ));
            }
        };
        Ok(Response { status, body })
    }

    /// A name no other call in this run returns: `prefix` and a number.
    #[allow(dead_code)] // For the scenarios that will need it.
    pub fn unique(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}_{}", std::process::id(), self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_comes_first_and_names_are_unique() {
        let all = all();
        assert_eq!(all[0].name, BASELINE);
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn only_keeps_the_baseline() {
        let names = |v: Vec<Scenario>| v.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(select(all(), Some("readyz")).unwrap()),
            ["healthz", "readyz"]
        );
        assert_eq!(names(select(all(), Some("healthz")).unwrap()), ["healthz"]);
        assert_eq!(names(select(all(), None).unwrap()).len(), all().len());
        assert!(select(all(), Some("nope")).unwrap_err().contains("readyz"));
        assert_eq!(
            names(select(all(), Some("login_storm")).unwrap()),
            ["healthz", "login_storm"]
        );
        assert_eq!(
            names(select(all(), Some(SCHEDULES)).unwrap()),
            ["healthz", "schedules"]
        );
        assert_eq!(all().last().map(|s| s.name), Some(SCHEDULES));
        assert_eq!(
            names(select(all(), Some(INVOICE_PAYMENTS)).unwrap()),
            ["healthz", "invoice_payments"]
        );
    }
}
