//! Disclosure throughput (issue 6): authorised pulls of `GET /v1/data/person` over mTLS with
//! certificate-bound tokens, pages of 100 records × 5 disclosed fields, from an in-repo load
//! generator (`C` workers, one TLS connection each), against a bare axum endpoint serving a
//! captured real page over the same TLS and HTTP server code (`gridhub::tls::server_config`,
//! `gridhub::server::serve`) as the ceiling, in the same run. Also sealed (`Accept:
//! application/age`) against plain, the same grant without a daily quota, one worker alone, and
//! an in-process profile of the handler's steps. Client and server share this machine's cores.
//!
//! Run: `cargo bench -p gridhub-tests --bench disclosure -- [--records 20000]
//! [--concurrency 16] [--seconds 15] [--warmup 2] [--http2] [--client-threads 2]
//! [--backends sqlite,postgres] [--profile-calls 400] [--no-profile]
//! [--phases ceiling,plain,sealed,unmetered,alone]` (PostgreSQL as for the tests; every
//! phase by default). Figures and their reading: docs/PERFORMANCE.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

#[path = "disclosure/ceiling.rs"]
mod ceiling;
#[path = "disclosure/loadgen.rs"]
mod loadgen;
#[path = "disclosure/profile.rs"]
mod profile;
#[path = "disclosure/queries.rs"]
mod queries;
#[path = "disclosure/report.rs"]
mod report;
#[path = "disclosure/setup.rs"]
mod setup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridhub::state::AppState;
use gridhub::tls::pki;
use gridhub_tests::Backend;

use loadgen::{Auth, PageCount, PageSpec, Phase, Read, Target};
use report::{pct, print_header, print_row, print_split, print_steps};
use setup::{Fixture, PAGE};

/// The same allocator as the `gridhub` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The goals.
const GOAL_FRACTION: f64 = 0.40;
const GOAL_FIELDS: f64 = 500_000.0;

struct Args {
    records: usize,
    concurrency: usize,
    seconds: u64,
    warmup: u64,
    http2: bool,
    client_threads: usize,
    backends: Vec<Backend>,
    profile_calls: usize,
    /// Which load phases to run (all by default).
    phases: Vec<String>,
    /// Run the in-process profile.
    profile: bool,
}

fn args() -> Args {
    let mut a = Args {
        records: 20_000,
        concurrency: 16,
        seconds: 15,
        warmup: 2,
        http2: false,
        client_threads: 2,
        backends: vec![Backend::Sqlite, Backend::Postgres],
        profile_calls: 400,
        phases: Vec::new(),
        profile: true,
    };
    let mut it = std::env::args().skip(1);
    let all = ["ceiling", "plain", "sealed", "unmetered", "alone"];
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => a.records = value().parse().unwrap(),
            "--concurrency" => a.concurrency = value().parse().unwrap(),
            "--seconds" => a.seconds = value().parse().unwrap(),
            "--warmup" => a.warmup = value().parse().unwrap(),
            "--client-threads" => a.client_threads = value().parse().unwrap(),
            "--profile-calls" => a.profile_calls = value().parse().unwrap(),
            "--http2" => a.http2 = true,
            "--no-profile" => a.profile = false,
            "--phases" => {
                a.phases = value().split(',').map(str::to_owned).collect();
                for p in &a.phases {
                    assert!(
                        all.contains(&p.as_str()),
                        "unknown phase `{p}`; phases: {all:?}"
                    );
                }
            }
            "--backends" => {
                a.backends = value()
                    .split(',')
                    .map(|b| match b {
                        "sqlite" => Backend::Sqlite,
                        "postgres" => Backend::Postgres,
                        other => panic!("unknown backend `{other}`"),
                    })
                    .collect();
            }
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown flag `{other}`"),
        }
    }
    if a.phases.is_empty() {
        a.phases = all.iter().map(|p| (*p).to_owned()).collect();
    }
    a
}

