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
    pub body: String,
    pub file: String,
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

/// Unfolds headers and decodes the body (quoted-printable or base64).
fn parse_eml(raw: &str, file: String) -> Delivered {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let head = head
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .replace("\n ", " ");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let encoding = header("Content-Transfer-Encoding").to_ascii_lowercase();
    let body = match encoding.as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap_or_default(),
            )
            .into_owned()
        }
        "quoted-printable" => decode_qp(body),
        _ => body.to_owned(),
    };
    Delivered {
        to: header("To"),
        subject: header("Subject"),
        body,
        file,
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
