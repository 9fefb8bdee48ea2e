//! `Trust` against a ledger served from memory (the hub's three public endpoints, with real
//! signatures and Merkle proofs): key rotations are followed from the pin, and refused when no
//! transition the pinned key endorsed leads to the hub's key. The hub itself is exercised end
//! to end in `tests/api`.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use tlog::Hash;
use tlog::cosignature::{Cosigner, add_signature_lines};
use tlog::keychain::Transition;
use tlog::merkle::{consistency_ranges, empty_root, leaf_hash, node_hash};
use tlog::note::{Checkpoint, NoteSigner, receipt_message};

use super::*;

const ORIGIN: &str = "gridhub/test";

fn pkcs8() -> Vec<u8> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn signer() -> NoteSigner {
    NoteSigner::from_pkcs8(ORIGIN, &pkcs8()).unwrap()
}

/// RFC 9162 MTH, the plain recursive way.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// The hub's public ledger endpoints over a tree of 32 leaves.
struct FakeHub {
    leaves: Vec<Hash>,
    public_key: Mutex<PublicKey>,
    checkpoint: Mutex<String>,
    key_fetches: AtomicUsize,
}

impl FakeHub {
    /// A hub whose current key is `current`, after `transitions`.
    fn new(current: &NoteSigner, transitions: &[String]) -> FakeHub {
        let hub = FakeHub {
            leaves: (0..32u8).map(|i| leaf_hash(&[i])).collect(),
            public_key: Mutex::new(PublicKey {
                verifier: String::new(),
                transitions: Vec::new(),
            }),
            checkpoint: Mutex::new(String::new()),
            key_fetches: AtomicUsize::new(0),
        };
        hub.publish(current, transitions);
        hub
    }

    fn publish(&self, current: &NoteSigner, transitions: &[String]) {
        *self.public_key.lock().unwrap() = PublicKey {
            verifier: current.verifier_key(),
            transitions: transitions.to_vec(),
        };
    }

    /// The checkpoint of `size`, signed by `by`.
    fn checkpoint_note(&self, by: &[&NoteSigner], size: u64) -> String {
        let body = Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: self.root(size),
        }
        .body();
        NoteSigner::sign_note_by_all(by, &body).unwrap()
    }

    fn root(&self, size: u64) -> Hash {
        mth(&self.leaves[..usize::try_from(size).unwrap()])
    }

    fn serve(&self, note: String) {
        *self.checkpoint.lock().unwrap() = note;
    }

    /// The transition from `old` to `new` at `size`.
    fn transition(&self, old: &NoteSigner, new: &NoteSigner, size: u64) -> String {
        Transition::sign(old, new, size, self.root(size)).unwrap()
    }

    fn key_fetches(&self) -> usize {
        self.key_fetches.load(Ordering::SeqCst)
    }
}

impl Ledger for FakeHub {
    async fn public_key(&self) -> Result<PublicKey> {
        self.key_fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.public_key.lock().unwrap().clone())
    }

    async fn checkpoint(&self, _min_cosignatures: Option<usize>) -> Result<String> {
        Ok(self.checkpoint.lock().unwrap().clone())
    }

    async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        let proof = consistency_ranges(from, to)
            .unwrap()
            .into_iter()
            .map(|(lo, hi)| {
                let range = usize::try_from(lo).unwrap()..usize::try_from(hi).unwrap();
                B64.encode(mth(&self.leaves[range]))
            })
            .collect();
        Ok(ConsistencyProof { from, to, proof })
    }
}

/// A state file as an SDK from before key rotation wrote it: the pinned key and a checkpoint.
fn old_state_file(dir: &tempfile::TempDir, pinned: &NoteSigner, checkpoint: &str) -> StateFile {
    let path = dir.path().join("state.json");
    let json = serde_json::json!({"vkey": pinned.verifier_key(), "checkpoint": checkpoint});
    std::fs::write(&path, json.to_string()).unwrap();
    StateFile::new(path)
}

fn receipt(by: &NoteSigner, index: u64) -> Receipt {
    let (leaf, time) = (leaf_hash(&[7]), "2026-01-02T03:04:05.678Z");
    Receipt {
        index,
        leaf_hash: B64.encode(leaf),
        integrated_time: time.to_owned(),
        key_id: tlog::hex::encode(&by.key_hash()),
        signature: B64.encode(by.sign_raw(receipt_message(index, &leaf, time).as_bytes())),
    }
}

