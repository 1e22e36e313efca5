//! The collection file sent to the creditor's bank: ISO 20022
//! `pain.008.001.02` (CustomerDirectDebitInitiationV02), as the SEPA Core
//! direct debit implementation guidelines restrict it.
//!
//! The writer streams: the caller gives the totals first, because the group
//! header and each payment information block announce their number of
//! transactions and control sum *before* listing them, then pushes debits
//! one by one. Nothing but the running totals is kept, so a run of 10 000+
//! debits never needs to be in memory at once:
//!
//! 1. aggregate query: count and sum of the run, per sequence type (FRST,
//!    RCUR, OOFF) and collection date;
//! 2. [`Pain008Writer::new`] with the overall totals;
//! 3. per group, [`Pain008Writer::begin_payment`] with the group's totals,
//!    then [`Pain008Writer::push`] for each row of a query streaming that
//!    group;
//! 4. [`Pain008Writer::finish`].
//!
//! The writer checks that what was pushed matches what was announced and
//! fails otherwise ([`Pain008Error::TotalsMismatch`]); as the beginning of
//! the document is already written by then, a failed document must be
//! discarded, never sent.
//!
//! Text fields are rewritten in the SEPA character set and cut to the
//! guidelines' lengths (names 70, remittance information 140), then
//! XML-escaped; identifiers (message, payment information, end-to-end and
//! mandate references) are refused when not valid SEPA identifiers rather
//! than altered. Amounts are integer euro cents. Every element is in the
//! order of the XSD.
//!
//! Write to a buffered writer: each transaction is assembled in memory and
//! written with one `write_all`.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{NaiveDate, NaiveDateTime};

use super::PaymentType;
use super::bic::Bic;
use super::creditor_id::CreditorId;
use super::iban::Iban;
use super::text::{is_sepa_identifier, to_sepa_text};

/// The XML namespace of pain.008.001.02.
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02";

/// The longest name the SEPA guidelines allow.
pub const NAME_MAX: usize = 70;
/// The longest unstructured remittance information.
pub const REMITTANCE_MAX: usize = 140;
/// The largest amount of one SEPA debit: 999 999 999.99 EUR.
pub const AMOUNT_MAX_CENTS: u64 = 99_999_999_999;

/// The place of a debit in its mandate's life (`SeqTp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SequenceType {
    /// `FRST`: the first debit of a recurrent mandate.
    First,
    /// `RCUR`: a later debit of a recurrent mandate.
    Recurrent,
    /// `OOFF`: the only debit of a one-off mandate.
    OneOff,
    /// `FNAL`: the last debit of a recurrent mandate.
    Final,
}

impl SequenceType {
    /// The ISO code.
    pub fn code(self) -> &'static str {
        match self {
            SequenceType::First => "FRST",
            SequenceType::Recurrent => "RCUR",
            SequenceType::OneOff => "OOFF",
            SequenceType::Final => "FNAL",
        }
    }

    /// The sequence type of a debit under a mandate of `payment_type`:
    /// `OOFF` for a one-off mandate, `FRST` for the first debit of a
    /// recurrent one, `RCUR` after.
    pub fn for_debit(payment_type: PaymentType, first_debit: bool) -> Self {
        match (payment_type, first_debit) {
            (PaymentType::OneOff, _) => SequenceType::OneOff,
            (PaymentType::Recurrent, true) => SequenceType::First,
            (PaymentType::Recurrent, false) => SequenceType::Recurrent,
        }
    }
}

/// The group header (`GrpHdr`).
#[derive(Debug, Clone, Copy)]
pub struct GroupHeader<'a> {
    /// `MsgId`: unique per file for the creditor's bank.
    pub message_id: &'a str,
    /// `CreDtTm`: when the file was made (local time of the creditor).
    pub created_at: NaiveDateTime,
    /// `NbOfTxs`: the number of debits in the whole file.
    pub transaction_count: u64,
    /// `CtrlSum`: their total, in euro cents.
    pub control_sum_cents: u64,
    /// `InitgPty/Nm`: who sends the file (the creditor, usually).
    pub initiating_party: &'a str,
}

