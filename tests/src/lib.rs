//! Test support: `spawn_app` starts the real hub (real TLS, real database) on port 0 in a fresh
//! temporary data directory, on SQLite or on a fresh PostgreSQL database of its own, and hands
//! back an HTTPS client that trusts the hub's dev CA.
//!
//! PostgreSQL: `GRIDHUB_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) must
//! reach a server where the user may `CREATE DATABASE`. The PostgreSQL tests fail, never skip,
//! when it cannot be reached.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod jwt;
pub mod mtls;
pub mod process;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gridhub::config::{Overrides, Settings};
use gridhub::init::{InitOptions, init};
use gridhub::startup::Application;
use gridhub::time::ManualClock;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const WORKER_PASSWORD: &str = "worker-password-for-tests";
pub const DPO_PASSWORD: &str = "dpo-password-for-tests";

/// The grid the test worker may write in, and one it may not.
pub const WORKER_GRID: &str = "330110.001.001";
pub const OTHER_GRID: &str = "330110.002.001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generate one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    )+};
}

pub fn pg_admin_url() -> String {
    std::env::var("GRIDHUB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Create a fresh PostgreSQL database; returns its URL.
pub async fn fresh_pg_database() -> (String, String) {
    fresh_pg_database_on(&pg_admin_url()).await
}

/// Create a fresh database on the server `admin` reaches; returns its URL and name.
pub async fn fresh_pg_database_on(admin: &str) -> (String, String) {
    let admin = admin.to_owned();
    let name = format!("gridhub_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL test server unreachable at {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    (format!("{base}/{name}"), name)
}

/// Log in at a hub that is not a `TestApp` (a spawned binary); returns the access token.
pub async fn login_at(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> String {
    let resp = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "login of {username} failed");
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// An HTTPS client trusting `ca.pem` (rustls with ring, like the server).
pub fn client_for(ca_pem: &Path) -> reqwest::Client {
    https_client(ca_pem, None)
}

/// An HTTPS client trusting `ca_pem`, presenting `client_auth` = (certificate PEM, key PEM).
pub fn https_client(ca_pem: &Path, client_auth: Option<(&str, &str)>) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(ca_pem, client_auth))
        .build()
        .unwrap()
}

/// As `client_for`, but answers with a redirect are returned, not followed (console tests).
pub fn client_without_redirects(ca_pem: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(ca_pem, None))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn tls_config(ca_pem: &Path, client_auth: Option<(&str, &str)>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client_auth {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap();
            let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    /// PostgreSQL URL of this app's own database, if on PostgreSQL.
    pub database_url: Option<String>,
    pub admin_token: String,
    pub worker_token: String,
    pub dpo_token: String,
    /// The running hub's state, for driving its background jobs (e.g. the grant expiry
    /// sweep) at a moment the test chooses instead of waiting for their timers.
    pub state: gridhub::state::AppState,
    /// The clock handed to the hub (`Application::build_with_clock`): it stands at the time
    /// the app was spawned until a test moves it, and is kept across restarts.
    pub clock: Arc<ManualClock>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.path().join("gridhub.db")
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, username: &str, password: &str) -> String {
        let resp = self.login(username, password).await;
        assert_eq!(resp.status(), 200, "login of {username} failed");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_json(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Run one SQL statement against this app's database, outside the hub (tamper tests).
    pub async fn raw_execute(&self, sql: String) {
        match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path().display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres => {
                let url = self.database_url.clone().unwrap();
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Make every insert of a ledger entry fail (a trigger added to the hub's database behind
    /// its back), as a storage fault at the append would.
    pub async fn break_ledger(&self) {
        let statements: &[&str] = match self.backend {
            Backend::Sqlite => &[
                "CREATE TRIGGER fail_ledger BEFORE INSERT ON ledger_entries \
                 BEGIN SELECT RAISE(ABORT, 'injected'); END",
            ],
            Backend::Postgres => &[
                "CREATE FUNCTION fail_ledger() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER fail_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW \
                 EXECUTE FUNCTION fail_ledger()",
            ],
        };
        for statement in statements {
            self.raw_execute((*statement).to_owned()).await;
        }
    }

    /// Undo `break_ledger`.
    pub async fn mend_ledger(&self) {
        self.raw_execute(match self.backend {
            Backend::Sqlite => "DROP TRIGGER fail_ledger".to_owned(),
            Backend::Postgres => "DROP TRIGGER fail_ledger ON ledger_entries".to_owned(),
        })
        .await;
    }

    /// A record's sealed fields as stored (`records.sealed_fields`), outside the hub.
    pub async fn raw_sealed_fields(&self, id: &str) -> Vec<gridhub::vault::SealedField> {
        let stored = self
            .raw_bytes(format!(
                "SELECT sealed_fields FROM records WHERE id = '{id}' AND sealed_fields IS NOT NULL"
            ))
            .await;
        let bytes = stored.first().map(Vec::as_slice);
        gridhub::storage::sealed_fields::decode(bytes)
            .unwrap()
            .into_iter()
            .map(|f| f.to_owned_field())
            .collect()
    }

    /// Store `fields` as a record's sealed fields, outside the hub (tamper tests).
    pub async fn raw_set_sealed_fields(&self, id: &str, fields: &[gridhub::vault::SealedField]) {
        let bytes = gridhub::storage::sealed_fields::encode(fields).unwrap();
        let sql = "UPDATE records SET sealed_fields = $1 WHERE id = $2";
        // The same statement over either backend's connection type.
        macro_rules! set_on {
            ($conn:expr) => {{
                let mut conn = $conn;
                let done = sqlx::query(sql)
                    .bind(bytes)
                    .bind(id.to_owned())
                    .execute(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(done.rows_affected(), 1);
                conn.close().await.unwrap();
            }};
        }
        match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path().display());
                set_on!(sqlx::SqliteConnection::connect(&url).await.unwrap());
            }
            Backend::Postgres => {
                let url = self.database_url.clone().unwrap();
                set_on!(sqlx::PgConnection::connect(&url).await.unwrap());
            }
        }
    }

    /// Count rows of a query `SELECT COUNT(*) AS n …` against this app's database.
    pub async fn raw_count(&self, sql: &'static str) -> i64 {
        use sqlx::Row;
        match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path().display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let n = sqlx::query(sql)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
                    .get("n");
                conn.close().await.unwrap();
                n
            }
            Backend::Postgres => {
                let url = self.database_url.clone().unwrap();
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let n = sqlx::query(sql)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
                    .get("n");
                conn.close().await.unwrap();
                n
            }
        }
    }

    /// The first column (bytes) of every row of `sql` against this app's database.
    pub async fn raw_bytes(&self, sql: String) -> Vec<Vec<u8>> {
        use sqlx::Row;
        match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path().display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                rows.iter().map(|r| r.get::<Vec<u8>, _>(0)).collect()
            }
            Backend::Postgres => {
                let url = self.database_url.clone().unwrap();
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                rows.iter().map(|r| r.get::<Vec<u8>, _>(0)).collect()
            }
        }
    }

    /// Stop the server and wait for it to finish (graceful shutdown, pools closed).
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.await.unwrap();
        }
        if let (Backend::Postgres, Some(url)) = (self.backend, &self.database_url) {
            drop_pg_database(url).await;
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, dir)
    }
}

