//! Side-by-side benchmark of Gridhub's decision engine (`policy::DecisionIndex`) against a plain
//! HashMap baseline, casbin-rs and cedar-policy, on the deterministic workload of
//! `shared/reference/policy-bench` (whose README describes it). Every engine must give the
//! baseline's answer for every request; any disagreement of ours fails the run.
//!
//! cargo bench -p policy --features compare --bench decision -- [--requests N] [--seed S]
//!     [--budget SECS] [--updates N] [--cedar-upserts N] [--only LIST]
//!
//! `--only` takes a comma list of cedar, cedar-split, casbin, casbin-split (the baseline and
//! ours always run).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench binary over a generated workload: a broken invariant should stop it loudly"
)]

mod baseline;
mod casbin_eng;
mod cedar_eng;
mod compare;
mod data;
mod ours;
mod ours_rows;
mod report;
mod updates;

use std::hint::black_box;
use std::time::{Duration, Instant};

use data::{Level, Request};

/// The hub's allocator (`hub/src/main.rs`): every engine here allocates per decision.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use report::{Row, RowInfo, fmt_dur, fmt_ns, pct, timed_pass};

pub struct Args {
    requests: usize,
    /// Wall-clock budget of each single-set engine's timed pass (partitioned ones get 3×).
    budget: Duration,
    seed: u64,
    /// Operations per update kind on our index.
    updates: usize,
    /// Cedar entity-store upserts (each about half a second).
    cedar_upserts: usize,
    only: Option<Vec<String>>,
}

impl Args {
    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|v| v.iter().any(|x| x == name))
    }
}

fn parse_args() -> Args {
    let mut a = Args {
        requests: 100_000,
        budget: Duration::from_secs(20),
        seed: 42,
        updates: 1_000,
        cedar_upserts: 3,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // `cargo bench` passes it to every bench binary
        }
        let val = it.next().unwrap_or_default();
        match flag.as_str() {
            "--requests" => a.requests = val.parse().expect("--requests N"),
            "--budget" => a.budget = Duration::from_secs_f64(val.parse().expect("--budget SECS")),
            "--seed" => a.seed = val.parse().expect("--seed S"),
            "--updates" => a.updates = val.parse().expect("--updates N"),
            "--cedar-upserts" => a.cedar_upserts = val.parse().expect("--cedar-upserts N"),
            "--only" => a.only = Some(val.split(',').map(str::to_owned).collect()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn print_workload(w: &data::World, reqs: &[Request], seed: u64) {
    let approved = w.grants.iter().filter(|g| g.approved).count();
    let pairs: usize = w
        .grants
        .iter()
        .filter(|g| g.approved)
        .map(|g| g.fields.len())
        .sum();
    println!("decision bench (seed {seed}, allocator mimalloc, one thread)");
    println!(
        "  grid tree: 1 city, {} districts, {} streets, {} communities, {} grids; {} departments",
        w.districts.len(),
        w.streets.len(),
        w.communities.len(),
        w.grids.len(),
        w.depts.len()
    );
    println!(
        "  {} grants ({approved} approved, {} approved person, {} case-bound), {pairs} approved (grant, field) pairs",
        w.grants.len(),
        w.approved_person_grants(),
        w.grants.iter().filter(|g| g.case_bound).count(),
    );
    println!(
        "  {} person records, {} cases ({} open), {} requests ({} name a case)",
        w.records.len(),
        w.cases.len(),
        w.cases.iter().filter(|c| c.open).count(),
        reqs.len(),
        reqs.iter().filter(|r| r.case.is_some()).count()
    );
}

/// Baseline answers (the truth) and its row.
fn run_baseline(w: &data::World, reqs: &[Request]) -> (Vec<Option<Level>>, Row) {
    let t0 = Instant::now();
    let base = baseline::Baseline::build(w);
    let setup = t0.elapsed();
    let truth: Vec<Option<Level>> = reqs.iter().map(|r| base.decide(r, data::NOW)).collect();
    let mut by_level = [0usize; 4];
    for l in truth.iter().flatten() {
        by_level[*l as usize] += 1;
    }
    let allowed = truth.iter().filter(|a| a.is_some()).count();
    println!(
        "  baseline: {allowed} allowed ({:.1} %: clear {}, pseudonym {}, masked {}, generalized {}), {} denied",
        100.0 * allowed as f64 / reqs.len() as f64,
        by_level[Level::Clear as usize],
        by_level[Level::Pseudonym as usize],
        by_level[Level::Masked as usize],
        by_level[Level::Generalized as usize],
        reqs.len() - allowed
    );
    let mut overhead: Vec<u64> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            black_box(t.elapsed()).as_nanos() as u64
        })
        .collect();
    overhead.sort_unstable();
    println!(
        "  Instant::now() + elapsed(): p50 {} (included in every per-call latency)",
        fmt_ns(pct(&overhead, 0.5))
    );
    for r in reqs.iter().take(5_000) {
        black_box(base.decide(r, data::NOW));
    }
    let (lat, ans, _, _) = timed_pass(reqs.len(), Duration::MAX, |i| {
        (base.decide(&reqs[i], data::NOW), 0)
    });
    let tput = report::batch_pass(reqs.len(), |i| base.decide(&reqs[i], data::NOW));
    let info = RowInfo {
        name: "baseline (HashMap index), single field",
        setup,
        size: format!("{} index keys", base.index_keys()),
        per_sec: tput,
        per_sec_note: " (batch)",
    };
    let row = report::make_row(info, &truth, lat, &ans, 0);
    report::print_row(&row);
    (truth, row)
}

fn main() {
    let args = parse_args();
    let t_all = Instant::now();
    let w = data::generate(args.seed);
    let reqs = data::gen_requests(&w, args.seed ^ 0xA5A5, args.requests);
    print_workload(&w, &reqs, args.seed);

    let mut rows = Vec::new();
    let mut update_rows = Vec::new();
    let (truth, base_row) = run_baseline(&w, &reqs);
    rows.push(base_row);
    let ours_disagree = ours_rows::run(&w, &reqs, &truth, &args, &mut rows, &mut update_rows);

    let ctx = compare::Ctx {
        w: &w,
        reqs: &reqs,
        truth: &truth,
        args: &args,
    };
    if args.wants("cedar") || args.wants("cedar-split") {
        compare::cedar(&ctx, &mut rows, &mut update_rows);
    }
    if args.wants("casbin") || args.wants("casbin-split") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        compare::casbin(&ctx, &rt, &mut rows, &mut update_rows);
    }

    println!();
    report::print_table(&rows);
    println!();
    report::print_updates(&update_rows);
    println!();
    println!("total run {}", fmt_dur(t_all.elapsed()));
    if ours_disagree > 0 {
        eprintln!("ours disagrees with the baseline on {ours_disagree} decisions");
        std::process::exit(1);
    }
}
