//! Pure verification of what the hub shows: receipts (Ed25519 over the receipt message),
//! signed checkpoints, inclusion proofs and the step from a trusted checkpoint to a presented
//! one. Invariant: a `SignedCheckpoint` exists only for a note whose signature by the ledger key
//! it was verified with (in the client: a key of the chain followed from the pinned key)
//! verified and whose body parsed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use tlog::Hash;
use tlog::note::{Checkpoint, Verifier, receipt_message};

use crate::error::{Error, Result};
use crate::model::Receipt;

/// A checkpoint whose signature verified, with its signed note (the evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    note: String,
    /// Invariant: the note's text (what the signature covers), as `verify_note` returned it.
    text: String,
    checkpoint: Checkpoint,
}

impl SignedCheckpoint {
    /// Verify `note` with the ledger's `verifier` and parse its checkpoint.
    pub fn verify(verifier: &Verifier, note: &str) -> Result<SignedCheckpoint> {
        let text = verifier
            .verify_note(note)
            .map_err(|e| Error::BadCheckpoint(e.to_string()))?;
        let checkpoint =
            Checkpoint::parse(text).map_err(|e| Error::BadCheckpoint(e.to_string()))?;
        if checkpoint.origin != verifier.name() {
            return Err(Error::BadCheckpoint(format!(
                "origin `{}` is not the ledger key's name",
                checkpoint.origin
            )));
        }
        Ok(SignedCheckpoint {
            note: note.to_owned(),
            text: text.to_owned(),
            checkpoint,
        })
    }

    /// The checkpoint text the signatures cover (what a witness cosigns).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signed note.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The checkpoint it signs.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }
}

/// Check a receipt's signature with the ledger key; returns its leaf hash.
pub fn receipt_leaf(verifier: &Verifier, receipt: &Receipt) -> Result<Hash> {
    let bad = || Error::BadReceiptSignature {
        index: receipt.index,
    };
    if !receipt
        .key_id
        .eq_ignore_ascii_case(&tlog::hex::encode(&verifier.key_hash()))
    {
        return Err(bad());
    }
    let leaf = decode_hash(&receipt.leaf_hash).map_err(|_| bad())?;
    let signature = B64.decode(&receipt.signature).map_err(|_| bad())?;
    if receipt.integrated_time.contains('\n') {
        return Err(bad());
    }
    let message = receipt_message(receipt.index, &leaf, &receipt.integrated_time);
    verifier
        .verify_raw(message.as_bytes(), &signature)
        .map_err(|_| bad())?;
    Ok(leaf)
}

/// `GET /v1/audit/proofs/inclusion` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct InclusionProof {
    /// The entry.
    pub index: u64,
    /// The tree size.
    pub size: u64,
    /// The entry's leaf hash (base64).
    pub leaf_hash: String,
    /// The audit path (base64 hashes).
    pub proof: Vec<String>,
}

/// `GET /v1/audit/proofs/consistency` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsistencyProof {
    /// The old size.
    pub from: u64,
    /// The new size.
    pub to: u64,
    /// The proof (base64 hashes).
    pub proof: Vec<String>,
}

fn decode_hash(text: &str) -> Result<Hash> {
    let bytes = B64
        .decode(text)
        .map_err(|_| Error::Malformed("a hash is not base64".to_owned()))?;
    Hash::try_from(bytes.as_slice())
        .map_err(|_| Error::Malformed("a hash is not 32 bytes".to_owned()))
}

fn decode_path(proof: &[String]) -> Result<Vec<Hash>> {
    proof.iter().map(|h| decode_hash(h)).collect()
}

/// Check that the entry `index` with leaf hash `leaf` (from its verified receipt) is in the
/// tree of `trusted`, by `proof`. The proof must be for that index, that size and that leaf.
pub fn check_inclusion(
    index: u64,
    leaf: &Hash,
    trusted: &SignedCheckpoint,
    proof: &InclusionProof,
) -> Result<()> {
    let cp = trusted.checkpoint();
    if proof.index != index || proof.size != cp.size {
        return Err(Error::ProofFailed(format!(
            "the inclusion proof is for entry {} in size {}, not entry {index} in size {}",
            proof.index, proof.size, cp.size
        )));
    }
    if decode_hash(&proof.leaf_hash)? != *leaf {
        return Err(Error::ProofFailed(format!(
            "the inclusion proof of entry {index} is for another leaf than the receipt's"
        )));
    }
    tlog::merkle::verify_inclusion(index, cp.size, leaf, &decode_path(&proof.proof)?, &cp.root)
        .map_err(|e| {
            Error::ProofFailed(format!(
                "entry {index} is not in the checkpoint of size {}: {e}",
                cp.size
            ))
        })
}