/// Under load, every 50 ms: one ledger append of a page-sized entry, and one with the page's
/// quota charge (as the handler appends), each timed (µs). Runs for `measure` after `warmup`.
async fn probe(fx: &Fixture, warmup: Duration, measure: Duration) -> (Vec<f64>, Vec<f64>) {
    let state: &AppState = &fx.app.state;
    tokio::time::sleep(warmup).await;
    let end = Instant::now() + measure;
    let (mut ledger, mut quota) = (Vec::new(), Vec::new());
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while Instant::now() < end {
        tick.tick().await;
        let t = Instant::now();
        state.ledger.append(profile::page_entry(fx)).await.unwrap();
        ledger.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        state
            .ledger
            .append_charged(profile::page_entry(fx), profile::page_charge(fx))
            .await
            .unwrap();
        quota.push(t.elapsed().as_secs_f64() * 1e6);
    }
    ledger.sort_by(f64::total_cmp);
    quota.sort_by(f64::total_cmp);
    (ledger, quota)
}

async fn bench(backend: Backend, a: &Args, loadgen: &tokio::runtime::Handle) {
    println!("\n{backend:?}");
    let fx = setup::fixture(backend, a.records).await;
    let records: usize = fx.pages.iter().map(|p| p.records).sum();
    let fields: usize = fx.pages.iter().map(|p| p.fields).sum();
    println!(
        "  {} pages of ≤ {PAGE} records; {records} records, {fields} disclosed fields \
         ({:.2} per record)",
        fx.pages.len(),
        fields as f64 / records as f64
    );

    let cursors: Vec<String> = fx.pages.iter().filter_map(profile::cursor_of).collect();
    if a.profile {
        print_steps(&profile::steps(&fx, a.profile_calls).await);
        print_split(&queries::split(&fx.app, &cursors, 40).await);
        let (entries, per_commit, reservations) =
            profile::writer_capacity(&fx, a.concurrency, 3.0).await;
        println!(
            "  writers alone, {} concurrent callers: ledger {entries:.0} page-sized entries/s \
             ({per_commit:.1} per commit); with the page's quota charge {reservations:.0} entries/s",
            a.concurrency
        );
    }
    let mut notes = Vec::new();

    // A sealed page opens with the client's identity and holds the same records.
    let token = fx.app.client_token(&fx.client).await;
    let first = &fx.pages[0];
    let sealed = fx
        .client
        .http
        .get(fx.app.url(&first.path))
        .header("accept", "application/age")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let opened = age::decrypt(&fx.identity, &sealed).expect("the client's identity opens it");
    assert_eq!(PageCount::parse(&opened).records.len(), first.records);

    let ca = std::fs::read(fx.app.data_dir.path().join("pki").join(pki::CA_CERT)).unwrap();
    let hub_addr: SocketAddr = format!("127.0.0.1:{}", fx.app.base.rsplit(':').next().unwrap())
        .parse()
        .unwrap();
    let civil = loadgen::tls_config(&ca, &fx.client.cert_pem, &fx.client.key_pem, a.http2);
    let unmetered =
        loadgen::tls_config(&ca, &fx.unmetered.cert_pem, &fx.unmetered.key_pem, a.http2);
    let (ceiling_addr, stop_ceiling) = ceiling::ceiling(&fx, fx.sample_body.clone()).await;
    let sample = PageCount::parse(&fx.sample_body);
    let ceiling_pages: Arc<Vec<PageSpec>> = Arc::new(
        fx.pages
            .iter()
            .map(|p| PageSpec {
                path: p.path.clone(),
                records: sample.records.len(),
                fields: sample.fields(),
            })
            .collect(),
    );
    let target = |addr, tls: &Arc<rustls::ClientConfig>| Target {
        addr,
        tls: tls.clone(),
        http2: a.http2,
    };
    let phase = |target: Target, pages: &Arc<Vec<PageSpec>>, auth: Auth, read, conc| Phase {
        target,
        pages: pages.clone(),
        auth,
        read,
        concurrency: conc,
        warmup: Duration::from_secs(a.warmup),
        measure: Duration::from_secs(a.seconds),
    };
    let c = a.concurrency;
    println!(
        "  load: {c} workers, one TLS 1.3 connection each, {}, {} s after {} s warm-up; \
         client runtime {} threads",
        if a.http2 {
            "HTTP/2"
        } else {
            "HTTP/1.1 keep-alive"
        },
        a.seconds,
        a.warmup,
        a.client_threads
    );
    print_header();
    let run = |name: &str| a.phases.iter().any(|p| p == name);
    let hub = |tls: &Arc<rustls::ClientConfig>, read, conc| {
        phase(
            target(hub_addr, tls),
            &fx.pages,
            Auth::ClientToken,
            read,
            conc,
        )
    };

    let mut ceiling_rate = None;
    if run("ceiling") {
        let fixed = Auth::Fixed(token.clone());
        let bare = phase(
            target(ceiling_addr, &civil),
            &ceiling_pages,
            fixed,
            Read::Count,
            c,
        );
        let bare = loadgen::run(loadgen, bare).await;
        ceiling_rate = Some(bare.rate(bare.pages));
        print_row("ceiling: bare axum, same bytes+TLS", c, &bare, None);
    }
    let _ = stop_ceiling.send(());

    let mut plain_rate = None;
    if run("plain") {
        let commits_before = fx.app.state.ledger.commit_stats();
        let (plain, (ledger, quota)) = tokio::join!(
            loadgen::run(loadgen, hub(&civil, Read::Count, c)),
            probe(
                &fx,
                Duration::from_secs(a.warmup),
                Duration::from_secs(a.seconds)
            ),
        );
        let after = fx.app.state.ledger.commit_stats();
        print_row("hub: plain JSON", c, &plain, ceiling_rate);
        plain_rate = Some(plain.rate(plain.pages));
        let (commits, entries) = (after.0 - commits_before.0, after.1 - commits_before.1);
        notes.push(format!(
            "during the plain run: {commits} ledger commits ({:.0}/s), {:.1} entries per commit; \
             probes every 50 ms: ledger append (page-sized entry) p50 {:.0} µs, p99 {:.0} µs; \
             append with quota charge p50 {:.0} µs, p99 {:.0} µs",
            commits as f64 / plain.secs,
            entries as f64 / commits.max(1) as f64,
            pct(&ledger, 0.5),
            pct(&ledger, 0.99),
            pct(&quota, 0.5),
            pct(&quota, 0.99),
        ));
        let share = ceiling_rate.map_or("—".to_owned(), |r| {
            format!("{:.1} %", 100.0 * plain.rate(plain.pages) / r)
        });
        notes.push(format!(
            "goals: {share} of the ceiling (goal ≥ {:.0} %); {:.0} disclosed fields/s \
             (goal ≥ {GOAL_FIELDS:.0})",
            100.0 * GOAL_FRACTION,
            plain.rate(plain.fields),
        ));
    }
    if run("sealed") {
        let sealed = loadgen::run(loadgen, hub(&civil, Read::Sealed, c)).await;
        print_row("hub: sealed (application/age)", c, &sealed, ceiling_rate);
        if let Some(plain) = plain_rate {
            notes.push(format!(
                "sealed: {:.0} % fewer pages/s than plain",
                100.0 * (1.0 - sealed.rate(sealed.pages) / plain)
            ));
        }
    }
    if run("unmetered") {
        let free = loadgen::run(loadgen, hub(&unmetered, Read::Count, c)).await;
        print_row("hub: plain, grant without quota", c, &free, ceiling_rate);
    }
    if run("alone") {
        let one = Phase {
            measure: Duration::from_secs(a.seconds.min(5)),
            ..hub(&civil, Read::Count, 1)
        };
        let alone = loadgen::run(loadgen, one).await;
        print_row("hub: plain, one worker", 1, &alone, ceiling_rate);
    }
    for note in notes {
        println!("  {note}");
    }
    fx.app.stop().await;
}

fn main() {
    let a = args();
    let loadgen = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.client_threads)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .unwrap();
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "disclosure: {} residents, pages of {PAGE}, {} cores shared by hub, load generator and \
         database",
        a.records,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    server.block_on(async {
        for backend in a.backends.iter().copied() {
            bench(backend, &a, loadgen.handle()).await;
        }
    });
}
