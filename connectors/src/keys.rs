//! The ledger keys a client trusts: the pinned key — the trust anchor, never replaced — and the
//! chain of keys followed from it through the hub's key transitions (`tlog::keychain`).
//! Invariant: the chain held is always one `KeyChain::new` built from the pinned key, and it only
//! grows, each time to a chain that extends it; so every key in it was endorsed by the pinned
//! key or, step by step, by a successor the pinned key endorsed.

use std::sync::{PoisonError, RwLock};

use tlog::keychain::{KeyChain, KeyChainError};
use tlog::note::{NoteError, Verifier};

use crate::error::{Error, Result};
use crate::verify::SignedCheckpoint;

/// The ledger keys a client trusts, as C2SP verifier keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerKeys {
    /// The pinned key: configured, or pinned in the state file on first use.
    pub pinned: String,
    /// The newest key of the chain followed from the pinned key (the key the hub signs with).
    pub current: String,
    /// The key transitions followed (signed notes, oldest first; empty until a rotation).
    pub transitions: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Keys {
    pinned: Verifier,
    /// Invariant: built by `KeyChain::new(pinned, …)`; replaced only by a chain extending it.
    chain: RwLock<KeyChain>,
}

/// `longer`'s transitions contain `shorter`'s as one run, so (both being chains from the same
/// pinned key) `longer` holds every key of `shorter`, in order, retired at the same sizes.
pub(crate) fn transitions_extend(longer: &[String], shorter: &[String]) -> bool {
    shorter.is_empty() || longer.windows(shorter.len()).any(|run| run == shorter)
}

impl Keys {
    /// The pinned key alone (no transition followed yet).
    pub(crate) fn single(pinned: Verifier) -> Keys {
        Keys {
            chain: RwLock::new(KeyChain::single(pinned.clone())),
            pinned,
        }
    }

    /// The chain `transitions` describe from `pinned` (none: `pinned` alone). The error says
    /// why they are not a chain the pinned key is part of.
    pub(crate) fn new(pinned: Verifier, transitions: &[String]) -> Result<Keys, KeyChainError> {
        let chain = KeyChain::new(pinned.clone(), transitions)?;
        Ok(Keys {
            pinned,
            chain: RwLock::new(chain),
        })
    }

    pub(crate) fn pinned(&self) -> &Verifier {
        &self.pinned
    }

    /// The chain held now (a copy: the lock is never held across an await).
    pub(crate) fn chain(&self) -> KeyChain {
        // A panic cannot happen while the lock is held (only clones and assignments do).
        self.chain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What a caller may print.
    pub(crate) fn describe(&self) -> LedgerKeys {
        let chain = self.chain();
        LedgerKeys {
            pinned: self.pinned.verifier_key(),
            current: chain.current().verifier_key(),
            transitions: chain.transitions().to_vec(),
        }
    }

    /// The chain `transitions` (a full list, oldest first) describe from the pinned key.
    pub(crate) fn follow(&self, transitions: &[String]) -> Result<KeyChain, KeyChainError> {
        KeyChain::new(self.pinned.clone(), transitions)
    }

    /// Hold `offered` if it holds the pinned key and extends the chain held; keep the held one
    /// if it extends `offered`; refuse anything else, saying why.
    pub(crate) fn adopt(&self, offered: KeyChain) -> Result<(), String> {
        // A `KeyChain` links each key to the next by a transition both signed; holding the
        // pinned key, it is a chain from the pinned key (`KeyChain::new`'s guarantee).
        if !offered.keys().contains(&self.pinned) {
            return Err(KeyChainError::NotInChain.to_string());
        }
        let mut chain = self.chain.write().unwrap_or_else(PoisonError::into_inner);
        if transitions_extend(offered.transitions(), chain.transitions()) {
            *chain = offered;
            Ok(())
        } else if transitions_extend(chain.transitions(), offered.transitions()) {
            Ok(())
        } else {
            Err("the key transitions do not extend the ones followed before".to_owned())
        }
    }

    /// Verify a checkpoint note with the chain; `None` when no key of the chain signed it.
    /// Returns the checkpoint and the key that signed it.
    pub(crate) fn verify(&self, note: &str) -> Result<Option<(SignedCheckpoint, Verifier)>> {
        let chain = self.chain();
        match chain.verify_checkpoint(note) {
            Ok((_, key)) => Ok(Some((SignedCheckpoint::verify(key, note)?, key.clone()))),
            Err(KeyChainError::Note(NoteError::NotSigned(_))) => Ok(None),
            Err(e) => Err(Error::BadCheckpoint(e.to_string())),
        }
    }

    /// The key of the chain whose key hash is `key_id` (lowercase or uppercase hex).
    pub(crate) fn by_key_id(&self, key_id: &str) -> Option<Verifier> {
        let hash = key_hash(key_id)?;
        self.chain().by_key_hash(&hash).cloned()
    }
}

/// The 4 bytes of an 8-digit hex key id.
fn key_hash(key_id: &str) -> Option<[u8; 4]> {
    if key_id.len() != 8 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 4];
    for (i, byte) in out.iter_mut().enumerate() {
        let digits = key_id.get(2 * i..2 * i + 2)?;
        *byte = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;
    use tlog::keychain::Transition;
    use tlog::note::{Checkpoint, NoteSigner};

    use super::*;

    fn signer() -> NoteSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        NoteSigner::from_pkcs8("gridhub/test", pkcs8.as_ref()).unwrap()
    }

