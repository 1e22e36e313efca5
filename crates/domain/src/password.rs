//! Customer passwords: the strength rule applied when a password is chosen,
//! and the argon2id hashing used to store and check it.
//!
//! # Strength rule
//!
//! A candidate password must:
//!
//! 1. be at least 8 characters long (Unicode scalar values, not bytes),
//! 2. be at most 128 characters long,
//! 3. contain an upper-case letter (Unicode category `Lu`: `A`, `É`, …),
//! 4. contain a lower-case letter (`Ll`: `a`, `é`, `ß`, …),
//! 5. contain a digit (any number, `N`: `0`–`9`, `²`, `٣`, …),
//! 6. contain a special character — anything that is neither a letter
//!    (`L`), nor a number (`N`), nor white space (`!`, `@`, `€`, `_`, …),
//! 7. not be, once normalized (see below), one of the 30 000 most common
//!    passwords of the `zxcvbn` frequency list (see
//!    `crates/domain/data/README.md`),
//! 8. not contain, once normalized, the name or e-mail of the person or of
//!    their organization ([`Personal`]).
//!
//! [`check_password`] reports every unmet rule at once, in that order, so that
//! the portal can show all the problems in one go.
//!
//! # Normalization
//!
//! The composition rule pushes people to decorate a common word
//! (`Password1!`, `Welcome1!`, `P@ssw0rd`), so the list is matched against
//! every *form* of the candidate ([`normalized_forms`]): it is lower-cased
//! and its accents are removed (`é`→`e`); common substitutions are undone
//! (`@`→a, `0`→o, `1`→i or l, `3`→e, `$`→s, each way of reading `1` tried);
//! and the trailing digits and symbols are taken off one at a time (so
//! `abcdef1!` gives `abcdef1!`, `abcdef1` and `abcdef`). A candidate is
//! refused when any form is listed, or when any form contains a personal
//! word of at least [`PERSONAL_WORD_MIN`] letters.
//!
//! # Hashing
//!
//! Passwords are stored as argon2id PHC strings with the parameters of
//! [`PASSWORD_PARAMS`] (the OWASP minimum: 19 MiB, 2 passes, 1 lane) and a
//! random 16-byte salt. [`verify_password`] also tells whether a stored hash
//! uses weaker settings and should be replaced after a successful login.

use std::collections::HashSet;
use std::sync::LazyLock;

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;

/// Fewest characters a password may have.
pub const MIN_LENGTH: usize = 8;
/// Most characters a password may have; longer inputs are refused before any
/// expensive work (hashing, list look-up) is done.
pub const MAX_LENGTH: usize = 128;

/// The character classes of rules 3 to 6, by Unicode general category, as
/// regular expressions that read the same in Rust's `regex` and in
/// ECMA-262 with the `u` flag, so that the rule is the one the API
/// documents in those terms. White space is spelled out: `\s` differs
/// between the two (U+0085, U+FEFF).
pub const UPPERCASE_CLASS: &str = r"\p{Lu}";
/// See [`UPPERCASE_CLASS`].
pub const LOWERCASE_CLASS: &str = r"\p{Ll}";
/// See [`UPPERCASE_CLASS`].
pub const DIGIT_CLASS: &str = r"\p{N}";
/// See [`UPPERCASE_CLASS`].
pub const SPECIAL_CLASS: &str =
    r"[^\p{L}\p{N}\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// The four classes a password must each contain a character of, in the
/// order of rules 3 to 6.
pub const CLASSES: [&str; 4] = [UPPERCASE_CLASS, LOWERCASE_CLASS, DIGIT_CLASS, SPECIAL_CLASS];

/// [`CLASSES`] compiled (a class that did not compile would match nothing,
/// refusing every password: a unit test makes sure they all do).
static CLASS_REGEXES: LazyLock<[Option<regex::Regex>; 4]> =
    LazyLock::new(|| CLASSES.map(|class| regex::Regex::new(class).ok()));

