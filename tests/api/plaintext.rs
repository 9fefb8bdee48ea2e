//! After `gridhub demo`, a few API writes and a department's pulls and lookups, no plaintext
//! value of any encrypted field is anywhere in the SQLite files (db, -wal, -shm), while the hub
//! runs and after it stops, nor in the hub's log; withheld values are not in the answers.

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
    let mut written = Vec::new();
    for (i, name) in ["欧阳明月", "司马长风", "诸葛青云"].iter().enumerate() {
        let idn = id_number(&format!("330102197707{:02}88{i}", i + 1));
        let phone = format!("1995555000{i}");
        let address = format!("临江市滨河区秘密街道{i}号楼");
        let fields = json!({"name": name, "id_number": idn, "phone": phone, "address": address, "residence": "floating", "tags": ["elderly_alone"]});
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
        written.push((idn, phone));
    }
    // The demo's civil affairs system pulls what its elderly-care grant allows (names in clear,
    // phones masked, no identity numbers), and looks one up: identity numbers and full phones
    // appear neither in the answers nor in the hub's log.
    let civil =
        gridhub_tests::mtls::mtls_client_for_dir(dir, &dir.join("clients/civil-affairs-system"));
    let resp = civil
        .post(format!("{base}/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let ctoken = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = civil
        .get(format!(
            "{base}/v1/data/person?purpose=elderly-care&limit=500"
        ))
        .bearer_auth(&ctoken)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pulled = resp.text().await.unwrap();
    let page: Value = serde_json::from_str(&pulled).unwrap();
    assert!(
        !page["records"].as_array().unwrap().is_empty(),
        "the demo grant reaches someone"
    );
    // Identity numbers and phones of everyone: none may be sent in full (the grant withholds
    // identity numbers and masks phones).
    let people = synth::population(SEED, RESIDENTS, &grids);
    let mut withheld: Vec<String> = people
        .iter()
        .flat_map(|r| {
            ["id_number", "phone"]
                .iter()
                .filter_map(|f| r.fields.get(*f).and_then(Value::as_str).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    withheld.extend(written.iter().flat_map(|(i, p)| [i.clone(), p.clone()]));
    assert!(withheld.len() > RESIDENTS);
    let lookup_of = written[0].0.clone();
    let resp = civil
        .post(format!("{base}/v1/data/person/lookup"))
        .bearer_auth(&ctoken)
        .json(&json!({"purpose": "elderly-care", "key": {"id_number": lookup_of}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let looked_up = resp.text().await.unwrap();
    assert!(
        looked_up.contains("欧阳明月"),
        "the lookup found the resident by identity number"
    );
    for value in &withheld {
        assert!(
            !pulled.contains(value.as_str()) && !looked_up.contains(value.as_str()),
            "a withheld value was sent"
        );
    }
    // While the hub runs (the WAL holds the newest pages) and after a clean stop.
    assert!(scan(dir, &secrets) > 100_000, "database files were scanned");
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
    let log = gridhub_tests::process::drain_to_end(&server.log).join("\n");
    assert!(
        log.contains("route=\"/v1/data/{category}\""),
        "the log was captured: {log}"
    );
    for value in withheld.iter().chain(&secrets) {
        assert!(!log.contains(value.as_str()), "personal data in the log");
    }
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
