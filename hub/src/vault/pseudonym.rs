//! Per-department pseudonyms (DESIGN.md §4): `HMAC-SHA256(department_key, value)`, stable for
//! one department and unlinkable across departments. A department's key is derived from the
//! vault's index key under a label no blind-index input can start with (category names are
//! `[a-z][a-z0-9_]*`), so the two uses of the key are domain-separated.

use ring::hmac;

/// Label of the department-key derivation.
const DEPARTMENT_KEY_LABEL: &[u8] = b"gridhub-pseudonym-key/v1";
/// Characters of a pseudonym (16 base32 characters = 80 bits).
pub const PSEUDONYM_CHARS: usize = 16;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The key a department's pseudonyms are made with.
fn department_key(index_key: &hmac::Key, department: &str) -> hmac::Key {
    let mut ctx = hmac::Context::with_key(index_key);
    ctx.update(DEPARTMENT_KEY_LABEL);
    ctx.update(&[0]);
    ctx.update(department.as_bytes());
    hmac::Key::new(hmac::HMAC_SHA256, ctx.sign().as_ref())
}

/// One department's pseudonym key, derived once (`Vault::pseudonyms`) and used for every
/// value of a page: deriving it costs as much as a pseudonym.
pub struct Pseudonyms {
    key: hmac::Key,
}

impl Pseudonyms {
    pub(super) fn new(index_key: &hmac::Key, department: &str) -> Pseudonyms {
        Pseudonyms {
            key: department_key(index_key, department),
        }
    }

    /// The pseudonym of `value` of `category.field`: 16 lowercase base32 characters (RFC 4648
    /// alphabet) of the HMAC.
    pub fn of(&self, category: &str, field: &str, value: &str) -> String {
        let mac = super::field_mac(&self.key, category, field, value);
        base32_prefix(mac.as_ref(), PSEUDONYM_CHARS)
    }
}

/// The first `chars` characters of the unpadded base32 encoding of `bytes` (5 bits each,
/// big-endian).
fn base32_prefix(bytes: &[u8], chars: usize) -> String {
    let mut out = String::with_capacity(chars);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 && out.len() < chars {
            bits -= 5;
            let index = usize::try_from((buffer >> bits) & 31).unwrap_or(0);
            out.push(char::from(BASE32.get(index).copied().unwrap_or(b'a')));
        }
        buffer &= (1 << bits) - 1;
        if out.len() == chars {
            break;
        }
    }
    // The last partial group, zero-padded (RFC 4648 §6).
    if out.len() < chars && bits > 0 {
        let index = usize::try_from((buffer << (5 - bits)) & 31).unwrap_or(0);
        out.push(char::from(BASE32.get(index).copied().unwrap_or(b'a')));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn root() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32])
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        // RFC 4648 §10: BASE32("foobar") = "MZXW6YTBOI======".
        assert_eq!(base32_prefix(b"foobar", 10), "mzxw6ytboi");
        assert_eq!(base32_prefix(b"f", 1), "m");
    }

    #[test]
    fn pseudonyms_are_stable_per_department_and_differ_across_departments() {
        let health = Pseudonyms::new(&root(), "health");
        let police = Pseudonyms::new(&root(), "public-security");
        let a = health.of("person", "name", "张三丰");
        assert_eq!(a.chars().count(), PSEUDONYM_CHARS);
        assert!(a.bytes().all(|b| BASE32.contains(&b)));
        assert_eq!(a, health.of("person", "name", "张三丰"));
        // A key derived again gives the same pseudonyms (a page derives its own).
        assert_eq!(
            a,
            Pseudonyms::new(&root(), "health").of("person", "name", "张三丰")
        );
        assert_ne!(a, police.of("person", "name", "张三丰"));
        assert_ne!(a, health.of("person", "name", "张三"));
        assert_ne!(a, health.of("person", "address", "张三丰"));
        // Same characters, different strings: 丰 vs 豐.
        assert_ne!(a, health.of("person", "name", "张三豐"));
        // The layout: HMAC of `category ‖ 0 ‖ field ‖ 0 ‖ value` under the department's key.
        let mac = hmac::sign(
            &department_key(&root(), "health"),
            "person\0name\0张三丰".as_bytes(),
        );
        assert_eq!(a, base32_prefix(mac.as_ref(), PSEUDONYM_CHARS));
    }
}