/// One payment information block (`PmtInf`): debits sharing a sequence
/// type, a collection date and a creditor account.
#[derive(Debug, Clone, Copy)]
pub struct PaymentInfo<'a> {
    /// `PmtInfId`: unique within the file.
    pub payment_info_id: &'a str,
    /// `SeqTp`.
    pub sequence: SequenceType,
    /// `ReqdColltnDt`: the date the debtors are debited.
    pub collection_date: NaiveDate,
    /// `BtchBookg`: one booking for the whole block on the creditor's
    /// account (`true`) or one per debit.
    pub batch_booking: bool,
    /// `NbOfTxs`: the number of debits that will be pushed in this block.
    pub transaction_count: u64,
    /// `CtrlSum`: their total, in euro cents.
    pub control_sum_cents: u64,
    /// `Cdtr/Nm`.
    pub creditor_name: &'a str,
    /// `CdtrAcct/Id/IBAN`.
    pub creditor_iban: &'a Iban,
    /// `CdtrAgt/FinInstnId/BIC`; without it, `Othr/Id` `NOTPROVIDED`.
    pub creditor_bic: Option<&'a Bic>,
    /// `CdtrSchmeId`: the SEPA creditor identifier.
    pub creditor_id: &'a CreditorId,
}

/// One debit (`DrctDbtTxInf`).
#[derive(Debug, Clone, Copy)]
pub struct DirectDebit<'a> {
    /// `PmtId/EndToEndId`: returned to the creditor with any reject.
    pub end_to_end_id: &'a str,
    /// `InstdAmt`, in euro cents (1 to [`AMOUNT_MAX_CENTS`]).
    pub amount_cents: u64,
    /// `MndtRltdInf/MndtId`: the unique mandate reference, as signed.
    pub mandate_id: &'a str,
    /// `MndtRltdInf/DtOfSgntr`.
    pub mandate_signed_on: NaiveDate,
    /// `DbtrAgt/FinInstnId/BIC`; without it, `Othr/Id` `NOTPROVIDED`
    /// (IBAN-only, allowed for SEPA debits since 2016).
    pub debtor_bic: Option<&'a Bic>,
    /// `Dbtr/Nm`: the account holder.
    pub debtor_name: &'a str,
    /// `DbtrAcct/Id/IBAN`.
    pub debtor_iban: &'a Iban,
    /// `RmtInf/Ustrd`, shown on the debtor's statement; left out when
    /// empty.
    pub remittance_info: &'a str,
}

/// Why a collection file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Pain008Error {
    /// The underlying writer failed.
    #[error("writing the pain.008 file failed: {0}")]
    Io(#[from] std::io::Error),
    /// An identifier is not 1–35 SEPA characters (without leading,
    /// trailing or double `/`).
    #[error("{field} {value:?} is not a valid SEPA identifier")]
    InvalidIdentifier {
        /// The XML element.
        field: &'static str,
        /// The refused value.
        value: String,
    },
    /// A name has nothing left once written in the SEPA character set.
    #[error("{field} is empty once written in the SEPA character set")]
    EmptyName {
        /// The XML element.
        field: &'static str,
    },
    /// A debit's amount is zero or above 999 999 999.99 EUR.
    #[error("amount {amount_cents} cents is outside 0.01 to 999999999.99 EUR")]
    AmountOutOfRange {
        /// The refused amount.
        amount_cents: u64,
    },
    /// The running totals no longer fit in 64 bits.
    #[error("the totals of the file overflow")]
    TotalOverflow,
    /// A debit was pushed before any payment information block, or the
    /// file has none.
    #[error("a pain.008 file needs a payment information block before its debits")]
    NoPaymentInfo,
    /// What was pushed does not match the totals announced.
    #[error(
        "{scope}: announced {declared_count} debits for {declared_cents} cents, \
         got {actual_count} for {actual_cents}"
    )]
    TotalsMismatch {
        /// `group header` or `payment information <id>`.
        scope: String,
        /// The announced number of debits.
        declared_count: u64,
        /// The announced total.
        declared_cents: u64,
        /// The number pushed.
        actual_count: u64,
        /// Their total.
        actual_cents: u64,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    count: u64,
    cents: u64,
}

impl Totals {
    fn add(&mut self, count: u64, cents: u64) -> Result<(), Pain008Error> {
        let count = self
            .count
            .checked_add(count)
            .ok_or(Pain008Error::TotalOverflow)?;
        let cents = self
            .cents
            .checked_add(cents)
            .ok_or(Pain008Error::TotalOverflow)?;
        *self = Totals { count, cents };
        Ok(())
    }

