//! A province-district data set (issue 22, "Measure"): N person records with their households,
//! places and organisations, 10 000 approved grants over 100 departments and 100 000 open
//! cases, on SQLite and on PostgreSQL. For each backend, in order:
//!
//! 1. the hub is stopped and the records are loaded on the fastest honest path
//!    (`records::seal` + `Store::insert_records`, as `gridhub import` opens the store; see
//!    `province/load.rs`): load time; bytes on disk per record; start-up of the real binary on
//!    records alone (the baseline of the next start);
//! 2. the hub runs in-process and the grants, then the cases are made through its services
//!    (`province/authority.rs`); the real binary is started between the two, so the memory
//!    each adds to the decision index is known apart;
//! 3. the hub is stopped, its ledger grown to PROVINCE_LEDGER_ENTRIES through `Ledger::append`;
//!    then the real binary starts on everything: start-up time and the memory the decision
//!    index adds (anonymous RSS at ready, minus the previous start's), 100-record pages of a
//!    pull and lookups by identity number over HTTPS (p50/p99), and `gridhub audit verify`.
//!
//! On PostgreSQL the test hub's database is renamed (`gridhub_province_…`) before the load, so
//! that a CI run starting meanwhile does not sweep it away as a leftover `gridhub_t_…`.
//!
//! Run: `cargo bench -p gridhub-tests --bench province` with PROVINCE_RECORDS (persons,
//! default 500 000; the full run is 5 000 000), PROVINCE_LEDGER_ENTRIES (default 1 000 000;
//! full 10 000 000), PROVINCE_BACKENDS (default `sqlite,postgres`), PROVINCE_GRANTS (10 000),
//! PROVINCE_CASES (100 000), PROVINCE_REQUESTS (timed pulls and lookups each, 2 000),
//! PROVINCE_BATCH (records per write transaction, 5 000 as `gridhub import`). PostgreSQL as for
//! the tests. Figures: docs/PERFORMANCE.md ("Province-sized data set"), docs/SCALING.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

#[path = "province/authority.rs"]
mod authority;
#[path = "province/load.rs"]
mod load;
#[path = "province/measure.rs"]
mod measure;

use std::sync::Arc;
use std::time::Instant;

use gridhub::demo::{SEED, synth};
use gridhub::vault::Vault;
use gridhub::vault::keyring::AgeFileStore;
use gridhub_tests::{Backend, TestApp, spawn_app};
use serde_json::json;

use measure::{Disk, Start, mb, percentiles};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    persons: usize,
    ledger: u64,
    backends: Vec<Backend>,
    grants: usize,
    cases: usize,
    requests: usize,
    batch: usize,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', ""))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn args() -> Args {
    let backends = std::env::var("PROVINCE_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    Args {
        persons: env("PROVINCE_RECORDS", 500_000),
        ledger: env("PROVINCE_LEDGER_ENTRIES", 1_000_000),
        backends: backends
            .split(',')
            .map(|b| match b.trim() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other}"),
            })
            .collect(),
        grants: env("PROVINCE_GRANTS", 10_000),
        cases: env("PROVINCE_CASES", 100_000),
        requests: env("PROVINCE_REQUESTS", 2_000),
        batch: env("PROVINCE_BATCH", 5_000),
    }
}

/// Everything measured on one backend.
struct Figures {
    backend: Backend,
    loaded: load::Loaded,
    /// After the records (and before grants, cases and the grown ledger).
    disk_records: Disk,
    start_records: Start,
    grants_s: f64,
    /// Records and grants (no cases yet).
    start_grants: Start,
    cases_s: f64,
    ledger_added: u64,
    ledger_s: f64,
    /// Everything: records, grants, cases, ledger.
    disk_all: Disk,
    start_all: Start,
    /// Anonymous RSS of that process after the timed requests, MB.
    anon_after: f64,
    pull: (f64, f64),
    lookup: (f64, f64),
    verify: (f64, u64, f64),
    wall_s: f64,
}

async fn app_with_grids(backend: Backend, grids: &[synth::DemoGrid]) -> TestApp {
    let app = spawn_app(backend).await;
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
    app
}

/// Run `work` to completion while the test hub is stopped (its data and database kept), then
/// start the test hub again. `restart_after` takes a synchronous closure: the work runs on this
/// runtime from a blocking section.
async fn while_stopped<T>(
    app: TestApp,
    work: impl std::future::Future<Output = T>,
) -> (TestApp, T) {
    let handle = tokio::runtime::Handle::current();
    let mut out = None;
    let app = app
        .restart_after(|| out = Some(tokio::task::block_in_place(|| handle.block_on(work))))
        .await;
    (app, out.unwrap())
}