/// Argon2id cost parameters used for new hashes: `(memory in KiB, passes,
/// lanes)`. Stored hashes below any of them are flagged for rehashing.
pub const PASSWORD_PARAMS: (u32, u32, u32) = (19456, 2, 1);

/// One requirement of the password strength rule that a candidate failed.
///
/// The variants are declared in the order in which [`check_password`]
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordRule {
    /// Fewer than [`MIN_LENGTH`] characters.
    TooShort,
    /// More than [`MAX_LENGTH`] characters.
    TooLong,
    /// No upper-case letter.
    MissingUppercase,
    /// No lower-case letter.
    MissingLowercase,
    /// No digit.
    MissingDigit,
    /// No character that is neither alphanumeric nor whitespace.
    MissingSpecial,
    /// A normalized form of the password is in the list of common passwords.
    TooCommon,
    /// A normalized form of the password contains the person's or the
    /// organization's name or e-mail.
    ContainsPersonalData,
}

impl PasswordRule {
    /// Every rule, in reporting order (useful to document the rule set, e.g.
    /// in an API schema or a help page).
    pub const ALL: [PasswordRule; 8] = [
        PasswordRule::TooShort,
        PasswordRule::TooLong,
        PasswordRule::MissingUppercase,
        PasswordRule::MissingLowercase,
        PasswordRule::MissingDigit,
        PasswordRule::MissingSpecial,
        PasswordRule::TooCommon,
        PasswordRule::ContainsPersonalData,
    ];

    /// Stable machine-readable code, sent to API clients so that they can
    /// show their own message.
    pub fn code(self) -> &'static str {
        match self {
            PasswordRule::TooShort => "password_too_short",
            PasswordRule::TooLong => "password_too_long",
            PasswordRule::MissingUppercase => "password_missing_uppercase",
            PasswordRule::MissingLowercase => "password_missing_lowercase",
            PasswordRule::MissingDigit => "password_missing_digit",
            PasswordRule::MissingSpecial => "password_missing_special",
            PasswordRule::TooCommon => "password_too_common",
            PasswordRule::ContainsPersonalData => "password_contains_personal_data",
        }
    }

    /// A short sentence explaining the rule to a person, in French when `fr`
    /// is true and in English otherwise.
    pub fn describe(self, fr: bool) -> &'static str {
        match (self, fr) {
            (PasswordRule::TooShort, true) => {
                "Le mot de passe doit contenir au moins 8 caractères."
            }
            (PasswordRule::TooShort, false) => "The password must be at least 8 characters long.",
            (PasswordRule::TooLong, true) => {
                "Le mot de passe doit contenir au plus 128 caractères."
            }
            (PasswordRule::TooLong, false) => "The password must be at most 128 characters long.",
            (PasswordRule::MissingUppercase, true) => {
                "Le mot de passe doit contenir au moins une lettre majuscule."
            }
            (PasswordRule::MissingUppercase, false) => {
                "The password must contain at least one upper-case letter."
            }
            (PasswordRule::MissingLowercase, true) => {
                "Le mot de passe doit contenir au moins une lettre minuscule."
            }
            (PasswordRule::MissingLowercase, false) => {
                "The password must contain at least one lower-case letter."
            }
            (PasswordRule::MissingDigit, true) => {
                "Le mot de passe doit contenir au moins un chiffre."
            }
            (PasswordRule::MissingDigit, false) => "The password must contain at least one digit.",
            (PasswordRule::MissingSpecial, true) => {
                "Le mot de passe doit contenir au moins un caractère spécial."
            }
            (PasswordRule::MissingSpecial, false) => {
                "The password must contain at least one special character."
            }
            (PasswordRule::TooCommon, true) => {
                "Ce mot de passe est trop courant ; choisissez-en un autre."
            }
            (PasswordRule::TooCommon, false) => {
                "This password is too common; please choose another one."
            }
            (PasswordRule::ContainsPersonalData, true) => {
                "Le mot de passe ne doit contenir ni votre nom, ni votre e-mail, ni le nom de l'organisation."
            }
            (PasswordRule::ContainsPersonalData, false) => {
                "The password must not contain your name, your e-mail or the organization's name."
            }
        }
    }
}

