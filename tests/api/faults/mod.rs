//! Fault injection under load (issue 16): the disk fills to the last byte, the filesystem turns
//! read-only, PostgreSQL runs out of space or is stopped and started, errors are injected at
//! COMMIT and at the ledger append. Each run drives real writes and real department pulls over
//! TLS while the fault happens, then checks that nothing acknowledged was lost:
//!
//! - every record whose write was answered 201 is present and readable;
//! - every receipt (writes and disclosures) names a distinct index, its entry is stored with the
//!   receipt's leaf hash, and its inclusion proof verifies against a later signed checkpoint;
//! - every checkpoint served during the run is consistent with the last one;
//! - `gridhub audit verify` passes, and the hub serves again once the fault is cleared.
//!
//! The mounts need root (CI runs as root); a test that cannot mount fails, it does not skip.

mod disk;
mod injected;
mod load;
mod mounts;
pub(crate) mod postgres;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt;
use gridhub_tests::TestApp;

use gridhub_tests::mtls::DeptClient;
use mounts::Filler;
use serde_json::{Value, json};

use crate::grants::{approved_grant, grant_request};
use crate::ledger::{check_checkpoint, hash_of, proof_path, public_key, verify_inclusion};
pub(crate) use load::{Load, Outcomes};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

/// A hub whose data directory lives under `dir` (a mount the test made).
pub(crate) async fn app_under(backend: gridhub_tests::Backend, dir: &Path) -> TestApp {
    gridhub_tests::spawn_app_with(
        backend,
        gridhub_tests::SpawnOptions {
            parent_dir: Some(dir.to_path_buf()),
            ..gridhub_tests::SpawnOptions::default()
        },
    )
    .await
}

/// Wait until the hub's ledger has turned degraded (a write of the ledger itself failed; other
/// requests may be refused earlier, where storage fails before the ledger is reached). Polls
/// the ledger's own state, bounded.
pub(crate) async fn wait_degraded(app: &TestApp) {
    let start = std::time::Instant::now();
    while app.state.ledger.health() == gridhub::ledger::Health::Writable {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the ledger did not notice the fault"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `GET /readyz` must answer 503 `storage_unavailable` now; returns its error body.
pub(crate) async fn assert_unready(app: &TestApp) -> Value {
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    let (status, code, body) = gridhub_tests::error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (503, "storage_unavailable"),
        "{body}"
    );
    body
}

/// While the disk is full, `GET /readyz` answers 503 `storage_unavailable`; returns its error
/// body. The database may free a little space after the fault (a rolled-back file shrinking) and
/// the hub's recovery probe may then succeed, which is right: the test takes that space too and
/// waits for the hub to notice again, a few times at most.
pub(crate) async fn assert_unready_while_full(app: &TestApp, filler: &mut Filler) -> Value {
    for _ in 0..5 {
        wait_degraded(app).await;
        let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
        if resp.status() == 200 {
            filler.top_up();
            continue;
        }
        let (status, code, body) = gridhub_tests::error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (503, "storage_unavailable"),
            "{body}"
        );
        return body;
    }
    panic!("the hub kept recovering on a full disk");
}

/// A department with a client and an approved grant on persons in the worker's district, so
/// that the load can pull (and be refused) while the fault happens.
pub(crate) async fn puller(app: &TestApp) -> DeptClient {
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let client = app.register_client("civil-sys", "civil-affairs").await;
    let grant = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear", "phone": "masked"}),
        &["330110.001"],
    );
    approved_grant(app, &client, &grant).await;
    client
}

/// What `check_nothing_lost` verified, for the test's own assertions and its log.
#[derive(Debug)]
pub(crate) struct Checked {
    pub records: usize,
    pub receipts: usize,
    pub checkpoints: usize,
    pub ledger_size: u64,
}

