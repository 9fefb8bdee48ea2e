//! Ledger signing-key rotation (issue 22): the old key and a new one sign a transition statement
//! naming both and the size and root of the old key's last checkpoint; checkpoints on both sides
//! of the change verify (each under its own key, by hand and by `gridhub audit verify` pinned to
//! the old key), the tree stays one (a consistency proof across the change), the old key can
//! publish nothing more, a running hub follows a rotation made by another process, and a
//! rotation interrupted before its statement was recorded completes at the next start.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gridhub::ledger::keychain::{KeyChain, Transition};
use gridhub::ledger::note::{NoteSigner, Verifier};
use gridhub::storage::StoredCheckpoint;
use gridhub::vault::keyring::{AgeFileStore, KeyringStore};
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

use crate::faults::BIN;
use crate::ledger::{check_checkpoint, verify_consistency};

on_both_backends!(a_rotation_keeps_checkpoints_on_both_sides_verifiable_and_fences_the_old_key);
on_both_backends!(a_running_hub_follows_a_ledger_key_rotated_by_another_process);
on_both_backends!(a_rotation_interrupted_before_its_statement_completes_at_the_next_start);
on_both_backends!(a_department_client_pinned_to_the_old_key_follows_the_rotation);

/// Bound on every wait: a hang guard, not a timing assertion.
const BOUND: Duration = Duration::from_secs(60);

async fn write_people(app: &TestApp, prefix: u32, n: usize) {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let first17 = format!("3302{prefix:02}1980{:02}01{:03}", 1 + i / 500, i % 500);
            person(WORKER_GRID, "韩梅梅", &id_number(&first17), "13912345678")
        })
        .collect();
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &json!({ "records": records }),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

