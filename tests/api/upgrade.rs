//! An installation of the release before migration 0016 (department-owned categories, owner
//! consent, statistics grants) opens and serves after the upgrade: its data directory and
//! database, as that release wrote them (`tests/fixtures/before-0016`), are migrated on start;
//! logins, pulls and the ledger keep working, and the new features work on the old data. Later
//! migrations apply too: 0017 fills the audit filter columns of the old entries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use gridhub::config::{Overrides, Settings};
use gridhub::startup::Application;
use gridhub_tests::mtls::key_and_csr;
use gridhub_tests::{Backend, fresh_pg_database, https_client, login_at, on_both_backends};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

fn fixture(backend: Backend) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/before-0016")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "dump.sql" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The demo's password for `user` (`demo-credentials.txt`: `user password role` lines).
fn password(dir: &Path, user: &str) -> String {
    std::fs::read_to_string(dir.join("demo-credentials.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(user)).then(|| parts.next().unwrap().to_owned())
        })
        .unwrap()
}

/// Load the old release's PostgreSQL dump into a fresh database; its URL.
async fn restore(dump: &Path) -> String {
    use sqlx::Connection;
    let (url, _) = fresh_pg_database().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let sql = std::fs::read_to_string(dump).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    url
}

/// Register a new system for `department` (an admin, from a CSR made here); its mTLS client.
/// New rather than the fixture's: those certificates expire one day, and this test must pass
/// on any day.
async fn new_client(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    dir: &Path,
    id: &str,
    department: &str,
) -> reqwest::Client {
    let (key, csr) = key_and_csr(id);
    let resp = http
        .post(format!("{base}/v1/admin/clients"))
        .bearer_auth(admin)
        .json(&json!({"id": id, "department": department, "csr_pem": csr}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let cert = resp.json::<Value>().await.unwrap()["certificate_pem"]
        .as_str()
        .unwrap()
        .to_owned();
    https_client(&dir.join("pki/ca.pem"), Some((&cert, &key.serialize_pem())))
}

async fn client_token(http: &reqwest::Client, base: &str) -> String {
    let resp = http
        .post(format!("{base}/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Entries in the old release's ledger, counted before the hub opens (and migrates) it.
async fn old_ledger_size(backend: Backend, dir: &Path, url: Option<&str>) -> i64 {
    use sqlx::Connection;
    let sql = "SELECT COUNT(*) FROM ledger_entries";
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.join("gridhub.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url.unwrap()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }
}

async fn a_data_directory_of_the_previous_release_opens_and_serves(backend: Backend) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("data");
    copy_dir(&fixture(backend), &dir);
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let url = restore(&fixture(backend).join("dump.sql")).await;
            let config = std::fs::read_to_string(dir.join("gridhub.toml")).unwrap();
            let config: String = config
                .lines()
                .map(|l| {
                    if l.starts_with("database_url") {
                        format!("database_url = \"{url}\"\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(dir.join("gridhub.toml"), config).unwrap();
            Some(url)
        }
    };
    if backend == Backend::Sqlite {
        assert!(
            dir.join("gridhub.db").exists(),
            "the fixture's database is missing"
        );
    }
    // A new development PKI: the fixture's certificates expire one day (the data, the keyring
    // and the accounts are what is under test, not the certificates).
    std::fs::remove_dir_all(dir.join("pki")).unwrap();
    gridhub::tls::pki::create_dev_pki(&dir.join("pki"), "gridhub-demo", &[]).unwrap();
    let keyring_before = std::fs::read(dir.join("keyring.age")).unwrap();
    let old_size = old_ledger_size(backend, &dir, database_url.as_deref()).await;
    let database = match &database_url {
        None => crate::audit_search::Database::Sqlite(dir.join("gridhub.db")),
        Some(url) => crate::audit_search::Database::Postgres(url.clone()),
    };
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(dir.clone()),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            database_url,
        },
    )
    .unwrap();
    let app = Application::build_with_clock(settings, Arc::new(gridhub::time::SystemClock))
        .await
        .expect("the old data directory opens");
    let base = format!("https://localhost:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    // The old accounts log in; the catalog and the old grants serve.
    let http = https_client(&dir.join("pki/ca.pem"), None);
    let admin = login_at(&http, &base, "admin", &password(&dir, "admin")).await;
    let catalog: Value = http
        .get(format!("{base}/v1/catalog"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        catalog["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "person")
    );
    // A grant made now (the fixture's own grants expire one day), approved by the old DPO.
    let mut request = crate::grants::grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "masked", "tags": "clear"}),
        &["330110.001"],
    );
    request["legal_basis"] = json!("《老年人权益保障法》");
    let resp = http
        .post(format!("{base}/v1/grants"))
        .bearer_auth(&admin)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dpo = login_at(&http, &base, "dpo", &password(&dir, "dpo")).await;
    let resp = http
        .post(format!("{base}/v1/grants/{id}/approve"))
        .bearer_auth(&dpo)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let civil = new_client(
        &http,
        &base,
        &admin,
        &dir,
        "civil-affairs-new",
        "civil-affairs",
    )
    .await;
    let token = client_token(&civil, &base).await;
    let resp = civil
        .get(format!(
            "{base}/v1/data/person?purpose=elderly-care&limit=500"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert!(!page["records"].as_array().unwrap().is_empty());
    assert!(page["receipt"]["index"].is_u64());

    // The new features on the old data: health publishes a category (its key joins the old
    // keyring) and writes it, the shipped department role having gained `records:publish`.
    let resp = http
        .put(format!("{base}/v1/catalog/home_care"))
        .bearer_auth(&admin)
        .json(&crate::exchange::home_care("health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    assert_ne!(
        std::fs::read(dir.join("keyring.age")).unwrap(),
        keyring_before,
        "the new category's key is saved in the keyring"
    );
    let health = new_client(&http, &base, &admin, &dir, "health-new", "health").await;
    let token = client_token(&health, &base).await;
    let resp = health
        .post(format!("{base}/v1/records"))
        .bearer_auth(&token)
        .json(&crate::exchange::care_record(
            "330110.001.001.001.007",
            1,
            "full",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let resp = http
        .post(format!("{base}/v1/grants"))
        .bearer_auth(&admin)
        .json(&json!({
            "grantee": "civil-affairs", "purpose": "elderly-care", "category": "person",
            "kind": "statistics", "group_by": ["grid.community", "tags"],
            "scope": ["330110.001"], "case_bound": false,
            "valid_from": crate::grants::rfc3339(-3600),
            "valid_until": crate::grants::rfc3339(30 * 86_400)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    // The audit search finds the old entries by the columns migration 0017 filled.
    let audit = |query: String| {
        let (http, base, dpo) = (&http, &base, &dpo);
        async move {
            let page: Value = http
                .get(format!("{base}/v1/audit/entries?{query}&limit=1000"))
                .bearer_auth(dpo)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["entries"].as_array().unwrap().clone()
        }
    };
    let old = audit(format!("end={old_size}")).await;
    assert_eq!(old.len() as i64, old_size);
    let indexes = |entries: &[Value]| -> Vec<u64> {
        entries
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect()
    };
    for stream in ["admin", "records", "disclosure"] {
        let expected: Vec<Value> = old
            .iter()
            .filter(|e| {
                gridhub::ledger::Stream::of(e["entry"]["action"].as_str().unwrap()).as_str()
                    == stream
            })
            .cloned()
            .collect();
        let found = audit(format!("stream={stream}&end={old_size}")).await;
        assert_eq!(indexes(&found), indexes(&expected), "{stream}");
    }
    let security: Vec<Value> = old
        .iter()
        .filter(|e| e["entry"]["actor"]["department"] == "public-security")
        .cloned()
        .collect();
    assert!(!security.is_empty());
    let found = audit(format!(
        "department=public-security&order=desc&end={old_size}"
    ))
    .await;
    assert_eq!(
        indexes(&found),
        indexes(&security).into_iter().rev().collect::<Vec<_>>()
    );

    let _ = stop.send(());
    server.await.unwrap();
    // Migration 0017 gave the old entries the filter columns the ledger now writes with new
    // ones (department, category, request id, stream), and the audit search finds them.
    let rows = crate::audit_search::filter_columns(&database).await;
    crate::audit_search::assert_columns_match_entries(&rows);
    assert!(
        rows.iter().any(|(_, action, ..)| action == "data.read"),
        "the fixture holds disclosures"
    );
    // The whole ledger, old entries and new, verifies.
    let mut verify = Command::new(BIN);
    verify.args(["audit", "verify", "--data-dir"]).arg(&dir);
    let out = verify.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

on_both_backends!(a_data_directory_of_the_previous_release_opens_and_serves);
