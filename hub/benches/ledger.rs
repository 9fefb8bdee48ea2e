//! Audit ledger figures: durable appends/s with 64 concurrent writers (group commit) and
//! single-writer latency on SQLite and PostgreSQL; `audit verify` speed on a 1 000 000-entry
//! ledger against this machine's SHA-256 ceiling measured in the same run; inclusion-proof
//! latency at 1 000 000 entries.
//! Run: `cargo bench -p gridhub-hub --bench ledger` (PostgreSQL from `GRIDHUB_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`; `LEDGER_BENCH_ENTRIES` to change 1M).
//! `LEDGER_BENCH_ONLY=verify` skips the append figures and inclusion proofs,
//! `LEDGER_BENCH_RUNS` sets the number of verify runs (3);
//! `LEDGER_BENCH_REQUEST_IDS` `v7` (default: time-ordered, as the hub makes them), `uuid`
//! (random) or `bench` (`bench-<i>`, before the request id was indexed) picks request ids;
//! `LEDGER_BENCH_DB=FILE` keeps the SQLite ledger (and its key, in `FILE.key`) between runs, so
//! repeated verify runs do not grow a new ledger each time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::time::{Duration, Instant};

use gridhub::config::DatabaseLocation;
use gridhub::ledger::merkle::{self, Frontier};
use gridhub::ledger::note::NoteSigner;
use gridhub::ledger::sources::StoreSource;
use gridhub::ledger::verify::LedgerSource;
use gridhub::ledger::{Actor, Decision, EntryDraft, Ledger, RecordRef};
use gridhub::storage::Store;
use sqlx::Connection;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITERS: usize = 64;

/// Request ids as the hub makes them (UUIDv7, ordered by time); `LEDGER_BENCH_REQUEST_IDS=uuid`
/// random ones (UUIDv4, as a client may send), `=bench` the old `bench-<i>` (64 writers
/// counting in 64 ranges). With an index on `request_id` their order is what an append costs.
fn request_id(i: u64) -> String {
    static MODE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::env::var("LEDGER_BENCH_REQUEST_IDS").unwrap_or_else(|_| "v7".to_owned())
    });
    match MODE.as_str() {
        "uuid" => uuid::Uuid::new_v4().to_string(),
        "bench" => format!("bench-{i}"),
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

fn draft(i: u64) -> EntryDraft {
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
        request_id(i),
    )
    .category("person")
    .purpose("population-registration")
    .records(vec![RecordRef::new(
        &uuid::Uuid::now_v7().to_string(),
        fields,
    )])
}

