//! Guichet's generated documents (the SEPA mandate, invoices and receipts)
//! as PDF, written with [krilla]: A4 pages, text in DejaVu Sans regular and
//! bold (embedded, subsetted), thin lines and rectangles, PNG or JPEG
//! images, document metadata and, when asked, PDF/A-2u conformance.
//!
//! Text is full Unicode: each character is drawn with the glyph the font
//! maps it to, and widths come from the font's own advances, so a line
//! measured with [`text_width`] or wrapped with [`wrap_text`] is exactly as
//! wide as drawn. DejaVu Sans covers Latin (Polish, Czech, Vietnamese…),
//! Greek and Cyrillic. A character the font lacks is never dropped: it is
//! drawn with the font's replacement character `�` (rather than `.notdef`,
//! which PDF/A forbids and whose text mapping extraction tools lose), and
//! the text layer keeps the original character, so copying or extracting
//! the text gives it back.
//!
//! There is no shaping engine: no kerning, ligatures or right-to-left
//! scripts; precomposed characters (as typed, NFC) are drawn as such.
//!
//! Output is deterministic: the same [`Document`] gives the same bytes (no
//! creation date unless one is given; the file identifier is a hash of the
//! content). PDF/A requires a document date: callers give one that belongs
//! to the content (the signature time, the issue date), never "now".
//!
//! Coordinates are in points (1/72 inch) from the bottom-left corner of
//! the page, as in PDF itself.

pub mod invoice;

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Timelike, Utc};
use krilla::color::rgb;
use krilla::configure::{Archival, ConfigurationBuilder, PdfVersion};
use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image as KrillaImage;
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, LineCap, LineJoin, Stroke};
use krilla::text::{GlyphId, KrillaGlyph};
use krilla::{Data, SerializeSettings};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size as FontSize};
use skrifa::raw::TableProvider;

use crate::organization::Locale;

/// The width of an A4 page, in points (1/72 inch).
pub const A4_WIDTH: f32 = 595.0;
/// The height of an A4 page, in points.
pub const A4_HEIGHT: f32 = 842.0;

/// DejaVu Sans, Bitstream Vera licence (`crates/domain/fonts/LICENSE-DejaVu`).
static REGULAR_TTF: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold, same licence.
static BOLD_TTF: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// One of the two faces documents are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Font {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
}

/// What a face needs for layout: its character map and advances (read
/// with skrifa, as krilla itself does), and krilla's handle to embed it.
struct Face {
    charmap: skrifa::charmap::Charmap<'static>,
    metrics: skrifa::metrics::GlyphMetrics<'static>,
    units_per_em: f32,
    krilla: krilla::text::Font,
    /// The glyph drawn for a missing character in PDF/A documents.
    replacement: Option<skrifa::GlyphId>,
}

impl Face {
    fn load(data: &'static [u8]) -> Self {
        // The fonts are compiled in and known to parse; a test loads both.
        let font = skrifa::FontRef::new(data).unwrap_or_else(|_| unreachable!("bundled font"));
        let units_per_em = f32::from(font.head().map_or(2048, |head| head.units_per_em()));
        let krilla = krilla::text::Font::new(Data::from(data), 0)
            .unwrap_or_else(|| unreachable!("bundled font"));
        let charmap = font.charmap();
        let replacement = charmap.map('\u{FFFD}');
        Self {
            charmap,
            metrics: font.glyph_metrics(FontSize::unscaled(), LocationRef::default()),
            units_per_em,
            krilla,
            replacement,
        }
    }

    /// The advance of `glyph`, in em.
    fn advance(&self, glyph: skrifa::GlyphId) -> f32 {
        self.metrics.advance_width(glyph).unwrap_or(0.0) / self.units_per_em
    }

