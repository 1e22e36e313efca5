//! Writes sample documents into a directory, for CI to check them with
//! `qpdf --check` and `pdftotext` (see `.ci/run`):
//!
//!     cargo run -p guichet-domain --example pdf_samples -- DIR
//!
//! `mandate-unsigned.pdf` (plain PDF, the reading copy),
//! `mandate-signed.pdf`, `invoice-long.pdf` (80 lines, logo),
//! `payment-request.pdf` and `receipt.pdf` (PDF/A-2u).

use chrono::{FixedOffset, NaiveDate, TimeZone};
use guichet_domain::Locale;
use guichet_domain::pdf::invoice::{InvoiceLine, InvoicePdf, InvoicePdfKind, Party, render};
use guichet_domain::sepa::PaymentType;
use guichet_domain::sepa::bic::Bic;
use guichet_domain::sepa::creditor_id::CreditorId;
use guichet_domain::sepa::iban::Iban;
use guichet_domain::sepa::mandate_pdf::{
    MandateDocument, SignatureChannel, SignatureEvidence, document_hash, render_mandate,
};

/// A 96×32 PNG (a horizontal gradient), written here without a dependency.
fn logo() -> Vec<u8> {
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
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let (width, height) = (96_u32, 32_u32);
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.extend_from_slice(&[(x * 2) as u8, 110, (200 - y * 3) as u8]);
        }
    }
    // zlib with stored blocks of at most 65 535 bytes.
    let mut idat = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        idat.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        idat.extend_from_slice(&len.to_le_bytes());
        idat.extend_from_slice(&(!len).to_le_bytes());
        idat.extend_from_slice(block);
    }
    let (mut a, mut b) = (1_u32, 0_u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    idat.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn mandate() -> Result<(MandateDocument, MandateDocument), String> {
    let unsigned = MandateDocument {
        locale: Locale::Fr,
        creditor_name: "Résidences du Parc".into(),
        creditor_address: vec![
            "10, av. de Rouargues".into(),
            "34980 Saint-Clément-de-Rivière".into(),
        ],
        creditor_id: CreditorId::parse("FR72ZZZ123456").map_err(|e| e.to_string())?,
        reference: None,
        debtor_name: "Łukasz Wąsik".into(),
        debtor_address: vec![
            "c/o Ξένια Παπαδοπούλου, Юлия Иванова".into(),
            "3 rue de l'Église".into(),
            "75011 Paris".into(),
        ],
        iban: Iban::parse("FR7630006000011234567890189").map_err(|e| e.to_string())?,
        bic: Some(Bic::parse("AGRIFRPP").map_err(|e| e.to_string())?),
        payment_type: PaymentType::Recurrent,
        signature: None,
        logo: Some(logo()),
    };
    let mut signed = unsigned.clone();
    signed.reference = Some("GCH20261207ABCDEF0123456789".into());
    signed.signature = Some(SignatureEvidence {
        place: "Paris".into(),
        signed_at: FixedOffset::east_opt(3600)
            .ok_or("offset")?
            .with_ymd_and_hms(2026, 12, 7, 10, 32, 5)
            .single()
            .ok_or("date")?,
        channel: SignatureChannel::Sms,
        masked_destination: "+33 6** ** ** 78".into(),
        ip: "203.0.113.7".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
        document_hash: document_hash(&render_mandate(&unsigned)),
    });
    Ok((unsigned, signed))
}

fn invoice() -> Result<InvoicePdf, String> {
    Ok(InvoicePdf {
        locale: Locale::Fr,
        kind: InvoicePdfKind::Invoice,
        number: "F-2026-0042".into(),
        issuer: Party {
            name: "Cabinet Kiné du Parc".into(),
            address_lines: vec!["8 rue des Lilas".into(), "75011 Paris".into()],
            extra_lines: vec!["SIRET 123 456 789 00012".into()],
        },
        customer: Party {
            name: "Łukasz Wąsik".into(),
            address_lines: vec!["ul. Żółkiewskiego 12".into(), "00-001 Warszawa".into()],
            extra_lines: vec!["Ξένια · Юлия · Nguyễn Thị Minh Khai".into()],
        },
        logo: Some(logo()),
        accent_color: Some([0, 110, 90]),
        issue_date: "07/12/2026".into(),
        due_date: Some("21/12/2026".into()),
        document_date: NaiveDate::from_ymd_opt(2026, 12, 7).ok_or("date")?,
        reason: None,
        lines: (1..=80)
            .map(|i| InvoiceLine {
                description: format!("Séance n° {i} — rééducation"),
                quantity: "1".into(),
                unit_amount: "50,00 €".into(),
                tax_rate: "0 %".into(),
                total: "50,00 €".into(),
            })
            .collect(),
        totals: vec![
            ("Total HT".into(), "4 000,00 €".into()),
            ("TVA 0 %".into(), "0,00 €".into()),
            ("Total TTC".into(), "4 000,00 €".into()),
            ("Montant dû".into(), "4 000,00 €".into()),
        ],
        note: Some("TVA non applicable, art. 261-4-1° du CGI.".into()),
        footer_lines: vec!["Paiement en ligne sur votre espace client.".into()],
    })
}

fn main() -> Result<(), String> {
    let dir = std::env::args().nth(1).ok_or("usage: pdf_samples DIR")?;
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let write = |name: &str, bytes: Vec<u8>| -> Result<(), String> {
        std::fs::write(dir.join(name), &bytes).map_err(|e| e.to_string())?;
        println!("{name}: {} bytes", bytes.len());
        Ok(())
    };
    let (unsigned, signed) = mandate()?;
    write("mandate-unsigned.pdf", render_mandate(&unsigned))?;
    write("mandate-signed.pdf", render_mandate(&signed))?;
    let long = invoice()?;
    write("invoice-long.pdf", render(&long))?;
    let mut request = long.clone();
    request.kind = InvoicePdfKind::PaymentRequest;
    request.locale = Locale::En;
    request.number = "PR-2026-0007".into();
    request.lines.clear();
    request.reason = Some("Deposit for the renovation of flat 12".into());
    request.totals = vec![("Amount due".into(), "€300.00".into())];
    request.note = None;
    request.logo = None;
    write("payment-request.pdf", render(&request))?;
    let mut receipt = long;
    receipt.kind = InvoicePdfKind::Receipt;
    receipt.number = "R-2026-0042".into();
    receipt.lines.truncate(2);
    receipt.totals = vec![
        ("Total TTC".into(), "100,00 €".into()),
        ("Payé".into(), "100,00 €".into()),
    ];
    receipt.footer_lines = vec!["Payé le 07/12/2026 par Visa •••• 4242".into()];
    write("receipt.pdf", render(&receipt))?;
    Ok(())
}
