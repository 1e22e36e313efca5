//! A minimal PDF 1.4 writer for Guichet's generated documents (the SEPA
//! mandate): text in the standard Helvetica and Helvetica-Bold fonts, thin
//! lines, A4 pages. No dependency, no compression, no embedded font.
//!
//! Text is encoded in WinAnsiEncoding (Windows-1252), which covers French
//! and the other Western European languages; characters outside it are
//! transliterated (`ł` → `l`) or become `?`. Widths come from the fonts'
//! Adobe metrics, so lines can be wrapped to a width.
//!
//! Output is deterministic: the same pages give the same bytes (no date
//! unless one is given, no random file identifier).

pub mod invoice;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// The width of an A4 page, in points (1/72 inch).
pub const A4_WIDTH: f32 = 595.0;
/// The height of an A4 page, in points.
pub const A4_HEIGHT: f32 = 842.0;

/// One of the two standard fonts the writer declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    /// Helvetica (resource `/F1`).
    Helvetica,
    /// Helvetica-Bold (resource `/F2`).
    HelveticaBold,
}

impl Font {
    fn resource(self) -> &'static str {
        match self {
            Font::Helvetica => "F1",
            Font::HelveticaBold => "F2",
        }
    }

    fn widths(self) -> &'static [u16; 224] {
        match self {
            Font::Helvetica => &HELVETICA,
            Font::HelveticaBold => &HELVETICA_BOLD,
        }
    }
}

/// The Windows-1252 byte of `c` for the characters it places in
/// 0x80–0x9F (0xA0–0xFF are Latin-1 itself).
fn cp1252_special(c: char) -> Option<u8> {
    Some(match c {
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => return None,
    })
}

/// Appends the WinAnsiEncoding bytes of `c` to `out`.
fn push_win_ansi(c: char, out: &mut Vec<u8>) {
    let code = u32::from(c);
    match c {
        ' '..='~' => out.push(code as u8),
        '\u{a0}'..='\u{ff}' => out.push(code as u8),
        // Narrow and figure no-break spaces, used in French typography.
        '\u{202f}' | '\u{2007}' => out.push(0xA0),
        '\u{2010}' | '\u{2011}' => out.push(b'-'),
        _ if c.is_whitespace() || c.is_control() => out.push(b' '),
        _ => {
            if let Some(byte) = cp1252_special(c) {
                out.push(byte);
            } else if let Some(ascii) = crate::sepa::text::fold_char(c) {
                out.extend_from_slice(ascii.as_bytes());
            } else {
                out.push(b'?');
            }
        }
    }
}

/// `text` in WinAnsiEncoding: one byte per character, characters outside
/// the encoding transliterated when possible, else `?`; tabs, line breaks
/// and other controls become spaces.
pub fn encode_win_ansi(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        push_win_ansi(c, &mut out);
    }
    out
}

/// The advance of one character in `font`, in 1/1000 em (several units
/// for a character transliterated to several letters).
fn char_units(c: char, font: Font) -> u32 {
    let widths = font.widths();
    let byte_units = |b: u8| match b {
        32..=255 => u32::from(widths[usize::from(b - 32)]),
        _ => 0,
    };
    match c {
        ' '..='~' | '\u{a0}'..='\u{ff}' => byte_units(u32::from(c) as u8),
        _ => {
            let mut bytes = Vec::with_capacity(2);
            push_win_ansi(c, &mut bytes);
            bytes.into_iter().map(byte_units).sum()
        }
    }
}

fn units_to_points(units: u32, size: f32) -> f32 {
    units as f32 * size / 1000.0
}

/// The width of `text` in `font` at `size` points, in points.
pub fn text_width(text: &str, font: Font, size: f32) -> f32 {
    units_to_points(text.chars().map(|c| char_units(c, font)).sum(), size)
}