fn print_start(label: &str, s: &Start) {
    println!(
        "  start-up ({label}): listening after {:.2} s, ready after {:.2} s; RSS {:.0} MB \
         (anonymous {:.0} MB, peak {:.0} MB)",
        s.listening_s, s.ready_s, s.rss, s.anon, s.hwm
    );
}

fn print_disk(label: &str, d: &Disk, records: u64) {
    println!(
        "  on disk ({label}): {:.0} MB, {:.0} bytes per record; largest parts:",
        mb(d.bytes),
        d.bytes as f64 / records as f64
    );
    for (name, bytes) in &d.parts {
        println!(
            "    {name:<32} {:>9.1} MB {:>7.0} B/record",
            mb(*bytes),
            *bytes as f64 / records as f64
        );
    }
}

async fn run(backend: Backend, a: &Args) -> Figures {
    let began = Instant::now();
    println!("{backend:?}:");
    let grids = synth::grid_tree(SEED);
    let mut app = app_with_grids(backend, &grids).await;
    let departments = authority::departments(&grids);
    authority::create_departments(&app, &departments).await;
    let client = app
        .register_client("province-civil-sys", authority::BENCH_DEPT)
        .await;
    let dir = app.data_dir.path().to_path_buf();
    let vault = Arc::new(Vault::unlock(&AgeFileStore::in_dir(&dir)).unwrap());
    let test_url = app.database_url.clone();
    if let Some(url) = &test_url {
        app.database_url = Some(measure::own_name(url));
    }
    let own_url = app.database_url.clone();

    let (app, (loaded, disk_records, start_records)) = while_stopped(app, async {
        if let (Some(from), Some(to)) = (&test_url, &own_url) {
            measure::rename_database(&dir, from, to).await;
        }
        let location = measure::settings(&dir).database().unwrap();
        let loaded = load::load(&location, vault, a.persons, a.batch).await;
        println!(
            "  loaded {} records ({:?}) in {:.0} s: {:.0} records/s",
            loaded.total(),
            loaded.counts,
            loaded.secs,
            loaded.total() as f64 / loaded.secs
        );
        measure::analyze(&location).await;
        let disk = measure::disk(&location).await;
        print_disk("records", &disk, loaded.total());
        let start = start_and_stop(&dir).await;
        print_start("records only", &start);
        (loaded, disk, start)
    })
    .await;
    let location = measure::settings(&dir).database().unwrap();

    let analyzer = measure::keep_analyzing(&location);
    let grants_s = authority::grants(&app.state, &departments, &grids, a.grants).await;
    println!(
        "  {} grants requested and approved in {grants_s:.0} s ({:.0}/s)",
        a.grants,
        a.grants as f64 / grants_s
    );
    analyzer.abort();
    let (app, start_grants) = while_stopped(app, async {
        measure::analyze(&location).await;
        start_and_stop(&dir).await
    })
    .await;
    print_start("records and grants", &start_grants);
    let analyzer = measure::keep_analyzing(&location);
    let cases_s = authority::cases(&app.state, &departments, &loaded.sample.persons, a.cases).await;
    analyzer.abort();
    println!(
        "  {} cases reported and dispatched in {cases_s:.0} s ({:.0}/s)",
        a.cases,
        a.cases as f64 / cases_s
    );

    let (app, rest) = while_stopped(app, async {
        let (added, ledger_s) = measure::grow_ledger(&dir, a.ledger, &loaded.sample.persons).await;
        println!(
            "  ledger grown by {added} entries in {ledger_s:.0} s ({:.0} appends/s)",
            added as f64 / ledger_s
        );
        measure::analyze(&location).await;
        let disk = measure::disk(&location).await;
        print_disk("everything", &disk, loaded.total());
        let (server, start, base) = measure::start(&dir).await;
        print_start("everything", &start);
        let mut caller = measure::Caller::new(&dir, &base, &client.cert_pem, &client.key_pem).await;
        let pull = percentiles(caller.pulls(20, a.requests).await);
        let lookup = percentiles(
            caller
                .lookups(&loaded.sample.id_numbers, 20, a.requests)
                .await,
        );
        println!(
            "  pull of 100 records p50 {:.2} ms p99 {:.2} ms; lookup by identity number p50 \
             {:.2} ms p99 {:.2} ms ({} each)",
            pull.0, pull.1, lookup.0, lookup.1, a.requests
        );
        let (rss, anon, hwm) = measure::memory(server.child.id());
        println!(
            "  after the requests: RSS {rss:.0} MB (anonymous {anon:.0} MB, peak {hwm:.0} MB)"
        );
        measure::stop(server);
        let verify = measure::verify(&dir);
        println!(
            "  audit verify: {} entries in {:.1} s wall ({:.0} entries/s; {:.0}/s as it reports)",
            verify.1,
            verify.0,
            verify.1 as f64 / verify.0,
            verify.2
        );
        (added, ledger_s, disk, start, anon, pull, lookup, verify)
    })
    .await;
    let (ledger_added, ledger_s, disk_all, start_all, anon_after, pull, lookup, verify) = rest;
    // Drops the PostgreSQL database; the data directory goes with the returned TempDir.
    drop(app.stop().await);
    let wall_s = began.elapsed().as_secs_f64();
    println!("  {backend:?} done in {:.0} min", wall_s / 60.0);
    Figures {
        backend,
        loaded,
        disk_records,
        start_records,
        grants_s,
        start_grants,
        cases_s,
        ledger_added,
        ledger_s,
        disk_all,
        start_all,
        anon_after,
        pull,
        lookup,
        verify,
        wall_s,
    }
}