/// The embedded list: one lower-case password per line, most frequent first.
const COMMON_PASSWORDS_TEXT: &str = include_str!("../data/common-passwords.txt");

/// The common-password list as a set, built on first use.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS_TEXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Whether any normalized form of `candidate` ([`normalized_forms`]) is in
/// the common-password list.
///
/// Case is ignored because swapping case is the first thing people do to get
/// past a "must contain an upper-case letter" rule; substitutions and
/// trailing digits and symbols are undone for the same reason.
pub fn is_common(candidate: &str) -> bool {
    normalized_forms(candidate)
        .iter()
        .any(|form| COMMON_PASSWORDS.contains(form.as_str()))
}

/// Personal words shorter than this are not looked for (a two-letter name
/// would refuse half the passwords that contain it by chance).
pub const PERSONAL_WORD_MIN: usize = 4;

/// Lower case without accents: the base of every comparison.
fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            other => other,
        })
        .collect()
}

/// Undoes the common substitutions, reading `1` as `one_as`.
fn unleet(text: &str, one_as: char) -> String {
    text.chars()
        .map(|c| match c {
            '@' => 'a',
            '0' => 'o',
            '1' => one_as,
            '3' => 'e',
            '$' => 's',
            other => other,
        })
        .collect()
}

/// `text`, then `text` with its trailing non-letters taken off one at a
/// time, down to the last letter.
fn trailing_cuts(text: &str) -> Vec<String> {
    let mut cuts = vec![text.to_owned()];
    let mut rest = text;
    while let Some(last) = rest.chars().next_back() {
        if last.is_alphabetic() {
            break;
        }
        rest = &rest[..rest.len() - last.len_utf8()];
        if !rest.is_empty() {
            cuts.push(rest.to_owned());
        }
    }
    cuts
}

/// Every form under which `candidate` is compared with the list and the
/// personal words: lower-cased without accents, with the substitutions
/// undone (before and after the trailing digits and symbols are taken off,
/// `1` read both as `i` and as `l`), and with those trailing characters
/// taken off one at a time. Sorted, without duplicates.
pub fn normalized_forms(candidate: &str) -> Vec<String> {
    let base = fold(candidate);
    let mut forms = std::collections::BTreeSet::new();
    let mut starts = vec![base.clone()];
    starts.push(unleet(&base, 'i'));
    starts.push(unleet(&base, 'l'));
    for start in &starts {
        for cut in trailing_cuts(start) {
            forms.insert(unleet(&cut, 'i'));
            forms.insert(unleet(&cut, 'l'));
            forms.insert(cut);
        }
    }
    forms.into_iter().filter(|f| !f.is_empty()).collect()
}

/// What a password must not contain: the names and e-mail addresses of the
/// person choosing it and of their organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Personal {
    words: Vec<String>,
}

impl Personal {
    /// Nothing personal to look for.
    pub fn none() -> Self {
        Personal::default()
    }

    /// Adds a name (a person's or an organization's): the whole name without
    /// spaces and punctuation, and each of its words, when they have at
    /// least [`PERSONAL_WORD_MIN`] letters.
    pub fn name(mut self, name: &str) -> Self {
        self.add(&fold(name));
        self
    }

    /// Adds an e-mail address: its local part (before `@`), whole and word
    /// by word.
    pub fn email(mut self, email: &str) -> Self {
        let local = email.split('@').next().unwrap_or_default();
        self.add(&fold(local));
        self
    }

    fn add(&mut self, folded: &str) {
        let whole: String = folded.chars().filter(|c| c.is_alphanumeric()).collect();
        let words = folded
            .split(|c: char| !c.is_alphanumeric())
            .map(str::to_owned)
            .chain(std::iter::once(whole));
        for word in words {
            if word.chars().count() >= PERSONAL_WORD_MIN && !self.words.contains(&word) {
                self.words.push(word);
            }
        }
    }

