//! Opening `application/age` answers with the client's x25519 identity. Invariant: the whole
//! plaintext is read and authenticated to EOF (`age::decrypt`) before any of it is parsed.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The client's age identity (its secret is never printed).
pub(crate) struct Unsealer(age::x25519::Identity);

impl fmt::Debug for Unsealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unsealer({})", self.0.to_public())
    }
}

impl Unsealer {
    /// Parse an age x25519 identity (as `age-keygen` writes it).
    pub(crate) fn parse(identity: &str) -> Result<Unsealer> {
        age::x25519::Identity::from_str(identity.trim())
            .map(Unsealer)
            .map_err(|_| Error::Config("the age identity is not an x25519 secret key".to_owned()))
    }

    /// The whole plaintext of a sealed answer.
    pub(crate) fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        age::decrypt(&self.0, sealed).map_err(|e| Error::Unseal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn a_sealed_answer_opens_only_with_its_identity_and_not_when_truncated() {
        let mine = age::x25519::Identity::generate();
        let sealed = age::encrypt(&mine.to_public(), b"{\"records\":[]}").unwrap();
        let unsealer = Unsealer::parse(mine.to_string().expose_secret()).unwrap();
        assert_eq!(unsealer.open(&sealed).unwrap(), b"{\"records\":[]}");
        assert!(matches!(
            unsealer.open(&sealed[..sealed.len() - 1]),
            Err(Error::Unseal(_))
        ));
        let other = age::x25519::Identity::generate();
        let stranger = Unsealer::parse(other.to_string().expose_secret()).unwrap();
        assert!(matches!(stranger.open(&sealed), Err(Error::Unseal(_))));
        assert!(matches!(
            Unsealer::parse(&format!("AGE-SECRET-{}", "KEY-1NOPE")),
            Err(Error::Config(_))
        ));
    }
}