#[tokio::test]
async fn a_rotation_is_followed_from_the_pin_in_an_old_state_file() {
    let (a, b) = (signer(), signer());
    let dir = tempfile::tempdir().unwrap();
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    hub.publish(&b, std::slice::from_ref(&ab));
    let file = old_state_file(&dir, &a, &hub.checkpoint_note(&[&a], 5));
    // The checkpoint after the change, signed by the new key only.
    hub.serve(hub.checkpoint_note(&[&b], 12));
    let trust = Trust::new(Some(file.clone()), None, None);
    let verified = trust.advance(&hub).await.unwrap();
    assert_eq!(verified.size(), 12);
    assert_eq!(hub.key_fetches(), 1);
    // The pin stays; the transition and the new checkpoint are stored beside it.
    let stored = file.load().unwrap();
    assert_eq!(stored.vkey, Some(a.verifier_key()));
    assert_eq!(stored.transitions, vec![ab.clone()]);
    assert_eq!(stored.checkpoint.as_deref(), Some(verified.note()));
    assert_eq!(
        trust.ledger_keys(),
        Some(LedgerKeys {
            pinned: a.verifier_key(),
            current: b.verifier_key(),
            transitions: vec![ab],
        })
    );
    // A restart reads the chain from the state file: the stored new-key checkpoint verifies
    // without asking the hub for its key again, and so does a newer one.
    hub.serve(hub.checkpoint_note(&[&b], 20));
    let restarted = Trust::new(Some(file), Some(a.verifier_key()), None);
    assert_eq!(restarted.advance(&hub).await.unwrap().size(), 20);
    assert_eq!(hub.key_fetches(), 1);
}

#[tokio::test]
async fn the_checkpoint_at_the_change_signed_by_both_keys_verifies_either_side() {
    let (a, b) = (signer(), signer());
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    hub.publish(&b, &[ab]);
    hub.serve(hub.checkpoint_note(&[&a], 3));
    // Pinned to the old key, without a state file.
    let trust = Trust::new(None, Some(a.verifier_key()), None);
    assert_eq!(trust.advance(&hub).await.unwrap().size(), 3);
    hub.serve(hub.checkpoint_note(&[&a, &b], 8));
    assert_eq!(trust.advance(&hub).await.unwrap().size(), 8);
    // The old key signed it: nothing to follow yet.
    assert_eq!(hub.key_fetches(), 0);
    hub.serve(hub.checkpoint_note(&[&b], 9));
    assert_eq!(trust.advance(&hub).await.unwrap().size(), 9);
    assert_eq!(hub.key_fetches(), 1);
}

#[tokio::test]
async fn a_new_key_the_pinned_key_did_not_endorse_is_refused() {
    let (a, b, stranger, c) = (signer(), signer(), signer(), signer());
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    let ab_text = ab.split("\n\n").next().unwrap().to_owned() + "\n";
    let cases: [(&str, &NoteSigner, Vec<String>); 4] = [
        ("no transition at all", &b, vec![]),
        (
            "a transition from another key",
            &b,
            vec![hub.transition(&stranger, &b, 8)],
        ),
        (
            "a transition the pinned key did not sign",
            &b,
            vec![NoteSigner::sign_note_by_all(&[&b], &ab_text).unwrap()],
        ),
        (
            "a transition that names another key than the hub's",
            &b,
            vec![hub.transition(&a, &c, 8)],
        ),
    ];
    for (case, current, transitions) in cases {
        let dir = tempfile::tempdir().unwrap();
        let before = hub.checkpoint_note(&[&a], 5);
        let file = old_state_file(&dir, &a, &before);
        hub.publish(current, &transitions);
        hub.serve(hub.checkpoint_note(&[current], 12));
        let trust = Trust::new(Some(file.clone()), None, None);
        match trust.advance(&hub).await {
            Err(Error::UnendorsedKey {
                pinned, hub_key, ..
            }) => {
                assert_eq!(
                    (pinned, hub_key),
                    (a.verifier_key(), b.verifier_key()),
                    "{case}"
                );
            }
            other => panic!("{case}: {other:?}"),
        }
        // Nothing of it was stored.
        let stored = file.load().unwrap();
        assert_eq!(stored.checkpoint, Some(before), "{case}");
        assert!(stored.transitions.is_empty(), "{case}");
        // A receipt of that key is refused the same way.
        assert!(
            matches!(
                trust.receipt_key(&hub, &receipt(current, 3)).await,
                Err(Error::UnendorsedKey { .. })
            ),
            "{case}"
        );
    }
}

