//! The cost of trusting nothing (issue 21): a whole pull through the client SDK with every
//! page verified (receipt signature, a fresh signed checkpoint, its consistency proof with the
//! trusted one, the receipt's inclusion proof; `pull_all` as shipped) against the same pages
//! fetched with verification off (the same `GET /v1/data/person` requests through a plain
//! reqwest client with the same mTLS certificate and token, no receipt or proof checked), in
//! the same run, rounds interleaved. The verified pull runs twice: trust kept in memory, and
//! with a state file (what `gridhub-client` does: a locked compare-and-swap with fsync per page).
//!
//! Run: `cargo bench -p gridhub-tests --bench pull -- [--records 20000] [--limit 100]
//! [--rounds 3] [--backends sqlite,postgres]`. Figures: docs/PERFORMANCE.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    reason = "a benchmark binary: failing loudly is the point; the shared setup has more than \
              this bench uses"
)]

#[path = "disclosure/loadgen.rs"]
mod loadgen;
#[path = "disclosure/setup.rs"]
mod setup;

use std::time::Instant;

use connectors::{Client, Config, PullRequest};
use futures_util::TryStreamExt;
use gridhub_tests::Backend;
use serde_json::Value;
use setup::{CATEGORY, PURPOSE};

struct Args {
    records: usize,
    limit: u32,
    rounds: usize,
    backends: Vec<Backend>,
}

fn args() -> Args {
    let mut a = Args {
        records: 20_000,
        limit: 100,
        rounds: 3,
        backends: vec![Backend::Sqlite, Backend::Postgres],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value").clone();
        match flag.as_str() {
            "--records" => a.records = value().parse().unwrap(),
            "--limit" => a.limit = value().parse().unwrap(),
            "--rounds" => a.rounds = value().parse().unwrap(),
            "--backends" => {
                a.backends = value()
                    .split(',')
                    .map(|b| match b {
                        "sqlite" => Backend::Sqlite,
                        "postgres" => Backend::Postgres,
                        other => panic!("unknown backend {other}"),
                    })
                    .collect()
            }
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// One whole pull: (records, pages, seconds).
#[derive(Default, Clone, Copy)]
struct Run {
    records: usize,
    pages: usize,
    secs: f64,
}

impl Run {
    fn add(&mut self, other: Run) {
        self.records += other.records;
        self.pages += other.pages;
        self.secs += other.secs;
    }
}

async fn verified(client: &Client, limit: u32) -> Run {
    let started = Instant::now();
    let request = PullRequest {
        limit: Some(limit),
        ..PullRequest::new(PURPOSE)
    };
    let mut pages = std::pin::pin!(client.pull_all(CATEGORY, request));
    let mut run = Run::default();
    while let Some(page) = pages.try_next().await.unwrap() {
        run.records += page.records.len();
        run.pages += 1;
    }
    run.secs = started.elapsed().as_secs_f64();
    run
}

/// The same requests, nothing verified.
async fn unverified(http: &reqwest::Client, base: &str, token: &str, limit: u32) -> Run {
    let started = Instant::now();
    let mut run = Run::default();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("purpose", PURPOSE.to_owned()),
            ("limit", limit.to_string()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let resp = http
            .get(format!("{base}/v1/data/{CATEGORY}"))
            .query(&query)
            .header(reqwest::header::ACCEPT, "application/json")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let page: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        run.records += page["records"].as_array().unwrap().len();
        run.pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    run.secs = started.elapsed().as_secs_f64();
    run
}

fn row(name: &str, run: Run, baseline: Option<Run>) {
    let rate = run.records as f64 / run.secs;
    let per_page = 1000.0 * run.secs / run.pages as f64;
    let overhead = baseline.map_or("—".to_owned(), |b| {
        let base = 1000.0 * b.secs / b.pages as f64;
        format!("+{:.0} %", 100.0 * (per_page - base) / base)
    });
    println!(
        "  {name:<34} {:>7} records {:>5} pages {rate:>9.0} records/s {per_page:>7.2} ms/page  {overhead}",
        run.records, run.pages
    );
}

async fn bench(backend: Backend, a: &Args) {
    println!("{backend:?}: {} records, pages of {}", a.records, a.limit);
    let fx = setup::fixture(backend, a.records).await;
    let ca = std::fs::read_to_string(fx.app.data_dir.path().join("pki/ca.pem")).unwrap();
    let config = || Config::new(&fx.app.base, &ca, &fx.client.cert_pem, &fx.client.key_pem);
    let memory = Client::new(config()).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let with_file = Client::new(config().state_file(state_dir.path().join("state.json"))).unwrap();
    let token = fx.app.client_token(&fx.client).await;
    // Warm up: connections, tokens, the pinned key.
    verified(&memory, a.limit).await;
    verified(&with_file, a.limit).await;
    unverified(&fx.client.http, &fx.app.base, &token, a.limit).await;
    let (mut plain, mut mem, mut file) = (Run::default(), Run::default(), Run::default());
    for round in 0..a.rounds {
        let p = unverified(&fx.client.http, &fx.app.base, &token, a.limit).await;
        let m = verified(&memory, a.limit).await;
        let f = verified(&with_file, a.limit).await;
        assert_eq!((m.records, f.records), (p.records, p.records));
        println!("  round {}:", round + 1);
        row("unverified (plain reqwest)", p, None);
        row("verified, trust in memory", m, Some(p));
        row("verified, state file", f, Some(p));
        plain.add(p);
        mem.add(m);
        file.add(f);
    }
    println!("  all {} rounds:", a.rounds);
    row("unverified (plain reqwest)", plain, None);
    row("verified, trust in memory", mem, Some(plain));
    row("verified, state file", file, Some(plain));
    println!(
        "  requests per page: 1 unverified; 4 verified (the page, the checkpoint, a consistency \
         proof — every page's disclosure grows the log — and an inclusion proof)"
    );
    fx.app.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    for backend in a.backends.clone() {
        bench(backend, &a).await;
    }
}
