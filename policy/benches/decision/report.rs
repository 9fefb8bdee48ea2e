//! Timing passes and the report: per-call latency (an `Instant` around each call), batch
//! throughput (1 000 calls per timer), percentiles and the markdown tables. Adapted from the
//! reference bench's `main.rs`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::data::Level;

pub struct Row {
    pub name: String,
    pub setup: Duration,
    pub size: String,
    /// Decisions timed.
    pub n: usize,
    /// Decisions compared with the baseline.
    pub checked: usize,
    pub lat: Vec<u64>,
    pub lat_allow: Vec<u64>,
    pub lat_deny: Vec<u64>,
    pub per_sec: f64,
    pub per_sec_note: &'static str,
    pub allowed: usize,
    pub disagree: usize,
    pub errors: usize,
}

pub fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

pub fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// One timed pass over requests `0..n` in order, stopping once `budget` is spent (checked every
/// 64 calls). Returns latencies (ns), answers, evaluation errors and wall time.
pub fn timed_pass<F: FnMut(usize) -> (Option<Level>, usize)>(
    n: usize,
    budget: Duration,
    mut f: F,
) -> (Vec<u64>, Vec<Option<Level>>, usize, Duration) {
    let mut lat = Vec::with_capacity(n);
    let mut ans = Vec::with_capacity(n);
    let mut errors = 0;
    let start = Instant::now();
    for i in 0..n {
        let t0 = Instant::now();
        let (a, e) = black_box(f(i));
        let dt = t0.elapsed();
        lat.push(dt.as_nanos() as u64);
        ans.push(a);
        errors += e;
        if i % 64 == 63 && start.elapsed() > budget {
            break;
        }
    }
    (lat, ans, errors, start.elapsed())
}

/// Throughput: batches of 1 000 calls over `0..n`, no per-call timer. Calls per second.
pub fn batch_pass<T, F: FnMut(usize) -> T>(n: usize, mut f: F) -> f64 {
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let t0 = Instant::now();
        for j in i..end {
            black_box(f(j));
        }
        total += t0.elapsed();
        i = end;
    }
    n as f64 / total.as_secs_f64()
}

/// What a row says besides its timings.
pub struct RowInfo<'a> {
    pub name: &'a str,
    pub setup: Duration,
    pub size: String,
    pub per_sec: f64,
    pub per_sec_note: &'static str,
}

/// Compares `ans` with `truth` (the baseline's answers for the same requests, by position).
/// `lat` covers the timed requests, a prefix of `ans` (partitioned variants answer the rest
/// untimed, so that agreement covers every request).
pub fn make_row(
    info: RowInfo<'_>,
    truth: &[Option<Level>],
    mut lat: Vec<u64>,
    ans: &[Option<Level>],
    errors: usize,
) -> Row {
    let mut disagree = 0;
    let mut lat_allow = Vec::new();
    let mut lat_deny = Vec::new();
    for (i, (a, t)) in ans.iter().zip(truth).enumerate() {
        if a != t {
            disagree += 1;
            if disagree <= 5 {
                eprintln!(
                    "  [{}] request {i}: engine {a:?} vs baseline {t:?}",
                    info.name
                );
            }
        }
        match (lat.get(i), t) {
            (Some(&l), Some(_)) => lat_allow.push(l),
            (Some(&l), None) => lat_deny.push(l),
            (None, _) => {}
        }
    }
    let n = lat.len();
    lat.sort_unstable();
    lat_allow.sort_unstable();
    lat_deny.sort_unstable();
    Row {
        name: info.name.to_owned(),
        setup: info.setup,
        size: info.size,
        n,
        checked: ans.len(),
        lat,
        lat_allow,
        lat_deny,
        per_sec: info.per_sec,
        per_sec_note: info.per_sec_note,
        allowed: ans.iter().take(n).filter(|a| a.is_some()).count(),
        disagree,
        errors,
    }
}

pub fn print_row(r: &Row) {
    println!(
        "  {:<44} n={:<6} p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  mean {:>9} | allowed {:>5.1}% | {:>10.0}/s{} | disagree {} of {} | eval errors {}",
        r.name,
        r.n,
        fmt_ns(pct(&r.lat, 0.50)),
        fmt_ns(pct(&r.lat, 0.99)),
        fmt_ns(pct(&r.lat, 0.999)),
        fmt_ns(r.lat.last().copied().unwrap_or(0)),
        fmt_ns(r.lat.iter().sum::<u64>() / r.lat.len().max(1) as u64),
        100.0 * r.allowed as f64 / r.n.max(1) as f64,
        r.per_sec,
        r.per_sec_note,
        r.disagree,
        r.checked,
        r.errors
    );
}

pub fn print_table(rows: &[Row]) {
    println!(
        "| engine | loaded | setup | decisions timed | p50 | p99 | p99.9 | p50 allowed / denied | decisions/s (1 thread) | allowed | disagreements vs baseline (of) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {:.0}{} | {:.1} % | {} ({}) |",
            r.name,
            r.size,
            fmt_dur(r.setup),
            r.n,
            fmt_ns(pct(&r.lat, 0.50)),
            fmt_ns(pct(&r.lat, 0.99)),
            fmt_ns(pct(&r.lat, 0.999)),
            fmt_ns(pct(&r.lat_allow, 0.50)),
            fmt_ns(pct(&r.lat_deny, 0.50)),
            r.per_sec,
            r.per_sec_note,
            100.0 * r.allowed as f64 / r.n.max(1) as f64,
            r.disagree,
            r.checked
        );
    }
}

/// One update operation's latencies (ns), for the update table.
pub struct UpdateRow {
    pub name: String,
    pub lat: Vec<u64>,
}

impl UpdateRow {
    pub fn new(name: &str, mut lat: Vec<u64>) -> UpdateRow {
        lat.sort_unstable();
        UpdateRow {
            name: name.to_owned(),
            lat,
        }
    }
}

pub fn print_updates(rows: &[UpdateRow]) {
    println!("| update on the loaded index | operations | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name,
            r.lat.len(),
            fmt_ns(pct(&r.lat, 0.50)),
            fmt_ns(pct(&r.lat, 0.99)),
            fmt_ns(r.lat.last().copied().unwrap_or(0)),
        );
    }
}
