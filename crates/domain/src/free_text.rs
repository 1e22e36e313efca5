//! What may not hide in free text: card numbers written inside a longer
//! string ("my card 4242 4242 4242 4242 thanks") and control characters.

/// Whether `digits` (ASCII digits only) passes the Luhn checksum.
fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0_u32;
    for (position, digit) in digits.iter().rev().enumerate() {
        let mut value = u32::from(digit - b'0');
        if position % 2 == 1 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum = (sum + value) % 10;
    }
    sum == 0
}

fn is_pan(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && luhn_valid(digits)
}

/// Whether `text` contains a card number: a run of 13 to 19 digits, written
/// together or in groups separated by spaces or hyphens, that passes the
/// Luhn check.
///
/// A run is maximal and stands on its own: its groups are words made only
/// of digits, joined by nothing but spaces and hyphens; a letter glued to a
/// digit (`FR76`, `3M02`) or any other separator (`.`, `/`, `:`) ends it.
/// A run of at most 15 digits written right after `+` is a phone number in
/// international form (`+605414666789641`, `+33 6 12 34 56 78`): one phone
/// number in ten passes the Luhn check by chance.
///
/// So an IBAN (its digits run past 19 or touch letters), a phone number or
/// an order number that is not Luhn-valid pass, while "Carte
/// 4000056655665556 exp 12/30" does not.
pub fn contains_card_number(text: &str) -> bool {
    // Cheap pre-check: a card number needs 13 digits.
    if text.bytes().filter(u8::is_ascii_digit).count() < 13 {
        return false;
    }
    // A field that is wholly a valid IBAN (whose letters may cut its digits
    // into a Luhn-valid run by chance) is an IBAN, not a card number.
    if crate::sepa::iban::Iban::parse(text.trim()).is_ok() {
        return false;
    }
    let bytes = text.as_bytes();
    let mut run: Vec<u8> = Vec::with_capacity(24);
    // Whether the current run follows a `+` (a phone number).
    let mut phone = false;
    let is_card = |run: &[u8], phone: bool| !(phone && run.len() <= 15) && is_pan(run);
    // Whether the last word seen was all digits and only spaces or hyphens
    // followed it so far (the run may go on).
    let mut open = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let word = &bytes[start..i];
            if word.iter().all(u8::is_ascii_digit) {
                if !open {
                    if is_card(&run, phone) {
                        return true;
                    }
                    run.clear();
                    phone = start > 0 && bytes[start - 1] == b'+';
                }
                run.extend_from_slice(word);
                open = true;
            } else {
                if is_card(&run, phone) {
                    return true;
                }
                run.clear();
                open = false;
            }
        } else {
            if !matches!(b, b' ' | b'-') {
                open = false;
            }
            i += 1;
        }
    }
    is_card(&run, phone)
}

/// Whether `c` is a control character other than tab, carriage return and
/// line feed: what no text field of the API accepts.
pub fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_inside_text_is_found() {
        for text in [
            "4242424242424242",
            " 4242 4242 4242 4242 ",
            "my card 4242 4242 4242 4242 thanks",
            "Carte 4000056655665556 exp 12/30",
            "pan:5555-5555-5555-4444.",
            "amex 378282246310005",
            "n°4000 0566 5566 5556, merci",
            "line\n4242424242424242\nend",
            "+33 6 12 34 56 78 then 4242424242424242",
            "+4242424242424242", // 16 digits: no phone number is that long
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn other_numbers_pass() {
        for text in [
            "",
            "Commande 4242424242424241", // Luhn fails
            "424242424242",              // 12 digits
            "FR76 3000 6000 0112 3456 7890 189",
            "FR14 2004 1010 0505 0001 3M02 606",
            "DE89 3704 0044 0532 0130 00",
            "+33 6 12 34 56 78",
            "+33612345678",
            "+605414666789641", // Luhn-valid, 15 digits: a phone number
            "Call +60 541 466 678 9641 please",
            "Order 2026-11-22 #12345",
            "ref 12345678901234567890123", // 23 digits
            "4242.4242.4242.4242",         // dots end the run
            "A4242424242424242",           // glued to a letter
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn control_characters_but_tab_and_line_ends_are_refused() {
        for c in ['\0', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
            assert!(is_refused_control(c), "{c:?}");
        }
        for c in ['\t', '\r', '\n', ' ', 'é', '€'] {
            assert!(!is_refused_control(c), "{c:?}");
        }
    }
}
