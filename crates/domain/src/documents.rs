//! Shared documents: which files are accepted (by their first bytes, never
//! by the type a client declares) and the file name offered for download.

/// The types a document may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Pdf,
    Png,
    Jpeg,
    Text,
}

impl DocumentType {
    pub fn mime(self) -> &'static str {
        match self {
            DocumentType::Pdf => "application/pdf",
            DocumentType::Png => "image/png",
            DocumentType::Jpeg => "image/jpeg",
            DocumentType::Text => "text/plain",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            DocumentType::Pdf => "pdf",
            DocumentType::Png => "png",
            DocumentType::Jpeg => "jpg",
            DocumentType::Text => "txt",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime {
            "application/pdf" => Some(DocumentType::Pdf),
            "image/png" => Some(DocumentType::Png),
            "image/jpeg" => Some(DocumentType::Jpeg),
            "text/plain" => Some(DocumentType::Text),
            _ => None,
        }
    }
}

/// How many first bytes [`detect`] wants (fewer when the file is shorter).
pub const SNIFF_LEN: usize = 1024;

/// The type of a file from its first bytes (up to [`SNIFF_LEN`]; `complete`
/// when they are the whole file): PDF (`%PDF-`), PNG (its 8-byte
/// signature), JPEG (`FF D8 FF`), or plain text (UTF-8, no control
/// character other than tab, line feed, form feed and carriage return).
/// `None` for anything else, an empty file included.
pub fn detect(head: &[u8], complete: bool) -> Option<DocumentType> {
    if head.starts_with(b"%PDF-") {
        return Some(DocumentType::Pdf);
    }
    if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return Some(DocumentType::Png);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(DocumentType::Jpeg);
    }
    if head.is_empty() {
        return None;
    }
    // A multi-byte character cut by the end of the sniffed bytes is fine.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if !complete && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let printable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}'));
    printable.then_some(DocumentType::Text)
}

/// A file name safe in `Content-Disposition` and on any file system: the
/// title's letters, digits, spaces, dots, dashes and underscores (accented
/// letters kept as ASCII where they have an obvious base letter, others
/// replaced by `_`), at most 80 characters, and the extension of the
/// detected type. Never empty.
pub fn file_name(title: &str, kind: DocumentType) -> String {
    let mut base = String::new();
    for c in title.trim().chars() {
        let c = fold(c);
        let c = if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
            c
        } else {
            '_'
        };
        if base.chars().count() >= 80 {
            break;
        }
        base.push(c);
    }
    let base = base.trim_matches(|c: char| c == '.' || c == ' ' || c == '_');
    let base = if base.is_empty() { "document" } else { base };
    let ext = kind.extension();
    let lower = base.to_ascii_lowercase();
    if lower.ends_with(&format!(".{ext}")) {
        base.to_owned()
    } else {
        format!("{base}.{ext}")
    }
}

fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'O',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic_bytes() {
        assert_eq!(detect(b"%PDF-1.7\n...", false), Some(DocumentType::Pdf));
        assert_eq!(
            detect(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0], false),
            Some(DocumentType::Png)
        );
        assert_eq!(
            detect(&[0xFF, 0xD8, 0xFF, 0xE0], false),
            Some(DocumentType::Jpeg)
        );
        assert_eq!(
            detect("Bonjour, été\n".as_bytes(), true),
            Some(DocumentType::Text)
        );
        assert_eq!(detect(b"MZ\x90\x00\x03", true), None);
        assert_eq!(detect(b"PK\x03\x04", true), None);
        assert_eq!(detect(b"", true), None);
        // A character cut at the end of the sniffed bytes.
        assert_eq!(detect(b"ab\xC3", false), Some(DocumentType::Text));
        assert_eq!(detect(b"ab\xC3", true), None);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name("Facture été 2026", DocumentType::Pdf),
            "Facture ete 2026.pdf"
        );
        assert_eq!(
            file_name("a\"b\r\n;c/..\\d", DocumentType::Text),
            "a_b___c_.._d.txt"
        );
        assert_eq!(file_name("...", DocumentType::Png), "document.png");
        assert_eq!(file_name("scan.PDF", DocumentType::Pdf), "scan.PDF");
        assert_eq!(file_name(&"x".repeat(200), DocumentType::Jpeg).len(), 84);
    }
}
