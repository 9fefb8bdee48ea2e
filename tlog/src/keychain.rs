//! Ledger signing-key rotation: the transition statement a rotation signs, and the chain of keys
//! it leaves, which verifies checkpoints on both sides of every change.
//!
//! A rotation from key A to key B at tree size S signs one note with **both** keys:
//!
//! ```text
//! gridhub-key-transition/v1
//! origin <origin>
//! old <A's verifier key>
//! new <B's verifier key>
//! size <S>
//! root <base64 root hash at S>
//! ```
//!
//! A's signature is A endorsing B as its successor; B's proves B's holder took part. A verifier
//! that pinned A follows the note to B; one that pinned B finds A as its predecessor. From then
//! on A may sign no checkpoint larger than S: a stolen retired key cannot extend the log. The
//! labelled lines keep the statement from ever parsing as a checkpoint (whose second line is a
//! number), and the checkpoint at S itself is signed by both keys.
//!
//! Invariant of `KeyChain`: its keys are a sequence in which each key was endorsed by the one
//! before it, all under one origin, with transition sizes that never decrease; a checkpoint is
//! accepted only with a signature of a key of the chain and, for a retired key, only up to the
//! size at which it was retired.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::note::{Checkpoint, NoteError, NoteSigner, Verifier};

/// First line of a transition statement.
const HEADER: &str = "gridhub-key-transition/v1";

/// A verified rotation from one ledger key to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub origin: String,
    pub old: Verifier,
    pub new: Verifier,
    /// The tree size at the change; the old key signs no checkpoint beyond it.
    pub size: u64,
    pub root: [u8; 32],
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyChainError {
    #[error("key transition: {0}")]
    Note(#[from] NoteError),
    #[error("malformed key transition: {0}")]
    Malformed(&'static str),
    #[error("the key transitions do not form one chain: {0}")]
    Broken(&'static str),
    #[error("the trusted ledger key is not in the chain of key transitions")]
    NotInChain,
    #[error("checkpoint of size {size} is signed by a ledger key retired at size {retired_at}")]
    RetiredKey { size: u64, retired_at: u64 },
}

impl Transition {
    fn body(&self) -> String {
        format!(
            "{HEADER}\norigin {}\nold {}\nnew {}\nsize {}\nroot {}\n",
            self.origin,
            self.old.verifier_key(),
            self.new.verifier_key(),
            self.size,
            B64.encode(self.root)
        )
    }

    /// The statement of a rotation from `old` to `new` at `size`/`root`, signed by both.
    pub fn sign(
        old: &NoteSigner,
        new: &NoteSigner,
        size: u64,
        root: [u8; 32],
    ) -> Result<String, KeyChainError> {
        if old.name() != new.name() {
            return Err(KeyChainError::Malformed(
                "the two keys have different names",
            ));
        }
        if old.public_key() == new.public_key() {
            return Err(KeyChainError::Malformed("the new key is the old key"));
        }
        let body = Transition {
            origin: old.name().to_owned(),
            old: old.verifier(),
            new: new.verifier(),
            size,
            root,
        }
        .body();
        Ok(NoteSigner::sign_note_by_all(&[old, new], &body)?)
    }

    /// Parse a transition statement and check both keys it names signed it.
    pub fn verify(note: &str) -> Result<Transition, KeyChainError> {
        use KeyChainError::Malformed as Bad;
        let text = note
            .rfind("\n\n")
            .and_then(|i| note.get(..=i))
            .ok_or(Bad("no blank line before the signatures"))?;
        let mut lines = text
            .strip_suffix('\n')
            .ok_or(Bad("no final newline"))?
            .split('\n');
        if lines.next() != Some(HEADER) {
            return Err(Bad("it does not start with gridhub-key-transition/v1"));
        }
        let mut field = |label: &'static str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(label))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or(Bad("a line is missing or out of order"))
        };
        let origin = field("origin")?.to_owned();
        let old = Verifier::from_vkey(field("old")?)?;
        let new = Verifier::from_vkey(field("new")?)?;
        let size = field("size")?;
        let root = field("root")?;
        if lines.next().is_some() {
            return Err(Bad("extra lines"));
        }
        if size.is_empty()
            || (size.starts_with('0') && size != "0")
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Bad("size is not a canonical decimal number"));
        }
        let size = size.parse().map_err(|_| Bad("size is too large"))?;
        let root: [u8; 32] = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(Bad("root is not 32 bytes of base64"))?;
        if old.name() != origin || new.name() != origin {
            return Err(Bad("a key's name is not the origin"));
        }
        if old.public_key() == new.public_key() {
            return Err(Bad("the new key is the old key"));
        }
        old.verify_note(note)?;
        new.verify_note(note)?;
        let t = Transition {
            origin,
            old,
            new,
            size,
            root,
        };
        // Exactly the canonical form: nothing a signer did not mean can ride along.
        if t.body() != text {
            return Err(Bad("not in canonical form"));
        }
        Ok(t)
    }
}

