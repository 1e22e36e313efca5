//! Reading what the server delivered: `.eml` files and SMS JSON files in
//! `<data dir>/outbox/`, as an operator of the file delivery would.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::TestApp;

/// A delivered message.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub to: String,
    pub subject: String,
    /// The text (of the `text/plain` part of a multipart e-mail).
    pub body: String,
    pub file: String,
    /// The files attached to an e-mail (none for SMS).
    pub attachments: Vec<DeliveredFile>,
}

/// A file attached to a delivered e-mail.
#[derive(Debug, Clone)]
pub struct DeliveredFile {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

impl Delivered {
    /// The first run of `digits` digits in the body.
    pub fn code(&self, digits: usize) -> Option<String> {
        let chars: Vec<char> = self.body.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                if i - start == digits {
                    return Some(chars[start..i].iter().collect());
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// The longest run of URL-safe base64 characters (a token) in the body.
    pub fn token(&self) -> Option<String> {
        self.body
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .filter(|w| w.len() >= 40)
            .max_by_key(|w| w.len())
            .map(str::to_owned)
    }
}

fn sorted_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml" || e == "json"))
                .collect()
        })
        .unwrap_or_default();
    // The file names start with the server clock's second, frozen in
    // tests: order by when the file was written instead.
    files.sort_by_key(|p| {
        let written = std::fs::metadata(p)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        (written, p.clone())
    });
    files
}

/// Splits a MIME entity into its unfolded headers and its raw body.
fn split_entity(raw: &str) -> (String, &str) {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let head = head
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .replace("\n ", " ");
    (head, body)
}

fn header_of(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// A parameter (`boundary`, `filename`) of a header value, including one
/// split into RFC 2231 continuations (`filename*0="..."; filename*1="..."`)
/// as lettre writes long file names.
fn parameter(value: &str, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = value
        .split(';')
        .filter_map(|part| {
            let (n, v) = part.trim().split_once('=')?;
            Some((
                n.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    let name = name.to_ascii_lowercase();
    if let Some((_, v)) = pairs.iter().find(|(n, _)| *n == name) {
        return Some(v.clone());
    }
    let mut pieces: Vec<(usize, String)> = pairs
        .iter()
        .filter_map(|(n, v)| {
            let index = n.strip_prefix(&format!("{name}*"))?;
            Some((index.trim_end_matches('*').parse().ok()?, v.clone()))
        })
        .collect();
    pieces.sort();
    (!pieces.is_empty()).then(|| pieces.into_iter().map(|(_, v)| v).collect())
}

/// The bytes of a body in its transfer encoding.
fn decode_bytes(head: &str, body: &str) -> Vec<u8> {
    match header_of(head, "Content-Transfer-Encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default()
        }
        "quoted-printable" => decode_qp(body).into_bytes(),
        _ => body.as_bytes().to_vec(),
    }
}

/// Unfolds headers and decodes the body (quoted-printable or base64); a
/// `multipart/mixed` e-mail gives its text part as the body and its other
/// parts as attachments.
fn parse_eml(raw: &str, file: String) -> Delivered {
    let (head, body) = split_entity(raw);
    let content_type = header_of(&head, "Content-Type");
    let mut text = String::new();
    let mut attachments = Vec::new();
    match parameter(&content_type, "boundary")
        .filter(|_| content_type.to_ascii_lowercase().starts_with("multipart/"))
    {
        Some(boundary) => {
            let delimiter = format!("--{boundary}");
            for part in body.split(delimiter.as_str()).skip(1) {
                if part.starts_with("--") {
                    break;
                }
                let part = part
                    .strip_prefix("\r\n")
                    .or_else(|| part.strip_prefix('\n'))
                    .unwrap_or(part);
                let (part_head, part_body) = split_entity(part);
                let part_body = part_body
                    .strip_suffix("\r\n")
                    .or_else(|| part_body.strip_suffix('\n'))
                    .unwrap_or(part_body);
                let part_type = header_of(&part_head, "Content-Type");
                let disposition = header_of(&part_head, "Content-Disposition");
                let bytes = decode_bytes(&part_head, part_body);
                if disposition.to_ascii_lowercase().starts_with("attachment") {
                    attachments.push(DeliveredFile {
                        filename: parameter(&disposition, "filename").unwrap_or_default(),
                        content_type: part_type
                            .split(';')
                            .next()
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                        content: bytes,
                    });
                } else if text.is_empty() {
                    text = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
        }
        None => text = String::from_utf8_lossy(&decode_bytes(&head, body)).into_owned(),
    }
    Delivered {
        to: header_of(&head, "To"),
        subject: header_of(&head, "Subject"),
        body: text,
        file,
        attachments,
    }
}

fn decode_qp(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TestApp {
    /// Every e-mail delivered once the outbox is empty (a message queued
    /// by an earlier request is then delivered, so none can be missed);
    /// at most 10 s.
    pub fn emails_once_sent(&self) -> Vec<Delivered> {
        use guichet_store::repo::outbox;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while outbox::pending_count(&mut self.store.conn().unwrap()).unwrap() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "messages still queued"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.emails()
    }

    /// Every e-mail delivered so far, oldest first.
    pub fn emails(&self) -> Vec<Delivered> {
        sorted_files(&self.data_dir.join("outbox/email"))
            .into_iter()
            .map(|p| {
                let raw = std::fs::read_to_string(&p).unwrap_or_default();
                parse_eml(&raw, p.display().to_string())
            })
            .collect()
    }

    /// Every SMS delivered so far, oldest first.
    pub fn sms(&self) -> Vec<Delivered> {
        sorted_files(&self.data_dir.join("outbox/sms"))
            .into_iter()
            .map(|p| {
                let raw = std::fs::read_to_string(&p).unwrap_or_default();
                let json: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
                Delivered {
                    to: json["to"].as_str().unwrap_or_default().to_owned(),
                    subject: String::new(),
                    body: json["body"].as_str().unwrap_or_default().to_owned(),
                    file: p.display().to_string(),
                    attachments: Vec::new(),
                }
            })
            .collect()
    }

    /// Waits (up to 10 s) until `count` messages (e-mails and SMS) have
    /// been delivered to `to`; returns them, oldest first.
    pub fn wait_for_messages(&self, to: &str, count: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Delivered> = self
                .emails()
                .into_iter()
                .chain(self.sms())
                .filter(|m| m.to.contains(to))
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} message(s) to {to}, found {}",
                found.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The newest message to `to` once there are `count` of them.
    pub fn nth_message(&self, to: &str, count: usize) -> Delivered {
        self.wait_for_messages(to, count).pop().unwrap()
    }

    /// Messages delivered to `to` so far (no waiting), after letting the
    /// dispatcher run a few passes.
    pub fn messages_now(&self, to: &str) -> Vec<Delivered> {
        std::thread::sleep(Duration::from_millis(150));
        self.emails()
            .into_iter()
            .chain(self.sms())
            .filter(|m| m.to.contains(to))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_bodies_are_decoded() {
        let d = parse_eml(
            "To: a@b.c\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCode : 12=\r\n3456 =C3=A9t=C3=A9\r\n",
            String::new(),
        );
        assert_eq!(d.code(6).as_deref(), Some("123456"));
        assert!(d.body.contains("été"));
    }
}