    /// The words looked for.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether a normalized form of `candidate` contains one of the words.
    pub fn found_in(&self, candidate: &str) -> bool {
        if self.words.is_empty() {
            return false;
        }
        normalized_forms(candidate).iter().any(|form| {
            let squeezed: String = form.chars().filter(|c| c.is_alphanumeric()).collect();
            self.words
                .iter()
                .any(|w| form.contains(w.as_str()) || squeezed.contains(w.as_str()))
        })
    }
}

/// How many distinct entries the common-password list holds.
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
}

/// Checks `candidate` against the strength rule, with nothing personal to
/// look for (see [`check_password_for`]).
pub fn check_password(candidate: &str) -> Result<(), Vec<PasswordRule>> {
    check_password_for(candidate, &Personal::none())
}

/// Checks `candidate` against the strength rule, `personal` naming what it
/// must not contain.
///
/// Returns every unmet rule, in the order of [`PasswordRule::ALL`]. Inputs
/// longer than [`MAX_LENGTH`] are not looked up in the common-password list
/// nor searched for personal words (this keeps oversized inputs cheap).
pub fn check_password_for(candidate: &str, personal: &Personal) -> Result<(), Vec<PasswordRule>> {
    let mut failed = Vec::new();

    // Count at most MAX_LENGTH + 1 characters: enough to decide both bounds.
    let length = candidate.chars().take(MAX_LENGTH + 1).count();
    let too_long = length > MAX_LENGTH;
    if length < MIN_LENGTH {
        failed.push(PasswordRule::TooShort);
    }
    if too_long {
        failed.push(PasswordRule::TooLong);
    }

    let has = |index: usize| {
        CLASS_REGEXES
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|re| re.is_match(candidate))
    };
    let (upper, lower, digit, special) = (has(0), has(1), has(2), has(3));
    if !upper {
        failed.push(PasswordRule::MissingUppercase);
    }
    if !lower {
        failed.push(PasswordRule::MissingLowercase);
    }
    if !digit {
        failed.push(PasswordRule::MissingDigit);
    }
    if !special {
        failed.push(PasswordRule::MissingSpecial);
    }

    if !too_long && is_common(candidate) {
        failed.push(PasswordRule::TooCommon);
    }
    if !too_long && personal.found_in(candidate) {
        failed.push(PasswordRule::ContainsPersonalData);
    }

    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

/// Hashing a password failed (in practice only on an internal argon2 error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {message}")]
pub struct PasswordHashError {
    message: String,
}

impl PasswordHashError {
    fn from_argon2(error: impl std::fmt::Display) -> Self {
        PasswordHashError {
            message: error.to_string(),
        }
    }
}

/// The argon2id hasher configured with [`PASSWORD_PARAMS`].
fn hasher() -> Result<Argon2<'static>, PasswordHashError> {
    let (m, t, p) = PASSWORD_PARAMS;
    let params = Params::new(m, t, p, None).map_err(PasswordHashError::from_argon2)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

thread_local! {
    /// The argon2 work memory of this thread (19 MiB with the current
    /// parameters), allocated once and reused: allocating and freeing it for
    /// every hash leaves freed blocks spread over the allocator's arenas,
    /// which adds up to hundreds of MiB under a storm of sign-ins.
    static WORK_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Computes the raw argon2 output of `password` and `salt` into `out`, in
/// this thread's reused work memory.
fn compute(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    WORK_MEMORY.with(|cell| {
        let mut memory = cell.borrow_mut();
        let needed = params.block_count();
        if memory.len() < needed {
            memory.resize(needed, Block::new());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
    })
}

/// Hashes `password` with argon2id and [`PASSWORD_PARAMS`] under a fresh
/// random 16-byte salt, returning the PHC string to store
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(PasswordHashError::from_argon2)?;
    let argon = hasher()?;
    let (m, t, p) = PASSWORD_PARAMS;
    let params = Params::new(m, t, p, None).map_err(PasswordHashError::from_argon2)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, &params, password.as_bytes(), &salt_bytes, &mut out)
        .map_err(PasswordHashError::from_argon2)?;
    let output = Output::new(&out).map_err(PasswordHashError::from_argon2)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(PasswordHashError::from_argon2)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or a stored hash that cannot be read.
    Mismatch,
    /// Right password. When `needs_rehash` is true the stored hash uses a
    /// weaker algorithm or parameters than today's, and the caller should
    /// store [`hash_password`] of the (now known good) password.
    Match { needs_rehash: bool },
}