    fn checkpoint(by: &NoteSigner, size: u64) -> String {
        let body = Checkpoint {
            origin: "gridhub/test".to_owned(),
            size,
            root: [1; 32],
        }
        .body();
        by.sign_note(&body).unwrap()
    }

    #[test]
    fn a_chain_grows_only_to_one_that_extends_it() {
        let (a, b, c, d) = (signer(), signer(), signer(), signer());
        let ab = Transition::sign(&a, &b, 10, [1; 32]).unwrap();
        let bc = Transition::sign(&b, &c, 20, [2; 32]).unwrap();
        let keys = Keys::single(a.verifier());
        let offer = |t: &[String]| keys.adopt(keys.follow(t).unwrap());
        assert!(keys.verify(&checkpoint(&b, 12)).unwrap().is_none());
        offer(std::slice::from_ref(&ab)).unwrap();
        let (cp, by) = keys.verify(&checkpoint(&b, 12)).unwrap().unwrap();
        assert_eq!((cp.size(), by), (12, b.verifier()));
        offer(&[ab.clone(), bc.clone()]).unwrap();
        // A shorter list (a hub that lags) changes nothing.
        offer(std::slice::from_ref(&ab)).unwrap();
        offer(&[]).unwrap();
        assert_eq!(keys.describe().current, c.verifier_key());
        assert_eq!(keys.describe().pinned, a.verifier_key());
        // A second successor of B: a fork of the key history.
        let bd = Transition::sign(&b, &d, 20, [2; 32]).unwrap();
        assert!(offer(&[ab.clone(), bd]).is_err());
        // A chain without the pinned key.
        assert!(
            keys.adopt(tlog::keychain::KeyChain::single(c.verifier()))
                .is_err()
        );
        assert_eq!(keys.chain().transitions(), &[ab, bc][..]);
    }

    #[test]
    fn keys_are_found_by_their_key_id_in_either_case() {
        let (a, b) = (signer(), signer());
        let ab = Transition::sign(&a, &b, 10, [1; 32]).unwrap();
        let keys = Keys::new(b.verifier(), &[ab]).unwrap();
        let id = tlog::hex::encode(&a.key_hash());
        assert_eq!(keys.by_key_id(&id), Some(a.verifier()));
        assert_eq!(keys.by_key_id(&id.to_uppercase()), Some(a.verifier()));
        for bad in [
            "",
            "0011",
            "zzzzzzzz",
            "+f+f+f+f",
            "éééé",
            &format!("{id}00"),
        ] {
            assert_eq!(keys.by_key_id(bad), None, "{bad}");
        }
    }
}