/// `text` broken into lines no wider than `max_width` points: greedily at
/// spaces, and inside words that do not fit on a line by themselves (long
/// identifiers, user agents). Explicit line breaks (`\n`) are kept; runs
/// of spaces count as one. An empty text gives one empty line.
pub fn wrap_text(text: &str, font: Font, size: f32, max_width: f32) -> Vec<String> {
    let space = char_units(' ', font);
    let fits = |units: u32| units_to_points(units, size) <= max_width;
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_units = 0_u32;
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let word_units: u32 = word.chars().map(|c| char_units(c, font)).sum();
            if line.is_empty() && fits(word_units) {
                line.push_str(word);
                line_units = word_units;
                continue;
            }
            if !line.is_empty() && fits(line_units + space + word_units) {
                line.push(' ');
                line.push_str(word);
                line_units += space + word_units;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_units = 0;
            }
            if fits(word_units) {
                line.push_str(word);
                line_units = word_units;
                continue;
            }
            // The word alone is too wide: cut it where it overflows.
            for c in word.chars() {
                let units = char_units(c, font);
                if !line.is_empty() && !fits(line_units + units) {
                    lines.push(std::mem::take(&mut line));
                    line_units = 0;
                }
                line.push(c);
                line_units += units;
            }
        }
        lines.push(line);
    }
    lines
}

