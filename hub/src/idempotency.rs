//! Idempotency keys as requests carry them (`idempotency-key`): pulls, lookups and record
//! writes take the same form, and a retry with the same key is the same request.

use crate::error::Error;

/// `idempotency-key`: a retry with the same key is the same request. Invariant: 1–64
/// characters of `A-Z a-z 0-9 . _ : -` (pulls, lookups and record writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The header's value, if the request has one.
    pub fn parse(header: Option<&[u8]>) -> Result<Option<IdempotencyKey>, Error> {
        let Some(bytes) = header else {
            return Ok(None);
        };
        let valid = (1..=64).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        match std::str::from_utf8(bytes) {
            Ok(key) if valid => Ok(Some(IdempotencyKey(key.to_owned()))),
            _ => Err(Error::validation(
                "idempotency-key",
                "1–64 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_short_and_plain() {
        assert!(IdempotencyKey::parse(None).unwrap().is_none());
        assert_eq!(
            IdempotencyKey::parse(Some(b"batch-7:retry.1"))
                .unwrap()
                .unwrap()
                .as_str(),
            "batch-7:retry.1"
        );
        assert!(IdempotencyKey::parse(Some(b"")).is_err());
        assert!(IdempotencyKey::parse(Some(b"has space")).is_err());
        assert!(IdempotencyKey::parse(Some(&[b'k'; 65])).is_err());
    }
}
