//! What a verifier reads from a possibly hostile hub: C2SP signed notes and checkpoints,
//! verifier keys, and inclusion and consistency proofs (RFC 9162).

use std::sync::{Arc, OnceLock};

use super::{split_choice, text, vault};
use crate::ledger::merkle::{
    self, Frontier, Hash, consistency_ranges, inclusion_ranges, verify_consistency,
    verify_inclusion,
};
use crate::ledger::note::{Checkpoint, NoteSigner, Verifier};

/// The note signer of the fuzzing vault, under the name a hub's ledger would use.
fn signer() -> &'static NoteSigner {
    static SIGNER: OnceLock<NoteSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = vault().ledger_key().unwrap_or_else(|| {
            Arc::clone(&vault().current_signing_key().expect("a signing key").key)
        });
        NoteSigner::new("gridhub.example/fuzz", key).expect("a valid key name")
    })
}

/// Four readers, picked by the first byte:
/// 0. a note checked against the hub's verifier (what it returns ends the note);
/// 1. a checkpoint body (one that parses prints and parses again to itself);
/// 2. a verifier key (one that parses prints to a key that parses to the same verifier);
/// 3. the text of a note, signed, must verify, and any one flipped bit of the signed note
///    (the next two bytes say which) must not.
pub fn signed_note(data: &[u8]) {
    let Some((choice, rest)) = split_choice(data, 4) else {
        return;
    };
    let verifier = signer().verifier();
    match choice {
        0 => {
            let Some(note) = text(rest) else {
                return;
            };
            if let Ok(body) = verifier.verify_note(note) {
                assert!(note.starts_with(body), "the verified text begins the note");
                let _ = Checkpoint::parse(body);
            }
        }
        1 => {
            let Some(body) = text(rest) else {
                return;
            };
            if let Ok(checkpoint) = Checkpoint::parse(body) {
                assert_eq!(Checkpoint::parse(&checkpoint.body()), Ok(checkpoint));
            }
        }
        2 => {
            let Some(vkey) = text(rest) else {
                return;
            };
            if let Ok(parsed) = Verifier::from_vkey(vkey) {
                let again = Verifier::from_vkey(&parsed.verifier_key()).expect("printed vkey");
                assert_eq!(again.name(), parsed.name());
                assert_eq!(again.public_key(), parsed.public_key());
            }
        }
        _ => sign_then_flip(&verifier, rest),
    }
}

fn sign_then_flip(verifier: &Verifier, data: &[u8]) {
    let (Some(at), Some(body)) = (data.get(..2), data.get(2..).and_then(text)) else {
        return;
    };
    let Ok(note) = signer().sign_note(body) else {
        return;
    };
    assert_eq!(
        verifier.verify_note(&note),
        Ok(body),
        "a signed note verifies"
    );
    let mut flipped = note.into_bytes();
    let bit = usize::from(u16::from_le_bytes([at[0], at[1]])) % (flipped.len() * 8);
    flipped[bit / 8] ^= 1 << (bit % 8);
    if let Ok(flipped) = std::str::from_utf8(&flipped) {
        assert!(
            verifier.verify_note(flipped).is_err(),
            "a note with a flipped bit must not verify"
        );
    }
}

/// `MTH(leaves)` by the hub's own tree builder.
fn tree_root(leaves: &[Hash]) -> Hash {
    let mut tree = Frontier::new();
    for leaf in leaves {
        tree.push(*leaf);
    }
    tree.root()
}

/// A proof as its ranges say, hashed from the leaves.
fn proof_of(leaves: &[Hash], ranges: &[(u64, u64)]) -> Vec<Hash> {
    ranges
        .iter()
        .map(|&(lo, hi)| tree_root(&leaves[lo as usize..hi as usize]))
        .collect()
}

/// The fuzzer's proof: the real proof's hashes XORed with the input's 32-byte chunks, as many
/// hashes as there are chunks (so it is shorter, longer or equal to the real one).
fn mutated(real: &[Hash], chunks: &[u8]) -> Vec<Hash> {
    chunks
        .chunks(32)
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = real.get(i).copied().unwrap_or([0; 32]);
            for (b, x) in h.iter_mut().zip(chunk) {
                *b ^= x;
            }
            h
        })
        .collect()
}

/// Proofs, the first byte picking how:
/// 0. inclusion, all values from the input (no panic, whatever they are);
/// 1. consistency, all values from the input;
/// 2. inclusion in a real tree of 1–64 leaves: the real proof verifies, and a proof made from
///    the input verifies only if it is the real proof;
/// 3. the same for consistency between two real tree sizes.
pub fn merkle_proof(data: &[u8]) {
    let Some((choice, rest)) = split_choice(data, 4) else {
        return;
    };
    match choice {
        0 | 1 => {
            let Some((head, proof)) = rest.split_at_checked(80) else {
                return;
            };
            let a = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            let b = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
            let x: Hash = head[16..48].try_into().expect("32 bytes");
            let y: Hash = head[48..80].try_into().expect("32 bytes");
            let proof = mutated(&[], proof);
            if choice == 0 {
                let _ = verify_inclusion(a, b, &x, &proof, &y);
            } else {
                let _ = verify_consistency(a, b, &x, &y, &proof);
            }
        }
        _ => {
            let [size, which, chunks @ ..] = rest else {
                return;
            };
            let size = 1 + u64::from(*size % 64);
            let leaves: Vec<Hash> = (0..size)
                .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
                .collect();
            let root = tree_root(&leaves);
            if choice == 2 {
                let index = u64::from(*which) % size;
                let leaf = leaves[index as usize];
                let real = proof_of(&leaves, &inclusion_ranges(index, size).expect("in range"));
                assert_eq!(verify_inclusion(index, size, &leaf, &real, &root), Ok(()));
                let proof = mutated(&real, chunks);
                let accepted = verify_inclusion(index, size, &leaf, &proof, &root).is_ok();
                assert_eq!(
                    accepted,
                    proof == real,
                    "only the real inclusion proof verifies"
                );
            } else {
                let old = 1 + u64::from(*which) % size;
                let old_root = tree_root(&leaves[..old as usize]);
                let real = proof_of(&leaves, &consistency_ranges(old, size).expect("sizes"));
                assert_eq!(
                    verify_consistency(old, size, &old_root, &root, &real),
                    Ok(())
                );
                let proof = mutated(&real, chunks);
                let accepted = verify_consistency(old, size, &old_root, &root, &proof).is_ok();
                assert_eq!(
                    accepted,
                    proof == real,
                    "only the real consistency proof verifies"
                );
            }
        }
    }
}
