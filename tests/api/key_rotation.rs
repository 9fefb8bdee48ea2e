//! KEK rotation (issue 22): a new version wraps new data keys at once; the rewrap moves every
//! data key of the old version to it (unwrap and wrap only) while writes and pulls go on; the
//! old version is retired when nothing uses it; a rewrap killed half-way resumes and finishes
//! without rewrapping anything twice.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use gridhub_tests::process::{signal, wait_bounded};
use gridhub_tests::{
    Backend, SpawnOptions, TestApp, WORKER_GRID, id_number, on_both_backends, person,
    spawn_app_with,
};
use serde_json::{Value, json};

use crate::faults::{BIN, Load, audit_verify, check_nothing_lost, puller};

on_both_backends!(rotation_under_writes_and_pulls_rewraps_everything_and_retires_the_old_version);
on_both_backends!(a_rewrap_killed_half_way_resumes_without_rewrapping_anything_twice);

/// Records written before the rotation (their data keys are what the rewrap moves).
const SEEDED: usize = 600;
/// Bound on every wait: a hang guard, not a timing assertion.
const BOUND: Duration = Duration::from_secs(120);

/// One KEK version as `GET /v1/admin/keys` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Version {
    version: u64,
    state: String,
    deks: i64,
    wraps: i64,
    rewrapped: i64,
}

async fn versions(app: &TestApp, category: &str) -> Vec<Version> {
    let resp = app.get(&app.admin_token, "/v1/admin/keys").await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    let category = report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == category)
        .unwrap_or_else(|| panic!("no key category `{category}` in {report}"));
    category["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Version {
            version: v["version"].as_u64().unwrap(),
            state: v["state"].as_str().unwrap().to_owned(),
            deks: v["deks"].as_i64().unwrap(),
            wraps: v["wraps"].as_i64().unwrap(),
            rewrapped: v["rewrapped"].as_i64().unwrap(),
        })
        .collect()
}