/// The ledger's keys, oldest first, with the size each retired at.
#[derive(Debug, Clone)]
pub struct KeyChain {
    keys: Vec<Verifier>,
    /// `retired_at[i]` is the size at which `keys[i]` was replaced by `keys[i + 1]`.
    retired_at: Vec<u64>,
    transitions: Vec<String>,
}

impl KeyChain {
    /// A chain of one key (no rotation yet).
    pub fn single(key: Verifier) -> KeyChain {
        KeyChain {
            keys: vec![key],
            retired_at: Vec::new(),
            transitions: Vec::new(),
        }
    }

    /// The chain that `transitions` (oldest first) describe, trusted because `anchor` (a key the
    /// caller already trusts: pinned, configured or its own) is one of its keys. No transitions:
    /// the chain of `anchor` alone.
    pub fn new<S: AsRef<str>>(
        anchor: Verifier,
        transitions: &[S],
    ) -> Result<KeyChain, KeyChainError> {
        let mut chain = KeyChain::single(anchor.clone());
        let mut started = false;
        for note in transitions {
            let t = Transition::verify(note.as_ref())?;
            if started {
                chain.link(t, note.as_ref())?;
            } else {
                chain = KeyChain {
                    keys: vec![t.old, t.new],
                    retired_at: vec![t.size],
                    transitions: vec![note.as_ref().to_owned()],
                };
                started = true;
            }
        }
        if !chain.keys.contains(&anchor) {
            return Err(KeyChainError::NotInChain);
        }
        Ok(chain)
    }

    fn link(&mut self, t: Transition, note: &str) -> Result<(), KeyChainError> {
        let current = self.current();
        if t.old != *current {
            return Err(KeyChainError::Broken(
                "a transition starts from a key that is not the newest",
            ));
        }
        if self.keys.contains(&t.new) {
            return Err(KeyChainError::Broken(
                "a transition returns to an earlier key",
            ));
        }
        if self.retired_at.last().is_some_and(|&last| t.size < last) {
            return Err(KeyChainError::Broken("transition sizes go backwards"));
        }
        self.retired_at.push(t.size);
        self.keys.push(t.new);
        self.transitions.push(note.to_owned());
        Ok(())
    }

    /// Follow one more transition (it must start from the current key).
    pub fn follow(&mut self, note: &str) -> Result<(), KeyChainError> {
        let t = Transition::verify(note)?;
        self.link(t, note)
    }

