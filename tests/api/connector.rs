//! `gridhub connector run --once` through the real binary, reading a department's table in the
//! local PostgreSQL and in the local MariaDB: inserts and updates are picked up, rows with equal
//! `updated_at` are neither skipped nor repeated (also across a batch boundary), nothing is ever
//! duplicated (not even when the watermark is lost), a refused row goes to the reject file
//! without its values, and a pass with nothing new leaves the hub untouched. The hub side runs on SQLite and on PostgreSQL, through
//! `--url` (a running hub, as the grid worker) and `--data-dir` (a stopped one, as the operator).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};

use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, WORKER_PASSWORD, fresh_pg_database, id_number, on_both_backends,
    pg_admin_url, spawn_app,
};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
const MARIADB_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

const COUNT_PERSONS: &str =
    "SELECT COUNT(*) AS n FROM records WHERE category = 'person' AND erased_at IS NULL";
const DUPLICATE_KEYS: &str = "SELECT COUNT(*) AS n FROM (SELECT token FROM blind_index \
     WHERE category = 'person' AND field = 'id_number' GROUP BY token HAVING COUNT(*) > 1) d";
const LEDGER: &str = "SELECT COUNT(*) AS n FROM ledger_entries";

#[derive(Clone, Copy)]
enum Kind {
    Postgres,
    MariaDb,
}

/// A department's database with a `residents` table, dropped by `drop`.
struct SourceDb {
    kind: Kind,
    url: String,
    name: String,
}