async fn drop_pg_database(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Where `spawn_app_with` puts the hub's data.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Make the data directory inside this directory (a small tmpfs, a loop-mounted
    /// filesystem) instead of the system's temporary directory.
    pub parent_dir: Option<PathBuf>,
    /// PostgreSQL only: the server to create the app's database on (a throw-away cluster)
    /// instead of `GRIDHUB_TEST_PG_URL`.
    pub pg_admin_url: Option<String>,
    /// Settings lines appended to the `gridhub.toml` that `init` wrote (e.g. a small scan
    /// budget), so that a test need not change the process environment other tests share.
    pub extra_config: Option<String>,
}

/// Start a hub with an admin, a DPO and a grid worker (grid `WORKER_GRID`), and a small grid
/// tree: `330110` › `330110.001`, `330110.002` › `330110.001.001`, `330110.002.001`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, SpawnOptions::default()).await
}

/// Build and serve the hub on an initialised data directory; returns the app (not yet logged
/// in) with its state.
async fn serve(
    backend: Backend,
    data_dir: tempfile::TempDir,
    database_url: Option<String>,
    clock: Arc<ManualClock>,
) -> TestApp {
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(data_dir.path().to_path_buf()),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            database_url: None,
        },
    )
    .expect("settings");
    let app = Application::build_with_clock(settings, Arc::clone(&clock) as _)
        .await
        .expect("build app");
    let port = app.port();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let client = client_for(&data_dir.path().join("pki/ca.pem"));
    TestApp {
        backend,
        base: format!("https://localhost:{port}"),
        client,
        data_dir,
        database_url,
        admin_token: String::new(),
        worker_token: String::new(),
        dpo_token: String::new(),
        state,
        clock,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Move the hub's clock by `by` and log the accounts in again. Hub tokens live by that
    /// clock (`token_ttl_secs`, 300 s by default), so a token from before a longer move is
    /// refused; department clients fetch a token per request (`client_token`) and need
    /// nothing.
    pub async fn advance_clock(&mut self, by: std::time::Duration) {
        self.clock.advance(by);
        self.log_in_again().await;
    }

    /// Fresh tokens for the admin, the worker and the DPO, by the hub's clock now.
    pub async fn log_in_again(&mut self) {
        self.admin_token = self.token("admin", ADMIN_PASSWORD).await;
        self.worker_token = self.token("worker", WORKER_PASSWORD).await;
        self.dpo_token = self.token("dpo", DPO_PASSWORD).await;
    }

    /// Move the hub's clock past the current minute and write the summaries of the refusal
    /// windows that closed (what the hub's flusher does on its own every few seconds).
    pub async fn close_refusal_window(&self) {
        self.clock.advance(std::time::Duration::from_millis(
            u64::try_from(gridhub::auth::refusals::WINDOW_MS).unwrap(),
        ));
        self.state.access.refusals().flush_closed().await;
    }

    /// Stop the hub (keeping its data and database) and start it again on them, as an operator
    /// restarting the service would; the accounts log in again.
    pub async fn restart(self) -> TestApp {
        self.restart_after(|| {}).await
    }

    /// As `restart`, doing `between` while the hub is stopped (an operator's repair).
    pub async fn restart_after(mut self, between: impl FnOnce()) -> TestApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.await.unwrap();
        }
        between();
        let placeholder = tempfile::tempdir().unwrap();
        let data_dir = std::mem::replace(&mut self.data_dir, placeholder);
        let database_url = self.database_url.take();
        let clock = Arc::clone(&self.clock);
        let mut app = serve(self.backend, data_dir, database_url, clock).await;
        app.admin_token = app.token("admin", ADMIN_PASSWORD).await;
        app.worker_token = app.token("worker", WORKER_PASSWORD).await;
        app.dpo_token = app.token("dpo", DPO_PASSWORD).await;
        app
    }

    /// Poll `GET /readyz` until it answers 200 (the hub recovered from a fault), at most
    /// `within`; panics with the last answer otherwise. Polling a condition with a deadline,
    /// not a sleep standing in for synchronisation.
    pub async fn wait_ready(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match self.client.get(self.url("/readyz")).send().await {
                Ok(resp) if resp.status() == 200 => return,
                Ok(resp) => {
                    last = format!(
                        "{} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the hub did not become ready within {within:?}; last answer: {last}");
    }
}

/// As `spawn_app`, with the data directory or the PostgreSQL server chosen by `options`.
pub async fn spawn_app_with(backend: Backend, options: SpawnOptions) -> TestApp {
    let data_dir = match &options.parent_dir {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(
            fresh_pg_database_on(&options.pg_admin_url.unwrap_or_else(pg_admin_url))
                .await
                .0,
        ),
    };
    init(InitOptions {
        data_dir: data_dir.path().to_path_buf(),
        admin_password: Some(ADMIN_PASSWORD.to_owned().into()),
        database_url: database_url.clone().map(Into::into),
        force: false,
        instance: "gridhub-test".to_owned(),
    })
    .await
    .expect("init");
    if let Some(extra) = &options.extra_config {
        use std::io::Write;
        let mut config = std::fs::OpenOptions::new()
            .append(true)
            .open(data_dir.path().join("gridhub.toml"))
            .unwrap();
        writeln!(config, "{extra}").unwrap();
    }
    let clock = Arc::new(ManualClock::at(gridhub::time::now_ms()));
    let mut test = serve(backend, data_dir, database_url, clock).await;
    test.admin_token = test.token("admin", ADMIN_PASSWORD).await;
    for (code, name) in [
        ("330110", "临江市"),
        ("330110.001", "滨河区"),
        ("330110.002", "西湖区"),
        (WORKER_GRID, "望江街道"),
        (OTHER_GRID, "北山街道"),
    ] {
        let resp = test
            .post(
                &test.admin_token,
                "/v1/grids",
                &json!({"code": code, "name": name, "kind": "physical"}),
            )
            .await;
        assert_eq!(resp.status(), 201, "create grid {code}");
    }
    for (username, password, role, grids) in [
        ("worker", WORKER_PASSWORD, "grid_worker", vec![WORKER_GRID]),
        ("dpo", DPO_PASSWORD, "dpo", vec![]),
    ] {
        let resp = test
            .post(
                &test.admin_token,
                "/v1/admin/users",
                &json!({"username": username, "password": password, "roles": [role], "grids": grids}),
            )
            .await;
        assert_eq!(resp.status(), 201, "create user {username}");
    }
    test.worker_token = test.token("worker", WORKER_PASSWORD).await;
    test.dpo_token = test.token("dpo", DPO_PASSWORD).await;
    test
}

/// A valid person record in `grid` (identity number with a correct GB 11643 check character).
pub fn person(grid: &str, name: &str, id_number: &str, phone: &str) -> Value {
    json!({
        "category": "person",
        "grid": grid,
        "purpose": "population-registration",
        "fields": {
            "name": name,
            "id_number": id_number,
            "gender": if id_number.as_bytes()[16] % 2 == 1 { "male" } else { "female" },
            "birth_date": format!("{}-{}-{}", &id_number[6..10], &id_number[10..12], &id_number[12..14]),
            "phone": phone,
            "address": format!("临江市滨河区望江街道{name}家1幢101室"),
            "residence": "registered",
            "tags": ["elderly_alone"],
        }
    })
}

/// Complete a 17-digit prefix into a valid identity number.
pub fn id_number(first17: &str) -> String {
    let check = policy::IdNumber::check_char(first17).expect("17 digits");
    format!("{first17}{check}")
}

/// The error code of an error response, asserting the documented shape.
pub async fn error_code(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let header_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("x-request-id header");
    let body: Value = resp.json().await.expect("JSON error body");
    let err = &body["error"];
    assert_eq!(
        err["request_id"].as_str(),
        Some(header_id.as_str()),
        "request id in body and header (HTTP {status}): {body}"
    );
    assert!(err["message"].is_string());
    (status, err["code"].as_str().expect("code").to_owned(), body)
}
