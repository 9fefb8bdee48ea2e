//! What is measured on the loaded province, the hub stopped or running as the real binary
//! (`gridhub serve`, a child process): bytes on disk (per table where the database says so
//! cheaply), the ledger grown through `Ledger::append` (group commit, 64 writers), start-up
//! time and resident memory, 100-record pulls and lookups by identity number over HTTPS with
//! the department's certificate, and `gridhub audit verify`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gridhub::config::{DatabaseLocation, Overrides, Settings};
use gridhub::ledger::{Actor, Decision, EntryDraft, RecordRef};
use gridhub::storage::Store;
use gridhub::vault::Vault;
use gridhub::vault::keyring::AgeFileStore;
use gridhub_tests::process::{Server, signal, start_server, wait_bounded};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::authority::PURPOSE;

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
const LEDGER_WRITERS: u64 = 64;
const MB: f64 = 1024.0 * 1024.0;

/// The stopped hub's settings (its database and instance name).
pub fn settings(dir: &Path) -> Settings {
    let overrides = Overrides {
        data_dir: Some(dir.to_path_buf()),
        listen: None,
        database_url: None,
    };
    Settings::load(None, overrides).unwrap()
}

/// Bytes on disk: the whole database and its largest tables and indexes.
pub struct Disk {
    pub bytes: u64,
    pub parts: Vec<(String, u64)>,
}

/// SQLite: database file plus WAL after a truncating checkpoint, parts from `dbstat` (each
/// table and index apart); PostgreSQL: `pg_database_size`, parts by `pg_total_relation_size`
/// (table with its indexes and TOAST).
pub async fn disk(location: &DatabaseLocation) -> Disk {
    match location {
        DatabaseLocation::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await
                .unwrap();
            let parts = sqlx::query(
                "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name \
                 ORDER BY bytes DESC LIMIT 16",
            )
            .fetch_all(&mut conn)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
                    .collect()
            })
            .unwrap_or_else(|e| vec![(format!("(no dbstat: {e})"), 0)]);
            conn.close().await.unwrap();
            let size = |suffix: &str| {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                std::fs::metadata(p).map_or(0, |m| m.len())
            };
            Disk {
                bytes: size("") + size("-wal"),
                parts,
            }
        }
        DatabaseLocation::Postgres(url) => {
            use secrecy::ExposeSecret;
            let mut conn = sqlx::PgConnection::connect(url.expose_secret())
                .await
                .unwrap();
            let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let parts = sqlx::query(
                "SELECT c.relname::text, pg_total_relation_size(c.oid) AS bytes FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY bytes DESC LIMIT 16",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
            .collect();
            conn.close().await.unwrap();
            Disk {
                bytes: bytes as u64,
                parts,
            }
        }
    }
}

/// A name for the test hub's PostgreSQL database of its own (`gridhub_province_…`): the sweep
/// of databases left behind by interrupted test runs (`.ci/run` drops every `gridhub_t_%`)
/// must not drop it under a run that lasts an hour.
pub fn own_name(url: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/gridhub_province_{}", uuid::Uuid::new_v4().simple())
}

/// Rename the stopped hub's database from `url` to `to` (`own_name`); the data directory's
/// configuration follows.
pub async fn rename_database(dir: &Path, url: &str, to: &str) {
    let name = |u: &str| u.rsplit_once('/').unwrap().1.to_owned();
    let mut conn = sqlx::PgConnection::connect(&gridhub_tests::pg_admin_url())
        .await
        .unwrap();
    let sql = format!("ALTER DATABASE {} RENAME TO {}", name(url), name(to));
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let config = dir.join("gridhub.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(url));
    std::fs::write(&config, text.replace(url, to)).unwrap();
}

/// PostgreSQL: `ANALYZE`, what autovacuum would have done after a bulk load (this server runs
/// with `autovacuum = off`; never-analysed tables get sequential-scan plans).
pub async fn analyze(location: &DatabaseLocation) {
    if let DatabaseLocation::Postgres(url) = location {
        use secrecy::ExposeSecret;
        let mut conn = sqlx::PgConnection::connect(url.expose_secret())
            .await
            .unwrap();
        sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

/// PostgreSQL: `ANALYZE` every 30 s until the task is aborted, as autovacuum would while the
/// grants and cases tables grow from empty (its analyze threshold is 10 % of a table); without
/// it the planner keeps the empty tables' statistics and each new case costs more than the last.
pub fn keep_analyzing(location: &DatabaseLocation) -> tokio::task::JoinHandle<()> {
    let location = location.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            analyze(&location).await;
        }
    })
}