    /// The glyph that draws `c` and its advance in em. Whitespace and
    /// controls the font lacks draw as a space; other missing characters
    /// as the font's replacement character `�` (PDF/A forbids `.notdef`,
    /// and text extraction loses the characters drawn with it), which the
    /// text layer maps back to the original character.
    fn glyph(&self, c: char) -> (skrifa::GlyphId, f32) {
        if let Some(glyph) = self.charmap.map(c) {
            return (glyph, self.advance(glyph));
        }
        if c.is_whitespace() || c.is_control() {
            let space = self.charmap.map(' ').unwrap_or_default();
            return (space, self.advance(space));
        }
        let replacement = self.replacement.unwrap_or_default();
        (replacement, self.advance(replacement))
    }
}

static REGULAR: LazyLock<Face> = LazyLock::new(|| Face::load(REGULAR_TTF));
static BOLD: LazyLock<Face> = LazyLock::new(|| Face::load(BOLD_TTF));

impl Font {
    fn face(self) -> &'static Face {
        match self {
            Font::Regular => &REGULAR,
            Font::Bold => &BOLD,
        }
    }

    /// Whether the face has a glyph for `c` (else it is drawn as `�`).
    pub fn covers(self, c: char) -> bool {
        self.face().charmap.map(c).is_some()
    }
}

/// The width of `text` in `font` at `size` points, in points, from the
/// font's advances (controls and line breaks count as spaces).
pub fn text_width(text: &str, font: Font, size: f32) -> f32 {
    let face = font.face();
    text.chars().map(|c| face.glyph(c).1).sum::<f32>() * size
}

/// `text` broken into lines no wider than `max_width` points: greedily at
/// spaces, and inside words that do not fit on a line by themselves (long
/// identifiers, user agents). Explicit line breaks (`\n`) are kept; runs
/// of spaces count as one. An empty text gives one empty line.
pub fn wrap_text(text: &str, font: Font, size: f32, max_width: f32) -> Vec<String> {
    let width = |s: &str| text_width(s, font, size);
    let space = width(" ");
    let fits = |w: f32| w <= max_width + 0.001;
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0.0_f32;
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let word_width = width(word);
            if line.is_empty() && fits(word_width) {
                line.push_str(word);
                line_width = word_width;
                continue;
            }
            if !line.is_empty() && fits(line_width + space + word_width) {
                line.push(' ');
                line.push_str(word);
                line_width += space + word_width;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_width = 0.0;
            }
            if fits(word_width) {
                line.push_str(word);
                line_width = word_width;
                continue;
            }
            // The word alone is too wide: cut it where it overflows.
            for c in word.chars() {
                let c_width = width(c.encode_utf8(&mut [0; 4]));
                if !line.is_empty() && !fits(line_width + c_width) {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push(c);
                line_width += c_width;
            }
        }
        lines.push(line);
    }
    lines
}

/// An sRGB colour.
pub type Rgb = [u8; 3];

/// Black.
pub const BLACK: Rgb = [0, 0, 0];

/// An image to place on a page: PNG or JPEG bytes, checked when made.
#[derive(Clone)]
pub struct Image {
    image: KrillaImage,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (width, height) = self.size();
        write!(f, "Image({width}x{height})")
    }
}

/// Why bytes are not an image a document can carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Neither PNG nor JPEG.
    #[error("not a PNG or JPEG image")]
    UnknownFormat,
    /// PNG or JPEG by its signature, but it could not be read.
    #[error("unreadable image: {0}")]
    Unreadable(String),
}

impl Image {
    /// Reads PNG or JPEG bytes (recognised by their signature).
    pub fn new(bytes: &[u8]) -> Result<Self, ImageError> {
        let data = Data::from(bytes.to_vec());
        let image = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            KrillaImage::from_png(data, false)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            KrillaImage::from_jpeg(data, false)
        } else {
            return Err(ImageError::UnknownFormat);
        };
        let image = image.map_err(ImageError::Unreadable)?;
        let (width, height) = image.size();
        if width == 0 || height == 0 {
            return Err(ImageError::Unreadable("empty image".to_owned()));
        }
        Ok(Self { image })
    }

    /// Its size in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.image.size()
    }
}

