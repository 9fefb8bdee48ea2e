//! KEK rotation's rewrap (issue 22) on SQLite and PostgreSQL: N person records' data keys moved
//! from version 1 to version 2 by `keys::rewrap::run` (no rate limit: batches of 500, each one
//! transaction of compare-and-swap updates), beside the raw ceiling measured in the same run:
//! `Vault::rewrap_to` (AES-256-GCM unwrap + wrap of the same stored data keys, no database).
//!
//! Run: `cargo bench -p gridhub-tests --bench rewrap` (REWRAP_BENCH_KEYS, default 200 000;
//! PostgreSQL as for the tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::sync::Arc;
use std::time::Instant;

use gridhub::keys::{Keys, RotationPolicy, rewrap};
use gridhub::ledger::Actor;
use gridhub::vault::keyring::AgeFileStore;
use gridhub::vault::{Vault, WrappedDek};
use gridhub_tests::{Backend, WORKER_GRID, id_number, person, spawn_app};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn keys_wanted() -> usize {
    std::env::var("REWRAP_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

struct Figures {
    keys: u64,
    load_secs: f64,
    rewrap_per_sec: f64,
    ceiling_per_sec: f64,
}

async fn run(backend: Backend, n: usize) -> Figures {
    let app = spawn_app(backend).await;
    let keyring = AgeFileStore::in_dir(app.data_dir.path());
    let vault = Arc::new(Vault::unlock(&keyring).unwrap());
    let location = match &app.database_url {
        Some(url) => gridhub::config::DatabaseLocation::Postgres(url.clone().into()),
        None => gridhub::config::DatabaseLocation::Sqlite(app.sqlite_path()),
    };
    let store = gridhub::storage::Store::open(&location).await.unwrap();
    let category = policy::Catalog::default_catalog()
        .category("person")
        .unwrap();
    let grid = policy::GridCode::parse(WORKER_GRID).unwrap();
    let loaded = Instant::now();
    for chunk in 0..n.div_ceil(1000) {
        let sealed: Vec<_> = (chunk * 1000..((chunk + 1) * 1000).min(n))
            .map(|i| {
                let first17 = format!("33010219{:02}0101{:03}", 50 + (i / 1000) % 50, i % 1000);
                let body = person(WORKER_GRID, "李雷", &id_number(&first17), "13812345678");
                let values = category
                    .parse_fields(body["fields"].as_object().unwrap())
                    .unwrap();
                let draft = gridhub::records::RecordDraft {
                    category,
                    grid: grid.clone(),
                    purpose: "population-registration".into(),
                    legal_basis: None,
                    retention_until: None,
                    collector: "bench".into(),
                    values,
                };
                gridhub::records::seal(&vault, draft).unwrap()
            })
            .collect();
        store.insert_records(&sealed, 0).await.unwrap();
    }
    let load_secs = loaded.elapsed().as_secs_f64();
    let ledger = gridhub::startup::open_ledger(&vault, store.clone(), "gridhub-test")
        .await
        .unwrap();
    let keys = Keys::new(
        store.clone(),
        Arc::clone(&vault),
        keyring,
        ledger,
        Arc::new(gridhub::time::SystemClock),
        RotationPolicy {
            rewrap_rate: 0,
            retire_grace: std::time::Duration::ZERO,
            ..RotationPolicy::default()
        },
    );
    keys.sync().await.unwrap();
    // The hub's own key worker stays out: the bench holds the rewrap's lease from the start.
    let now = gridhub::time::now_ms();
    assert!(
        store
            .claim_job("keys", "bench", now, now + 3_600_000)
            .await
            .unwrap()
    );
    let rotation = keys
        .rotate(Actor::system(), "bench".into(), "person", "bench")
        .await
        .unwrap();

    // The ceiling: the same stored data keys, unwrapped and wrapped again in memory.
    let (_, sample) = store
        .deks_under("person", 1, None, 10_000.min(n))
        .await
        .unwrap();
    let wrapped: Vec<(String, WrappedDek)> = sample
        .into_iter()
        .map(|d| {
            (
                d.key,
                WrappedDek {
                    kek_version: 1,
                    bytes: d.wrapped,
                },
            )
        })
        .collect();
    let t = Instant::now();
    let mut done = 0u64;
    while t.elapsed().as_secs_f64() < 2.0 {
        for (id, w) in &wrapped {
            std::hint::black_box(vault.rewrap_to("person", id, w, rotation.version).unwrap());
        }
        done += wrapped.len() as u64;
    }
    let ceiling_per_sec = done as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let report = rewrap::run(&keys, "bench", 0, &mut |_| {})
        .await
        .unwrap()
        .expect("the bench holds the keys lease");
    let rewrap_per_sec = report.moved as f64 / t.elapsed().as_secs_f64();
    assert_eq!(report.moved, n as u64, "every data key moved once");
    assert_eq!(report.retired, vec![("person".to_owned(), 1)]);
    store.close().await;
    drop(app.stop().await);
    Figures {
        keys: report.moved,
        load_secs,
        rewrap_per_sec,
        ceiling_per_sec,
    }
}

#[tokio::main]
async fn main() {
    let n = keys_wanted();
    println!("rewrap: {n} person records per backend");
    println!(
        "{:<10} {:>9} {:>10} {:>16} {:>22} {:>7}",
        "backend", "keys", "load s", "rewrap keys/s", "ceiling (unwrap+wrap)/s", "share"
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let f = run(backend, n).await;
        println!(
            "{:<10} {:>9} {:>10.1} {:>16.0} {:>22.0} {:>6.1}%",
            format!("{backend:?}"),
            f.keys,
            f.load_secs,
            f.rewrap_per_sec,
            f.ceiling_per_sec,
            100.0 * f.rewrap_per_sec / f.ceiling_per_sec
        );
    }
}