async fn public_key(app: &TestApp) -> Value {
    let resp = app.get(&app.admin_token, "/v1/audit/public-key").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn checkpoint(app: &TestApp) -> String {
    let resp = app.get(&app.admin_token, "/v1/audit/checkpoint").await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// (key name, raw public key) of a `/v1/audit/public-key` answer.
fn key_of(pk: &Value) -> (String, Vec<u8>) {
    (
        pk["key_name"].as_str().unwrap().to_owned(),
        B64.decode(pk["public_key"].as_str().unwrap()).unwrap(),
    )
}

fn transitions(pk: &Value) -> Vec<String> {
    pk["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn audit_verify(app: &TestApp, vkey: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify", "--data-dir"])
        .arg(app.data_dir.path());
    if let Some(v) = vkey {
        cmd.args(["--vkey", v]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "gridhub audit verify failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn a_rotation_keeps_checkpoints_on_both_sides_verifiable_and_fences_the_old_key(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    write_people(&app, 1, 40).await;
    let before = public_key(&app).await;
    assert_eq!(transitions(&before), Vec::<String>::new());
    let old_vkey = before["verifier"].as_str().unwrap().to_owned();
    let (name, old_key) = key_of(&before);
    let old_cp = checkpoint(&app).await;
    let (old_size, old_root) = check_checkpoint(&old_cp, &name, &old_key);
    // A receipt the old key signed (re-signed now, as an idempotent replay would get it).
    let (_, old_receipt) = app.state.ledger.stored_receipt(old_size - 1).await.unwrap();
    // The old key's bytes, to play a process that missed the rotation.
    let keyring = AgeFileStore::in_dir(app.data_dir.path()).load().unwrap();
    let old_pkcs8 = B64
        .decode(&keyring.ledger_key.as_ref().unwrap().pkcs8)
        .unwrap();
    let old_signer = NoteSigner::from_pkcs8(&name, &old_pkcs8).unwrap();

    // Only administrators rotate it; a refusal changes nothing.
    let refused = app
        .post(&app.dpo_token, "/v1/admin/ledger-key/rotate", &json!({}))
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(public_key(&app).await["verifier"], before["verifier"]);

    let resp = app
        .post(&app.admin_token, "/v1/admin/ledger-key/rotate", &json!({}))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let rotation: Value = resp.json().await.unwrap();
    let after = public_key(&app).await;
    assert_eq!(after["verifier"], rotation["verifier"]);
    assert_ne!(after["verifier"], before["verifier"]);
    assert_eq!(after["key_id"], rotation["new_key_id"]);
    assert_eq!(before["key_id"], rotation["old_key_id"]);
    let new_vkey = after["verifier"].as_str().unwrap().to_owned();
    let (_, new_key) = key_of(&after);

    // The statement: both keys, the size of the old key's last checkpoint (which covers the
    // rotation's own ledger entry), signed by both.
    let statements = transitions(&after);
    assert_eq!(statements.len(), 1);
    let t = Transition::verify(&statements[0]).unwrap();
    assert_eq!(t.old.verifier_key(), old_vkey);
    assert_eq!(t.new.verifier_key(), new_vkey);
    assert_eq!(t.size, rotation["size"].as_u64().unwrap());
    assert!(t.size > rotation["ledger_index"].as_u64().unwrap());
    assert!(t.size > old_size);

    // The new key signs what follows; the old key does not.
    write_people(&app, 2, 40).await;
    let new_cp = checkpoint(&app).await;
    let (new_size, new_root) = check_checkpoint(&new_cp, &name, &new_key);
    assert!(new_size > t.size);
    assert!(
        Verifier::from_vkey(&old_vkey)
            .unwrap()
            .verify_note(&new_cp)
            .is_err()
    );
    let (_, new_receipt) = app.state.ledger.stored_receipt(new_size - 1).await.unwrap();
    assert_eq!(new_receipt.key_id, after["key_id"].as_str().unwrap());

    // One tree across the change: the old checkpoint is consistent with the new one.
    let proof: Value = app
        .get(
            &app.admin_token,
            &format!("/v1/audit/proofs/consistency?from={old_size}&to={new_size}"),
        )
        .await
        .json()
        .await
        .unwrap();
    let path: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    assert!(verify_consistency(
        old_size, new_size, &old_root, &new_root, &path
    ));

    // A verifier that pinned the old key follows the statement; so does one pinned to the new.
    for pinned in [&old_vkey, &new_vkey] {
        let chain = KeyChain::new(Verifier::from_vkey(pinned).unwrap(), &statements).unwrap();
        assert_eq!(chain.verify_checkpoint(&old_cp).unwrap().0.size, old_size);
        assert_eq!(chain.verify_checkpoint(&new_cp).unwrap().0.size, new_size);
        assert!(chain.by_key_hash(&hex(&old_receipt.key_id)).is_some());
        assert!(chain.by_key_hash(&hex(&new_receipt.key_id)).is_some());
    }
    let pinned_old = audit_verify(&app, Some(&old_vkey));
    assert!(pinned_old.contains("rotated 1 time"), "{pinned_old}");
    assert!(pinned_old.contains("ledger intact"), "{pinned_old}");
    audit_verify(&app, None);

    // A process that missed the rotation signs with the old key: its checkpoint is not stored.
    write_people(&app, 3, 5).await;
    let size = app.state.ledger.size();
    let stale = StoredCheckpoint {
        size: i64::try_from(size).unwrap(),
        root: vec![0; 32],
        note: old_signer
            .sign_note(&format!("{name}\n{size}\n{}\n", B64.encode([0u8; 32])))
            .unwrap(),
        time_ms: 0,
    };
    let stored = app
        .state
        .store
        .insert_checkpoint(&stale, before["key_id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(!stored, "a checkpoint signed by the retired key was stored");
    let served = checkpoint(&app).await;
    assert_eq!(check_checkpoint(&served, &name, &new_key).0, size);

    // The keyring file holds the new key alone, and a restarted hub signs with it.
    let keyring = AgeFileStore::in_dir(app.data_dir.path()).load().unwrap();
    assert!(keyring.previous_ledger_key.is_none());
    let app = app.restart().await;
    assert_eq!(public_key(&app).await["verifier"], new_vkey.as_str());
    write_people(&app, 4, 5).await;
    let (_, _) = check_checkpoint(&checkpoint(&app).await, &name, &new_key);
    audit_verify(&app, Some(&old_vkey));
    app.stop().await;
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

async fn a_running_hub_follows_a_ledger_key_rotated_by_another_process(backend: Backend) {
    let app = spawn_app(backend).await;
    write_people(&app, 5, 20).await;
    let before = public_key(&app).await;
    let out = Command::new(BIN)
        .args(["keys", "rotate", "--ledger-key", "--data-dir"])
        .arg(app.data_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gridhub keys rotate --ledger-key failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("new verifier key: "), "{stdout}");
    let new_vkey = stdout
        .lines()
        .find_map(|l| l.strip_prefix("new verifier key: "))
        .unwrap()
        .to_owned();
    // The running hub learns of it from the database and the shared keyring file.
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let now = public_key(&app).await;
        if now["verifier"] == new_vkey.as_str() {
            assert_eq!(transitions(&now).len(), 1);
            break;
        }
        assert_eq!(now["verifier"], before["verifier"]);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the running hub still signs with the old key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    write_people(&app, 6, 20).await;
    let (name, new_key) = key_of(&public_key(&app).await);
    let (size, _) = check_checkpoint(&checkpoint(&app).await, &name, &new_key);
    assert_eq!(size, app.state.ledger.size());
    audit_verify(&app, before["verifier"].as_str());
    app.stop().await;
}

async fn a_rotation_interrupted_before_its_statement_completes_at_the_next_start(backend: Backend) {
    let app = spawn_app(backend).await;
    write_people(&app, 7, 20).await;
    let before = public_key(&app).await;
    let old_cp = checkpoint(&app).await;
    // Killed after the keyring file got the new key, before the statement was recorded.
    let dir = app.data_dir.path().to_path_buf();
    let app = app
        .restart_after(|| {
            let store = AgeFileStore::in_dir(&dir);
            let mut file = store.load().unwrap();
            file.rotate_ledger_key(0).unwrap();
            store.save(&file).unwrap();
        })
        .await;
    let after = public_key(&app).await;
    assert_ne!(after["verifier"], before["verifier"]);
    let statements = transitions(&after);
    assert_eq!(statements.len(), 1);
    let t = Transition::verify(&statements[0]).unwrap();
    assert_eq!(t.old.verifier_key(), before["verifier"].as_str().unwrap());
    let chain = KeyChain::new(t.old.clone(), &statements).unwrap();
    chain.verify_checkpoint(&old_cp).unwrap();
    write_people(&app, 8, 20).await;
    chain.verify_checkpoint(&checkpoint(&app).await).unwrap();
    audit_verify(&app, before["verifier"].as_str());
    app.stop().await;
}

async fn a_department_client_pinned_to_the_old_key_follows_the_rotation(backend: Backend) {
    use connectors::Client;
    use connectors::state::StateFile;

    let (app, civil, ids) = crate::sdk::hub_with_residents(backend).await;
    let state = tempfile::tempdir().unwrap();
    let path = crate::sdk::state_path(&state);
    let client = Client::new(crate::sdk::config(&app, &civil).state_file(path.clone())).unwrap();
    // Pinned on first use, before the rotation; every receipt and proof checked.
    let first = client.pull("person", crate::sdk::pull(5)).await.unwrap();
    assert_eq!(first.records.len(), 5);
    let before = client.ledger_keys().unwrap();
    assert_eq!(before.pinned, before.current);
    assert!(before.transitions.is_empty());

    let resp = app
        .post(&app.admin_token, "/v1/admin/ledger-key/rotate", &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let rotation: Value = resp.json().await.unwrap();

    // The same client, and a new one on the same state file (a restarted department system),
    // pull under the new key: the pin stays, the chain grows by the one statement.
    let fresh = Client::new(crate::sdk::config(&app, &civil).state_file(path.clone())).unwrap();
    for c in [&client, &fresh] {
        let mut seen = Vec::new();
        for page in futures_util::TryStreamExt::try_collect::<Vec<_>>(
            c.pull_all("person", crate::sdk::pull(7)),
        )
        .await
        .unwrap()
        {
            seen.extend(page.records.into_iter().map(|r| r.id));
        }
        seen.sort();
        assert_eq!(seen, ids.iter().cloned().collect::<Vec<_>>());
        let keys = c.ledger_keys().unwrap();
        assert_eq!(keys.pinned, before.pinned);
        assert_eq!(keys.current, rotation["verifier"].as_str().unwrap());
        assert_eq!(keys.transitions.len(), 1);
    }
    let stored = StateFile::new(path).load().unwrap();
    assert_eq!(stored.vkey.as_deref(), Some(before.pinned.as_str()));
    assert_eq!(stored.transitions.len(), 1);
    app.stop().await;
}