/// Start the real binary on `dir` and stop it once ready: what the start cost.
async fn start_and_stop(dir: &std::path::Path) -> Start {
    let (server, start, _) = measure::start(dir).await;
    measure::stop(server);
    start
}

fn table(a: &Args, all: &[Figures]) {
    println!();
    println!(
        "province: {} persons; {} grants over {} departments; {} open cases; ledger of {} \
         entries; {} timed requests each",
        a.persons,
        a.grants,
        authority::DEPARTMENTS,
        a.cases,
        a.ledger,
        a.requests
    );
    let head: Vec<String> = all.iter().map(|f| format!("{:?}", f.backend)).collect();
    println!("| figure | {} |", head.join(" | "));
    println!("|---|{}", "---:|".repeat(all.len()));
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = all.iter().map(cell).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row("records (all categories)", &|f| {
        f.loaded.total().to_string()
    });
    row("load time, s", &|f| format!("{:.0}", f.loaded.secs));
    row("load, records/s", &|f| {
        format!("{:.0}", f.loaded.total() as f64 / f.loaded.secs)
    });
    row("on disk, records only, MB", &|f| {
        format!("{:.0}", mb(f.disk_records.bytes))
    });
    row("bytes per record", &|f| {
        format!(
            "{:.0}",
            f.disk_records.bytes as f64 / f.loaded.total() as f64
        )
    });
    row("on disk, everything, MB", &|f| {
        format!("{:.0}", mb(f.disk_all.bytes))
    });
    row("ledger tables, bytes per entry", &|f| {
        let ledger: u64 = f
            .disk_all
            .parts
            .iter()
            .filter(|(name, _)| name.contains("ledger"))
            .map(|(_, bytes)| bytes)
            .sum();
        format!("{:.0}", ledger as f64 / f.verify.1 as f64)
    });
    row("grants made, /s", &|f| {
        format!("{:.0}", a.grants as f64 / f.grants_s)
    });
    row("cases made, /s", &|f| {
        format!("{:.0}", a.cases as f64 / f.cases_s)
    });
    row("ledger appends/s (64 writers)", &|f| {
        format!("{:.0}", f.ledger_added as f64 / f.ledger_s)
    });
    row("start-up to ready: records / + grants / + cases, s", &|f| {
        format!(
            "{:.2} / {:.2} / {:.2}",
            f.start_records.ready_s, f.start_grants.ready_s, f.start_all.ready_s
        )
    });
    row("RSS at ready: records / + grants / + cases, MB", &|f| {
        format!(
            "{:.0} / {:.0} / {:.0}",
            f.start_records.rss, f.start_grants.rss, f.start_all.rss
        )
    });
    row(
        "decision index memory (anonymous RSS growth): grants / cases, MB",
        &|f| {
            format!(
                "{:.1} / {:.1}",
                f.start_grants.anon - f.start_records.anon,
                f.start_all.anon - f.start_grants.anon
            )
        },
    );
    row(
        "anonymous RSS at ready / after the timed requests, MB",
        &|f| format!("{:.0} / {:.0}", f.start_all.anon, f.anon_after),
    );
    row("pull, 100-record page, p50 / p99 ms", &|f| {
        format!("{:.2} / {:.2}", f.pull.0, f.pull.1)
    });
    row("lookup by identity number, p50 / p99 ms", &|f| {
        format!("{:.2} / {:.2}", f.lookup.0, f.lookup.1)
    });
    row("audit verify, entries", &|f| f.verify.1.to_string());
    row("audit verify, s (wall)", &|f| format!("{:.1}", f.verify.0));
    row("audit verify, entries/s (wall / reported)", &|f| {
        format!("{:.0} / {:.0}", f.verify.1 as f64 / f.verify.0, f.verify.2)
    });
    row("bench wall time, min", &|f| {
        format!("{:.0}", f.wall_s / 60.0)
    });
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let mut all = Vec::new();
    for backend in a.backends.clone() {
        all.push(run(backend, &a).await);
    }
    table(&a, &all);
}