/// The checks every fault run ends with (see the module doc). The hub must be serving.
pub(crate) async fn check_nothing_lost(app: &TestApp, outcomes: &Outcomes) -> Checked {
    let (key_name, key) = public_key(app).await;
    let note = crate::ledger::checkpoint(app).await;
    let (size, root) = check_checkpoint(&note, &key_name, &key);

    // Receipts: distinct indexes, signatures valid, entries stored, included in the tree.
    let receipts: Vec<&Value> = outcomes
        .writes
        .iter()
        .chain(&outcomes.pulls)
        .map(|(_, r)| r)
        .collect();
    let mut seen = HashSet::new();
    for r in &receipts {
        let index = r["index"].as_u64().unwrap();
        assert!(seen.insert(index), "two receipts name ledger index {index}");
        assert!(
            index < size,
            "receipt {index} is beyond the checkpoint of size {size}"
        );
        check_receipt_signature(&key, r);
    }
    let leaves = stored_leaves(app, size).await;
    let checks = futures_util::stream::iter(receipts.iter().map(|r| {
        let index = r["index"].as_u64().unwrap();
        let leaf = hash_of(&r["leaf_hash"]);
        let stored = leaves.get(&index).copied();
        async move {
            if stored != Some(leaf) {
                let page: Value = app
                    .get(
                        &app.dpo_token,
                        &format!("/v1/audit/entries?start={index}&limit=3"),
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                panic!(
                    "the entry of receipt {index} is missing or differs: receipt {r}, stored \
                     from there: {page}"
                );
            }
            let path = proof_path(
                app,
                &format!("/v1/audit/proofs/inclusion?index={index}&size={size}"),
            )
            .await;
            assert!(
                verify_inclusion(index, size, leaf, &path, &root),
                "inclusion proof of receipt {index} does not verify"
            );
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<()>>();
    checks.await;

    // Every acknowledged record is there and readable. All are read before judging, so a
    // failure says which acknowledged writes (in the order they were answered, with their
    // ledger indexes) lost how many records.
    let reads = futures_util::stream::iter(outcomes.writes.iter().enumerate().flat_map(
        |(n, (ids, receipt))| {
            ids.iter().map(move |id| async move {
                let resp = app
                    .get(&app.admin_token, &format!("/v1/records/{id}"))
                    .await;
                (n, receipt["index"].as_u64(), resp.status().as_u16())
            })
        },
    ))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    let mut lost: BTreeMap<(usize, Option<u64>), usize> = BTreeMap::new();
    for (n, index, status) in reads {
        if status != 200 {
            *lost.entry((n, index)).or_default() += 1;
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged records are lost: {} of {} acknowledged writes lost records, as \
         ((answer number, ledger index), records lost): {lost:?}; last ledger index \
         acknowledged {:?}",
        lost.len(),
        outcomes.writes.len(),
        outcomes
            .writes
            .iter()
            .filter_map(|(_, r)| r["index"].as_u64())
            .max()
    );

    // Every checkpoint served during the run is consistent with the last one.
    for served in &outcomes.checkpoints {
        let (old_size, old_root) = check_checkpoint(served, &key_name, &key);
        assert!(
            old_size <= size,
            "a checkpoint of size {old_size} was served; the ledger now has {size} entries"
        );
        if old_size == size {
            assert_eq!(old_root, root, "two checkpoints of size {size} differ");
            continue;
        }
        if old_size == 0 {
            continue;
        }
        let path = proof_path(
            app,
            &format!("/v1/audit/proofs/consistency?from={old_size}&to={size}"),
        )
        .await;
        assert!(
            crate::ledger::verify_consistency(old_size, size, &old_root, &root, &path),
            "the checkpoint of size {old_size} served during the fault is not consistent with \
             the one of size {size}"
        );
    }
    assert!(
        !outcomes.writes.is_empty() && !outcomes.checkpoints.is_empty(),
        "the run acknowledged no write or served no checkpoint"
    );
    Checked {
        records: outcomes.writes.iter().map(|(ids, _)| ids.len()).sum(),
        receipts: receipts.len(),
        checkpoints: outcomes.checkpoints.len(),
        ledger_size: size,
    }
}

/// `gridhub audit verify --data-dir DIR`: must pass.
pub(crate) fn audit_verify(data_dir: &Path) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridhub audit verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The receipt's Ed25519 signature over `gridhub-receipt/v1\nINDEX\nLEAF\nTIME\n`.
fn check_receipt_signature(key: &[u8], receipt: &Value) {
    let message = format!(
        "gridhub-receipt/v1\n{}\n{}\n{}\n",
        receipt["index"],
        receipt["leaf_hash"].as_str().unwrap(),
        receipt["integrated_time"].as_str().unwrap()
    );
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(
            message.as_bytes(),
            &B64.decode(receipt["signature"].as_str().unwrap()).unwrap(),
        )
        .unwrap_or_else(|_| panic!("receipt {} has a bad signature", receipt["index"]));
}

/// Leaf hash of every entry below `size`, from the entries' texts as the API serves them.
async fn stored_leaves(app: &TestApp, size: u64) -> BTreeMap<u64, [u8; 32]> {
    let mut out = BTreeMap::new();
    let mut start = 0u64;
    while start < size {
        let page: Value = app
            .get(
                &app.dpo_token,
                &format!("/v1/audit/entries?start={start}&limit=1000"),
            )
            .await
            .json()
            .await
            .unwrap();
        let entries = page["entries"].as_array().unwrap();
        assert!(!entries.is_empty(), "entries from {start} are missing");
        for e in entries {
            let index = e["index"].as_u64().unwrap();
            let leaf = ring::digest::digest(
                &ring::digest::SHA256,
                &[&[0u8][..], e["canonical"].as_str().unwrap().as_bytes()].concat(),
            );
            out.insert(index, leaf.as_ref().try_into().unwrap());
            start = start.max(index + 1);
        }
    }
    out
}

/// Refusals seen during the fault must be the documented 503s, nothing else.
pub(crate) fn assert_refusals_are_clean(outcomes: &Outcomes) {
    assert!(
        !outcomes.refused.is_empty(),
        "the fault refused nothing: it did not happen"
    );
    for (what, n) in &outcomes.refused {
        assert!(
            what.starts_with("503 audit_unavailable")
                || what.starts_with("503 storage_unavailable"),
            "{n} requests were refused with {what} (expected 503 audit_unavailable or \
             storage_unavailable)"
        );
    }
}