/// One drawing operation.
#[derive(Debug, Clone)]
enum Op {
    Text {
        x: f32,
        y: f32,
        font: Font,
        size: f32,
        color: Rgb,
        text: String,
    },
    Line {
        from: (f32, f32),
        to: (f32, f32),
        width: f32,
        color: Rgb,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        stroke: Option<(f32, Rgb)>,
        fill: Option<Rgb>,
    },
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        image: Image,
    },
}

/// The drawing operations of one A4 page. Coordinates are in points from
/// the bottom-left corner.
#[derive(Debug, Clone, Default)]
pub struct Page {
    ops: Vec<Op>,
}

impl Page {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `text` in black on one line with its baseline starting at
    /// `(x, y)`.
    pub fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &str) {
        self.text_colored(x, y, font, size, BLACK, text);
    }

    /// Writes `text` in `color` on one line with its baseline starting at
    /// `(x, y)`.
    pub fn text_colored(&mut self, x: f32, y: f32, font: Font, size: f32, color: Rgb, text: &str) {
        if text.is_empty() {
            return;
        }
        self.ops.push(Op::Text {
            x,
            y,
            font,
            size,
            color,
            text: text.to_owned(),
        });
    }

    /// Writes `text` with its right end at `x`.
    pub fn text_right(&mut self, x: f32, y: f32, font: Font, size: f32, text: &str) {
        let width = text_width(text, font, size);
        self.text(x - width, y, font, size, text);
    }

    /// Draws a straight black line `width` points thick.
    pub fn line(&mut self, from: (f32, f32), to: (f32, f32), width: f32) {
        self.line_colored(from, to, width, BLACK);
    }

    /// Draws a straight line `width` points thick in `color`.
    pub fn line_colored(&mut self, from: (f32, f32), to: (f32, f32), width: f32, color: Rgb) {
        self.ops.push(Op::Line {
            from,
            to,
            width,
            color,
        });
    }

    /// Draws the black outline of a rectangle whose bottom-left corner is
    /// `(x, y)`, `width` points thick.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, width: f32) {
        self.ops.push(Op::Rect {
            x,
            y,
            w,
            h,
            stroke: Some((width, BLACK)),
            fill: None,
        });
    }

    /// Fills a rectangle whose bottom-left corner is `(x, y)` with `color`.
    pub fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb) {
        self.ops.push(Op::Rect {
            x,
            y,
            w,
            h,
            stroke: None,
            fill: Some(color),
        });
    }

    /// Places `image` in the box whose bottom-left corner is `(x, y)`,
    /// scaled to fit it while keeping its aspect ratio, against the box's
    /// left edge and vertically centred. Returns the width and height it
    /// takes.
    pub fn image(&mut self, image: &Image, x: f32, y: f32, w: f32, h: f32) -> (f32, f32) {
        let (px_w, px_h) = image.size();
        let (px_w, px_h) = (px_w as f32, px_h as f32);
        if px_w <= 0.0 || px_h <= 0.0 || w <= 0.0 || h <= 0.0 {
            return (0.0, 0.0);
        }
        let scale = (w / px_w).min(h / px_h);
        let (draw_w, draw_h) = (px_w * scale, px_h * scale);
        self.ops.push(Op::Image {
            x,
            y: y + (h - draw_h) / 2.0,
            w: draw_w,
            h: draw_h,
            image: image.clone(),
        });
        (draw_w, draw_h)
    }

    /// Whether nothing is drawn on it.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Which standard a document claims to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conformance {
    /// Plain PDF 1.7.
    #[default]
    Plain,
    /// PDF/A-2u (ISO 19005-2, level U: archivable, every glyph mapped to
    /// Unicode), checked by krilla's validator when written; needs
    /// [`Document::created_at`].
    PdfA2u,
}

/// A document of A4 pages.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// The title in the metadata (shown by viewers).
    pub title: String,
    /// The language of the text.
    pub language: Option<Locale>,
    /// The creation date in the metadata; `None` keeps the output
    /// independent of the time it was made. PDF/A needs one: give a date
    /// that belongs to the content (the signature time, the issue date).
    pub created_at: Option<DateTime<Utc>>,
    /// The standard to follow.
    pub conformance: Conformance,
    /// The pages, in order (an empty document gets one blank page).
    pub pages: Vec<Page>,
}