    fn check(self, declared: Totals, scope: impl FnOnce() -> String) -> Result<(), Pain008Error> {
        if self == declared {
            Ok(())
        } else {
            Err(Pain008Error::TotalsMismatch {
                scope: scope(),
                declared_count: declared.count,
                declared_cents: declared.cents,
                actual_count: self.count,
                actual_cents: self.cents,
            })
        }
    }
}

struct OpenPayment {
    id: String,
    declared: Totals,
    pushed: Totals,
}

/// Writes one pain.008.001.02 document to `W`, debit by debit.
pub struct Pain008Writer<W: Write> {
    out: W,
    buf: String,
    declared: Totals,
    announced_by_payments: Totals,
    pushed: Totals,
    open: Option<OpenPayment>,
    payments: u64,
}

/// `value` with `&`, `<` and `>` escaped for XML element content.
pub fn escape_xml(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Euro cents as the decimal the XSD wants: `1234` → `12.34`.
pub fn format_cents(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn identifier<'a>(field: &'static str, value: &'a str) -> Result<&'a str, Pain008Error> {
    if is_sepa_identifier(value) {
        Ok(value)
    } else {
        Err(Pain008Error::InvalidIdentifier {
            field,
            value: value.to_owned(),
        })
    }
}

fn name(field: &'static str, value: &str) -> Result<String, Pain008Error> {
    let cleaned = to_sepa_text(value, NAME_MAX);
    if cleaned.is_empty() {
        Err(Pain008Error::EmptyName { field })
    } else {
        Ok(cleaned)
    }
}

/// Appends an agent (`CdtrAgt` / `DbtrAgt`) at `indent`.
fn push_agent(buf: &mut String, indent: &str, tag: &str, bic: Option<&Bic>) {
    let _ = write!(buf, "{indent}<{tag}>\n{indent}  <FinInstnId>\n");
    match bic {
        Some(bic) => {
            let _ = writeln!(buf, "{indent}    <BIC>{}</BIC>", bic.as_str());
        }
        None => {
            let _ = writeln!(
                buf,
                "{indent}    <Othr>\n{indent}      <Id>NOTPROVIDED</Id>\n{indent}    </Othr>"
            );
        }
    }
    let _ = write!(buf, "{indent}  </FinInstnId>\n{indent}</{tag}>\n");
}

impl<W: Write> Pain008Writer<W> {
    /// Starts the document and writes the group header announcing the
    /// file's totals.
    pub fn new(out: W, header: &GroupHeader<'_>) -> Result<Self, Pain008Error> {
        let message_id = identifier("MsgId", header.message_id)?;
        let party = name("InitgPty/Nm", header.initiating_party)?;
        let mut writer = Self {
            out,
            buf: String::with_capacity(2048),
            declared: Totals {
                count: header.transaction_count,
                cents: header.control_sum_cents,
            },
            announced_by_payments: Totals::default(),
            pushed: Totals::default(),
            open: None,
            payments: 0,
        };
        let buf = &mut writer.buf;
        let _ = write!(
            buf,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"{NAMESPACE}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n\
             <CstmrDrctDbtInitn>\n\
             \x20 <GrpHdr>\n\
             \x20   <MsgId>{}</MsgId>\n\
             \x20   <CreDtTm>{}</CreDtTm>\n\
             \x20   <NbOfTxs>{}</NbOfTxs>\n\
             \x20   <CtrlSum>{}</CtrlSum>\n\
             \x20   <InitgPty>\n\
             \x20     <Nm>{}</Nm>\n\
             \x20   </InitgPty>\n\
             \x20 </GrpHdr>\n",
            escape_xml(message_id),
            header.created_at.format("%Y-%m-%dT%H:%M:%S"),
            header.transaction_count,
            format_cents(header.control_sum_cents),
            escape_xml(&party),
        );
        writer.flush_buf()?;
        Ok(writer)
    }

    fn flush_buf(&mut self) -> Result<(), Pain008Error> {
        self.out.write_all(self.buf.as_bytes())?;
        self.buf.clear();
        Ok(())
    }

    /// Closes the open payment block, checking its totals.
    fn close_payment(&mut self) -> Result<(), Pain008Error> {
        if let Some(open) = self.open.take() {
            open.pushed
                .check(open.declared, || format!("payment information {}", open.id))?;
            self.out.write_all(b"  </PmtInf>\n")?;
        }
        Ok(())
    }

    /// Closes the previous payment information block (checking that its
    /// debits matched its totals) and opens a new one.
    pub fn begin_payment(&mut self, info: &PaymentInfo<'_>) -> Result<(), Pain008Error> {
        let id = identifier("PmtInfId", info.payment_info_id)?;
        let creditor = name("Cdtr/Nm", info.creditor_name)?;
        self.close_payment()?;
        self.announced_by_payments
            .add(info.transaction_count, info.control_sum_cents)?;
        self.payments += 1;
        self.open = Some(OpenPayment {
            id: id.to_owned(),
            declared: Totals {
                count: info.transaction_count,
                cents: info.control_sum_cents,
            },
            pushed: Totals::default(),
        });
        let buf = &mut self.buf;
        let _ = write!(
            buf,
            "  <PmtInf>\n\
             \x20   <PmtInfId>{}</PmtInfId>\n\
             \x20   <PmtMtd>DD</PmtMtd>\n\
             \x20   <BtchBookg>{}</BtchBookg>\n\
             \x20   <NbOfTxs>{}</NbOfTxs>\n\
             \x20   <CtrlSum>{}</CtrlSum>\n\
             \x20   <PmtTpInf>\n\
             \x20     <SvcLvl>\n\
             \x20       <Cd>SEPA</Cd>\n\
             \x20     </SvcLvl>\n\
             \x20     <LclInstrm>\n\
             \x20       <Cd>CORE</Cd>\n\
             \x20     </LclInstrm>\n\
             \x20     <SeqTp>{}</SeqTp>\n\
             \x20   </PmtTpInf>\n\
             \x20   <ReqdColltnDt>{}</ReqdColltnDt>\n\
             \x20   <Cdtr>\n\
             \x20     <Nm>{}</Nm>\n\
             \x20   </Cdtr>\n\
             \x20   <CdtrAcct>\n\
             \x20     <Id>\n\
             \x20       <IBAN>{}</IBAN>\n\
             \x20     </Id>\n\
             \x20   </CdtrAcct>\n",
            escape_xml(id),
            info.batch_booking,
            info.transaction_count,
            format_cents(info.control_sum_cents),
            info.sequence.code(),
            info.collection_date.format("%Y-%m-%d"),
            escape_xml(&creditor),
            info.creditor_iban.as_str(),
        );
        push_agent(buf, "    ", "CdtrAgt", info.creditor_bic);
        let _ = write!(
            buf,
            "    <ChrgBr>SLEV</ChrgBr>\n\
             \x20   <CdtrSchmeId>\n\
             \x20     <Id>\n\
             \x20       <PrvtId>\n\
             \x20         <Othr>\n\
             \x20           <Id>{}</Id>\n\
             \x20           <SchmeNm>\n\
             \x20             <Prtry>SEPA</Prtry>\n\
             \x20           </SchmeNm>\n\
             \x20         </Othr>\n\
             \x20       </PrvtId>\n\
             \x20     </Id>\n\
             \x20   </CdtrSchmeId>\n",
            info.creditor_id.as_str(),
        );
        self.flush_buf()
    }

    /// Writes one debit in the open payment information block.
    pub fn push(&mut self, debit: &DirectDebit<'_>) -> Result<(), Pain008Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(Pain008Error::NoPaymentInfo);
        };
        let end_to_end = identifier("EndToEndId", debit.end_to_end_id)?;
        let mandate = identifier("MndtId", debit.mandate_id)?;
        if !(1..=AMOUNT_MAX_CENTS).contains(&debit.amount_cents) {
            return Err(Pain008Error::AmountOutOfRange {
                amount_cents: debit.amount_cents,
            });
        }
        let debtor = name("Dbtr/Nm", debit.debtor_name)?;
        let remittance = to_sepa_text(debit.remittance_info, REMITTANCE_MAX);
        open.pushed.add(1, debit.amount_cents)?;
        self.pushed.add(1, debit.amount_cents)?;

        let buf = &mut self.buf;
        let _ = write!(
            buf,
            "    <DrctDbtTxInf>\n\
             \x20     <PmtId>\n\
             \x20       <EndToEndId>{}</EndToEndId>\n\
             \x20     </PmtId>\n\
             \x20     <InstdAmt Ccy=\"EUR\">{}</InstdAmt>\n\
             \x20     <DrctDbtTx>\n\
             \x20       <MndtRltdInf>\n\
             \x20         <MndtId>{}</MndtId>\n\
             \x20         <DtOfSgntr>{}</DtOfSgntr>\n\
             \x20       </MndtRltdInf>\n\
             \x20     </DrctDbtTx>\n",
            escape_xml(end_to_end),
            format_cents(debit.amount_cents),
            escape_xml(mandate),
            debit.mandate_signed_on.format("%Y-%m-%d"),
        );
        push_agent(buf, "      ", "DbtrAgt", debit.debtor_bic);
        let _ = write!(
            buf,
            "      <Dbtr>\n\
             \x20       <Nm>{}</Nm>\n\
             \x20     </Dbtr>\n\
             \x20     <DbtrAcct>\n\
             \x20       <Id>\n\
             \x20         <IBAN>{}</IBAN>\n\
             \x20       </Id>\n\
             \x20     </DbtrAcct>\n",
            escape_xml(&debtor),
            debit.debtor_iban.as_str(),
        );
        if !remittance.is_empty() {
            let _ = write!(
                buf,
                "      <RmtInf>\n\
                 \x20       <Ustrd>{}</Ustrd>\n\
                 \x20     </RmtInf>\n",
                escape_xml(&remittance),
            );
        }
        buf.push_str("    </DrctDbtTxInf>\n");
        self.flush_buf()
    }

    /// Closes the last block and the document, checks the totals of the
    /// header against the blocks and the debits, flushes, and gives the
    /// writer back.
    pub fn finish(mut self) -> Result<W, Pain008Error> {
        if self.payments == 0 {
            return Err(Pain008Error::NoPaymentInfo);
        }
        self.close_payment()?;
        self.announced_by_payments
            .check(self.declared, || "group header".to_owned())?;
        self.pushed
            .check(self.declared, || "group header".to_owned())?;
        self.out.write_all(b"</CstmrDrctDbtInitn>\n</Document>\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    struct Fixture {
        creditor_iban: Iban,
        creditor_bic: Bic,
        creditor_id: CreditorId,
        debtor_iban: Iban,
        debtor_bic: Bic,
    }

    fn fixture() -> Fixture {
        Fixture {
            creditor_iban: Iban::parse("FR1420041010050500013M02606").unwrap(),
            creditor_bic: Bic::parse("PSSTFRPPMON").unwrap(),
            creditor_id: CreditorId::parse("FR72ZZZ123456").unwrap(),
            debtor_iban: Iban::parse("DE89370400440532013000").unwrap(),
            debtor_bic: Bic::parse("COBADEFFXXX").unwrap(),
        }
    }

    fn header(count: u64, cents: u64) -> GroupHeader<'static> {
        GroupHeader {
            message_id: "MSG-2026-03-001",
            created_at: date(2026, 3, 1).and_hms_opt(9, 30, 0).unwrap(),
            transaction_count: count,
            control_sum_cents: cents,
            initiating_party: "Cabinet Dupré & Fils",
        }
    }

    fn payment<'a>(
        f: &'a Fixture,
        id: &'a str,
        seq: SequenceType,
        count: u64,
        cents: u64,
    ) -> PaymentInfo<'a> {
        PaymentInfo {
            payment_info_id: id,
            sequence: seq,
            collection_date: date(2026, 3, 15),
            batch_booking: true,
            transaction_count: count,
            control_sum_cents: cents,
            creditor_name: "Cabinet Dupré & Fils",
            creditor_iban: &f.creditor_iban,
            creditor_bic: Some(&f.creditor_bic),
            creditor_id: &f.creditor_id,
        }
    }

    fn debit<'a>(f: &'a Fixture, id: &'a str, cents: u64) -> DirectDebit<'a> {
        DirectDebit {
            end_to_end_id: id,
            amount_cents: cents,
            mandate_id: "RUM-2026-000042",
            mandate_signed_on: date(2026, 2, 20),
            debtor_bic: Some(&f.debtor_bic),
            debtor_name: "Hélène Lefèvre-Œuvray <Copro>",
            debtor_iban: &f.debtor_iban,
            remittance_info: "Charges de copropriété — 1er trimestre 2026",
        }
    }

    /// Two blocks (FRST with 2 debits, OOFF with 1) as a string.
    fn sample() -> String {
        let f = fixture();
        let mut w = Pain008Writer::new(Vec::new(), &header(3, 12_345 + 100 + 99_999)).unwrap();
        w.begin_payment(&payment(&f, "PMT-FRST-1", SequenceType::First, 2, 12_445))
            .unwrap();
        w.push(&debit(&f, "E2E-1", 12_345)).unwrap();
        w.push(&DirectDebit {
            debtor_bic: None,
            remittance_info: "",
            ..debit(&f, "E2E-2", 100)
        })
        .unwrap();
        w.begin_payment(&PaymentInfo {
            creditor_bic: None,
            batch_booking: false,
            ..payment(&f, "PMT-OOFF-1", SequenceType::OneOff, 1, 99_999)
        })
        .unwrap();
        w.push(&debit(&f, "E2E-3", 99_999)).unwrap();
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn the_document_follows_the_schema_order() {
        let xml = sample();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.008.001.02\""));
        assert!(xml.ends_with("</CstmrDrctDbtInitn>\n</Document>\n"));
        let order = [
            "<GrpHdr>",
            "<MsgId>MSG-2026-03-001</MsgId>",
            "<CreDtTm>2026-03-01T09:30:00</CreDtTm>",
            "<NbOfTxs>3</NbOfTxs>",
            "<CtrlSum>1124.44</CtrlSum>",
            "<Nm>Cabinet Dupre + Fils</Nm>",
            "<PmtInf>",
            "<PmtInfId>PMT-FRST-1</PmtInfId>",
            "<PmtMtd>DD</PmtMtd>",
            "<BtchBookg>true</BtchBookg>",
            "<NbOfTxs>2</NbOfTxs>",
            "<CtrlSum>124.45</CtrlSum>",
            "<Cd>SEPA</Cd>",
            "<Cd>CORE</Cd>",
            "<SeqTp>FRST</SeqTp>",
            "<ReqdColltnDt>2026-03-15</ReqdColltnDt>",
            "<Cdtr>",
            "<IBAN>FR1420041010050500013M02606</IBAN>",
            "<BIC>PSSTFRPPMON</BIC>",
            "<ChrgBr>SLEV</ChrgBr>",
            "<Id>FR72ZZZ123456</Id>",
            "<Prtry>SEPA</Prtry>",
            "<DrctDbtTxInf>",
            "<EndToEndId>E2E-1</EndToEndId>",
            "<InstdAmt Ccy=\"EUR\">123.45</InstdAmt>",
            "<MndtId>RUM-2026-000042</MndtId>",
            "<DtOfSgntr>2026-02-20</DtOfSgntr>",
            "<BIC>COBADEFFXXX</BIC>",
            "<Nm>Helene Lefevre-OEuvray (Copro)</Nm>",
            "<IBAN>DE89370400440532013000</IBAN>",
            "<Ustrd>Charges de copropriete - 1er trimestre 2026</Ustrd>",
            "</DrctDbtTxInf>",
            "<EndToEndId>E2E-2</EndToEndId>",
            "<InstdAmt Ccy=\"EUR\">1.00</InstdAmt>",
            "<Id>NOTPROVIDED</Id>",
            "</DrctDbtTxInf>",
            "</PmtInf>",
            "<PmtInfId>PMT-OOFF-1</PmtInfId>",
            "<BtchBookg>false</BtchBookg>",
            "<SeqTp>OOFF</SeqTp>",
            "<Id>NOTPROVIDED</Id>",
            "<ChrgBr>SLEV</ChrgBr>",
            "<InstdAmt Ccy=\"EUR\">999.99</InstdAmt>",
            "</PmtInf>",
        ];
        let mut at = 0;
        for needle in order {
            let found = xml[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} after {at}:\n{xml}"));
            at += found + needle.len();
        }
        // The second debit has no remittance information.
        let second = &xml[xml.find("E2E-2").unwrap()..];
        let second = &second[..second.find("</DrctDbtTxInf>").unwrap()];
        assert!(!second.contains("RmtInf"));
        assert_eq!(xml.matches("<PmtInf>").count(), 2);
        assert_eq!(xml.matches("</PmtInf>").count(), 2);
        assert_eq!(xml.matches("<DrctDbtTxInf>").count(), 3);
        // Only SEPA characters in the text.
        assert!(xml.is_ascii());
    }

    #[test]
    fn text_is_escaped_cleaned_and_cut() {
        assert_eq!(
            escape_xml("a&b<c>d\"e'f"),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f"
        );
        assert!(matches!(escape_xml("plain"), std::borrow::Cow::Borrowed(_)));
        let f = fixture();
        let long_name = "Ñ".repeat(100);
        let long_info = "x".repeat(300);
        let mut w = Pain008Writer::new(Vec::new(), &header(1, 500)).unwrap();
        w.begin_payment(&payment(&f, "P1", SequenceType::Recurrent, 1, 500))
            .unwrap();
        w.push(&DirectDebit {
            debtor_name: &long_name,
            remittance_info: &long_info,
            ..debit(&f, "E1", 500)
        })
        .unwrap();
        let xml = String::from_utf8(w.finish().unwrap()).unwrap();
        assert!(xml.contains(&format!("<Nm>{}</Nm>", "N".repeat(70))));
        assert!(xml.contains(&format!("<Ustrd>{}</Ustrd>", "x".repeat(140))));
        assert!(xml.contains("<SeqTp>RCUR</SeqTp>"));
        assert!(xml.contains("Dbtr>\n        <Nm>NNN"));
    }

    #[test]
    fn apostrophes_survive_as_entities() {
        let f = fixture();
        let mut w = Pain008Writer::new(Vec::new(), &header(1, 1)).unwrap();
        w.begin_payment(&payment(&f, "P1", SequenceType::First, 1, 1))
            .unwrap();
        w.push(&DirectDebit {
            debtor_name: "Seán O’Brien",
            ..debit(&f, "E1", 1)
        })
        .unwrap();
        let xml = String::from_utf8(w.finish().unwrap()).unwrap();
        assert!(xml.contains("<Nm>Sean O&apos;Brien</Nm>"), "{xml}");
    }

    #[test]
    fn invalid_identifiers_amounts_and_names_are_refused() {
        let f = fixture();
        let bad_header = GroupHeader {
            message_id: "MSG//1",
            ..header(1, 1)
        };
        assert!(matches!(
            Pain008Writer::new(Vec::new(), &bad_header),
            Err(Pain008Error::InvalidIdentifier { field: "MsgId", .. })
        ));
        let nameless = GroupHeader {
            initiating_party: "株式会社",
            ..header(1, 1)
        };
        assert!(matches!(
            Pain008Writer::new(Vec::new(), &nameless),
            Err(Pain008Error::EmptyName {
                field: "InitgPty/Nm"
            })
        ));
        let mut w = Pain008Writer::new(Vec::new(), &header(1, 1)).unwrap();
        assert!(matches!(
            w.push(&debit(&f, "E1", 1)),
            Err(Pain008Error::NoPaymentInfo)
        ));
        assert!(matches!(
            w.begin_payment(&payment(&f, "/P1", SequenceType::First, 1, 1)),
            Err(Pain008Error::InvalidIdentifier {
                field: "PmtInfId",
                ..
            })
        ));
        w.begin_payment(&payment(&f, "P1", SequenceType::First, 1, 1))
            .unwrap();
        for (cents, e2e, mandate) in [
            (0, "E1", "RUM1"),
            (AMOUNT_MAX_CENTS + 1, "E1", "RUM1"),
            (1, "E_1", "RUM1"),
            (1, &*"E".repeat(36), "RUM1"),
            (1, "E1", "RUM é"),
        ] {
            let result = w.push(&DirectDebit {
                amount_cents: cents,
                end_to_end_id: e2e,
                mandate_id: mandate,
                ..debit(&f, "E1", 1)
            });
            assert!(
                matches!(
                    result,
                    Err(Pain008Error::AmountOutOfRange { .. }
                        | Pain008Error::InvalidIdentifier { .. })
                ),
                "{cents} {e2e} {mandate}: {result:?}"
            );
        }
        // Refused debits are not counted.
        w.push(&debit(&f, "E1", 1)).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn totals_must_match_what_was_announced() {
        let f = fixture();
        // A block with fewer debits than announced.
        let mut w = Pain008Writer::new(Vec::new(), &header(2, 300)).unwrap();
        w.begin_payment(&payment(&f, "P1", SequenceType::First, 2, 300))
            .unwrap();
        w.push(&debit(&f, "E1", 100)).unwrap();
        let err = w
            .begin_payment(&payment(&f, "P2", SequenceType::First, 0, 0))
            .unwrap_err();
        assert!(err.to_string().contains("payment information P1"), "{err}");

        // Blocks that do not add up to the header.
        let mut w = Pain008Writer::new(Vec::new(), &header(2, 300)).unwrap();
        w.begin_payment(&payment(&f, "P1", SequenceType::First, 1, 100))
            .unwrap();
        w.push(&debit(&f, "E1", 100)).unwrap();
        match w.finish() {
            Err(Pain008Error::TotalsMismatch {
                scope,
                declared_count: 2,
                actual_count: 1,
                ..
            }) => {
                assert_eq!(scope, "group header");
            }
            other => panic!("{other:?}"),
        }

        // The right count with the wrong sum.
        let mut w = Pain008Writer::new(Vec::new(), &header(1, 100)).unwrap();
        w.begin_payment(&payment(&f, "P1", SequenceType::First, 1, 100))
            .unwrap();
        w.push(&debit(&f, "E1", 101)).unwrap();
        assert!(matches!(
            w.finish(),
            Err(Pain008Error::TotalsMismatch { .. })
        ));

        // Totals that overflow are refused and left unchanged.
        let mut totals = Totals {
            count: 0,
            cents: u64::MAX,
        };
        assert!(matches!(totals.add(1, 1), Err(Pain008Error::TotalOverflow)));
        assert_eq!(totals.count, 0);

        // No block at all.
        let w = Pain008Writer::new(Vec::new(), &header(0, 0)).unwrap();
        assert!(matches!(w.finish(), Err(Pain008Error::NoPaymentInfo)));
    }

    /// Counts bytes without keeping them.
    #[derive(Default)]
    struct Counter {
        bytes: usize,
        largest_write: usize,
    }

    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes += buf.len();
            self.largest_write = self.largest_write.max(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn ten_thousand_debits_stream_in_constant_memory() {
        let f = fixture();
        let groups = [
            (SequenceType::First, 2_000_u64),
            (SequenceType::Recurrent, 7_000),
            (SequenceType::OneOff, 1_500),
        ];
        let amount = |i: u64| 1_000 + i % 5_000;
        let total_count: u64 = groups.iter().map(|g| g.1).sum();
        let mut total_cents = 0;
        let mut sums = Vec::new();
        let mut first = 0;
        for (_, n) in groups {
            let sum: u64 = (first..first + n).map(amount).sum();
            sums.push(sum);
            total_cents += sum;
            first += n;
        }
        let mut w =
            Pain008Writer::new(Counter::default(), &header(total_count, total_cents)).unwrap();
        let mut i = 0;
        for ((seq, n), sum) in groups.iter().zip(&sums) {
            let id = format!("PMT-{}", seq.code());
            w.begin_payment(&payment(&f, &id, *seq, *n, *sum)).unwrap();
            for _ in 0..*n {
                let e2e = format!("E2E-{i}");
                w.push(&debit(&f, &e2e, amount(i))).unwrap();
                i += 1;
            }
        }
        let counter = w.finish().unwrap();
        assert!(counter.bytes > 10_000 * 500, "{}", counter.bytes);
        // One debit at a time reaches the writer.
        assert!(counter.largest_write < 2_000, "{}", counter.largest_write);
    }

    #[test]
    fn sequence_types_follow_the_mandate() {
        assert_eq!(
            SequenceType::for_debit(PaymentType::OneOff, true),
            SequenceType::OneOff
        );
        assert_eq!(
            SequenceType::for_debit(PaymentType::OneOff, false),
            SequenceType::OneOff
        );
        assert_eq!(
            SequenceType::for_debit(PaymentType::Recurrent, true),
            SequenceType::First
        );
        assert_eq!(
            SequenceType::for_debit(PaymentType::Recurrent, false),
            SequenceType::Recurrent
        );
        assert_eq!(
            [
                SequenceType::First,
                SequenceType::Recurrent,
                SequenceType::OneOff,
                SequenceType::Final
            ]
            .map(SequenceType::code),
            ["FRST", "RCUR", "OOFF", "FNAL"]
        );
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(AMOUNT_MAX_CENTS), "999999999.99");
    }

    /// Writes the sample to `$PAIN008_SAMPLE` when set, for validation
    /// against the official schema (shipped by the `sepaxml` Python
    /// package), e.g.:
    ///
    /// ```text
    /// PAIN008_SAMPLE=/tmp/pain008.xml cargo test -p guichet-domain sample_for_schema_validation
    /// xmllint --noout --schema "$(python3 -c 'import sepaxml, os; print(os.path.dirname(sepaxml.__file__))')/schemas/pain.008.001.02.xsd" /tmp/pain008.xml
    /// ```
    #[test]
    fn sample_for_schema_validation() {
        if let Some(path) = std::env::var_os("PAIN008_SAMPLE") {
            std::fs::write(path, sample()).unwrap();
        }
    }
}