#[tokio::test]
async fn transitions_that_fork_from_those_followed_are_refused() {
    let (a, b, c) = (signer(), signer(), signer());
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    hub.publish(&b, std::slice::from_ref(&ab));
    hub.serve(hub.checkpoint_note(&[&b], 10));
    let trust = Trust::new(None, Some(a.verifier_key()), None);
    trust.advance(&hub).await.unwrap();
    // The pinned key endorsed a second successor: a fork of the key history.
    hub.publish(&c, &[hub.transition(&a, &c, 8)]);
    hub.serve(hub.checkpoint_note(&[&c], 12));
    assert!(matches!(
        trust.advance(&hub).await,
        Err(Error::UnendorsedKey { reason, .. }) if reason.contains("do not extend")
    ));
    assert_eq!(trust.ledger_keys().unwrap().current, b.verifier_key());
}

#[tokio::test]
async fn a_retired_key_signs_no_checkpoint_past_its_change() {
    let (a, b) = (signer(), signer());
    let dir = tempfile::tempdir().unwrap();
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    hub.publish(&b, std::slice::from_ref(&ab));
    let file = old_state_file(&dir, &a, &hub.checkpoint_note(&[&b], 10));
    file.update(|s| {
        Ok(Some(State {
            transitions: vec![ab.clone()],
            ..s.clone()
        }))
    })
    .unwrap();
    // Presented by the hub: refused, with no key to follow that could help.
    hub.serve(hub.checkpoint_note(&[&a], 12));
    let trust = Trust::new(Some(file.clone()), None, None);
    assert!(matches!(
        trust.advance(&hub).await,
        Err(Error::BadCheckpoint(why)) if why.contains("retired at size 8")
    ));
    assert_eq!(hub.key_fetches(), 0);
    // Found in the state file: refused too.
    let stale = hub.checkpoint_note(&[&a], 9);
    file.update(|s| {
        Ok(Some(State {
            checkpoint: Some(stale),
            ..s.clone()
        }))
    })
    .unwrap();
    hub.serve(hub.checkpoint_note(&[&b], 12));
    let trust = Trust::new(Some(file), None, None);
    assert!(matches!(
        trust.advance(&hub).await,
        Err(Error::StateFile(why)) if why.contains("retired at size 8")
    ));
}

#[tokio::test]
async fn receipts_are_verified_with_the_key_their_key_id_names() {
    let (a, b, stranger) = (signer(), signer(), signer());
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    hub.publish(&b, &[ab]);
    let trust = Trust::new(None, Some(a.verifier_key()), None);
    // The pinned key's receipt needs nothing from the hub.
    let old = receipt(&a, 3);
    assert_eq!(trust.receipt_key(&hub, &old).await.unwrap(), a.verifier());
    assert_eq!(hub.key_fetches(), 0);
    // The new key's: the chain is followed once.
    let new = receipt(&b, 9);
    let key = trust.receipt_key(&hub, &new).await.unwrap();
    assert_eq!(key, b.verifier());
    verify::receipt_leaf(&key, &new).unwrap();
    assert_eq!(hub.key_fetches(), 1);
    // A key no transition leads to.
    assert!(matches!(
        trust.receipt_key(&hub, &receipt(&stranger, 10)).await,
        Err(Error::UnknownReceiptKey { index: 10, .. })
    ));
}

#[tokio::test]
async fn witnesses_cosign_a_checkpoint_of_the_new_key() {
    let (a, b) = (signer(), signer());
    let witness = Cosigner::from_pkcs8("civil-affairs.example/witness", &pkcs8()).unwrap();
    let hub = FakeHub::new(&a, &[]);
    let ab = hub.transition(&a, &b, 8);
    hub.publish(&b, &[ab]);
    let note = hub.checkpoint_note(&[&b], 12);
    let text = note.rsplit_once("\n\n").unwrap().0.to_owned() + "\n";
    let line = witness.cosign(&text, 1_700_000_000).unwrap();
    hub.serve(add_signature_lines(&note, &[line]).unwrap());
    let rule = WitnessRule::parse(&[witness.vkey()], 1).unwrap();
    let trust = Trust::new(None, Some(a.verifier_key()), Some(rule));
    assert_eq!(trust.advance(&hub).await.unwrap().size(), 12);
}

#[test]
fn the_clients_futures_can_be_spawned() {
    fn send<T: Send>(_: T) {}
    fn check(client: &crate::Client, receipt: &Receipt) {
        send(client.checkpoint());
        send(client.verify_receipt(receipt));
    }
    let _ = check;
}