/// Why a document could not be written (krilla's validator refused it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the PDF could not be written: {0}")]
pub struct PdfError(String);

fn color(c: Rgb) -> krilla::color::Color {
    rgb::Color::new(c[0], c[1], c[2]).into()
}

fn fill(c: Rgb) -> Fill {
    Fill {
        paint: color(c).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

fn stroke(width: f32, c: Rgb) -> Stroke {
    Stroke {
        paint: color(c).into(),
        width,
        miter_limit: 10.0,
        line_cap: LineCap::Butt,
        line_join: LineJoin::Miter,
        opacity: NormalizedF32::ONE,
        dash: None,
    }
}

/// Keeps a metadata string within what PDF/A allows (32 767 bytes, no
/// controls).
fn metadata_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1000)
        .collect()
}

fn draw_text(
    surface: &mut krilla::surface::Surface<'_>,
    (x, y): (f32, f32),
    font: Font,
    size: f32,
    text: &str,
) {
    let face = font.face();
    // Controls become spaces so that the text layer matches the glyphs.
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let glyphs: Vec<KrillaGlyph> = text
        .char_indices()
        .map(|(at, c)| {
            let (glyph, advance) = face.glyph(c);
            KrillaGlyph::new(
                GlyphId::new(glyph.to_u32()),
                advance,
                0.0,
                0.0,
                0.0,
                at..at + c.len_utf8(),
                None,
            )
        })
        .collect();
    surface.draw_glyphs(
        Point::from_xy(x, A4_HEIGHT - y),
        &glyphs,
        face.krilla.clone(),
        &text,
        size,
        false,
    );
}

impl Document {
    fn write(&self, conformance: Conformance) -> Result<Vec<u8>, PdfError> {
        let archival = conformance == Conformance::PdfA2u;
        let mut settings = SerializeSettings::default();
        if archival {
            settings.configuration = ConfigurationBuilder::new()
                .with_version(PdfVersion::Pdf17)
                .with_archival_validator(Archival::A2_U)
                .finish()
                .map_err(|e| PdfError(format!("{e:?}")))?;
        }
        let mut document = krilla::Document::new_with(settings);
        let mut metadata = Metadata::new()
            .title(metadata_text(&self.title))
            .creator("Guichet".to_owned())
            .producer("Guichet (krilla)".to_owned());
        if let Some(language) = self.language {
            metadata = metadata.language(language.as_str().to_owned());
        }
        if let Some(at) = self.created_at {
            let date = krilla::metadata::DateTime::new(u16::try_from(at.year()).unwrap_or(0))
                .month(at.month() as u8)
                .day(at.day() as u8)
                .hour(at.hour() as u8)
                .minute(at.minute() as u8)
                .second(at.second() as u8)
                .utc_offset_hour(0)
                .utc_offset_minute(0);
            metadata = metadata.creation_date(date);
        }
        document.set_metadata(metadata);

        let blank = [Page::new()];
        let pages = if self.pages.is_empty() {
            &blank[..]
        } else {
            &self.pages[..]
        };
        let page_settings = PageSettings::from_wh(A4_WIDTH, A4_HEIGHT)
            .ok_or_else(|| PdfError("page size".to_owned()))?;
        for page in pages {
            let mut pdf_page = document.start_page_with(page_settings.clone());
            let mut surface = pdf_page.surface();
            for op in &page.ops {
                match op {
                    Op::Text {
                        x,
                        y,
                        font,
                        size,
                        color,
                        text,
                    } => {
                        surface.set_fill(Some(fill(*color)));
                        surface.set_stroke(None);
                        draw_text(&mut surface, (*x, *y), *font, *size, text);
                    }
                    Op::Line {
                        from,
                        to,
                        width,
                        color,
                    } => {
                        let mut path = PathBuilder::new();
                        path.move_to(from.0, A4_HEIGHT - from.1);
                        path.line_to(to.0, A4_HEIGHT - to.1);
                        if let Some(path) = path.finish() {
                            surface.set_fill(None);
                            surface.set_stroke(Some(stroke(*width, *color)));
                            surface.draw_path(&path);
                        }
                    }
                    Op::Rect {
                        x,
                        y,
                        w,
                        h,
                        stroke: outline,
                        fill: inside,
                    } => {
                        let mut path = PathBuilder::new();
                        let top = A4_HEIGHT - (y + h);
                        path.move_to(*x, top);
                        path.line_to(x + w, top);
                        path.line_to(x + w, top + h);
                        path.line_to(*x, top + h);
                        path.close();
                        if let Some(path) = path.finish() {
                            surface.set_fill(inside.map(fill));
                            surface.set_stroke(outline.map(|(width, c)| stroke(width, c)));
                            surface.draw_path(&path);
                        }
                    }
                    Op::Image { x, y, w, h, image } => {
                        if let Some(size) = Size::from_wh(*w, *h) {
                            surface.push_transform(&Transform::from_translate(
                                *x,
                                A4_HEIGHT - (y + h),
                            ));
                            surface.draw_image(image.image.clone(), size);
                            surface.pop();
                        }
                    }
                }
            }
            surface.finish();
            pdf_page.finish();
        }
        document.finish().map_err(|e| PdfError(format!("{e:?}")))
    }