/// What it takes to go from a trusted checkpoint to a presented one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing changed (same size and root).
    Same,
    /// The presented tree is larger: a consistency proof `from` → `to` is needed.
    Extend { from: u64, to: u64 },
    /// The trusted tree is empty: any tree extends it.
    FromEmpty,
}

/// Decide the step from `trusted` to `presented`; a smaller or forked checkpoint is an error.
pub(crate) fn step(trusted: &SignedCheckpoint, presented: &SignedCheckpoint) -> Result<Step> {
    let (t, p) = (trusted.checkpoint(), presented.checkpoint());
    if p.size < t.size {
        return Err(Error::Rollback {
            trusted_size: t.size,
            presented_size: p.size,
            trusted: trusted.note.clone(),
            presented: presented.note.clone(),
        });
    }
    if t.origin != p.origin || (p.size == t.size && p.root != t.root) {
        return Err(inconsistent(trusted, presented));
    }
    Ok(if p.size == t.size {
        Step::Same
    } else if t.size == 0 {
        Step::FromEmpty
    } else {
        Step::Extend {
            from: t.size,
            to: p.size,
        }
    })
}

fn inconsistent(trusted: &SignedCheckpoint, presented: &SignedCheckpoint) -> Error {
    Error::Inconsistent {
        trusted: trusted.note.clone(),
        presented: presented.note.clone(),
    }
}