/// Checks `password` against the stored PHC string `phc`.
///
/// The hash is recomputed with the algorithm, version and parameters recorded
/// in `phc` (argon2id, argon2i or argon2d), so old hashes keep working after
/// [`PASSWORD_PARAMS`] is raised. An unparseable or non-argon2 `phc` is a
/// [`Verification::Mismatch`].
pub fn verify_password(password: &str, phc: &str) -> Verification {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verification::Mismatch;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Verification::Mismatch;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return Verification::Mismatch;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let Ok(params) = Params::try_from(&parsed) else {
        return Verification::Mismatch;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return Verification::Mismatch;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if compute(&argon, &params, password.as_bytes(), salt, &mut out).is_err() {
        return Verification::Mismatch;
    }
    // `Output` compares in constant time.
    match Output::new(&out) {
        Ok(computed) if computed == expected => Verification::Match {
            needs_rehash: needs_rehash(&parsed),
        },
        _ => Verification::Mismatch,
    }
}

/// Whether a (verified) stored hash is weaker than what [`hash_password`]
/// produces today: not argon2id, not version 0x13, or any of m/t/p lower.
fn needs_rehash(parsed: &PasswordHash<'_>) -> bool {
    if parsed.algorithm.as_str() != "argon2id" {
        return true;
    }
    if parsed.version != Some(Version::V0x13.into()) {
        return true;
    }
    let (m, t, p) = PASSWORD_PARAMS;
    let below = |name: &str, current: u32| {
        parsed
            .params
            .get_decimal(name)
            .is_none_or(|stored| stored < current)
    };
    below("m", m) || below("t", t) || below("p", p)
}

/// A valid argon2id hash with the current parameters, made once, used only to
/// spend the time of a real verification.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_password("guichet dummy password, never matches").ok());

/// Spends the time of one [`verify_password`] call against a fixed argon2id
/// hash with the current parameters.
///
/// Call it when a login names an unknown account, so that "no such account"
/// costs the same as "wrong password" and response times do not reveal which
/// accounts exist. The result is deliberately discarded.
pub fn burn_dummy_verification(password: &str) {
    if let Some(dummy) = DUMMY_HASH.as_deref() {
        std::hint::black_box(verify_password(password, dummy));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn character_classes_follow_the_unicode_categories() {
        use super::*;
        assert!(CLASS_REGEXES.iter().all(Option::is_some));
        // Accented letters count as letters of their case.
        assert_eq!(check_password("Élan-vital-9"), Ok(()));
        assert_eq!(check_password("ÉLAN-VITAL-9ß"), Ok(()));
        // Circled letters are symbols (So), not upper-case letters (Lu).
        assert_eq!(
            check_password("Ⓐbricot-vital-9"),
            Err(vec![PasswordRule::MissingUppercase])
        );
        // A non-breaking space is white space, not a special character.
        assert_eq!(
            check_password("Abricot\u{a0}vital9"),
            Err(vec![PasswordRule::MissingSpecial])
        );
        // U+FEFF is not white space: it counts as special.
        assert_eq!(check_password("Abricot\u{feff}vital9"), Ok(()));
    }

    use super::*;
    use argon2::password_hash::PasswordHasher;
    use std::time::{Duration, Instant};

    fn errors(candidate: &str) -> Vec<PasswordRule> {
        check_password(candidate).err().unwrap_or_default()
    }

    fn errors_for(candidate: &str, personal: &Personal) -> Vec<PasswordRule> {
        check_password_for(candidate, personal)
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn accepts_a_password_meeting_every_rule() {
        assert_eq!(check_password("Vélo-Rouge-42"), Ok(()));
        assert_eq!(check_password("Ciel-Marbre7!"), Ok(()));
    }

    #[test]
    fn codes_and_order_of_all() {
        let codes: Vec<_> = PasswordRule::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "password_too_short",
                "password_too_long",
                "password_missing_uppercase",
                "password_missing_lowercase",
                "password_missing_digit",
                "password_missing_special",
                "password_too_common",
                "password_contains_personal_data",
            ]
        );
    }

    #[test]
    fn every_rule_has_distinct_french_and_english_descriptions() {
        let mut seen = HashSet::new();
        for rule in PasswordRule::ALL {
            let fr = rule.describe(true);
            let en = rule.describe(false);
            assert!(!fr.is_empty() && !en.is_empty());
            assert_ne!(fr, en, "{rule:?}");
            assert!(seen.insert(fr) && seen.insert(en), "{rule:?}");
        }
        assert!(PasswordRule::TooShort.describe(true).contains('8'));
        assert!(PasswordRule::TooLong.describe(false).contains("128"));
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        // 7 characters but 14 bytes: still too short.
        assert_eq!(errors("Éé1!ÀàÇ"), vec![PasswordRule::TooShort]);
        // Exactly 8 characters: long enough.
        assert_eq!(check_password("Éé1!Ààçx"), Ok(()));
    }

    #[test]
    fn length_bounds_are_inclusive() {
        let at_min = "Aa1!aaaa";
        assert_eq!(at_min.chars().count(), MIN_LENGTH);
        assert_eq!(check_password(at_min), Ok(()));
        assert_eq!(errors("Aa1!aaa"), vec![PasswordRule::TooShort]);

        let at_max = format!("Aa1!{}", "x".repeat(MAX_LENGTH - 4));
        assert_eq!(at_max.chars().count(), MAX_LENGTH);
        assert_eq!(check_password(&at_max), Ok(()));
        let over = format!("{at_max}x");
        assert_eq!(errors(&over), vec![PasswordRule::TooLong]);
        // Multi-byte characters: 129 characters is too long.
        let accented = format!("A1!{}", "é".repeat(126));
        assert_eq!(accented.chars().count(), 129);
        assert_eq!(errors(&accented), vec![PasswordRule::TooLong]);
    }

    #[test]
    fn each_character_class_is_required() {
        assert_eq!(errors("abcdef1!x"), vec![PasswordRule::MissingUppercase]);
        assert_eq!(errors("ABCDEF1!X"), vec![PasswordRule::MissingLowercase]);
        assert_eq!(errors("Abcdefg!x"), vec![PasswordRule::MissingDigit]);
        assert_eq!(errors("Abcdefg1x"), vec![PasswordRule::MissingSpecial]);
    }

    #[test]
    fn whitespace_is_not_a_special_character() {
        assert_eq!(errors("Abc def 12"), vec![PasswordRule::MissingSpecial]);
        assert_eq!(
            errors("Abc\tdef\u{a0}12"),
            vec![PasswordRule::MissingSpecial]
        );
        assert_eq!(check_password("Ciel marbre 12_"), Ok(()));
        assert_eq!(check_password("Cielmarbre12€"), Ok(()));
    }

    #[test]
    fn reports_all_unmet_rules_in_order() {
        assert_eq!(
            errors(""),
            vec![
                PasswordRule::TooShort,
                PasswordRule::MissingUppercase,
                PasswordRule::MissingLowercase,
                PasswordRule::MissingDigit,
                PasswordRule::MissingSpecial,
            ]
        );
        // "password" is the second most common password.
        assert_eq!(
            errors("password"),
            vec![
                PasswordRule::MissingUppercase,
                PasswordRule::MissingDigit,
                PasswordRule::MissingSpecial,
                PasswordRule::TooCommon,
            ]
        );
        assert_eq!(
            errors("1234"),
            vec![
                PasswordRule::TooShort,
                PasswordRule::MissingUppercase,
                PasswordRule::MissingLowercase,
                PasswordRule::MissingSpecial,
                PasswordRule::TooCommon,
            ]
        );
    }

    #[test]
    fn common_list_is_loaded_and_lower_case() {
        assert!(common_password_count() >= 10_000);
        assert_eq!(common_password_count(), 30_000);
        assert!(
            COMMON_PASSWORDS_TEXT
                .lines()
                .all(|l| !l.is_empty() && l == l.to_lowercase() && l.trim() == l)
        );
        assert_eq!(COMMON_PASSWORDS_TEXT.lines().next(), Some("123456"));
    }

    #[test]
    fn common_lookup_ignores_case() {
        assert!(is_common("password1"));
        assert!(is_common("PassWord1"));
        assert!(is_common("TRUSTNO1"));
        assert!(!is_common("Vélo-Rouge-42"));
    }

    #[test]
    fn catches_common_passwords_that_meet_every_other_rule() {
        // "p@ssw0rd", "pa$$w0rd" and "1qaz@wsx" are in the list; with one
        // capital letter they satisfy every other rule.
        for candidate in ["P@ssw0rd", "Pa$$w0rd", "1qaz@WSX"] {
            assert_eq!(
                errors(candidate),
                vec![PasswordRule::TooCommon],
                "{candidate}"
            );
        }
        // A small change takes it out of the list.
        assert_eq!(check_password("P@ssw0rd-guichet"), Ok(()));
    }

    #[test]
    fn forms_undo_case_accents_substitutions_and_trailing_digits_and_symbols() {
        let forms = normalized_forms("P@ssw0rd1!");
        for expected in [
            "p@ssw0rd1!",
            "p@ssw0rd1",
            "p@ssw0rd",
            "password",
            "passwordi",
            "passwordl",
        ] {
            assert!(
                forms.iter().any(|f| f == expected),
                "{expected} in {forms:?}"
            );
        }
        let forms = normalized_forms("Abcdef1!");
        assert!(forms.contains(&"abcdef1".to_owned()), "{forms:?}");
        assert!(forms.contains(&"abcdef".to_owned()), "{forms:?}");
        // A substituted letter at the end is read before it is cut.
        assert!(normalized_forms("Welcom3!").contains(&"welcome".to_owned()));
        // `1` is read both ways.
        let forms = normalized_forms("1ove");
        assert!(forms.contains(&"iove".to_owned()) && forms.contains(&"love".to_owned()));
        assert!(normalized_forms("Hélène").contains(&"helene".to_owned()));
        // Leading characters stay: only the end is cut.
        assert!(!normalized_forms("1!Password").contains(&"password".to_owned()));
        // Only digits and symbols: nothing empty comes out.
        assert!(normalized_forms("123!").iter().all(|f| !f.is_empty()));
    }

    #[test]
    fn decorated_common_passwords_are_refused() {
        for candidate in [
            "Password1!",
            "Welcome1!",
            "Azerty123!",
            "Abcdef1!",
            "P@ssw0rd2024!",
            "Welc0me!!1",
            "Azerty-2024",
        ] {
            assert_eq!(
                errors(candidate),
                vec![PasswordRule::TooCommon],
                "{candidate}"
            );
        }
        assert!(is_common("PASSWORD1!"));
    }

    #[test]
    fn personal_words_come_from_names_and_the_local_part() {
        let personal = Personal::none()
            .name("Boulangerie Dupont & Fils")
            .name("Hélène de la Tour")
            .email("h.delatour84@example.com");
        let words = personal.words();
        for expected in [
            "boulangerie",
            "dupont",
            "fils",
            "helene",
            "tour",
            "delatour84",
            "hdelatour84",
        ] {
            assert!(
                words.iter().any(|w| w == expected),
                "{expected} in {words:?}"
            );
        }
        // Short words and the domain are not looked for.
        for absent in ["de", "la", "h", "example"] {
            assert!(!words.iter().any(|w| w == absent), "{absent} in {words:?}");
        }
    }

    #[test]
    fn a_password_containing_a_personal_word_is_refused() {
        let personal = Personal::none()
            .name("Boulangerie Dupont")
            .name("Claire Martin")
            .email("c.martin@example.com");
        for candidate in [
            "Claire-2026!",
            "MARTIN#1975a",
            "Dup0nt!Rocks9",
            "xX-Cl@ire-Xx9",
        ] {
            assert_eq!(
                errors_for(candidate, &personal),
                vec![PasswordRule::ContainsPersonalData],
                "{candidate}"
            );
        }
        // With its punctuation squeezed out, the name is still found.
        assert_eq!(
            errors_for("Bou-Langerie-1!", &personal),
            vec![PasswordRule::ContainsPersonalData]
        );
        assert_eq!(check_password_for("Ciel-Marbre7!", &personal), Ok(()));
        // Without personal data, the same password passes.
        assert_eq!(check_password("Claire-2026!"), Ok(()));
    }

    #[test]
    fn every_rule_is_reported_together() {
        let personal = Personal::none().name("Welcome Shop");
        assert_eq!(
            errors_for("Welcome1!", &personal),
            vec![PasswordRule::TooCommon, PasswordRule::ContainsPersonalData]
        );
    }

    #[test]
    fn huge_input_is_rejected_quickly_as_too_long() {
        let huge = "Aa1!".repeat(2560); // 10 KiB
        let start = Instant::now();
        for _ in 0..100 {
            assert_eq!(errors(&huge), vec![PasswordRule::TooLong]);
        }
        assert!(start.elapsed() < Duration::from_secs(2));
        // Not looked up in the list, even if its lower-case form were common.
        let huge_common = "a".repeat(10_240);
        assert!(!errors(&huge_common).contains(&PasswordRule::TooCommon));
    }

    #[test]
    fn hash_then_verify_with_current_parameters() {
        let phc = hash_password("Vélo-Rouge-42").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            verify_password("Vélo-Rouge-42", &phc),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            verify_password("vélo-Rouge-42", &phc),
            Verification::Mismatch
        );
        // A second hash of the same password uses another salt.
        let again = hash_password("Vélo-Rouge-42").unwrap();
        assert_ne!(phc, again);
    }

    fn cheap_hash(algorithm: Algorithm, m: u32, t: u32, password: &str) -> String {
        let params = Params::new(m, t, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(algorithm, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn weaker_stored_hashes_match_but_need_rehash() {
        let weak_memory = cheap_hash(Algorithm::Argon2id, 64, 2, "secret");
        assert!(weak_memory.contains("m=64,t=2,p=1"));
        assert_eq!(
            verify_password("secret", &weak_memory),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(
            verify_password("Secret", &weak_memory),
            Verification::Mismatch
        );

        let weak_time = cheap_hash(Algorithm::Argon2id, 19456, 1, "secret");
        assert_eq!(
            verify_password("secret", &weak_time),
            Verification::Match { needs_rehash: true }
        );

        let argon2i = cheap_hash(Algorithm::Argon2i, 64, 2, "secret");
        assert!(argon2i.starts_with("$argon2i$"));
        assert_eq!(
            verify_password("secret", &argon2i),
            Verification::Match { needs_rehash: true }
        );
    }

    #[test]
    fn unreadable_stored_hash_is_a_mismatch() {
        for stored in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert_eq!(verify_password("secret", stored), Verification::Mismatch);
        }
    }

    #[test]
    fn dummy_verification_uses_a_valid_current_hash() {
        let dummy = DUMMY_HASH.as_deref().unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_password("anything", dummy), Verification::Mismatch);
        burn_dummy_verification("anything");
    }
}
