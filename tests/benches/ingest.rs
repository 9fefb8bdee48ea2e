//! Ingest throughput through `POST /v1/records/batch` over real TLS, on SQLite and PostgreSQL:
//! synthetic residents from the demo generator, batches of `BATCH`, from `CLIENTS` concurrent
//! clients. Run: `cargo bench -p gridhub-tests --bench ingest` (PostgreSQL as for the tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::time::Instant;

use gridhub::demo::{SEED, synth};
use gridhub_tests::{Backend, spawn_app};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 20_000;
const BATCH: usize = 500;
const CLIENTS: usize = 2;

async fn run(backend: Backend, people: &[Value], grids: &[synth::DemoGrid]) -> f64 {
    let app = spawn_app(backend).await;
    for g in grids.iter().filter(|g| !g.code.starts_with("L.")) {
        if app
            .post(
                &app.admin_token,
                "/v1/grids",
                &json!({"code": g.code, "name": g.name, "kind": "physical"}),
            )
            .await
            .status()
            != 201
        {
            // The test app pre-creates a few grids of the same city; those may already exist.
        }
    }
    let batches: Vec<Value> = people
        .chunks(BATCH)
        .map(|c| json!({ "records": c }))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let app = std::sync::Arc::new(app);
    for k in 0..CLIENTS {
        let app = app.clone();
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
    let elapsed = started.elapsed().as_secs_f64();
    let stored = app.raw_count("SELECT COUNT(*) AS n FROM records").await;
    assert_eq!(stored as usize, people.len());
    let app = std::sync::Arc::into_inner(app).expect("tasks done");
    app.stop().await;
    people.len() as f64 / elapsed
}

#[tokio::main]
async fn main() {
    let grids = synth::grid_tree(SEED);
    let people: Vec<Value> = synth::population(SEED, RECORDS, &grids)
        .into_iter()
        .filter(|r| r.category == "person")
        .map(|r| json!({"category": r.category, "grid": r.grid, "purpose": "population-registration", "fields": r.fields}))
        .collect();
    println!(
        "ingest: {} person records, batches of {BATCH}, {CLIENTS} concurrent clients, TLS 1.3 + HTTP/2",
        people.len()
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let rate = run(backend, &people, &grids).await;
        println!("{backend:?}: {rate:>8.0} records/s");
    }
}
