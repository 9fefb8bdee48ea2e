//! Appends and pulls per second with 1, 2 and 3 hub processes on one PostgreSQL (issue 22),
//! the same load each time: `--writers` tasks posting one record each (one record transaction
//! and one ledger entry per request) and `--pullers` department tasks pulling 100-record pages
//! (one disclosure entry each), spread round-robin over the replicas, for `--secs` seconds per
//! configuration. Every replica is the real binary (`gridhub serve`) on one data directory and
//! one database; the ledger is shared through its coordination row (`ledger_head`).
//!
//! Run: `cargo bench -p gridhub-tests --bench replicas -- [--secs 15] [--writers 8]
//! [--pullers 4] [--replicas 1,2,3]` (PostgreSQL as for the tests). Figures:
//! docs/PERFORMANCE.md and docs/SCALING.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gridhub_tests::process::{Server, signal, start_server, wait_bounded};
use gridhub_tests::{Backend, TestApp, WORKER_GRID, id_number, person, spawn_app};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

struct Args {
    secs: u64,
    writers: usize,
    pullers: usize,
    replicas: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        secs: 15,
        writers: 8,
        pullers: 4,
        replicas: vec![1, 2, 3],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value").clone();
        match flag.as_str() {
            "--secs" => a.secs = value().parse().unwrap(),
            "--writers" => a.writers = value().parse().unwrap(),
            "--pullers" => a.pullers = value().parse().unwrap(),
            "--replicas" => {
                a.replicas = value().split(',').map(|n| n.parse().unwrap()).collect();
            }
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// A distinct valid identity number for every `n` below 126 million.
fn identity(n: u64) -> String {
    let first17 = format!(
        "3301{:02}{}01{:02}{:03}",
        10 + n % 90,
        1950 + (n / 90) % 50,
        1 + (n / 4_500) % 28,
        (n / 126_000) % 1_000
    );
    id_number(&first17)
}

#[derive(Default)]
struct Tally {
    writes: AtomicU64,
    pulls: AtomicU64,
    failures: AtomicU64,
    /// Request latencies in microseconds, writes and pulls apart.
    write_us: std::sync::Mutex<Vec<u64>>,
    pull_us: std::sync::Mutex<Vec<u64>>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at] as f64 / 1000.0
}

async fn ledger_size(app: &TestApp) -> i64 {
    app.raw_count("SELECT size AS n FROM ledger_head").await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let app = spawn_app(Backend::Postgres).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let dept = app.register_client("civil-sys", "civil-affairs").await;
    app.approved_grant(
        &dept,
        &json!({
            "grantee": "civil-affairs", "purpose": "elderly-care", "category": "person",
            "fields": {"name": "clear", "phone": "masked"}, "scope": ["330110.001"],
            "case_bound": false,
            "valid_from": gridhub::time::rfc3339_millis(gridhub::time::now_ms() - 3_600_000),
            "valid_until": gridhub::time::rfc3339_millis(gridhub::time::now_ms() + 86_400_000),
        }),
    )
    .await;
    // Enough people for every pull to get a full page.
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let records: Vec<Value> = (0..500)
            .map(|_| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                person(WORKER_GRID, "韩梅梅", &identity(n), "13912345678")
            })
            .collect();
        let resp = app
            .post(
                &app.worker_token,
                "/v1/records/batch",
                &json!({ "records": records }),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let client_token = app.client_token(&dept).await;
    println!(
        "replicas on one PostgreSQL: {} writers (1 record each), {} pullers (100-record pages), \
         {} s per configuration",
        args.writers, args.pullers, args.secs
    );
    println!(
        "{:>8} {:>10} {:>10} {:>14} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "replicas",
        "writes/s",
        "pulls/s",
        "ledger ent/s",
        "write p50ms",
        "write p99ms",
        "pull p50ms",
        "pull p99ms",
        "failed"
    );
    for &n in &args.replicas {
        let servers: Vec<Server> = (0..n)
            .map(|_| start_server(BIN, app.data_dir.path()))
            .collect();
        let bases: Vec<String> = servers
            .iter()
            .map(|s| format!("https://localhost:{}", s.port))
            .collect();
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let before = ledger_size(&app).await;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..args.writers {
            let (http, base, token) = (
                app.client.clone(),
                bases[w % n].clone(),
                app.worker_token.clone(),
            );
            let (tally, stop, next) = (tally.clone(), stop.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let body = person(WORKER_GRID, "李雷", &identity(k), "13812345678");
                    let at = Instant::now();
                    let ok = http
                        .post(format!("{base}/v1/records"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 201);
                    let us = at.elapsed().as_micros() as u64;
                    if ok {
                        tally.writes.fetch_add(1, Ordering::Relaxed);
                        tally.write_us.lock().unwrap().push(us);
                    } else {
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for p in 0..args.pullers {
            let (http, base, token) = (
                dept.http.clone(),
                bases[p % n].clone(),
                client_token.clone(),
            );
            let (tally, stop) = (tally.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    let ok = match http
                        .get(format!(
                            "{base}/v1/data/person?purpose=elderly-care&limit=100"
                        ))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    let us = at.elapsed().as_micros() as u64;
                    if ok {
                        tally.pulls.fetch_add(1, Ordering::Relaxed);
                        tally.pull_us.lock().unwrap().push(us);
                    } else {
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(args.secs)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let appended = ledger_size(&app).await - before;
        let mut write_us = std::mem::take(&mut *tally.write_us.lock().unwrap());
        let mut pull_us = std::mem::take(&mut *tally.pull_us.lock().unwrap());
        write_us.sort_unstable();
        pull_us.sort_unstable();
        println!(
            "{:>8} {:>10.0} {:>10.0} {:>14.0} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>8}",
            n,
            tally.writes.load(Ordering::Relaxed) as f64 / secs,
            tally.pulls.load(Ordering::Relaxed) as f64 / secs,
            appended as f64 / secs,
            percentile(&write_us, 0.5),
            percentile(&write_us, 0.99),
            percentile(&pull_us, 0.5),
            percentile(&pull_us, 0.99),
            tally.failures.load(Ordering::Relaxed)
        );
        for Server { child, .. } in servers {
            signal(&child, "TERM");
            assert!(wait_bounded(child).success());
        }
    }
    drop(app.stop().await);
}