    /// The complete file, or why the validator of the asked conformance
    /// refused it.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, PdfError> {
        self.write(self.conformance)
    }

    /// The complete file. Should the asked conformance be refused (an
    /// image PDF/A cannot carry, say), the document is written as plain
    /// PDF rather than not at all.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.write(self.conformance)
            .or_else(|_| self.write(Conformance::Plain))
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::Command;

    /// The text `pdftotext` extracts from `pdf` (layout kept), or `None`
    /// when poppler-utils is not installed.
    pub(crate) fn pdftotext(pdf: &[u8]) -> Option<String> {
        let dir = std::env::temp_dir().join(format!(
            "guichet-pdf-{}-{}",
            std::process::id(),
            crate::secret::to_hex(&rand::random::<[u8; 8]>())
        ));
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("doc.pdf");
        std::fs::File::create(&path).ok()?.write_all(pdf).ok()?;
        let out = Command::new("pdftotext")
            .args(["-layout", "-enc", "UTF-8"])
            .arg(&path)
            .arg("-")
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let out = out.ok()?;
        assert!(
            out.status.success(),
            "pdftotext: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8(out.stdout).unwrap_or_default())
    }

    /// The text of `pdf`, failing the test when pdftotext is missing
    /// (CI installs poppler-utils).
    pub(crate) fn text_of(pdf: &[u8]) -> String {
        pdftotext(pdf).unwrap_or_else(|| panic!("pdftotext missing: apt-get install poppler-utils"))
    }

    /// The number of pages.
    pub(crate) fn page_count(pdf: &[u8]) -> usize {
        text_of(pdf).matches('\u{c}').count().max(1)
    }

    pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// Whether `pdf` has an image XObject.
    pub(crate) fn has_image(pdf: &[u8]) -> bool {
        find(pdf, b"/Subtype /Image").is_some() || find(pdf, b"/Subtype/Image").is_some()
    }

    /// A 3×2 red PNG, made here.
    pub(crate) fn tiny_png() -> Vec<u8> {
        // Generated with Python's zlib (no dependency here): 3x2 RGB.
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc_input = kind.to_vec();
            crc_input.extend_from_slice(data);
            out.extend_from_slice(&crc_input);
            out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        }
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = 0xFFFF_FFFF_u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        fn adler32(bytes: &[u8]) -> u32 {
            let (mut a, mut b) = (1_u32, 0_u32);
            for &x in bytes {
                a = (a + u32::from(x)) % 65521;
                b = (b + a) % 65521;
            }
            (b << 16) | a
        }
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&3_u32.to_be_bytes());
        ihdr.extend_from_slice(&2_u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        let raw: Vec<u8> = (0..2)
            .flat_map(|_| {
                let mut row = vec![0_u8];
                row.extend_from_slice(&[200, 30, 30].repeat(3));
                row
            })
            .collect();
        // zlib, one stored (uncompressed) block.
        let mut idat = vec![0x78, 0x01, 0x01];
        let len = raw.len() as u16;
        idat.extend_from_slice(&len.to_le_bytes());
        idat.extend_from_slice(&(!len).to_le_bytes());
        idat.extend_from_slice(&raw);
        idat.extend_from_slice(&adler32(&raw).to_be_bytes());
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn sample(conformance: Conformance) -> Document {
        let mut page = Page::new();
        page.text(50.0, 800.0, Font::Bold, 16.0, "Łukasz Wąsik — Ξένια — Юлия");
        page.text(
            50.0,
            780.0,
            Font::Regular,
            11.0,
            "Žluťoučký kůň · Nguyễn Thị Minh Khai · Ελληνικά · Кириллица",
        );
        page.line((50.0, 770.0), (545.0, 770.0), 0.5);
        page.rect(50.0, 700.0, 200.0, 50.0, 0.8);
        page.fill_rect(300.0, 700.0, 20.0, 20.0, [10, 90, 200]);
        Document {
            title: "Essai — Ξένια".into(),
            language: Some(Locale::Fr),
            created_at: Some(DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
            conformance,
            pages: vec![page],
        }
    }

    #[test]
    fn both_fonts_load_and_cover_the_scripts_we_promise() {
        for font in [Font::Regular, Font::Bold] {
            for c in "ŁąćęńóśźżČŘŠŽůěťĎŇΑλΞέЮлияẠạỄễỗữđơưấ€«»’\u{a0}".chars()
            {
                assert!(font.covers(c), "{font:?} {c:?}");
            }
            assert!(!font.covers('中'));
        }
    }

    #[test]
    fn unicode_text_survives_extraction_in_both_conformances() {
        for conformance in [Conformance::Plain, Conformance::PdfA2u] {
            let pdf = sample(conformance).try_to_bytes().unwrap();
            assert!(pdf.starts_with(b"%PDF-1.7"));
            let text = text_of(&pdf);
            for expected in [
                "Łukasz Wąsik",
                "Ξένια",
                "Юлия",
                "Žluťoučký kůň",
                "Nguyễn Thị Minh Khai",
                "Кириллица",
            ] {
                assert!(
                    text.contains(expected),
                    "{conformance:?} {expected}: {text}"
                );
            }
        }
    }

    #[test]
    fn pdf_a_documents_say_so_in_their_metadata() {
        let pdf = sample(Conformance::PdfA2u).try_to_bytes().unwrap();
        assert!(find(&pdf, b"pdfaid:part").is_some());
        assert!(find(&pdf, b"OutputIntent").is_some());
        let plain = sample(Conformance::Plain).try_to_bytes().unwrap();
        assert!(find(&plain, b"pdfaid:part").is_none());
    }

    #[test]
    fn characters_the_font_lacks_are_drawn_not_dropped() {
        for conformance in [Conformance::Plain, Conformance::PdfA2u] {
            let mut page = Page::new();
            page.text(50.0, 800.0, Font::Regular, 12.0, "Nom : 王小明 Ξ");
            let pdf = Document {
                conformance,
                created_at: Some(DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
                pages: vec![page],
                ..Document::default()
            }
            .try_to_bytes()
            .unwrap();
            // The text layer keeps the characters, whatever the glyph.
            let text = text_of(&pdf);
            assert!(text.contains("王小明"), "{conformance:?}: {text}");
        }
        // They take room: a missing character is as wide as `�`.
        assert!(text_width("王", Font::Regular, 10.0) > 3.0);
    }

    #[test]
    fn rendering_is_deterministic() {
        for conformance in [Conformance::Plain, Conformance::PdfA2u] {
            let a = sample(conformance).to_bytes();
            let b = sample(conformance).to_bytes();
            assert_eq!(a, b);
        }
        let mut other = sample(Conformance::PdfA2u);
        other.title = "Autre".into();
        assert_ne!(other.to_bytes(), sample(Conformance::PdfA2u).to_bytes());
    }

    #[test]
    fn no_creation_date_unless_given_and_pdf_a_needs_one() {
        let mut undated = sample(Conformance::Plain);
        undated.created_at = None;
        assert!(find(&undated.to_bytes(), b"CreationDate").is_none());
        let pdf = sample(Conformance::PdfA2u).to_bytes();
        assert!(find(&pdf, b"CreationDate").is_some());
        undated.conformance = Conformance::PdfA2u;
        assert!(undated.try_to_bytes().is_err());
        // Rather than nothing, `to_bytes` writes it as plain PDF.
        let plain = undated.to_bytes();
        assert!(plain.starts_with(b"%PDF-"));
        assert!(find(&plain, b"pdfaid:part").is_none());
    }

    #[test]
    fn widths_follow_the_font_metrics() {
        // DejaVu Sans: 'i' is narrower than 'W'; bold is wider; size scales.
        let narrow = text_width("iiii", Font::Regular, 10.0);
        let wide = text_width("WWWW", Font::Regular, 10.0);
        assert!(narrow < wide);
        assert!(
            text_width("Guichet", Font::Bold, 10.0) > text_width("Guichet", Font::Regular, 10.0)
        );
        let at_20 = text_width("Guichet", Font::Regular, 20.0);
        assert!((at_20 - 2.0 * text_width("Guichet", Font::Regular, 10.0)).abs() < 0.01);
        // The space of DejaVu Sans is 651/2048 em.
        assert!((text_width(" ", Font::Regular, 2048.0) - 651.0).abs() < 0.01);
    }

    #[test]
    fn wrapping_keeps_lines_within_the_width() {
        let text = "Être ou ne pas être, telle est la question : Ξένια Юлия Łukasz \
                    Identifiant0123456789abcdefghijklmnopqrstuvwxyz0123456789";
        let lines = wrap_text(text, Font::Regular, 10.0, 120.0);
        assert!(lines.len() > 3);
        for line in &lines {
            assert!(text_width(line, Font::Regular, 10.0) <= 120.001, "{line}");
        }
        let joined: String = lines.concat().chars().filter(|c| *c != ' ').collect();
        let original: String = text.chars().filter(|c| *c != ' ').collect();
        assert_eq!(joined, original);
        assert_eq!(
            wrap_text("", Font::Regular, 10.0, 100.0),
            vec![String::new()]
        );
        assert_eq!(
            wrap_text("a\nb", Font::Regular, 10.0, 100.0),
            vec!["a".to_owned(), "b".to_owned()]
        );
    }

    #[test]
    fn images_are_placed_keeping_their_aspect_ratio() {
        let image = Image::new(&tiny_png()).unwrap();
        assert_eq!(image.size(), (3, 2));
        let mut page = Page::new();
        let (w, h) = page.image(&image, 50.0, 700.0, 120.0, 40.0);
        assert!(
            (w - 60.0).abs() < 0.01 && (h - 40.0).abs() < 0.01,
            "{w} {h}"
        );
        let pdf = Document {
            conformance: Conformance::PdfA2u,
            created_at: Some(DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
            pages: vec![page],
            ..Document::default()
        }
        .try_to_bytes()
        .unwrap();
        assert!(has_image(&pdf));
        assert_eq!(
            Image::new(b"GIF89a...").unwrap_err(),
            ImageError::UnknownFormat
        );
        assert!(matches!(
            Image::new(b"\x89PNG\r\n\x1a\nbroken"),
            Err(ImageError::Unreadable(_))
        ));
    }

    #[test]
    fn an_empty_document_is_one_blank_page() {
        let pdf = Document::default().to_bytes();
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(page_count(&pdf), 1);
    }
}
