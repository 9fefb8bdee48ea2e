//! After `gridhub demo` and a few API writes, no plaintext value of any encrypted field is
//! anywhere in the SQLite files (db, -wal, -shm), while the hub runs and after it stops.

use std::path::Path;
use std::process::Command;

use gridhub::demo::{SEED, synth};
use gridhub_tests::process::{signal, start_server, wait_bounded};
use gridhub_tests::{client_for, id_number, login_at};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
const RESIDENTS: usize = 400;

/// Values of encrypted free-form fields (text, identity numbers, phones, dates) of a record.
fn secret_values(category: &str, fields: &serde_json::Map<String, Value>) -> Vec<String> {
    let catalog = policy::Catalog::default_catalog();
    let def = catalog.category(category).expect("category");
    fields
        .iter()
        .filter(|(name, _)| {
            def.field(name).is_some_and(|f| {
                f.encrypted
                    && matches!(
                        f.ty,
                        policy::FieldType::Text { .. }
                            | policy::FieldType::IdNumber
                            | policy::FieldType::Phone
                            | policy::FieldType::Date
                    )
            })
        })
        .filter_map(|(_, v)| v.as_str().map(str::to_owned))
        .filter(|v| v.len() >= 6)
        .collect()
}

/// Scan the database files for every secret at once (Aho-Corasick: one pass per file).
fn scan(dir: &Path, secrets: &[String]) -> usize {
    let finder = aho_corasick::AhoCorasick::new(secrets).unwrap();
    let mut scanned = 0;
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("gridhub.db{suffix}"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        scanned += bytes.len();
        if let Some(m) = finder.find(&bytes) {
            panic!(
                "a plaintext value ({} bytes) of an encrypted field is in {} at offset {}",
                m.end() - m.start(),
                path.display(),
                m.start()
            );
        }
    }
    scanned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_of_encrypted_fields_in_sqlite_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = Command::new(BIN)
        .args([
            "demo",
            "--residents",
            &RESIDENTS.to_string(),
            "--no-serve",
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The demo's data is deterministic: regenerate it to know what to look for.
    let grids = synth::grid_tree(SEED);
    let mut secrets: Vec<String> = synth::population(SEED, RESIDENTS, &grids)
        .iter()
        .chain(synth::places_and_organizations(SEED, RESIDENTS, &grids).iter())
        .flat_map(|r| secret_values(r.category, &r.fields))
        .collect();
    assert!(
        secrets.len() > RESIDENTS * 3,
        "the scan must cover names, id numbers, phones, addresses"
    );

    let server = start_server(BIN, dir);
    let creds = std::fs::read_to_string(dir.join("demo-credentials.txt")).unwrap();
    let worker_pw = creds
        .lines()
        .find(|l| l.starts_with("worker "))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let worker_grid = grids
        .iter()
        .find(|g| matches!(g.level, synth::GridLevel::Community))
        .unwrap()
        .code
        .clone();
    let client = client_for(&dir.join("pki/ca.pem"));
    let base = format!("https://localhost:{}", server.port);
    let token = login_at(&client, &base, "worker", &worker_pw).await;
    for (i, name) in ["欧阳明月", "司马长风", "诸葛青云"].iter().enumerate() {
        let idn = id_number(&format!("330102197707{:02}88{i}", i + 1));
        let phone = format!("1995555000{i}");
        let address = format!("临江市滨河区秘密街道{i}号楼");
        let fields = json!({"name": name, "id_number": idn, "phone": phone, "address": address, "residence": "floating"});
        let fields = fields.as_object().unwrap().clone();
        let body = json!({"category": "person", "grid": worker_grid, "purpose": "population-registration", "fields": fields});
        let resp = client
            .post(format!("{base}/v1/records"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        secrets.extend(secret_values("person", &fields));
    }
    // While the hub runs (the WAL holds the newest pages) and after a clean stop.
    assert!(scan(dir, &secrets) > 100_000, "database files were scanned");
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
    scan(dir, &secrets);
    // The seeding went through the ledger like any write, and the ledger verifies.
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
