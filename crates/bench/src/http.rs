//! A deliberately small HTTP/1.1 client: one request at a time per
//! connection, keep-alive, `Content-Length` or chunked bodies. Enough to
//! drive the API, and cheap enough that the load generator is not the
//! bottleneck.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One request to send, as a scenario describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl RequestSpec {
    pub fn new(method: &str, path: &str) -> RequestSpec {
        RequestSpec {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(path: &str) -> RequestSpec {
        RequestSpec::new("GET", path)
    }

    /// A request carrying `body` as JSON.
    pub fn json(method: &str, path: &str, body: &serde_json::Value) -> RequestSpec {
        let mut spec = RequestSpec::new(method, path);
        spec.body = Some(body.to_string().into_bytes());
        spec.header("Content-Type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> RequestSpec {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> RequestSpec {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// The bytes to put on the wire, built once and sent many times.
    pub fn encode(&self, host: &str) -> Result<WireRequest, String> {
        let forbidden = |s: &str| s.contains(['\r', '\n']);
        if self.method.is_empty() || self.method.contains(' ') || forbidden(&self.method) {
            return Err(format!("invalid method {:?}", self.method));
        }
        if !self.path.starts_with('/') || self.path.contains(' ') || forbidden(&self.path) {
            return Err(format!("invalid path {:?}", self.path));
        }
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            if name.is_empty() || name.contains(':') || forbidden(name) || forbidden(value) {
                return Err(format!("invalid header {name:?}: {value:?}"));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        Ok(WireRequest {
            bytes,
            expects_body: self.method != "HEAD",
        })
    }
}

/// An encoded request.
#[derive(Debug, Clone)]
pub struct WireRequest {
    pub bytes: Vec<u8>,
    /// False for `HEAD`, whose response has a length but no body.
    pub expects_body: bool,
}

/// What matters in a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// The position just past the `\r\n\r\n` that ends the head, if present.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Parses a response head (status line and headers, with or without the
/// final blank line).
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let status = match code.parse::<u16>() {
        Ok(status) if code.len() == 3 && (100..=599).contains(&status) => status,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let mut result = Head {
        status,
        content_length: None,
        chunked: false,
        close: minor == 0,
    };
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if result.content_length.is_some_and(|l| l != length) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            result.content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            result.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(value, "close") {
                result.close = true;
            } else if has_token(value, "keep-alive") {
                result.close = false;
            }
        }
    }
    Ok(result)
}

/// Decodes a chunked body at the start of `data` into `out`. Returns the
/// number of bytes it used, or `None` if `data` does not hold all of it yet.
pub fn decode_chunked(data: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, String> {
    out.clear();
    let mut pos = 0usize;
    loop {
        let Some(line_len) = find(&data[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = &data[pos..pos + line_len];
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| format!("bad chunk size line {:?}", String::from_utf8_lossy(line)))?;
        pos += line_len + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(len) = find(&data[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += len + 2;
                if len == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let end = pos
            .checked_add(size)
            .and_then(|e| e.checked_add(2))
            .ok_or("chunk size overflows")?;
        if data.len() < end {
            return Ok(None);
        }
        if &data[end - 2..end] != b"\r\n" {
            return Err("chunk data not followed by CRLF".to_owned());
        }
        out.extend_from_slice(&data[pos..end - 2]);
        pos = end;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Why a round trip failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// `io` or `protocol`: the key under which the error is counted.
    pub kind: &'static str,
    pub message: String,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

fn io_error(e: impl std::fmt::Display) -> ClientError {
    ClientError {
        kind: "io",
        message: e.to_string(),
    }
}

fn protocol_error(message: impl Into<String>) -> ClientError {
    ClientError {
        kind: "protocol",
        message: message.into(),
    }
}

enum Attempt {
    Done(u16),
    /// The connection died before any byte of the response: on a reused
    /// keep-alive connection, the server had closed it; send again.
    Stale(ClientError),
    Failed(ClientError),
}

/// One keep-alive connection, opened on first use and reopened whenever the
/// server closes it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Forgets the current connection (after an error or a timeout).
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Sends `request` and reads the whole response; returns its status and
    /// leaves its body in `body`.
    pub async fn round_trip(
        &mut self,
        request: &WireRequest,
        body: &mut Vec<u8>,
    ) -> Result<u16, ClientError> {
        let reused = self.stream.is_some();
        let outcome = match self.attempt(request, body).await {
            Attempt::Stale(_) if reused => self.attempt(request, body).await,
            other => other,
        };
        match outcome {
            Attempt::Done(status) => Ok(status),
            Attempt::Stale(e) | Attempt::Failed(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn attempt(&mut self, request: &WireRequest, body: &mut Vec<u8>) -> Attempt {
        if self.stream.is_none() {
            match TcpStream::connect(self.addr).await {
                Ok(stream) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        return Attempt::Failed(io_error(e));
                    }
                    self.stream = Some(stream);
                }
                Err(e) => return Attempt::Failed(io_error(e)),
            }
        }
        let Some(stream) = self.stream.as_mut() else {
            return Attempt::Failed(io_error("not connected"));
        };
        if let Err(e) = stream.write_all(&request.bytes).await {
            self.stream = None;
            return Attempt::Stale(io_error(e));
        }
        self.buf.clear();
        match read_response(stream, &mut self.buf, request.expects_body, body).await {
            Ok((status, close)) => {
                if close {
                    self.stream = None;
                }
                Attempt::Done(status)
            }
            Err(e) => {
                self.stream = None;
                e
            }
        }
    }
}

/// Reads more bytes into `buf`; 0 means end of stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    stream.read_buf(buf).await
}

/// Returns the status and whether the connection must be closed.
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    expects_body: bool,
    body: &mut Vec<u8>,
) -> Result<(u16, bool), Attempt> {
    let head_end = loop {
        if let Some(end) = find_head_end(buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(Attempt::Failed(protocol_error("response head too large")));
        }
        match fill(stream, buf).await {
            Ok(0) if buf.is_empty() => {
                return Err(Attempt::Stale(io_error("connection closed by the server")));
            }
            Ok(0) => return Err(Attempt::Failed(io_error("connection closed in the head"))),
            Ok(_) => {}
            Err(e) if buf.is_empty() => return Err(Attempt::Stale(io_error(e))),
            Err(e) => return Err(Attempt::Failed(io_error(e))),
        }
    };
    let head = parse_head(&buf[..head_end]).map_err(|e| Attempt::Failed(protocol_error(e)))?;
    body.clear();
    let no_body = !expects_body || head.status < 200 || head.status == 204 || head.status == 304;
    if no_body {
        return Ok((head.status, head.close));
    }
    if head.chunked {
        loop {
            match decode_chunked(&buf[head_end..], body) {
                Ok(Some(_)) => return Ok((head.status, head.close)),
                Ok(None) => {}
                Err(e) => return Err(Attempt::Failed(protocol_error(e))),
            }
            match fill(stream, buf).await {
                Ok(0) => return Err(Attempt::Failed(io_error("connection closed in the body"))),
                Ok(_) => {}
                Err(e) => return Err(Attempt::Failed(io_error(e))),
            }
        }
    }
    match head.content_length {
        Some(length) => {
            let end = head_end + length;
            while buf.len() < end {
                match fill(stream, buf).await {
                    Ok(0) => {
                        return Err(Attempt::Failed(io_error("connection closed in the body")));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Attempt::Failed(io_error(e))),
                }
            }
            body.extend_from_slice(&buf[head_end..end]);
            Ok((head.status, head.close))
        }
        None => {
            // No length: the body runs to the end of the connection.
            loop {
                match fill(stream, buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(Attempt::Failed(io_error(e))),
                }
            }
            body.extend_from_slice(&buf[head_end..]);
            Ok((head.status, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_encoded_with_host_length_and_body() {
        let spec =
            RequestSpec::json("POST", "/v1/things", &serde_json::json!({"a": 1})).bearer("tok");
        let wire = spec.encode("127.0.0.1:8080").unwrap();
        let text = String::from_utf8(wire.bytes).unwrap();
        assert_eq!(
            text,
            "POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
             Content-Type: application/json\r\nAuthorization: Bearer tok\r\n\
             Content-Length: 7\r\n\r\n{\"a\":1}"
        );
        assert!(wire.expects_body);
        let get = RequestSpec::get("/healthz").encode("h").unwrap();
        assert_eq!(get.bytes, b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(
            !RequestSpec::new("HEAD", "/")
                .encode("h")
                .unwrap()
                .expects_body
        );
    }

    #[test]
    fn header_injection_is_refused() {
        assert!(RequestSpec::get("/a\r\nX: y").encode("h").is_err());
        assert!(RequestSpec::get("relative").encode("h").is_err());
        assert!(
            RequestSpec::get("/")
                .header("X", "a\nb")
                .encode("h")
                .is_err()
        );
        assert!(
            RequestSpec::get("/")
                .header("X:Y", "a")
                .encode("h")
                .is_err()
        );
    }

    #[test]
    fn heads_are_parsed() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\ncontent-type: application/json\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                content_length: Some(15),
                chunked: false,
                close: false
            }
        );
        let head =
            parse_head(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(head.status, 503);
        assert!(head.close);
        assert_eq!(head.content_length, None);
        let head =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap();
        assert!(head.chunked);
        assert!(
            parse_head(b"HTTP/1.0 204 No Content\r\n\r\n")
                .unwrap()
                .close
        );
        assert!(
            !parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .close
        );
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert!(parse_head(b"HTTP/2 200\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 20 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .is_err()
        );
    }

    #[test]
    fn the_end_of_the_head_is_found() {
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r"), None);
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let mut out = Vec::new();
        let data = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nnext";
        assert_eq!(
            decode_chunked(data, &mut out).unwrap(),
            Some(data.len() - 4)
        );
        assert_eq!(out, b"hello world");
        for cut in 0..data.len() - 4 {
            assert_eq!(
                decode_chunked(&data[..cut], &mut out).unwrap(),
                None,
                "cut {cut}"
            );
        }
        assert!(decode_chunked(b"zz\r\n", &mut out).is_err());
        assert!(decode_chunked(b"2\r\nabcd\r\n", &mut out).is_err());
        assert!(decode_chunked(b"ffffffffffffffff\r\n", &mut out).is_err());
    }
}
