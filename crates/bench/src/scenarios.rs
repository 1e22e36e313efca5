//! What is measured. A scenario prepares whatever it needs through the API
//! (once, before the measurement) and returns the request to repeat.
//!
//! Adding an endpoint that needs a user and a token looks like this (the
//! routes and fields are illustrative):
//!
//! ```text
//! Scenario {
//!     name: "list_things",
//!     prepare: |setup| {
//!         let email = setup.unique("bench") + "@example.com";
//!         let body = serde_json::json!({"email": email, "password": "a long password"});
//!         setup.send(&RequestSpec::json("POST", "/v1/users", &body))?.expect(201)?;
//!         let token = setup.send(&RequestSpec::json("POST", "/v1/sessions", &body))?
//!             .expect(201)?.json()?["access_token"].as_str().unwrap_or_default().to_owned();
//!         Ok(RequestSpec::get("/v1/things").bearer(&token))
//!     },
//! },
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::http::{Conn, RequestSpec};

/// The scenario every other one is compared with.
pub const BASELINE: &str = "healthz";

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub prepare: fn(&mut Setup<'_>) -> Result<RequestSpec, String>,
}

/// All scenarios, the baseline first.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: BASELINE,
            prepare: |_| Ok(RequestSpec::get("/healthz")),
        },
        Scenario {
            name: "readyz",
            prepare: |_| Ok(RequestSpec::get("/readyz")),
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
    #[allow(dead_code)] // For the scenarios that will need it.
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

    #[allow(dead_code)] // For the scenarios that will need it.
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
    }
}