/// A new ledger key, or the one kept in `keep` (written there the first time).
fn signer(keep: Option<&std::path::Path>) -> NoteSigner {
    let kept = keep.and_then(|p| std::fs::read(p).ok());
    let pkcs8 = kept.unwrap_or_else(|| {
        let new = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap();
        if let Some(p) = keep {
            std::fs::write(p, new.as_ref()).unwrap();
        }
        new.as_ref().to_vec()
    });
    NoteSigner::from_pkcs8("gridhub/bench", &pkcs8).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `total` appends from `WRITERS` concurrent tasks; returns appends/s.
async fn concurrent(ledger: &Ledger, total: u64, offset: u64) -> f64 {
    let started = Instant::now();
    let per = total / WRITERS as u64;
    let mut tasks = Vec::new();
    for w in 0..WRITERS as u64 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                ledger.append(draft(offset + w * per + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * WRITERS as u64) as f64 / started.elapsed().as_secs_f64()
}

async fn single(ledger: &Ledger, n: u64) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        ledger.append(draft(10_000_000 + i)).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

async fn appends(label: &str, store: Store, signer: NoteSigner) -> Ledger {
    let ledger = Ledger::open(store, signer, "gridhub/bench".to_owned())
        .await
        .unwrap();
    concurrent(&ledger, 6_400, 0).await; // warm-up
    let (c0, e0) = ledger.commit_stats();
    let rate = concurrent(&ledger, 128_000, 1_000_000).await;
    let (c1, e1) = ledger.commit_stats();
    let batch = (e1 - e0) as f64 / (c1 - c0).max(1) as f64;
    let lat = single(&ledger, 500).await;
    println!(
        "{label:<10} {rate:>10.0} appends/s ({WRITERS} writers, {batch:.1} entries per commit)   single writer: p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.0}/s)",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.len() as f64 / lat.iter().map(Duration::as_secs_f64).sum::<f64>()
    );
    ledger
}

/// The append figures on SQLite (`sqlite`, kept for the verify figures) and on a fresh
/// PostgreSQL database (dropped afterwards).
async fn all_appends(sqlite: Store, sqlite_signer: NoteSigner) -> Ledger {
    println!(
        "durable appends (SQLite WAL synchronous=FULL; PostgreSQL 15 fsync on), {} bytes per entry",
        draft(0).canonical(0, 0).len()
    );
    let ledger = appends("sqlite", sqlite, sqlite_signer).await;

    let admin = std::env::var("GRIDHUB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("gridhub_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL for the bench");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let pg = Store::open(&DatabaseLocation::Postgres(url.into()))
        .await
        .unwrap();
    let pg_ledger = appends("postgres", pg.clone(), signer(None)).await;
    // `audit verify` on PostgreSQL as well: its read path (one query per page, pieces by
    // `string_agg`) is checked here, on the entries just appended.
    pg_ledger.checkpoint().await.unwrap();
    let verifier = pg_ledger.key_chain().await.unwrap();
    let t = Instant::now();
    let report = gridhub::ledger::verify::verify(
        &mut StoreSource::new(&pg),
        &verifier,
        "gridhub/bench",
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.entries, pg_ledger.size());
    println!(
        "postgres   verify {} entries: {:.0} entries/s",
        report.entries,
        report.entries as f64 / t.elapsed().as_secs_f64()
    );
    drop(pg_ledger);
    pg.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    ledger
}

/// User + system CPU time of this process so far, all threads (Linux `/proc/self/stat`, in
/// clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[tokio::main]
async fn main() {
    let entries: u64 = std::env::var("LEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let only_verify = std::env::var("LEDGER_BENCH_ONLY").is_ok_and(|v| v == "verify");
    let dir = tempfile::tempdir().unwrap();
    let db = std::env::var_os("LEDGER_BENCH_DB")
        .map_or_else(|| dir.path().join("bench.db"), std::path::PathBuf::from);
    let sqlite = Store::open(&DatabaseLocation::Sqlite(db.clone()))
        .await
        .unwrap();
    let key = std::env::var_os("LEDGER_BENCH_DB").map(|_| db.with_extension("db.key"));
    let sqlite_signer = signer(key.as_deref());
    let ledger = if only_verify {
        Ledger::open(sqlite.clone(), sqlite_signer, "gridhub/bench".to_owned())
            .await
            .unwrap()
    } else {
        all_appends(sqlite.clone(), sqlite_signer).await
    };

    // Grow the SQLite ledger to `entries` and checkpoint it.
    let have = ledger.size();
    if entries > have {
        let t = Instant::now();
        concurrent(
            &ledger,
            (entries - have).div_ceil(WRITERS as u64) * WRITERS as u64,
            20_000_000,
        )
        .await;
        println!(
            "grew the SQLite ledger to {} entries in {:.1} s",
            ledger.size(),
            t.elapsed().as_secs_f64()
        );
    }
    let note = ledger.checkpoint().await.unwrap();
    let size = ledger.size();

    if std::env::var_os("LEDGER_PROBE").is_some() {
        let t = Instant::now();
        let mut n = 0usize;
        let mut from = 0i64;
        loop {
            let page = sqlite.ledger_page(from, 50_000).await.unwrap();
            if page.is_empty() {
                break;
            }
            n += page.len();
            from = page.last().unwrap().index + 1;
        }
        println!(
            "probe: reading {n} entries alone: {:.0} entries/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
        for page in [4_096i64, 16_384, 65_536] {
            let t = Instant::now();
            let mut from = 0i64;
            let mut bytes = 0usize;
            while let Some(chunk) = sqlite.ledger_chunk(from, page).await.unwrap() {
                bytes += chunk.pieces().iter().map(|p| p.len()).sum::<usize>();
                from += page;
            }
            println!(
                "probe: ledger_chunk pages of {page}: {:.0} entries/s ({bytes} bytes)",
                from.min(size as i64) as f64 / t.elapsed().as_secs_f64()
            );
        }
        let t = Instant::now();
        let mut source = StoreSource::new(&sqlite);
        let mut nodes = 0usize;
        for from in (0..size).step_by(50_000) {
            let found = source
                .stored_nodes(from, (from + 50_000).min(size))
                .await
                .unwrap()
                .unwrap();
            nodes += found.len();
        }
        println!(
            "probe: stored nodes ({nodes}) by 50 000-entry page: {:.0} entries/s",
            size as f64 / t.elapsed().as_secs_f64()
        );
        use sqlx::Row;
        let url = format!("sqlite://{}", db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for (label, sql) in [
            (
                "group_concat",
                "SELECT COUNT(*) AS n, group_concat(canonical, char(10)) AS t, group_concat(hex(leaf_hash), '') AS l FROM (SELECT canonical, leaf_hash FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2)",
            ),
            (
                "group_concat raw leaves",
                "SELECT COUNT(*) AS n, group_concat(canonical, char(10)) AS t, CAST(group_concat(leaf_hash, '') AS BLOB) AS l FROM (SELECT canonical, leaf_hash FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2)",
            ),
            (
                "group_concat texts only",
                "SELECT COUNT(*) AS n, group_concat(canonical, char(10)) AS t FROM (SELECT canonical FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2)",
            ),
        ] {
            let t = Instant::now();
            let mut from = 0i64;
            let mut n = 0i64;
            loop {
                let row = sqlx::query(sql)
                    .bind(from)
                    .bind(50_000i64)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                let got: i64 = row.get("n");
                if got == 0 {
                    break;
                }
                let text: String = row.get("t");
                std::hint::black_box(text.len());
                n += got;
                from += got;
            }
            println!(
                "probe: {label}: {:.0} entries/s",
                n as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    // Verification, as `gridhub audit verify --data-dir` runs it.
    let verifier = ledger.key_chain().await.unwrap();
    // Three runs (`LEDGER_BENCH_RUNS`), the median reported (this VM's speed drifts by tens of
    // per cent). The CPU time of the whole process, all threads, is less sensitive to other
    // load on the machine than the wall time.
    let rounds: usize = std::env::var("LEDGER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut runs = Vec::new();
    let mut cpu = Vec::new();
    let mut report = None;
    for _ in 0..rounds.max(1) {
        let (t, c) = (Instant::now(), cpu_seconds());
        let r = gridhub::ledger::verify::verify(
            &mut StoreSource::new(&sqlite),
            &verifier,
            "gridhub/bench",
            |_| {},
        )
        .await
        .unwrap();
        runs.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        assert_eq!(r.entries, size);
        report = Some(r);
    }
    let report = report.unwrap();
    println!(
        "verify runs: {}   CPU per entry, all threads: {}",
        runs.iter()
            .map(|s| format!("{:.0}/s", size as f64 / s))
            .collect::<Vec<_>>()
            .join(", "),
        cpu.iter()
            .map(|s| format!("{:.2} µs", s * 1e6 / size as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    runs.sort_by(f64::total_cmp);
    let verify_s = runs[runs.len() / 2];

    // Ceiling: SHA-256 of the same leaves plus the same number of interior nodes, in memory.
    let texts: Vec<String> = (0..size.min(200_000))
        .map(|i| draft(i).canonical(i, 1_700_000_000_000))
        .collect();
    let t = Instant::now();
    let mut frontier = Frontier::new();
    for i in 0..size {
        frontier.push(merkle::leaf_hash(
            texts[(i % texts.len() as u64) as usize].as_bytes(),
        ));
    }
    std::hint::black_box(frontier.root());
    let ceiling_s = t.elapsed().as_secs_f64();
    println!(
        "verify {size} entries: {:>9.0} entries/s   SHA-256 ceiling (same leaves + nodes, in memory): {:>9.0} entries/s ({:.0} %)",
        size as f64 / verify_s,
        size as f64 / ceiling_s,
        100.0 * ceiling_s / verify_s
    );

    if only_verify {
        return;
    }
    // Inclusion proofs at this size.
    let mut lat = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let (leaf, proof) = ledger.inclusion_proof(index, size).await.unwrap();
        lat.push(t.elapsed());
        merkle::verify_inclusion(index, size, &leaf, &proof, &report.root)
            .expect("proof verifies against the verified root");
        std::hint::black_box(proof);
    }
    lat.sort();
    println!(
        "inclusion proof at {size}: p50 {:.3} ms  p99 {:.3} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    std::hint::black_box(note);
}
