//! A small HTTP client for tests: status, headers and body of any answer,
//! 4xx and 5xx included.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// The agent every test server's requests go through: errors are answers
/// like any other, redirects are not followed.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        // The server closes a keep-alive connection after 5 s idle; a
        // pooled connection older than 2 s is not reused, so a request never
        // lands on a connection the server is closing (seen on a loaded
        // machine as "connection reset" on POSTs, which are not retried).
        .max_idle_age(Duration::from_secs(2))
        .build()
        .into()
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Asserts a problem+json answer with `status` and `code`; returns it.
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let problem = self.json();
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["status"], status, "{problem}");
        assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(
            problem["type"],
            format!("https://guichet.dev/problems/{}", code.replace('_', "-"))
        );
        assert_eq!(
            problem["request_id"].as_str(),
            self.header("x-request-id"),
            "the problem carries the request id"
        );
        problem
    }
}

/// A request being built.
pub struct Request<'a> {
    agent: &'a ureq::Agent,
    builder: ureq::http::request::Builder,
    body: Option<Vec<u8>>,
}

impl<'a> Request<'a> {
    pub fn new(agent: &'a ureq::Agent, method: &str, url: String) -> Self {
        Request {
            agent,
            builder: ureq::http::Request::builder().method(method).uri(url),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body with its content type.
    pub fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string().into_bytes())
    }

    /// Raw body bytes (set the content type yourself).
    pub fn body(mut self, bytes: Vec<u8>) -> Self {
        self.body = Some(bytes);
        self
    }

    pub fn send(self) -> Response {
        let result = match self.body {
            Some(body) => self.agent.run(self.builder.body(body).unwrap()),
            None => self.agent.run(self.builder.body(()).unwrap()),
        };
        let mut res = result.unwrap_or_else(|e| panic!("request failed: {e}"));
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = res
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("reading the body failed: {e}"));
        Response {
            status,
            headers,
            body,
        }
    }
}

/// Writes `bytes` to a new connection to `base` and parses the answer
/// (`Connection: close` is expected of the request). The write may be cut
/// short by the server answering early; what it answered is returned.
pub fn raw(base: &str, bytes: &[u8]) -> Response {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before reading everything.
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let mut buf = [0_u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if complete(&answer) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    parse(&answer)
        .unwrap_or_else(|| panic!("no HTTP answer; got {:?}", String::from_utf8_lossy(&answer)))
}

fn split_head(answer: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&answer[..end], &answer[end + 4..]))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

fn complete(answer: &[u8]) -> bool {
    match split_head(answer) {
        Some((head, body)) => {
            content_length(&String::from_utf8_lossy(head)).is_some_and(|n| body.len() >= n)
        }
        None => false,
    }
}

fn parse(answer: &[u8]) -> Option<Response> {
    let (head, body) = split_head(answer)?;
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body: body.to_vec(),
    })
}
