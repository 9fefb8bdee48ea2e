//! Ed25519 keys held by the vault: token and grant-artefact keys, the ledger's checkpoint and
//! receipt key. Invariant: the private half never leaves this type; callers get signatures and
//! the public key, never key bytes.

use ring::signature::{Ed25519KeyPair, KeyPair};

/// An Ed25519 signing key (ring).
pub struct Ed25519Key {
    pair: Ed25519KeyPair,
    public_key: [u8; 32],
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("public_key", &crate::hex::encode(&self.public_key))
            .finish_non_exhaustive()
    }
}

/// The key is not a PKCS#8 v2 Ed25519 document.
#[derive(Debug, thiserror::Error)]
#[error("not an Ed25519 key")]
pub struct NotEd25519;

impl Ed25519Key {
    /// Load a PKCS#8 v2 Ed25519 key (as `Ed25519KeyPair::generate_pkcs8` makes). The keyring's
    /// keys come in this way; tests make their own.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Ed25519Key, NotEd25519> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| NotEd25519)?;
        let public_key = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NotEd25519)?;
        Ok(Ed25519Key { pair, public_key })
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (o, b) in out.iter_mut().zip(self.pair.sign(message).as_ref()) {
            *o = *b;
        }
        out
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ED25519, UnparsedPublicKey};

    use super::*;

    #[test]
    fn signatures_verify_under_the_public_key_and_nothing_else() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let key = Ed25519Key::from_pkcs8(pkcs8.as_ref()).unwrap();
        let sig = key.sign(b"checkpoint");
        let public = UnparsedPublicKey::new(&ED25519, key.public_key());
        assert!(public.verify(b"checkpoint", &sig).is_ok());
        assert!(public.verify(b"checkpoinT", &sig).is_err());
        assert!(Ed25519Key::from_pkcs8(&pkcs8.as_ref()[1..]).is_err());
        assert!(!format!("{key:?}").contains("pair"));
    }
}