impl SourceDb {
    async fn create(kind: Kind) -> SourceDb {
        let (url, name, ddl) = match kind {
            Kind::Postgres => {
                let (url, name) = fresh_pg_database().await;
                let ddl = "CREATE TABLE residents (id INTEGER PRIMARY KEY, xm TEXT, sfzh TEXT, \
                           xb TEXT, csrq DATE, sjhm TEXT, updated_at TIMESTAMPTZ NOT NULL)";
                (url, name, ddl)
            }
            Kind::MariaDb => {
                let name = format!("gridhub_src_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::MySqlConnection::connect(MARIADB_ADMIN)
                    .await
                    .expect("MariaDB at 127.0.0.1:3306 (root, no password)");
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let ddl = "CREATE TABLE residents (id INT PRIMARY KEY, xm VARCHAR(50), \
                           sfzh CHAR(18), xb VARCHAR(4), csrq DATE, sjhm VARCHAR(20), \
                           updated_at DATETIME(6) NOT NULL)";
                (format!("mysql://root@127.0.0.1:3306/{name}"), name, ddl)
            }
        };
        let db = SourceDb { kind, url, name };
        db.execute(ddl).await;
        db
    }

    async fn execute(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self.kind {
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Kind::MariaDb => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Insert resident `i` (its identity number is `person_id(i)`) changed at `at`.
    async fn insert(&self, i: usize, phone: &str, at: &str) {
        let (year, seq) = (50 + i, i);
        let sex = if seq % 2 == 1 { "M" } else { "F" };
        self.execute(&format!(
            "INSERT INTO residents VALUES ({i}, '张伟', '{}', '{sex}', '19{year}-01-01', \
             '{phone}', '{at}')",
            person_id(i)
        ))
        .await;
    }

    async fn drop(self) {
        match self.kind {
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Kind::MariaDb => {
                let mut conn = sqlx::MySqlConnection::connect(MARIADB_ADMIN).await.unwrap();
                let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}

/// The identity number of resident `i` (birth date 19{50+i}-01-01, sequence `i`).
fn person_id(i: usize) -> String {
    id_number(&format!("33010219{:02}0101{i:03}", 50 + i))
}

/// A `source.toml` for `db` in `dir` (three rows per batch, so that in the first pass two rows
/// with equal timestamps straddle a batch boundary).
fn write_config(dir: &Path, db: &SourceDb) -> PathBuf {
    let path = dir.join("source.toml");
    let text = format!(
        r#"interval = "60s"
batch_size = 3

[source]
url = "{}"
table = "residents"
key = "id"
updated_at = "updated_at"

[target]
category = "person"
key_field = "id_number"
grid = "{WORKER_GRID}"
purpose = "population-registration"

[columns]
xm = "name"
sfzh = "id_number"
xb = "gender"
csrq = "birth_date"
sjhm = "phone"

[values.gender]
M = "male"
F = "female"
"#,
        db.url
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Where the connector writes: a running hub's API (as the worker) or its data directory.
#[derive(Clone, Copy)]
enum Via {
    Url,
    DataDir,
}

fn connector(config: &Path, target: &[String]) -> String {
    let out = Command::new(BIN)
        .args(["connector", "run", "--once", "--config"])
        .arg(config)
        .args(target)
        .env_remove("GRIDHUB_DATABASE_URL")
        .env_remove("GRIDHUB_DATA_DIR")
        .env_remove("GRIDHUB_SOURCE_URL")
        .env("GRIDHUB_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridhub connector run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One pass of the connector; returns the app (restarted, for `--data-dir`) and its summary.
async fn pass(app: TestApp, via: Via, config: &Path, work: &Path) -> (TestApp, String) {
    let config = config.to_owned();
    match via {
        Via::Url => {
            let password = work.join("password");
            std::fs::write(&password, format!("{WORKER_PASSWORD}\n")).unwrap();
            let target = vec![
                "--url".to_owned(),
                app.base.clone(),
                "--username".to_owned(),
                "worker".to_owned(),
                "--password-file".to_owned(),
                password.display().to_string(),
                "--ca".to_owned(),
                app.data_dir.path().join("pki/ca.pem").display().to_string(),
            ];
            let said = tokio::task::spawn_blocking(move || connector(&config, &target))
                .await
                .unwrap();
            (app, said)
        }
        Via::DataDir => {
            let mut target = vec![
                "--data-dir".to_owned(),
                app.data_dir.path().display().to_string(),
            ];
            if let Some(url) = &app.database_url {
                target.push("--database-url".to_owned());
                target.push(url.clone());
            }
            let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let out = std::sync::Arc::clone(&said);
            let app = app
                .restart_after(move || *out.lock().unwrap() = connector(&config, &target))
                .await;
            let said = said.lock().unwrap().clone();
            (app, said)
        }
    }
}

/// The ids of the app's live person records.
async fn person_ids(app: &TestApp) -> Vec<String> {
    let sql = match app.backend {
        Backend::Sqlite => {
            "SELECT CAST(id AS BLOB) FROM records WHERE category = 'person' \
                            AND erased_at IS NULL"
        }
        Backend::Postgres => {
            "SELECT convert_to(id, 'UTF8') FROM records \
                              WHERE category = 'person' AND erased_at IS NULL"
        }
    };
    app.raw_bytes(sql.to_owned())
        .await
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

/// The record (in clear, as the grid worker sees it) whose identity number is `id_number`.
async fn record_of(app: &TestApp, ids: &[String], id_number: &str) -> Value {
    for id in ids {
        let resp = app
            .get(&app.worker_token, &format!("/v1/records/{id}"))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        if body["fields"]["id_number"] == id_number {
            return body;
        }
    }
    panic!("no record of that identity number");
}

async fn keeps_a_category_in_step(backend: Backend, kind: Kind, via: Via) {
    let db = SourceDb::create(kind).await;
    let app = spawn_app(backend).await;
    let before = person_ids(&app).await;
    let work = tempfile::tempdir().unwrap();
    let config = write_config(work.path(), &db);

    // Three good rows, two of them changed at the same moment, and one with a bad phone.
    db.insert(1, "13800000001", "2026-03-01 08:00:00").await;
    db.insert(2, "13800000002", "2026-03-01 09:00:00").await;
    db.insert(3, "13800000003", "2026-03-01 09:00:00").await;
    db.insert(9, "12345", "2026-03-01 08:30:00").await;
    let (app, said) = pass(app, via, &config, work.path()).await;
    assert!(
        said.contains("rows read 4, created 3, updated 0, rejected 1"),
        "{said}"
    );
    assert_eq!(person_ids(&app).await.len(), before.len() + 3);
    let rejects = std::fs::read_to_string(work.path().join("source.toml.rejects.csv")).unwrap();
    assert!(
        rejects
            .lines()
            .any(|l| l.starts_with("2,") && l.contains("phone")),
        "the second row of the pass is named by its position: {rejects}"
    );
    for value in ["12345", &person_id(9), "张伟"] {
        assert!(!rejects.contains(value), "the reject file holds a value");
    }

    // An update (a new updated_at) and an insert at the watermark's own moment.
    db.execute(
        "UPDATE residents SET sjhm = '13900000001', updated_at = '2026-03-02 08:00:00' \
         WHERE id = 1",
    )
    .await;
    db.insert(4, "13800000004", "2026-03-01 09:00:00").await;
    let (app, said) = pass(app, via, &config, work.path()).await;
    assert!(
        said.contains("rows read 2, created 1, updated 1, rejected 0"),
        "{said}"
    );
    let now = person_ids(&app).await;
    assert_eq!(now.len(), before.len() + 4);
    assert_eq!(app.raw_count(DUPLICATE_KEYS).await, 0);
    let mine: Vec<String> = now.into_iter().filter(|id| !before.contains(id)).collect();
    let updated = record_of(&app, &mine, &person_id(1)).await;
    assert_eq!(updated["fields"]["phone"], "13900000001");
    assert_eq!(updated["version"], 2);
    let inserted = record_of(&app, &mine, &person_id(4)).await;
    assert_eq!(inserted["fields"]["gender"], "female");
    assert_eq!(inserted["grid"], WORKER_GRID);

    // A kill after a commit but before its watermark was saved (here: no state at all): the
    // rows come again and upsert onto the records they made.
    let state = work.path().join("source.toml.state");
    assert!(
        !std::fs::read_to_string(&state)
            .unwrap()
            .contains("127.0.0.1")
    );
    std::fs::remove_file(&state).unwrap();
    let (app, said) = pass(app, via, &config, work.path()).await;
    assert!(
        said.contains("rows read 5, created 0, updated 4, rejected 1"),
        "{said}"
    );
    assert_eq!(person_ids(&app).await.len(), before.len() + 4);
    assert_eq!(app.raw_count(DUPLICATE_KEYS).await, 0);

    // Nothing new: nothing read, nothing written, the ledger as it was.
    let ledger = app.raw_count(LEDGER).await;
    let persons = app.raw_count(COUNT_PERSONS).await;
    let (app, said) = pass(app, via, &config, work.path()).await;
    assert!(
        said.contains("rows read 0, created 0, updated 0, rejected 0"),
        "{said}"
    );
    if matches!(via, Via::Url) {
        assert_eq!(app.raw_count(LEDGER).await, ledger);
    }
    assert_eq!(app.raw_count(COUNT_PERSONS).await, persons);
    app.stop().await;
    db.drop().await;
}

async fn a_postgres_table_is_kept_in_step_through_the_api(backend: Backend) {
    keeps_a_category_in_step(backend, Kind::Postgres, Via::Url).await;
}

async fn a_mariadb_table_is_kept_in_step_through_the_api(backend: Backend) {
    keeps_a_category_in_step(backend, Kind::MariaDb, Via::Url).await;
}

async fn a_mariadb_table_is_kept_in_step_in_the_data_directory(backend: Backend) {
    keeps_a_category_in_step(backend, Kind::MariaDb, Via::DataDir).await;
}

async fn a_postgres_table_is_kept_in_step_in_the_data_directory(backend: Backend) {
    keeps_a_category_in_step(backend, Kind::Postgres, Via::DataDir).await;
}

on_both_backends!(
    a_postgres_table_is_kept_in_step_through_the_api,
    a_mariadb_table_is_kept_in_step_through_the_api,
    a_mariadb_table_is_kept_in_step_in_the_data_directory,
    a_postgres_table_is_kept_in_step_in_the_data_directory,
);