/// Check `proof` shows that `presented` extends `trusted`; any failure is `Inconsistent`.
pub(crate) fn check_consistency(
    trusted: &SignedCheckpoint,
    presented: &SignedCheckpoint,
    proof: &ConsistencyProof,
) -> Result<()> {
    let (t, p) = (trusted.checkpoint(), presented.checkpoint());
    if proof.from != t.size || proof.to != p.size {
        return Err(inconsistent(trusted, presented));
    }
    let path = decode_path(&proof.proof).map_err(|_| inconsistent(trusted, presented))?;
    tlog::merkle::verify_consistency(t.size, p.size, &t.root, &p.root, &path)
        .map_err(|_| inconsistent(trusted, presented))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;
    use tlog::merkle::{leaf_hash, node_hash};
    use tlog::note::NoteSigner;

    use super::*;

    const ORIGIN: &str = "gridhub/test";

    fn signer() -> NoteSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        NoteSigner::from_pkcs8(ORIGIN, pkcs8.as_ref()).unwrap()
    }

    fn leaves() -> Vec<Hash> {
        (0..3u8).map(|i| leaf_hash(&[i])).collect()
    }

    fn signed(s: &NoteSigner, size: u64, root: Hash) -> SignedCheckpoint {
        let body = Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root,
        }
        .body();
        SignedCheckpoint::verify(&s.verifier(), &s.sign_note(&body).unwrap()).unwrap()
    }

    fn receipt(s: &NoteSigner, index: u64, leaf: &Hash) -> Receipt {
        let time = "2026-01-02T03:04:05.678Z";
        Receipt {
            index,
            leaf_hash: B64.encode(leaf),
            integrated_time: time.to_owned(),
            key_id: tlog::hex::encode(&s.key_hash()),
            signature: B64.encode(s.sign_raw(receipt_message(index, leaf, time).as_bytes())),
        }
    }

    fn b64(hashes: &[Hash]) -> Vec<String> {
        hashes.iter().map(|h| B64.encode(h)).collect()
    }

    #[test]
    fn a_receipt_verifies_only_with_its_signature_and_key() {
        let (s, other) = (signer(), signer());
        let l = leaves();
        let good = receipt(&s, 0, &l[0]);
        assert_eq!(receipt_leaf(&s.verifier(), &good).unwrap(), l[0]);
        // Signed by another key (same name): the key id differs, and so would the signature.
        assert!(matches!(
            receipt_leaf(&s.verifier(), &receipt(&other, 0, &l[0])),
            Err(Error::BadReceiptSignature { index: 0 })
        ));
        // Another index, leaf or time than was signed.
        for bad in [
            Receipt {
                index: 1,
                ..good.clone()
            },
            Receipt {
                leaf_hash: B64.encode(l[1]),
                ..good.clone()
            },
            Receipt {
                integrated_time: "2026-01-02T03:04:05.679Z".into(),
                ..good.clone()
            },
            Receipt {
                signature: B64.encode([0u8; 64]),
                ..good.clone()
            },
            Receipt {
                signature: "not base64".into(),
                ..good.clone()
            },
        ] {
            assert!(matches!(
                receipt_leaf(&s.verifier(), &bad),
                Err(Error::BadReceiptSignature { .. })
            ));
        }
    }

    #[test]
    fn an_inclusion_proof_of_another_leaf_or_tree_fails() {
        let s = signer();
        let l = leaves();
        let cp = signed(&s, 2, node_hash(&l[0], &l[1]));
        let proof = |index, size, leaf: &Hash, path: &[Hash]| InclusionProof {
            index,
            size,
            leaf_hash: B64.encode(leaf),
            proof: b64(path),
        };
        check_inclusion(0, &l[0], &cp, &proof(0, 2, &l[0], &[l[1]])).unwrap();
        check_inclusion(1, &l[1], &cp, &proof(1, 2, &l[1], &[l[0]])).unwrap();
        for (index, leaf, p) in [
            // The proof of the other leaf, for the receipt's leaf.
            (0, l[0], proof(1, 2, &l[1], &[l[0]])),
            (0, l[0], proof(0, 2, &l[1], &[l[0]])),
            // A leaf that is not in the tree, with a path that would do for it.
            (0, l[2], proof(0, 2, &l[2], &[l[1]])),
            // Wrong size, wrong path, empty and padded paths.
            (0, l[0], proof(0, 3, &l[0], &[l[1]])),
            (0, l[0], proof(0, 2, &l[0], &[l[2]])),
            (0, l[0], proof(0, 2, &l[0], &[])),
            (0, l[0], proof(0, 2, &l[0], &[l[1], l[2]])),
        ] {
            assert!(
                matches!(
                    check_inclusion(index, &leaf, &cp, &p),
                    Err(Error::ProofFailed(_))
                ),
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_checkpoint_that_shrinks_or_forks_is_refused_with_both_notes() {
        let s = signer();
        let l = leaves();
        let two = signed(&s, 2, node_hash(&l[0], &l[1]));
        let three = signed(&s, 3, node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        let forked_two = signed(&s, 2, node_hash(&l[0], &l[2]));
        assert_eq!(step(&two, &two).unwrap(), Step::Same);
        assert_eq!(step(&two, &three).unwrap(), Step::Extend { from: 2, to: 3 });
        match step(&three, &two) {
            Err(Error::Rollback {
                trusted_size: 3,
                presented_size: 2,
                trusted,
                presented,
            }) => {
                assert_eq!(
                    (trusted.as_str(), presented.as_str()),
                    (three.note(), two.note())
                );
            }
            other => panic!("{other:?}"),
        }
        match step(&two, &forked_two) {
            Err(Error::Inconsistent { trusted, presented }) => {
                assert_eq!(
                    (trusted.as_str(), presented.as_str()),
                    (two.note(), forked_two.note())
                );
            }
            other => panic!("{other:?}"),
        }
        let proof = |path: &[Hash]| ConsistencyProof {
            from: 2,
            to: 3,
            proof: b64(path),
        };
        check_consistency(&two, &three, &proof(&[l[2]])).unwrap();
        for bad in [proof(&[l[1]]), proof(&[]), proof(&[l[2], l[2]])] {
            assert!(matches!(
                check_consistency(&two, &three, &bad),
                Err(Error::Inconsistent { .. })
            ));
        }
        // The forked tree of size 2 does not extend to the honest size 3.
        assert!(matches!(
            check_consistency(&forked_two, &three, &proof(&[l[2]])),
            Err(Error::Inconsistent { .. })
        ));
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_or_origin_is_refused() {
        let (s, other) = (signer(), signer());
        let body = Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 1,
            root: [1; 32],
        }
        .body();
        let note = other.sign_note(&body).unwrap();
        assert!(matches!(
            SignedCheckpoint::verify(&s.verifier(), &note),
            Err(Error::BadCheckpoint(_))
        ));
        let foreign = Checkpoint {
            origin: "elsewhere".to_owned(),
            size: 1,
            root: [1; 32],
        }
        .body();
        assert!(matches!(
            SignedCheckpoint::verify(&s.verifier(), &s.sign_note(&foreign).unwrap()),
            Err(Error::BadCheckpoint(_))
        ));
    }
}