/// Poll `GET /v1/admin/keys` until `version` of `category` is retired (at most `BOUND`); the
/// versions then.
async fn until_retired(app: &TestApp, category: &str, version: u64) -> Vec<Version> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let now = versions(app, category).await;
        if now
            .iter()
            .any(|v| v.version == version && v.state == "retired")
        {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "version {version} of `{category}` was not retired: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `SEEDED` person records in batches of 100; their ids.
async fn seed(app: &TestApp, prefix: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for batch in 0..SEEDED / 100 {
        let records: Vec<Value> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                let first17 = format!("3301{prefix:02}19{:02}0101{:03}", 50 + n / 1000, n % 1000);
                person(WORKER_GRID, "李雷", &id_number(&first17), "13812345678")
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
        let body: Value = resp.json().await.unwrap();
        ids.extend(
            body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
    }
    ids
}

/// Every id reads back (decrypted) for the grid worker.
async fn all_readable(app: &TestApp, ids: &[String]) {
    for id in ids {
        let resp = app
            .get(&app.worker_token, &format!("/v1/records/{id}"))
            .await;
        assert_eq!(
            resp.status(),
            200,
            "record {id} reads back after the rotation"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["fields"]["name"], "李雷", "record {id} decrypts");
    }
}

/// The ledger entries of `action`.
async fn entries(app: &TestApp, action: &str) -> Vec<Value> {
    let page: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?action={action}&limit=100"),
        )
        .await
        .json()
        .await
        .unwrap();
    page["entries"].as_array().unwrap().clone()
}

async fn app_with(backend: Backend, config: &str) -> TestApp {
    spawn_app_with(
        backend,
        SpawnOptions {
            extra_config: Some(config.to_owned()),
            ..SpawnOptions::default()
        },
    )
    .await
}

async fn rotation_under_writes_and_pulls_rewraps_everything_and_retires_the_old_version(
    backend: Backend,
) {
    // A slow rewrap (200 data keys a second), so that it runs for seconds under the load.
    let app = app_with(backend, "rewrap_rate = 200\nkek_retire_grace_secs = 0").await;
    let seeded = seed(&app, 11).await;
    let dept = puller(&app).await;
    let load = Load::start(&app, Some(&dept), 2, 61).await;
    load.until_acknowledged(10).await;

    let resp = app
        .post(&app.admin_token, "/v1/admin/keys/person/rotate", &json!({}))
        .await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    let rotation: Value = resp.json().await.unwrap();
    assert_eq!(rotation["version"], 2);
    assert_eq!(rotation["previous"], 1);

    // New writes take version 2 at once, while the rewrap of version 1 is still under way.
    let during = versions(&app, "person").await;
    let v1 = during.iter().find(|v| v.version == 1).unwrap();
    assert_eq!(v1.state, "rewrap", "{during:?}");
    assert!(
        v1.deks > 0,
        "the rewrap is still running (200 keys/s): {during:?}"
    );
    load.until_acknowledged(10).await;

    // Writes and pulls go on until version 1 is retired.
    let after = until_retired(&app, "person", 1).await;
    load.until_acknowledged(5).await;
    let outcomes = load.stop().await;
    assert!(
        outcomes.refused.is_empty() && outcomes.transport_errors == 0,
        "no request failed during the rotation: {:?}, {} transport errors",
        outcomes.refused,
        outcomes.transport_errors
    );
    check_nothing_lost(&app, &outcomes).await;
    all_readable(&app, &seeded).await;

    let final_state = versions(&app, "person").await;
    let v1 = final_state.iter().find(|v| v.version == 1).unwrap();
    let v2 = final_state.iter().find(|v| v.version == 2).unwrap();
    assert_eq!(v1.deks, 0, "the old version wraps nothing: {final_state:?}");
    assert_eq!(v2.state, "active");
    assert_eq!(
        v1.rewrapped, v1.wraps,
        "every data key ever wrapped under version 1 was rewrapped once: {final_state:?}"
    );
    assert_eq!(
        v2.wraps, v2.deks,
        "version 2 wrapped each of its data keys once (new and rewrapped): {final_state:?}"
    );
    assert!(v1.rewrapped >= i64::try_from(SEEDED).unwrap(), "{after:?}");

    // The metrics show the rewrap's progress.
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        "gridhub_kek_rewrapped{{category=\"person\",version=\"1\",state=\"retired\"}} {}",
        v1.rewrapped
    );
    assert!(text.lines().any(|l| l == line), "no `{line}` in /metrics");

    assert_eq!(entries(&app, "keys.rotate").await.len(), 1);
    let retired = entries(&app, "keys.retire").await;
    assert_eq!(retired.len(), 1, "{retired:?}");
    eprintln!(
        "rotation under load: {} writes and {} pulls acknowledged; {} data keys rewrapped",
        outcomes.writes.len(),
        outcomes.pulls.len(),
        v1.rewrapped
    );
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

async fn a_rewrap_killed_half_way_resumes_without_rewrapping_anything_twice(backend: Backend) {
    let app = app_with(backend, "kek_retire_grace_secs = 0").await;
    let seeded = seed(&app, 12).await;
    let data_dir = app.data_dir.path().to_path_buf();
    let mut killed_at = String::new();
    let mut resumed = String::new();
    // With the hub stopped (its own background rewrap would otherwise take part), as an
    // operator would from a shell.
    let app = app
        .restart_after(|| {
            let mut rotate = Command::new(BIN)
                .args(["keys", "rotate", "--category", "person", "--rate", "100"])
                .arg("--data-dir")
                .arg(&data_dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = BufReader::new(rotate.stdout.take().unwrap());
            for line in stdout.lines() {
                let line = line.unwrap();
                // One batch of 100 stored: kill it half-way through the 600.
                if line.starts_with("rewrapped ") {
                    killed_at = line;
                    break;
                }
            }
            signal(&rotate, "KILL");
            let status = wait_bounded(rotate);
            assert!(!status.success(), "the rewrap was killed: {status:?}");
            assert!(
                !killed_at.is_empty(),
                "the rewrap reported progress before it was killed"
            );

            let out = Command::new(BIN)
                .args(["keys", "rewrap", "--rate", "0", "--data-dir"])
                .arg(&data_dir)
                .output()
                .unwrap();
            resumed = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "the resumed rewrap finished: {resumed}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
    eprintln!("killed after `{killed_at}`; resumed:\n{resumed}");
    assert!(
        resumed.contains("retired `person` version 1"),
        "the resumed run retired version 1: {resumed}"
    );
    // The resumed run started where the killed one stopped, not from zero.
    let first_resumed: i64 = resumed
        .lines()
        .find_map(|l| l.strip_prefix("rewrapped "))
        .and_then(|l| l.split('/').next())
        .and_then(|n| n.parse().ok())
        .expect("the resumed run reports progress");
    let killed_moved: i64 = killed_at
        .strip_prefix("rewrapped ")
        .and_then(|l| l.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        first_resumed > killed_moved,
        "the resumed run counts on from {killed_moved}: {first_resumed}"
    );

    let state = versions(&app, "person").await;
    let v1 = state.iter().find(|v| v.version == 1).unwrap();
    let v2 = state.iter().find(|v| v.version == 2).unwrap();
    let n = i64::try_from(seeded.len()).unwrap();
    assert_eq!(v1.state, "retired", "{state:?}");
    assert_eq!(v1.deks, 0, "{state:?}");
    assert_eq!(v1.rewrapped, n, "each data key moved once: {state:?}");
    assert_eq!(
        v2.wraps, n,
        "version 2 wrapped each data key exactly once, across the kill: {state:?}"
    );
    assert_eq!(v2.deks, n);
    all_readable(&app, &seeded).await;

    // New records take version 2; a record written now reads back.
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(
                WORKER_GRID,
                "李雷",
                &id_number("33010219990101123"),
                "13812345678",
            ),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let after = versions(&app, "person").await;
    assert_eq!(
        after.iter().find(|v| v.version == 2).unwrap().deks,
        n + 1,
        "{after:?}"
    );
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

on_both_backends!(an_exported_keyring_restores_a_hub_that_lost_its_own);

/// The recovery drill (docs/OPERATIONS.md "Keyring recovery drill"): export the keyring to an
/// offline age recipient; lose the data directory's keyring and identity; import the export
/// with the offline identity; the hub starts and every record reads back. The export is
/// audited, and an import that would drop key versions is refused.
async fn an_exported_keyring_restores_a_hub_that_lost_its_own(backend: Backend) {
    use age::secrecy::ExposeSecret;

    let app = app_with(backend, "kek_retire_grace_secs = 0").await;
    let ids = seed(&app, 13).await;
    let data_dir = app.data_dir.path().to_path_buf();
    let offline = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let identity_file = offline.path().join("offline.key");
    std::fs::write(
        &identity_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let export = offline.path().join("keyring.export.age");
    let gridhub = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let app = app
        .restart_after(|| {
            let recipient = identity.to_public().to_string();
            let (ok, out) = gridhub(&[
                "keys",
                "export",
                "--to",
                &recipient,
                "--out",
                export.to_str().unwrap(),
            ]);
            assert!(ok, "export: {out}");
            let sealed = std::fs::read(&export).unwrap();
            let keyring = std::fs::read(data_dir.join("keyring.age")).unwrap();
            assert_ne!(
                sealed, keyring,
                "the export is sealed to the offline recipient"
            );

            // A rotation after the export: importing it now would lose version 2.
            let (ok, out) = gridhub(&["keys", "rotate", "--category", "person", "--rate", "0"]);
            assert!(ok, "rotate: {out}");
            let from = ["--from", export.to_str().unwrap()];
            let id = ["--identity", identity_file.to_str().unwrap()];
            let (ok, out) = gridhub(&[&["keys", "import"][..], &from, &id].concat());
            assert!(!ok, "an import that drops key versions is refused");
            assert!(out.contains("person v2"), "{out}");

            // Disaster: the keyring and its identity are gone; the export (from before the
            // rotation) cannot serve the data rewrapped to version 2, so export again first,
            // as the drill says after every rotation.
            let export2 = offline.path().join("keyring.export2.age");
            let (ok, out) = gridhub(&[
                "keys",
                "export",
                "--to",
                &recipient,
                "--out",
                export2.to_str().unwrap(),
            ]);
            assert!(ok, "export: {out}");
            std::fs::remove_file(data_dir.join("keyring.age")).unwrap();
            std::fs::remove_file(data_dir.join("keyring.identity")).unwrap();
            let (ok, out) = gridhub(&["keys", "status"]);
            assert!(
                !ok,
                "without its keyring the hub cannot open its keys: {out}"
            );
            let from2 = ["--from", export2.to_str().unwrap()];
            let (ok, out) = gridhub(&[&["keys", "import"][..], &from2, &id].concat());
            assert!(ok, "import: {out}");
        })
        .await;
    all_readable(&app, &ids).await;
    let exports = entries(&app, "keys.export").await;
    assert_eq!(exports.len(), 2, "{exports:?}");
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

on_both_backends!(the_hub_rotates_a_key_by_itself_once_it_reaches_its_wrap_budget);

/// With a wrap budget of 500: 600 records are written (600 wraps under version 1) and 350 of
/// them erased, so the rotation the hub's key worker (every 5 s) makes by itself, as `system`,
/// moves fewer than 500 data keys: version 2 stays within its budget. Version 1 is rewrapped and
/// retired as after any rotation.
async fn the_hub_rotates_a_key_by_itself_once_it_reaches_its_wrap_budget(backend: Backend) {
    let app = app_with(
        backend,
        "kek_rotate_after_wraps = 500\nkek_retire_grace_secs = 0\nrewrap_rate = 0",
    )
    .await;
    let ids = seed(&app, 14).await;
    let (erased, kept) = ids.split_at(350);
    for id in erased {
        let resp = app
            .delete(&app.dpo_token, &format!("/v1/records/{id}"))
            .await;
        assert!(resp.status().is_success(), "erase {id}: {}", resp.status());
    }
    let state = until_retired(&app, "person", 1).await;
    let v1 = state.iter().find(|v| v.version == 1).unwrap();
    let v2 = state.iter().find(|v| v.version == 2).unwrap();
    assert_eq!(v1.wraps, i64::try_from(SEEDED).unwrap(), "{state:?}");
    assert_eq!(v2.state, "active", "{state:?}");
    assert_eq!(v2.deks, 250, "{state:?}");
    // The worker may rotate while the erasures are still going on (600 wraps are reached
    // before the first): version 2 wrapped exactly the data keys moved to it, each once.
    assert_eq!(v2.wraps, v1.rewrapped, "{state:?}");
    assert!((250..500).contains(&v2.wraps), "{state:?}");
    assert!(
        !state.iter().any(|v| v.version == 3),
        "version 2 is within its budget: {state:?}"
    );
    let rotations = entries(&app, "keys.rotate").await;
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(
        rotations[0]["entry"]["actor"]["user"], "system",
        "{rotations:?}"
    );
    assert!(
        rotations[0].to_string().contains("rotation threshold"),
        "{rotations:?}"
    );
    all_readable(&app, kept).await;
    drop(app.stop().await);
}
