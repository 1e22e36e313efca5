//! Text as SEPA files accept it.
//!
//! The EPC rulebooks restrict pain.008 text to the "basic Latin" set:
//! `a-z A-Z 0-9 / - ? : ( ) . , ' +` and space. Banks reject or mangle
//! anything else, so free text (names, remittance information) is
//! transliterated ("Hélène Œuvray" → "Helene OEuvray") and cut to the field's
//! length, while identifiers (message, end-to-end and mandate references)
//! are validated and never changed: a mandate reference must be transmitted
//! exactly as it was signed.

/// Whether `c` belongs to the SEPA basic Latin character set.
pub fn is_sepa_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '/' | '-' | '?' | ':' | '(' | ')' | '.' | ',' | '\'' | '+' | ' '
        )
}

/// The SEPA replacement of one character outside the set: the letter
/// without its accent, ligatures spelled out, typographic punctuation
/// mapped to its plain form. `None` when nothing sensible exists (the
/// character then becomes a space).
pub(crate) fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ª' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ð' | 'Ď' | 'Đ' => "D",
        'ð' | 'ď' | 'đ' => "d",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' | 'º' => "O",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => "T",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'Þ' => "TH",
        'þ' => "th",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        '’' | '‘' | '‚' | '´' | '`' | '"' | '“' | '”' | '„' | '«' | '»' | '‹' | '›' => {
            "'"
        }
        '&' => "+",
        '–' | '—' | '‐' | '‑' | '_' | '~' => "-",
        ';' => ",",
        '!' => ".",
        '…' => "...",
        '[' | '{' | '<' => "(",
        ']' | '}' | '>' => ")",
        '\\' | '|' => "/",
        _ => return None,
    })
}

/// `input` rewritten in the SEPA character set — accents removed, ligatures
/// spelled out, anything else turned into a space — with runs of spaces
/// collapsed, trimmed, and cut to at most `max_chars` characters (then
/// trimmed again). The result may be empty, e.g. for a name written only in
/// a non-Latin script; callers that need a value must check.
pub fn to_sepa_text(input: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max_chars * 2));
    let push = |s: &str, out: &mut String| {
        for c in s.chars() {
            if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
                continue;
            }
            out.push(c);
        }
    };
    for c in input.chars() {
        if is_sepa_char(c) {
            let mut buf = [0_u8; 4];
            push(c.encode_utf8(&mut buf), &mut out);
        } else if let Some(folded) = fold_char(c) {
            push(folded, &mut out);
        } else {
            push(" ", &mut out);
        }
    }
    // Everything pushed is ASCII, so characters are bytes.
    out.truncate(max_chars);
    let kept = out.trim_end().len();
    out.truncate(kept);
    out
}

/// Whether `value` may be sent as a SEPA reference (message, payment
/// information, end-to-end or mandate identifier): 1 to 35 characters of the
/// SEPA set, not starting or ending with `/` and without `//` (EPC rulebook
/// rule for identifiers).
pub fn is_sepa_identifier(value: &str) -> bool {
    (1..=35).contains(&value.len())
        && value.chars().all(is_sepa_char)
        && !value.starts_with('/')
        && !value.ends_with('/')
        && !value.contains("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_ligatures_are_transliterated() {
        assert_eq!(
            to_sepa_text("Hélène Œuvray-Façade", 70),
            "Helene OEuvray-Facade"
        );
        assert_eq!(to_sepa_text("Straße Nº 5", 70), "Strasse NO 5");
        assert_eq!(to_sepa_text("Łódź, Kraków", 70), "Lodz, Krakow");
        assert_eq!(to_sepa_text("Dupont & Fils", 70), "Dupont + Fils");
        assert_eq!(
            to_sepa_text("l’échéance « mars »", 70),
            "l'echeance ' mars '"
        );
        assert_eq!(to_sepa_text("a_b;c!", 70), "a-b,c.");
    }

    #[test]
    fn unknown_characters_become_single_spaces_and_ends_are_trimmed() {
        assert_eq!(to_sepa_text("  a @#* b\t\nc  ", 70), "a b c");
        assert_eq!(to_sepa_text("日本", 70), "");
        assert_eq!(to_sepa_text("€ 12 %", 70), "12");
    }

    #[test]
    fn text_is_cut_to_the_field_length_without_trailing_space() {
        assert_eq!(to_sepa_text("abcdef", 3), "abc");
        assert_eq!(to_sepa_text("ab cdef", 3), "ab");
        // Folding can lengthen the text ("Œ" → "OE"): the cut counts output.
        assert_eq!(to_sepa_text("ŒŒŒ", 5), "OEOEO");
        let long = "é".repeat(200);
        assert_eq!(to_sepa_text(&long, 140).len(), 140);
        for c in to_sepa_text("Ça coûte 12 € (TTC) — «promo» ½", 140).chars() {
            assert!(is_sepa_char(c), "{c:?}");
        }
    }

    #[test]
    fn identifiers_follow_the_epc_rules() {
        assert!(is_sepa_identifier("RUM-2026-000123"));
        assert!(is_sepa_identifier("A/B"));
        assert!(is_sepa_identifier(&"X".repeat(35)));
        for bad in ["", "/ABC", "ABC/", "A//B", "é", "A_B", "A&B"] {
            assert!(!is_sepa_identifier(bad), "{bad}");
        }
        assert!(!is_sepa_identifier(&"X".repeat(36)));
    }
}
