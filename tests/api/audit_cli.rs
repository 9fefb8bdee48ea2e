//! `gridhub audit verify` on real databases: intact ledgers pass, every kind of tampering is
//! reported at the right index, a clock that steps backwards does not break order, and killing
//! the hub with SIGKILL during a burst of writes loses no entry whose write was acknowledged.

use std::path::Path;
use std::process::Command;

use gridhub_tests::process::{signal, start_server, wait_bounded};
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, WORKER_PASSWORD, client_for, id_number, login_at, person,
    spawn_app,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

fn verify(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn sql(dir: &Path, statement: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("gridhub.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

async fn busy_app() -> TestApp {
    let app = spawn_app(Backend::Sqlite).await;
    for i in 0..6 {
        let body = person(
            WORKER_GRID,
            "赵六",
            &id_number(&format!("33010219700401{i}56")),
            &format!("1364444000{i}"),
        );
        assert_eq!(
            app.post(&app.worker_token, "/v1/records", &body)
                .await
                .status(),
            201
        );
    }
    // A signed checkpoint over everything so far.
    assert_eq!(
        app.client
            .get(app.url("/v1/audit/checkpoint"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_every_tampering_at_the_right_index() {
    let app = busy_app().await;
    let dir = app.stop().await;
    let (ok, text) = verify(dir.path());
    assert!(ok, "intact ledger must verify: {text}");
    assert!(text.contains("ledger intact"), "{text}");

    let cases: [(&str, &str, &str); 7] = [
        (
            "one byte changed",
            "UPDATE ledger_entries SET canonical = substr(canonical, 1, 10) || 'X' || substr(canonical, 12) WHERE idx = 9",
            "entry 9",
        ),
        (
            "text and leaf hash rewritten",
            "UPDATE ledger_entries SET canonical = replace(canonical, '\"decision\":\"allow\"', '\"decision\":\"deny\"'), leaf_hash = x'00' WHERE idx = 8",
            "entry 8",
        ),
        (
            "entry deleted",
            "DELETE FROM ledger_entries WHERE idx = 7",
            "entry 7",
        ),
        (
            "two entries swapped",
            "UPDATE ledger_entries SET canonical = CASE idx WHEN 6 THEN (SELECT canonical FROM ledger_entries WHERE idx = 10) \
             ELSE (SELECT canonical FROM ledger_entries WHERE idx = 6) END WHERE idx IN (6, 10)",
            "entry 6",
        ),
        (
            "log truncated",
            "DELETE FROM ledger_entries WHERE idx >= 11",
            "entry 11",
        ),
        (
            "a stored tree node (what proofs are built from) altered",
            "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 0",
            "entry 0: entries 0..16 do not match the stored tree node",
        ),
        (
            "a stored tree node deleted",
            "DELETE FROM ledger_nodes WHERE level = 4 AND idx = 0",
            "is missing",
        ),
    ];
    for (what, statement, expected) in cases {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        sql(copy.path(), statement).await;
        let (ok, text) = verify(copy.path());
        assert!(!ok, "{what}: verification passed: {text}");
        assert!(
            text.contains(expected),
            "{what}: expected `{expected}` in: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_may_repeat_when_the_clock_steps_back_but_indexes_never_do() {
    let app = busy_app().await;
    let dir = app.stop().await;
    // Pretend the last entry was written by a clock far ahead of this one (the hub then sees
    // its wall clock step backwards). The filter column is not hashed, so the log still verifies.
    let future: i64 = 4_102_444_800_000; // 2100-01-01
    sql(dir.path(), &format!("UPDATE ledger_entries SET time_ms = {future} WHERE idx = (SELECT MAX(idx) FROM ledger_entries)")).await;
    let server = start_server(BIN, dir.path());
    let client = client_for(&dir.path().join("pki/ca.pem"));
    let base = format!("https://localhost:{}", server.port);
    let token = login_at(&client, &base, "worker", WORKER_PASSWORD).await;
    let mut last_index = -1;
    for i in 0..3 {
        let body = person(
            WORKER_GRID,
            "孙七",
            &id_number(&format!("33010219710501{i}67")),
            &format!("1355555000{i}"),
        );
        let created: Value = client
            .post(format!("{base}/v1/records"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let receipt = &created["receipt"];
        assert!(
            receipt["integrated_time"]
                .as_str()
                .unwrap()
                .starts_with("2100-01-01"),
            "time never goes back: {receipt}"
        );
        let index = receipt["index"].as_i64().unwrap();
        assert!(index > last_index);
        last_index = index;
    }
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
    let (ok, text) = verify(dir.path());
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_entry() {
    let app = busy_app().await;
    let dir = app.stop().await;
    let server = start_server(BIN, dir.path());
    let client = client_for(&dir.path().join("pki/ca.pem"));
    let base = format!("https://localhost:{}", server.port);
    let token = login_at(&client, &base, "worker", WORKER_PASSWORD).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Value)>();
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let (client, base, token, tx) = (client.clone(), base.clone(), token.clone(), tx.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..100_000u32 {
                let seq = w * 100_000 + i;
                let first17 = format!("330102198{:01}0101{:03}", (seq / 1000) % 10, seq % 1000);
                let body = person(WORKER_GRID, "周八", &id_number(&first17), "13466667777");
                let Ok(resp) = client
                    .post(format!("{base}/v1/records"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                else {
                    return; // the server is gone
                };
                if resp.status() != 201 {
                    return;
                }
                let Ok(created) = resp.json::<Value>().await else {
                    return;
                };
                let _ = tx.send((
                    created["id"].as_str().unwrap_or_default().to_owned(),
                    created["receipt"].clone(),
                ));
            }
        }));
    }
    drop(tx);
    // Kill once a good number of writes were acknowledged, while the others are in flight.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 200 {
        acknowledged.push(rx.recv().await.expect("writes are acknowledged"));
    }
    signal(&server.child, "KILL");
    let _ = wait_bounded(server.child);
    for w in writers {
        let _ = w.await;
    }
    while let Ok(more) = rx.try_recv() {
        acknowledged.push(more);
    }

    // Restart: every acknowledged entry is there, byte for byte, and the log verifies.
    let (ok, text) = verify(dir.path());
    assert!(ok, "ledger after SIGKILL: {text}");
    let server = start_server(BIN, dir.path());
    let base = format!("https://localhost:{}", server.port);
    let admin = login_at(&client, &base, "admin", gridhub_tests::ADMIN_PASSWORD).await;
    for (id, receipt) in &acknowledged {
        let index = receipt["index"].as_i64().unwrap();
        let page: Value = client
            .get(format!("{base}/v1/audit/entries?start={index}&limit=1"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entry = &page["entries"][0];
        assert_eq!(
            entry["index"].as_i64(),
            Some(index),
            "acknowledged entry {index} lost"
        );
        let canonical = entry["canonical"].as_str().unwrap();
        let leaf = ring::digest::digest(
            &ring::digest::SHA256,
            &[&[0u8][..], canonical.as_bytes()].concat(),
        );
        use base64::Engine;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(leaf.as_ref()),
            receipt["leaf_hash"].as_str().unwrap()
        );
        let record = client
            .get(format!("{base}/v1/records/{id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(record.status(), 200, "acknowledged record {id} lost");
    }
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_over_https_checks_a_running_hub() {
    let app = busy_app().await;
    let ca = app.data_dir.path().join("pki/ca.pem");
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "audit",
            "verify",
            "--url",
            &app.base,
            "--token",
            &app.dpo_token,
            "--ca",
        ])
        .arg(&ca)
        .args(extra);
        cmd
    };
    let out = tokio::task::spawn_blocking({
        let mut cmd = run(&[]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ledger intact"), "{text}");
    // Pinned to a key the hub does not hold: the checkpoint does not verify.
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let other =
        gridhub::ledger::note::NoteSigner::from_pkcs8("gridhub/gridhub-test", pkcs8.as_ref())
            .unwrap()
            .verifier_key();
    let out = tokio::task::spawn_blocking({
        let mut cmd = run(&["--vkey", &other]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        !out.status.success(),
        "a foreign key must not verify the hub's checkpoints"
    );
    app.stop().await;
}
