//! Opaque identifiers: a type prefix and 20 random base-32 characters
//! (100 bits), so that ids reveal neither volume nor order.

use rand::Rng;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RANDOM_LEN: usize = 20;

/// A new id such as `org_3k9x...` for the given prefix (without underscore).
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + 1 + RANDOM_LEN);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..RANDOM_LEN {
        let index = rng.random_range(0..ALPHABET.len());
        id.push(char::from(ALPHABET[index]));
    }
    id
}

/// Whether `id` has the shape of an id with this prefix (cheap pre-check
/// before a lookup; it says nothing about existence).
pub fn has_shape(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|random| {
            random.len() == RANDOM_LEN && random.bytes().all(|b| ALPHABET.contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_unique() {
        let a = new_id("org");
        let b = new_id("org");
        assert!(has_shape(&a, "org"), "{a}");
        assert_ne!(a, b);
        assert!(!has_shape(&a, "cus"));
        assert!(!has_shape("org_short", "org"));
        assert!(!has_shape("org_ILLEGAL-CHARACTERS!!", "org"));
    }
}