/// A number as PDF operators want it: at most two decimals, no trailing
/// zeros.
fn num(value: f32) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Appends `bytes` as a PDF literal string, escaping `(`, `)` and `\`.
fn push_literal(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'(');
    for &b in bytes {
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
}

/// The drawing operations of one page. Coordinates are in points from the
/// bottom-left corner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    content: Vec<u8>,
}

impl Page {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `text` on one line with its baseline starting at `(x, y)`.
    pub fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &str) {
        let head = format!(
            "BT /{} {} Tf {} {} Td ",
            font.resource(),
            num(size),
            num(x),
            num(y)
        );
        self.content.extend_from_slice(head.as_bytes());
        push_literal(&encode_win_ansi(text), &mut self.content);
        self.content.extend_from_slice(b" Tj ET\n");
    }

    /// Draws a straight line `width` points thick.
    pub fn line(&mut self, from: (f32, f32), to: (f32, f32), width: f32) {
        let ops = format!(
            "{} w {} {} m {} {} l S\n",
            num(width),
            num(from.0),
            num(from.1),
            num(to.0),
            num(to.1)
        );
        self.content.extend_from_slice(ops.as_bytes());
    }

    /// Draws the outline of a rectangle whose bottom-left corner is
    /// `(x, y)`.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, width: f32) {
        let ops = format!(
            "{} w {} {} {} {} re S\n",
            num(width),
            num(x),
            num(y),
            num(w),
            num(h)
        );
        self.content.extend_from_slice(ops.as_bytes());
    }

    /// The content stream so far.
    pub fn content(&self) -> &[u8] {
        &self.content
    }
}

/// A document of A4 pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The title in the document information (shown by viewers).
    pub title: String,
    /// The creation date in the document information; `None` keeps the
    /// output independent of the time it was made.
    pub created_at: Option<DateTime<Utc>>,
    /// The pages, in order.
    pub pages: Vec<Page>,
}

/// A PDF text string for the document information: UTF-16BE with a byte
/// order mark, in hexadecimal, so that any character survives.
fn info_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}

impl Document {
    /// The complete file.
    ///
    /// Objects: 1 catalog, 2 page tree, 3 Helvetica, 4 Helvetica-Bold,
    /// 5 document information, then for each page its page object and its
    /// content stream.
    pub fn to_bytes(&self) -> Vec<u8> {
        let page_count = self.pages.len();
        let object_count = 5 + 2 * page_count;
        let mut out: Vec<u8> =
            Vec::with_capacity(2048 + self.pages.iter().map(|p| p.content.len()).sum::<usize>());
        let mut offsets = Vec::with_capacity(object_count);
        // The second line marks the file as binary for transfer tools.
        out.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");

        let kids: Vec<String> = (0..page_count)
            .map(|i| format!("{} 0 R", 6 + 2 * i))
            .collect();
        let mut info = format!("<< /Title {} /Producer (Guichet)", info_string(&self.title));
        if let Some(at) = self.created_at {
            let _ = write!(info, " /CreationDate (D:{}Z)", at.format("%Y%m%d%H%M%S"));
        }
        info.push_str(" >>");
        let head = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {page_count} >>",
                kids.join(" ")
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
                .to_owned(),
            info,
        ];
        for (i, body) in head.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        for (i, page) in self.pages.iter().enumerate() {
            let page_id = 6 + 2 * i;
            let content_id = page_id + 1;
            offsets.push(out.len());
            out.extend_from_slice(
                format!(
                    "{page_id} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] \
                     /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>\nendobj\n",
                    num(A4_WIDTH),
                    num(A4_HEIGHT)
                )
                .as_bytes(),
            );
            offsets.push(out.len());
            out.extend_from_slice(
                format!(
                    "{content_id} 0 obj\n<< /Length {} >>\nstream\n",
                    page.content.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(&page.content);
            out.extend_from_slice(b"\nendstream\nendobj\n");
        }
        let xref_at = out.len();
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", object_count + 1);
        for offset in &offsets {
            let _ = writeln!(xref, "{offset:010} 00000 n ");
        }
        let _ = write!(
            xref,
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            object_count + 1
        );
        out.extend_from_slice(xref.as_bytes());
        out
    }
}

/// Helvetica advance widths (1/1000 em) of WinAnsiEncoding bytes 32–255,
/// from the Adobe Core 14 metrics. Accented letters take their base
/// letter's width; bytes the encoding leaves undefined are 0.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];
/// Helvetica-Bold advance widths, like [`HELVETICA`].
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks the file structure: header, every xref offset pointing at
    /// its `N 0 obj`, `startxref` pointing at the table, trailer, `%%EOF`.
    /// Returns the number of objects.
    pub(crate) fn check_structure(pdf: &[u8]) -> usize {
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(pdf);
        let startxref = text.rfind("startxref\n").unwrap();
        let xref_at: usize = text[startxref + 10..]
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(&pdf[xref_at..xref_at + 5], b"xref\n");
        let table = std::str::from_utf8(&pdf[xref_at..]).unwrap();
        let mut lines = table.lines().skip(1);
        let count: usize = lines
            .next()
            .unwrap()
            .strip_prefix("0 ")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(lines.next().unwrap(), "0000000000 65535 f ");
        for id in 1..count {
            let entry = lines.next().unwrap();
            assert_eq!(entry.len(), 19, "{entry:?}");
            assert!(entry.ends_with(" 00000 n "), "{entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            let expected = format!("{id} 0 obj\n");
            assert_eq!(
                &pdf[offset..offset + expected.len()],
                expected.as_bytes(),
                "object {id}"
            );
        }
        assert_eq!(lines.next().unwrap(), "trailer");
        let trailer = lines.next().unwrap();
        assert!(trailer.contains(&format!("/Size {count}")), "{trailer}");
        assert!(trailer.contains("/Root 1 0 R"), "{trailer}");
        // Each stream's /Length is exact.
        let mut search = 0;
        while let Some(found) = find(&pdf[search..], b"/Length ") {
            let at = search + found + 8;
            let digits = pdf[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            let len: usize = std::str::from_utf8(&pdf[at..at + digits])
                .unwrap()
                .parse()
                .unwrap();
            let start = at + find(&pdf[at..], b">>\nstream\n").unwrap() + 10;
            assert_eq!(&pdf[start + len..start + len + 10], b"\nendstream");
            search = start + len;
        }
        count
    }

    /// The position of `needle` in `haystack`.
    pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// The content streams of a file, concatenated.
    pub(crate) fn contents(pdf: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = pdf;
        while let Some(at) = find(rest, b">>\nstream\n") {
            let start = at + 10;
            let end = start + find(&rest[start..], b"\nendstream").unwrap();
            out.extend_from_slice(&rest[start..end]);
            rest = &rest[end..];
        }
        out
    }

    #[test]
    fn win_ansi_covers_french_and_transliterates_the_rest() {
        assert_eq!(encode_win_ansi("abc"), b"abc");
        assert_eq!(
            encode_win_ansi("Prélèvement à l’échéance"),
            b"Pr\xE9l\xE8vement \xE0 l\x92\xE9ch\xE9ance"
        );
        assert_eq!(encode_win_ansi("œuvre Œ €"), b"\x9Cuvre \x8C \x80");
        assert_eq!(encode_win_ansi("Łódź"), b"L\xF3dz");
        assert_eq!(encode_win_ansi("a\tb\nc\u{202f}:"), b"a b c\xA0:");
        assert_eq!(encode_win_ansi("日"), b"?");
    }

    #[test]
    fn widths_follow_the_font_metrics() {
        assert_eq!(text_width("", Font::Helvetica, 10.0), 0.0);
        // 'a' is 556 units, 'i' 222; bold 'i' 278.
        assert!((text_width("ai", Font::Helvetica, 10.0) - 7.78).abs() < 1e-3);
        assert!((text_width("ai", Font::HelveticaBold, 10.0) - 8.34).abs() < 1e-3);
        // Accented letters weigh their base letter.
        assert_eq!(
            text_width("é", Font::Helvetica, 12.0),
            text_width("e", Font::Helvetica, 12.0)
        );
        assert_eq!(text_width("W", Font::Helvetica, 1000.0), 944_000.0 / 1000.0);
    }

    #[test]
    fn wrapping_keeps_lines_within_the_width() {
        let text = "En signant ce formulaire de mandat, vous autorisez le créancier à envoyer des instructions à votre banque.";
        let lines = wrap_text(text, Font::Helvetica, 10.0, 200.0);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(text_width(line, Font::Helvetica, 10.0) <= 200.0, "{line}");
        }
        assert_eq!(lines.join(" "), text);
        // A word longer than the line is cut.
        let hash = "0123456789abcdef".repeat(4);
        let lines = wrap_text(&hash, Font::Helvetica, 10.0, 100.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), hash);
        for line in &lines {
            assert!(text_width(line, Font::Helvetica, 10.0) <= 100.0, "{line}");
        }
        assert_eq!(
            wrap_text("", Font::Helvetica, 10.0, 100.0),
            vec![String::new()]
        );
        assert_eq!(wrap_text("a\nb", Font::Helvetica, 10.0, 100.0), ["a", "b"]);
    }

    #[test]
    fn strings_are_escaped_and_numbers_short() {
        let mut page = Page::new();
        page.text(50.0, 700.5, Font::HelveticaBold, 12.0, r"a(b)c\d é");
        assert_eq!(
            page.content(),
            b"BT /F2 12 Tf 50 700.5 Td (a\\(b\\)c\\\\d \xE9) Tj ET\n"
        );
        page.line((0.0, 0.0), (10.25, -0.001), 0.5);
        assert!(page.content().ends_with(b"0.5 w 0 0 m 10.25 0 l S\n"));
    }

    #[test]
    fn documents_have_a_valid_structure_and_are_deterministic() {
        let mut page = Page::new();
        page.text(72.0, 770.0, Font::Helvetica, 11.0, "Bonjour (test)");
        page.rect(50.0, 50.0, 100.0, 20.0, 1.0);
        let doc = Document {
            title: "Mandat de prélèvement".into(),
            created_at: None,
            pages: vec![page.clone(), page],
        };
        let bytes = doc.to_bytes();
        assert_eq!(check_structure(&bytes), 10);
        assert_eq!(bytes, doc.to_bytes());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/Kids [6 0 R 8 0 R] /Count 2"));
        assert!(text.contains("/MediaBox [0 0 595 842]"));
        assert!(text.contains("/BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding"));
        // "Mandat de prélèvement": é is U+00E9.
        assert!(text.contains("/Title <FEFF004D0061006E006400610074002000640065002000700072"));
        assert!(text.contains("007200E9006C00E80076"));
        assert!(!text.contains("CreationDate"));
        let dated = Document {
            created_at: Some(
                chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 14, 10, 32, 5).unwrap(),
            ),
            ..doc
        };
        assert!(
            String::from_utf8_lossy(&dated.to_bytes())
                .contains("/CreationDate (D:20260314103205Z)")
        );
    }
}
