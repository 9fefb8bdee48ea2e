//! Our engine's rows: setup, single field, whole record, plan only (step 2 with step 1 done),
//! the cost of step 1's parts, updates, and agreement with the baseline before and after them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::data::{self, Level, Request};
use crate::report::{self, Row, RowInfo, fmt_dur, fmt_ns, pct, timed_pass};
use crate::{Args, ours, updates};

/// Our engine: setup, the three timed rows, updates, and agreement before and after them.
/// Returns the number of disagreements.
pub fn run(
    w: &data::World,
    reqs: &[Request],
    truth: &[Option<Level>],
    args: &Args,
    rows: &mut Vec<Row>,
    update_rows: &mut Vec<report::UpdateRow>,
) -> usize {
    let t0 = Instant::now();
    let (mut o, s) = ours::Ours::build(w);
    let setup = t0.elapsed();
    println!(
        "  ours setup: {} in all ({} grants, {} cases); LiveGrants built (filters and grids parsed) {}, upserted {}, jurisdictions {}, cases {}",
        fmt_dur(setup),
        o.index.grant_count(),
        o.index.case_count(),
        fmt_dur(s.grants),
        fmt_dur(s.upserts),
        fmt_dur(s.jurisdictions),
        fmt_dur(s.cases)
    );
    let refused = o.creation_refusals(w);
    println!(
        "  (of the {} workload grants, `grant::check_terms` would refuse {} at creation: {:?})",
        w.grants.len(),
        refused.values().sum::<usize>(),
        refused
    );
    let size = format!(
        "{} grants, {} cases",
        o.index.grant_count(),
        o.index.case_count()
    );
    let mut disagree = 0;

    for r in reqs.iter().take(5_000) {
        black_box(o.decide(r));
    }
    let (lat, ans, _, _) = timed_pass(reqs.len(), Duration::MAX, |i| (o.decide(&reqs[i]), 0));
    let tput = report::batch_pass(reqs.len(), |i| o.decide(&reqs[i]));
    let info = RowInfo {
        name: "ours: single field (candidates + plan)",
        setup,
        size: size.clone(),
        per_sec: tput,
        per_sec_note: " (batch)",
    };
    rows.push(report::make_row(info, truth, lat, &ans, 0));
    report::print_row(rows.last().expect("just pushed"));
    disagree += rows.last().expect("just pushed").disagree;

    let record = |i: usize| {
        let (disclosed, ranks, asked) = o.decide_record(&reqs[i]);
        black_box((disclosed, ranks));
        (asked, 0)
    };
    let (lat, ans, _, _) = timed_pass(reqs.len(), Duration::MAX, record);
    let tput = report::batch_pass(reqs.len(), record);
    let info = RowInfo {
        name: "ours: whole-record plan (candidates + plan)",
        setup,
        size: size.clone(),
        per_sec: tput,
        per_sec_note: " (batch)",
    };
    rows.push(report::make_row(info, truth, lat, &ans, 0));
    report::print_row(rows.last().expect("just pushed"));
    disagree += rows.last().expect("just pushed").disagree;

    disagree += plan_only(&o, reqs, truth, setup, &size, rows);
    step_one_costs(&o, reqs);

    update_rows.extend(updates::ours(&mut o, w, args.updates));
    let after = reqs
        .iter()
        .zip(truth)
        .filter(|(r, t)| o.decide(r) != **t)
        .count();
    println!("  ours after the update round trip: {after} disagreements");
    disagree + after
}

/// Step 2 alone, with step 1 done beforehand: what each further record of a page costs.
fn plan_only(
    o: &ours::Ours<'_>,
    reqs: &[Request],
    truth: &[Option<Level>],
    setup: Duration,
    size: &str,
    rows: &mut Vec<Row>,
) -> usize {
    let cands: Vec<Option<policy::Candidates>> = reqs.iter().map(|r| o.candidates(r)).collect();
    let with: Vec<usize> = (0..reqs.len()).filter(|&i| cands[i].is_some()).collect();
    // A request refused at step 1 must be a deny.
    let refused_but_allowed = (0..reqs.len())
        .filter(|&i| cands[i].is_none() && truth[i].is_some())
        .count();
    let sub_truth: Vec<Option<Level>> = with.iter().map(|&i| truth[i]).collect();
    let plan = |k: usize| {
        let i = with[k];
        let c = cands[i].as_ref().expect("filtered on Some");
        (o.plan_field(c, &reqs[i]), 0)
    };
    for k in 0..5_000.min(with.len()) {
        black_box(plan(k));
    }
    let (lat, ans, _, _) = timed_pass(with.len(), Duration::MAX, plan);
    let tput = report::batch_pass(with.len(), plan);
    let info = RowInfo {
        name: "ours: plan only, candidates precomputed",
        setup,
        size: size.to_owned(),
        per_sec: tput,
        per_sec_note: " (batch)",
    };
    rows.push(report::make_row(info, &sub_truth, lat, &ans, 0));
    report::print_row(rows.last().expect("just pushed"));
    rows.last().expect("just pushed").disagree + refused_but_allowed
}

/// Step 1 alone, and the copy of the candidate `Arc`s it makes on every call, each timed per
/// call (p50 / p99). (The category's field names and `never_shared` flags are shared `Arc`s.)
fn step_one_costs(o: &ours::Ours<'_>, reqs: &[Request]) {
    let time = |f: &mut dyn FnMut(usize)| {
        let mut lat: Vec<u64> = (0..reqs.len())
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed().as_nanos() as u64
            })
            .collect();
        lat.sort_unstable();
        format!(
            "p50 {} / p99 {}",
            fmt_ns(pct(&lat, 0.5)),
            fmt_ns(pct(&lat, 0.99))
        )
    };
    let cands: Vec<Option<policy::Candidates>> = reqs.iter().map(|r| o.candidates(r)).collect();
    let step_one = time(&mut |i| drop(black_box(o.candidates(&reqs[i]))));
    let copy_grants = time(&mut |i| {
        if let Some(c) = &cands[i] {
            drop(black_box(c.grants().to_vec()));
        }
    });
    println!(
        "  ours step 1 (`candidates`, result dropped): {step_one}; of which the candidate `Arc`s into a `Vec`: {copy_grants}"
    );
}
