//! Statistics answers over a large population (issue 19): `POST /v1/data/person/statistics`
//! grouped by community × tag, end to end (mTLS, token, grant check, SQL count, cells, ledger
//! entry, receipt), beside the same count in plain SQL on the same database, and the number of
//! fields the hub decrypted to answer.
//!
//! Run: `cargo bench -p gridhub-tests --bench statistics` (PostgreSQL as for the tests);
//! `STATISTICS_RECORDS` sets the population (default 1 000 000), `STATISTICS_QUERIES` the
//! queries timed per backend (default 30), `STATISTICS_BACKENDS` `sqlite`, `postgres` or both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::sync::Arc;
use std::time::Instant;

use gridhub::demo::{SEED, synth};
use gridhub_tests::{Backend, TestApp, spawn_app};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 500;
const CLIENTS: usize = 2;
/// Residents generated per chunk (each chunk from its own seed, so memory stays bounded).
const CHUNK: usize = 50_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rfc3339(offset_secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Seed `n` synthetic residents through `POST /v1/records/batch`; prints progress.
async fn seed(app: &Arc<TestApp>, n: usize) {
    let grids = synth::grid_tree(SEED);
    for g in grids.iter().filter(|g| !g.code.starts_with("L.")) {
        // The test app pre-creates a few grids of the same city; those answer 409.
        let _ = app
            .post(
                &app.admin_token,
                "/v1/grids",
                &json!({"code": g.code, "name": g.name, "kind": "physical"}),
            )
            .await;
    }
    let started = Instant::now();
    let mut done = 0;
    let mut chunk = 0u64;
    while done < n {
        let want = CHUNK.min(n - done);
        let people: Vec<Value> = synth::population(SEED + chunk, want, &grids)
            .into_iter()
            .filter(|r| r.category == "person")
            .take(want)
            .map(|r| json!({"category": r.category, "grid": r.grid, "purpose": "population-registration", "fields": r.fields}))
            .collect();
        let batches: Vec<Value> = people
            .chunks(BATCH)
            .map(|c| json!({ "records": c }))
            .collect();
        let mut tasks = Vec::new();
        for k in 0..CLIENTS {
            let app = Arc::clone(app);
            let mine: Vec<Value> = batches.iter().skip(k).step_by(CLIENTS).cloned().collect();
            tasks.push(tokio::spawn(async move {
                for body in mine {
                    let resp = app.post(&app.admin_token, "/v1/records/batch", &body).await;
                    assert_eq!(
                        resp.status(),
                        201,
                        "{}",
                        resp.text().await.unwrap_or_default()
                    );
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        done += people.len();
        chunk += 1;
        eprint!(
            "\r  seeded {done:>9} / {n} residents ({:.0} records/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
}

/// The plain-SQL baseline: the same grouped count the hub runs (`storage/statistics.rs`),
/// straight on the database, with literals instead of parameters.
const PLAIN_SQL: &str = "SELECT r.grid AS grid, b0.token AS t0, COUNT(*) AS n \
     FROM blind_index b0 CROSS JOIN records r \
     WHERE r.category = 'person' AND r.id = b0.record_id AND b0.category = 'person' \
     AND b0.field = 'tags' AND r.erased_at IS NULL \
     AND (r.grid = '330110' OR r.grid LIKE '330110.%') GROUP BY r.grid, b0.token";

async fn plain_sql_ms(app: &TestApp, queries: usize) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(queries);
    let mut groups = 0;
    macro_rules! timed {
        ($conn:expr) => {{
            let mut conn = $conn;
            for _ in 0..queries {
                let t = Instant::now();
                let rows = sqlx::query(PLAIN_SQL).fetch_all(&mut conn).await.unwrap();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                groups = rows.len();
            }
        }};
    }
    use sqlx::Connection;
    match app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.sqlite_path().display());
            timed!(sqlx::SqliteConnection::connect(&url).await.unwrap())
        }
        Backend::Postgres => {
            let url = app.database_url.clone().unwrap();
            timed!(sqlx::PgConnection::connect(&url).await.unwrap())
        }
    }
    (times, groups)
}

async fn run(backend: Backend, records: usize, queries: usize) {
    println!("\n{backend:?}: {records} residents");
    let app = Arc::new(spawn_app(backend).await);
    seed(&app, records).await;
    app.create_department("civil-affairs", &["330110"]).await;
    let client = app.register_client("civil-sys", "civil-affairs").await;
    app.approved_grant(
        &client,
        &json!({
            "grantee": "civil-affairs", "purpose": "elderly-care", "category": "person",
            "kind": "statistics", "group_by": ["grid.community", "tags"],
            "scope": ["330110"], "case_bound": false,
            "valid_from": rfc3339(-3600), "valid_until": rfc3339(30 * 86_400),
        }),
    )
    .await;
    let token = app.client_token(&client).await;
    let query = json!({"purpose": "elderly-care", "group_by": ["grid.community", "tags"]});
    let ask = || async {
        let resp = client
            .http
            .post(app.url("/v1/data/person/statistics"))
            .bearer_auth(&token)
            .json(&query)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    };
    let warm = ask().await;
    let cells = warm["cells"].as_array().unwrap();
    let counted: u64 = cells.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    let opened_before = gridhub::vault::envelope::fields_opened();
    let mut hub_ms = Vec::with_capacity(queries);
    for _ in 0..queries {
        let t = Instant::now();
        ask().await;
        hub_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let opened = gridhub::vault::envelope::fields_opened() - opened_before;
    let (mut sql_ms, groups) = plain_sql_ms(&app, queries).await;
    hub_ms.sort_by(f64::total_cmp);
    sql_ms.sort_by(f64::total_cmp);
    println!(
        "  answer: {} cells shown ({} suppressed), {counted} (record, tag) pairs counted; plain SQL: {groups} (grid, tag) groups",
        cells.len(),
        warm["suppressed_cells"]
    );
    println!("  {:<44} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    println!(
        "  {:<44} {:>9.1} {:>9.1}",
        "hub: POST /v1/data/person/statistics",
        pct(&hub_ms, 0.5),
        pct(&hub_ms, 0.99)
    );
    println!(
        "  {:<44} {:>9.1} {:>9.1}",
        "plain SQL: the same GROUP BY, same database",
        pct(&sql_ms, 0.5),
        pct(&sql_ms, 0.99)
    );
    println!("  fields decrypted by the hub for {queries} answers: {opened}");
    let app = Arc::into_inner(app).expect("no task holds the app");
    app.stop().await;
}

#[tokio::main]
async fn main() {
    let records = env_usize("STATISTICS_RECORDS", 1_000_000);
    let queries = env_usize("STATISTICS_QUERIES", 30);
    let backends =
        std::env::var("STATISTICS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "statistics: group by community × tag, {queries} timed queries after one warm-up, client and hub on the same 2 cores"
    );
    for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        if backends.split(',').any(|b| b.trim() == name) {
            run(backend, records, queries).await;
        }
    }
}
