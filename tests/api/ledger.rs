//! The audit ledger seen from outside: receipts, checkpoints and proofs checked with an
//! independent verifier written here from RFC 9162 and the C2SP note spec (not the hub's code),
//! fail-closed writes, and the monotonic clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use ring::digest::SHA256;
use serde_json::Value;

type Hash = [u8; 32];

fn sha(parts: &[&[u8]]) -> Hash {
    let mut ctx = ring::digest::Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

fn leaf(entry: &[u8]) -> Hash {
    sha(&[&[0], entry])
}

fn node(l: &Hash, r: &Hash) -> Hash {
    sha(&[&[1], l, r])
}

/// RFC 9162 §2.1.3.2.
pub(crate) fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: Hash,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnum, mut snum) = (index, size - 1);
    let mut r = leaf_hash;
    for p in proof {
        if snum == 0 {
            return false;
        }
        if fnum & 1 == 1 || fnum == snum {
            r = node(p, &r);
            if fnum & 1 == 0 {
                while fnum & 1 == 0 && fnum != 0 {
                    fnum >>= 1;
                    snum >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fnum >>= 1;
        snum >>= 1;
    }
    snum == 0 && &r == root
}

/// RFC 9162 §2.1.4.2.
pub(crate) fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 || first > second || proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut fnum, mut snum) = (first - 1, second - 1);
    while fnum & 1 == 1 {
        fnum >>= 1;
        snum >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snum == 0 {
            return false;
        }
        if fnum & 1 == 1 || fnum == snum {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if fnum & 1 == 0 {
                while fnum & 1 == 0 && fnum != 0 {
                    fnum >>= 1;
                    snum >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        fnum >>= 1;
        snum >>= 1;
    }
    &fr == first_root && &sr == second_root && snum == 0
}

/// A checkpoint checked by hand against the C2SP rules: Ed25519 over the note text, key hash
/// = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[..4]. Returns (size, root).
pub(crate) fn check_checkpoint(note: &str, key_name: &str, public_key: &[u8]) -> (u64, Hash) {
    let (text, sigs) = note
        .split_once("\n\n")
        .expect("blank line before signatures");
    let text = format!("{text}\n");
    let key_hash = &sha(&[key_name.as_bytes(), b"\n", &[1], public_key])[..4];
    let mut verified = false;
    for line in sigs.lines() {
        let rest = line
            .strip_prefix("\u{2014} ")
            .expect("signature line starts with an em dash");
        let (name, b64) = rest.rsplit_once(' ').unwrap();
        let raw = B64.decode(b64).unwrap();
        if name == key_name && &raw[..4] == key_hash {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
                .verify(text.as_bytes(), &raw[4..])
                .expect("checkpoint signature verifies");
            verified = true;
        }
    }
    assert!(verified, "no signature line of the ledger key");
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), key_name, "origin");
    let size: u64 = lines.next().unwrap().parse().unwrap();
    let root: Hash = B64
        .decode(lines.next().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    (size, root)
}

/// The hashes of the proof served at `path` (`/v1/audit/proofs/…`); panics with the answer if
/// it holds no proof.
pub(crate) async fn proof_path(app: &TestApp, path: &str) -> Vec<Hash> {
    let proof: Value = app
        .client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    proof["proof"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: {proof}"))
        .iter()
        .map(hash_of)
        .collect()
}

pub(crate) fn hash_of(v: &Value) -> Hash {
    B64.decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

pub(crate) async fn public_key(app: &TestApp) -> (String, Vec<u8>) {
    let pk: Value = app
        .client
        .get(app.url("/v1/audit/public-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = pk["key_name"].as_str().unwrap().to_owned();
    let key = B64.decode(pk["public_key"].as_str().unwrap()).unwrap();
    let vkey = pk["verifier"].as_str().unwrap();
    assert!(vkey.starts_with(&format!("{name}+")));
    (name, key)
}

pub(crate) async fn checkpoint(app: &TestApp) -> String {
    let resp = app
        .client
        .get(app.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

async fn create(app: &TestApp, name: &str, first17: &str, phone: &str) -> Value {
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &person(WORKER_GRID, name, &id_number(first17), phone),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

on_both_backends!(
    receipts_checkpoints_and_proofs_verify_independently,
    ledger_failure_means_nothing_is_written,
    subject_lookups_find_entries_in_every_run
);

async fn receipts_checkpoints_and_proofs_verify_independently(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key_name, key) = public_key(&app).await;
    let first_note = checkpoint(&app).await;
    let (size1, root1) = check_checkpoint(&first_note, &key_name, &key);

    let created = create(&app, "张三", "33010219900101123", "13811112222").await;
    let receipt = &created["receipt"];
    let index = receipt["index"].as_u64().unwrap();
    // The receipt is signed by the ledger key over the documented message.
    let message = format!(
        "gridhub-receipt/v1\n{index}\n{}\n{}\n",
        receipt["leaf_hash"].as_str().unwrap(),
        receipt["integrated_time"].as_str().unwrap()
    );
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
        .verify(
            message.as_bytes(),
            &B64.decode(receipt["signature"].as_str().unwrap()).unwrap(),
        )
        .expect("receipt signature verifies");
    for i in 0..5 {
        create(
            &app,
            "李四",
            &format!("33010219910201{i}34"),
            &format!("1390000000{i}"),
        )
        .await;
    }
    let note = checkpoint(&app).await;
    let (size2, root2) = check_checkpoint(&note, &key_name, &key);
    assert!(size2 > index && size2 > size1);

    // The entry behind the receipt: its canonical text hashes to the receipt's leaf hash and
    // names the record and its fields, never a value.
    let page: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?start={index}&limit=1"),
        )
        .await
        .json()
        .await
        .unwrap();
    let entry = &page["entries"][0];
    let canonical = entry["canonical"].as_str().unwrap();
    assert_eq!(leaf(canonical.as_bytes()), hash_of(&receipt["leaf_hash"]));
    assert_eq!(entry["entry"]["action"], "record.create");
    assert_eq!(entry["entry"]["records"][0]["id"], created["id"]);
    assert_eq!(entry["entry"]["records"][0]["fields"]["phone"], "written");
    for secret in ["张三", "13811112222", "330102199001011"] {
        assert!(!canonical.contains(secret), "personal value in the ledger");
    }

    // Inclusion of every entry in the newest tree, checked by the RFC algorithm above.
    for i in 0..size2 {
        let proof: Value = app
            .client
            .get(app.url(&format!(
                "/v1/audit/proofs/inclusion?index={i}&size={size2}"
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let path: Vec<Hash> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash_of)
            .collect();
        assert!(
            verify_inclusion(i, size2, hash_of(&proof["leaf_hash"]), &path, &root2),
            "inclusion of {i}"
        );
        // A proof for the wrong index does not verify.
        if size2 > 1 {
            assert!(
                !verify_inclusion(
                    (i + 1) % size2,
                    size2,
                    hash_of(&proof["leaf_hash"]),
                    &path,
                    &root2
                ) || path.is_empty()
            );
        }
    }
    // Consistency between the two checkpoints.
    let proof: Value = app
        .client
        .get(app.url(&format!(
            "/v1/audit/proofs/consistency?from={size1}&to={size2}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash_of)
        .collect();
    assert!(verify_consistency(size1, size2, &root1, &root2, &path));
    assert!(
        !verify_consistency(size1, size2, &root2, &root1, &path),
        "swapped roots refused"
    );

    // Out-of-range proofs are clear errors.
    let resp = app
        .client
        .get(app.url(&format!(
            "/v1/audit/proofs/inclusion?index={size2}&size={size2}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 400);
    let resp = app
        .client
        .get(app.url(&format!(
            "/v1/audit/proofs/inclusion?index=0&size={}",
            size2 + 1000
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 400);

    // The offline verifier reads this database (SQLite file or PostgreSQL) and agrees.
    let out = tokio::task::spawn_blocking({
        let dir = app.data_dir.path().to_path_buf();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_gridhub-under-test"))
                .args(["audit", "verify", "--data-dir"])
                .arg(dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(
        out.status.success() && text.contains("ledger intact"),
        "{text}"
    );

    // The subject view lists the record's entries; workers may not search the ledger.
    let id = created["id"].as_str().unwrap();
    let subject: Value = app
        .get(&app.dpo_token, &format!("/v1/audit/subjects/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        subject["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["index"] == index)
    );
    assert_eq!(
        app.get(&app.worker_token, "/v1/audit/entries")
            .await
            .status(),
        403
    );
    // Denials are entries too.
    let grid = serde_json::json!({"code": "330110.001.001.077", "name": "x", "kind": "physical"});
    assert_eq!(
        app.post(&app.worker_token, "/v1/grids", &grid)
            .await
            .status(),
        403
    );
    let denied: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?decision=deny&limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let entries = denied["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["entry"]["action"] == "grid.create" && e["entry"]["decision"] == "deny"),
        "{denied}"
    );
    app.stop().await;
}

/// Make the ledger's store refuse inserts (a trigger in the database), then try to write.
async fn ledger_failure_means_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.raw_count("SELECT COUNT(*) AS n FROM records").await;
    let entries_before = app
        .raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
        .await;
    app.break_ledger().await;
    let body = person(
        WORKER_GRID,
        "王五",
        &id_number("33010219800303345"),
        "13733334444",
    );
    let (status, code, err) =
        error_code(app.post(&app.worker_token, "/v1/records", &body).await).await;
    assert_eq!((status, code.as_str()), (503, "audit_unavailable"), "{err}");
    let batch = serde_json::json!({"records": [body.clone()]});
    let (status, code, _) = error_code(
        app.post(&app.worker_token, "/v1/records/batch", &batch)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "audit_unavailable"));
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM records").await,
        before,
        "nothing written"
    );
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM ledger_entries")
            .await,
        entries_before
    );

    app.mend_ledger().await;
    // The ledger probes its storage and serves again by itself; the probe's entry, the first
    // after the outage, records it.
    app.wait_ready(std::time::Duration::from_secs(30)).await;
    let created = create(&app, "王五", "33010219800303345", "13733334444").await;
    // Indexes stay contiguous: the refused writes consumed none.
    assert_eq!(
        created["receipt"]["index"].as_i64().unwrap(),
        entries_before + 1
    );
    let recovered = crate::grants::entries_of(&app, "ledger.storage_recovered").await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0]["index"].as_i64(), Some(entries_before));
    assert!(
        recovered[0]["reason"]
            .as_str()
            .unwrap()
            .ends_with("(database_error); operations refused meanwhile: 1"),
        "{}",
        recovered[0]
    );
    app.stop().await;
}

/// The subject index keeps a record's rows in runs (PostgreSQL: one per 1 024 entries; SQLite:
/// one per merge of staged rows). A lookup by record finds every entry of it, in index order,
/// across runs with and without the record, staged or merged, and honours its limit.
async fn subject_lookups_find_entries_in_every_run(backend: Backend) {
    use gridhub::config::DatabaseLocation;
    use gridhub::storage::{LedgerRow, Store};

    let dir = tempfile::tempdir().unwrap();
    let location = match backend {
        Backend::Sqlite => DatabaseLocation::Sqlite(dir.path().join("subjects.db")),
        Backend::Postgres => {
            DatabaseLocation::Postgres(gridhub_tests::fresh_pg_database().await.0.into())
        }
    };
    let store = Store::open(&location).await.unwrap();
    let row = |index: i64, subjects: &[&str]| LedgerRow {
        index,
        time_ms: 0,
        actor: "{}".to_owned(),
        action: "data.read".to_owned(),
        purpose: None,
        case_id: None,
        decision: "allow".to_owned(),
        department: None,
        category: None,
        request_id: "-".to_owned(),
        stream: "disclosure",
        canonical: format!("{{\"index\":{index}}}"),
        leaf_hash: vec![0; 32],
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
    };
    // SQLite: a merge after each of the first five, so runs 0..=4 and two staged rows.
    // PostgreSQL: one subject set per entry, found through its GIN index.
    let appended: [(i64, &[&str]); 7] = [
        (0, &["a", "b"]),
        (1023, &["b"]),
        (1024, &["c"]),
        (2047, &["a", "c"]),
        (2048, &["b"]),
        (4096, &["a"]),
        (4097, &["b"]),
    ];
    for (i, (index, subjects)) in appended.iter().enumerate() {
        store
            .append_ledger(&[row(*index, subjects)], &[])
            .await
            .unwrap();
        // The last two stay staged on SQLite.
        // (A whole run in one transaction; the writer copies one slice per commit.)
        if i < 5 {
            let sorted = store.sort_staged_subjects(i64::MAX).await.unwrap();
            let run = store.next_subject_run().await.unwrap();
            store
                .append_subject_run(run, 0..sorted, Some(i64::MAX))
                .await
                .unwrap();
        }
    }
    let found = |rows: Vec<(i64, String)>| -> Vec<i64> {
        rows.into_iter()
            .map(|(index, canonical)| {
                assert_eq!(canonical, format!("{{\"index\":{index}}}"));
                index
            })
            .collect()
    };
    let lookup = |record: &'static str, limit: i64| {
        let store = store.clone();
        async move {
            found(
                store
                    .ledger_entries_for_subject(record, limit)
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(lookup("a", 10).await, [0, 2047, 4096]);
    assert_eq!(lookup("b", 10).await, [0, 1023, 2048, 4097]);
    assert_eq!(lookup("c", 10).await, [1024, 2047]);
    assert_eq!(lookup("b", 2).await, [0, 1023]);
    assert!(lookup("z", 10).await.is_empty());
}