    /// The key that signs now.
    pub fn current(&self) -> &Verifier {
        // `keys` is never empty: every constructor puts one in.
        self.keys
            .last()
            .unwrap_or_else(|| unreachable!("a key chain holds a key"))
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> &[Verifier] {
        &self.keys
    }

    /// The transition statements, oldest first (what `/v1/audit/public-key` publishes).
    pub fn transitions(&self) -> &[String] {
        &self.transitions
    }

    /// The key whose key hash is `key_hash` (a receipt's `key_id`).
    pub fn by_key_hash(&self, key_hash: &[u8]) -> Option<&Verifier> {
        self.keys.iter().rev().find(|k| k.key_hash() == key_hash)
    }

    /// Verify a checkpoint note against the chain: a valid signature of one of its keys, within
    /// that key's span. Returns the checkpoint and the key that signed it (the newest, when
    /// several did).
    pub fn verify_checkpoint(&self, note: &str) -> Result<(Checkpoint, &Verifier), KeyChainError> {
        let mut unsigned = None;
        for (i, key) in self.keys.iter().enumerate().rev() {
            let text = match key.verify_note(note) {
                Ok(text) => text,
                Err(e @ NoteError::NotSigned(_)) => {
                    unsigned.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let checkpoint = Checkpoint::parse(text)?;
            if let Some(&retired_at) = self.retired_at.get(i)
                && checkpoint.size > retired_at
            {
                return Err(KeyChainError::RetiredKey {
                    size: checkpoint.size,
                    retired_at,
                });
            }
            return Ok((checkpoint, key));
        }
        Err(unsigned
            .unwrap_or_else(|| NoteError::NotSigned(self.current().name().to_owned()))
            .into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;

    fn signer() -> NoteSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        NoteSigner::from_pkcs8("gridhub/test", pkcs8.as_ref()).unwrap()
    }

    fn checkpoint(by: &[&NoteSigner], size: u64) -> String {
        let body = Checkpoint {
            origin: "gridhub/test".to_owned(),
            size,
            root: [size as u8; 32],
        }
        .body();
        NoteSigner::sign_note_by_all(by, &body).unwrap()
    }

    #[test]
    fn a_transition_names_both_keys_and_verifies_with_both() {
        let (a, b) = (signer(), signer());
        let note = Transition::sign(&a, &b, 10, [7; 32]).unwrap();
        let t = Transition::verify(&note).unwrap();
        assert_eq!(
            (t.old, t.new, t.size, t.root),
            (a.verifier(), b.verifier(), 10, [7; 32])
        );
        // Either key alone verifies its own line of it.
        a.verifier().verify_note(&note).unwrap();
        b.verifier().verify_note(&note).unwrap();
    }

    #[test]
    fn a_transition_missing_either_signature_or_altered_is_refused() {
        let (a, b, c) = (signer(), signer(), signer());
        let note = Transition::sign(&a, &b, 10, [7; 32]).unwrap();
        let text = note.split("\n\n").next().unwrap().to_owned() + "\n";
        // Signed by the old key only: the new key's holder never agreed.
        let only_old = NoteSigner::sign_note_by_all(&[&a], &text).unwrap();
        assert!(matches!(
            Transition::verify(&only_old),
            Err(KeyChainError::Note(NoteError::NotSigned(_)))
        ));
        // Signed by the new key only: nobody trusted endorsed it.
        let only_new = NoteSigner::sign_note_by_all(&[&b], &text).unwrap();
        assert!(Transition::verify(&only_new).is_err());
        // A third key substituted for the new one in the text breaks both signatures.
        let swapped = note.replace(&b.verifier_key(), &c.verifier_key());
        assert!(Transition::verify(&swapped).is_err());
        // Another size.
        let moved = note.replace("size 10", "size 11");
        assert!(Transition::verify(&moved).is_err());
        // A checkpoint is not a transition, and a transition is not a checkpoint.
        assert!(Transition::verify(&checkpoint(&[&a, &b], 10)).is_err());
        assert!(Checkpoint::parse(&text).is_err());
    }

    #[test]
    fn a_chain_verifies_checkpoints_on_both_sides_of_each_change() {
        let (a, b, c) = (signer(), signer(), signer());
        let ab = Transition::sign(&a, &b, 10, [1; 32]).unwrap();
        let bc = Transition::sign(&b, &c, 25, [2; 32]).unwrap();
        // Pinned to the first key, to the middle one or to the newest: the same chain.
        for anchor in [&a, &b, &c] {
            let chain = KeyChain::new(anchor.verifier(), &[ab.clone(), bc.clone()]).unwrap();
            assert_eq!(chain.current(), &c.verifier());
            assert_eq!(chain.keys().len(), 3);
            let (cp, by) = chain.verify_checkpoint(&checkpoint(&[&a], 9)).unwrap();
            assert_eq!((cp.size, by), (9, &a.verifier()));
            // The checkpoint at the change, signed by both, is the new key's.
            let (cp, by) = chain.verify_checkpoint(&checkpoint(&[&a, &b], 10)).unwrap();
            assert_eq!((cp.size, by), (10, &b.verifier()));
            assert_eq!(
                chain
                    .verify_checkpoint(&checkpoint(&[&b], 20))
                    .unwrap()
                    .0
                    .size,
                20
            );
            assert_eq!(
                chain
                    .verify_checkpoint(&checkpoint(&[&c], 30))
                    .unwrap()
                    .0
                    .size,
                30
            );
            assert_eq!(chain.by_key_hash(&b.key_hash()), Some(&b.verifier()));
        }
    }

    #[test]
    fn a_retired_key_signs_nothing_past_its_change() {
        let (a, b) = (signer(), signer());
        let chain = KeyChain::new(
            b.verifier(),
            &[Transition::sign(&a, &b, 10, [1; 32]).unwrap()],
        )
        .unwrap();
        assert_eq!(
            chain.verify_checkpoint(&checkpoint(&[&a], 11)).unwrap_err(),
            KeyChainError::RetiredKey {
                size: 11,
                retired_at: 10
            }
        );
    }

    #[test]
    fn keys_outside_the_chain_are_refused() {
        let (a, b, stranger) = (signer(), signer(), signer());
        let ab = Transition::sign(&a, &b, 10, [1; 32]).unwrap();
        assert_eq!(
            KeyChain::new(stranger.verifier(), std::slice::from_ref(&ab)).unwrap_err(),
            KeyChainError::NotInChain
        );
        let chain = KeyChain::new(a.verifier(), &[ab]).unwrap();
        assert!(matches!(
            chain.verify_checkpoint(&checkpoint(&[&stranger], 12)),
            Err(KeyChainError::Note(NoteError::NotSigned(_)))
        ));
        // A bad signature line of a chain key is an error, not "unsigned".
        let good = checkpoint(&[&b], 12);
        let forged = good.replace("\n12\n", "\n13\n");
        assert!(chain.verify_checkpoint(&forged).is_err());
    }

    #[test]
    fn transitions_must_link_up() {
        let (a, b, c, d) = (signer(), signer(), signer(), signer());
        let ab = Transition::sign(&a, &b, 10, [1; 32]).unwrap();
        let cd = Transition::sign(&c, &d, 20, [1; 32]).unwrap();
        assert!(matches!(
            KeyChain::new(a.verifier(), &[ab.clone(), cd]),
            Err(KeyChainError::Broken(_))
        ));
        let back = Transition::sign(&b, &a, 20, [1; 32]).unwrap();
        assert!(matches!(
            KeyChain::new(a.verifier(), &[ab.clone(), back]),
            Err(KeyChainError::Broken(_))
        ));
        let bc_earlier = Transition::sign(&b, &c, 9, [1; 32]).unwrap();
        assert!(matches!(
            KeyChain::new(a.verifier(), &[ab.clone(), bc_earlier]),
            Err(KeyChainError::Broken(_))
        ));
        let mut chain = KeyChain::new(a.verifier(), &[ab]).unwrap();
        chain
            .follow(&Transition::sign(&b, &c, 10, [1; 32]).unwrap())
            .unwrap();
        assert_eq!(chain.current(), &c.verifier());
        assert_eq!(chain.transitions().len(), 2);
    }
}