/// A `record.create` entry naming one record and nine fields (~490 bytes, the ledger bench's).
fn entry(record: &str) -> EntryDraft {
    let fields = [
        "address",
        "birth_date",
        "gender",
        "id_number",
        "name",
        "phone",
        "residence",
        "tags",
        "worker_notes",
    ]
    .map(|f| (f.to_owned(), "written"));
    EntryDraft::new(
        Actor::user("0193f1d2-0000-7000-8000-00000000beef"),
        "record.create",
        Decision::Allow,
        uuid::Uuid::now_v7().to_string(),
    )
    .category("person")
    .purpose("population-registration")
    .records(vec![RecordRef::new(record, fields)])
}

/// Append entries through the hub's ledger (its key, its origin) until it holds `target`,
/// then sign a checkpoint; (entries added, seconds).
pub async fn grow_ledger(dir: &Path, target: u64, records: &[(String, String)]) -> (u64, f64) {
    let settings = settings(dir);
    let vault = Vault::unlock(&AgeFileStore::in_dir(dir)).unwrap();
    let store = Store::open(&settings.database().unwrap()).await.unwrap();
    let ledger = gridhub::startup::open_ledger(&vault, store.clone(), &settings.instance)
        .await
        .unwrap();
    let have = ledger.size();
    let per = target.saturating_sub(have).div_ceil(LEDGER_WRITERS);
    let started = Instant::now();
    let ids: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new(records.iter().map(|(id, _)| id.clone()).collect());
    let mut tasks = Vec::new();
    for w in 0..LEDGER_WRITERS {
        let (ledger, ids) = (ledger.clone(), ids.clone());
        let mine = per.min(target.saturating_sub(have + w * per));
        tasks.push(tokio::spawn(async move {
            for i in 0..mine {
                let record = &ids[(w * per + i) as usize % ids.len()];
                ledger.append(entry(record)).await.unwrap();
                if w == 0 && i > 0 && i % (1_000_000 / LEDGER_WRITERS) == 0 {
                    println!("    ledger at ~{} entries", ledger.size());
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let added = ledger.size() - have;
    ledger.checkpoint().await.unwrap();
    drop(ledger);
    store.close().await;
    (added, secs)
}

/// Resident memory of a process in MB (/proc/<pid>/status): VmRSS, RssAnon, VmHWM.
pub fn memory(pid: u32) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1024.0
    };
    (kb("VmRSS:"), kb("RssAnon:"), kb("VmHWM:"))
}

/// A start of the real binary on the data directory.
pub struct Start {
    /// Spawn to the "listening" line: `Application::build` (keyring, database, ledger head,
    /// decision index) and process start.
    pub listening_s: f64,
    /// Spawn to the first `GET /readyz` answered 200.
    pub ready_s: f64,
    /// At ready, MB: resident, anonymous (heap), peak resident.
    pub rss: f64,
    pub anon: f64,
    pub hwm: f64,
}

/// The binary serving `dir`, ready; with what its start cost.
pub async fn start(dir: &Path) -> (Server, Start, String) {
    let started = Instant::now();
    let server = start_server(BIN, dir);
    let listening_s = started.elapsed().as_secs_f64();
    let base = format!("https://localhost:{}", server.port);
    let plain = gridhub_tests::client_for(&dir.join("pki/ca.pem"));
    loop {
        let ready = plain.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "never ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready_s = started.elapsed().as_secs_f64();
    let (rss, anon, hwm) = memory(server.child.id());
    let start = Start {
        listening_s,
        ready_s,
        rss,
        anon,
        hwm,
    };
    (server, start, base)
}

pub fn stop(server: Server) {
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
}

/// p50 and p99 of latencies in µs, as ms.
pub fn percentiles(mut us: Vec<u64>) -> (f64, f64) {
    us.sort_unstable();
    let at = |p: f64| us[((us.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

/// The department's HTTPS client and a token source.
pub struct Caller {
    pub http: reqwest::Client,
    pub base: String,
    token: String,
    issued: Instant,
}

impl Caller {
    pub async fn new(dir: &Path, base: &str, cert_pem: &str, key_pem: &str) -> Caller {
        let http = gridhub_tests::https_client(&dir.join("pki/ca.pem"), Some((cert_pem, key_pem)));
        let mut c = Caller {
            http,
            base: base.to_owned(),
            token: String::new(),
            issued: Instant::now(),
        };
        c.refresh().await;
        c
    }

    async fn refresh(&mut self) {
        let resp = self
            .http
            .post(format!("{}/v1/oauth/token", self.base))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        self.token = body["access_token"].as_str().unwrap().to_owned();
        self.issued = Instant::now();
    }

    /// A token with a minute to spare (tokens live 300 s by default).
    async fn token(&mut self) -> String {
        if self.issued.elapsed() > Duration::from_secs(200) {
            self.refresh().await;
        }
        self.token.clone()
    }

    /// `n` pages of 100 records of the pull, following the cursor (from the start again at the
    /// end), after `warm` untimed ones; latencies in µs. The empty page that can end a pull is
    /// not counted.
    pub async fn pulls(&mut self, warm: usize, n: usize) -> Vec<u64> {
        let mut cursor: Option<String> = None;
        let mut out = Vec::with_capacity(n);
        let mut warming = warm;
        while out.len() < n {
            let mut query = vec![("purpose", PURPOSE.to_owned()), ("limit", "100".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let token = self.token().await;
            let t = Instant::now();
            let resp = self
                .http
                .get(format!("{}/v1/data/person", self.base))
                .query(&query)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let page: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            let took = t.elapsed().as_micros() as u64;
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if page["records"].as_array().unwrap().is_empty() {
                assert!(cursor.is_none(), "an empty page before the end");
                continue;
            }
            if warming > 0 {
                warming -= 1;
            } else {
                out.push(took);
            }
        }
        out
    }

    /// `n` lookups by identity number (`ids` in turn) after `warm` untimed ones; each finds
    /// exactly one person. Latencies in µs.
    pub async fn lookups(&mut self, ids: &[String], warm: usize, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        for i in 0..warm + n {
            // Spread over the sample, not in load order.
            let id = &ids[(i * 7_919) % ids.len()];
            let body = json!({"purpose": PURPOSE, "key": {"id_number": id}});
            let token = self.token().await;
            let t = Instant::now();
            let resp = self
                .http
                .post(format!("{}/v1/data/person/lookup", self.base))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let page: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            if i >= warm {
                out.push(t.elapsed().as_micros() as u64);
            }
            assert_eq!(
                page["records"].as_array().unwrap().len(),
                1,
                "lookup of {id}"
            );
        }
        out
    }
}

/// `gridhub audit verify --data-dir DIR` (the real binary): wall seconds (process start
/// included), the entries it verified and the rate it reports for the verification alone.
pub fn verify(dir: &Path) -> (f64, u64, f64) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .env("GRIDHUB_LOG", "warn")
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "audit verify failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "ledger intact: N entries, C signed checkpoints verified, root R (X entries/s)"
    let number_before = |marker: &str| -> f64 {
        let head = &said[..said.find(marker).expect(marker)];
        head.rsplit([' ', '(']).next().unwrap().parse().unwrap()
    };
    (
        secs,
        number_before(" entries,") as u64,
        number_before(" entries/s)"),
    )
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / MB
}
