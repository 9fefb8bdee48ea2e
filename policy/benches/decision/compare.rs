//! The comparison engines' runs (adapted from the reference bench's `main.rs`): Cedar with one
//! `PolicySet`, one per department and one per (department, purpose); casbin with one
//! `Enforcer` and one per department; and what an update costs each of them. Single-set variants
//! are timed (and checked) on the first requests only, within `budget`; partitioned variants
//! are checked on every request (answers past their timing budget are computed untimed).

use std::hint::black_box;
use std::time::Instant;

use casbin::MgmtApi;

use crate::data::{self, Level, Request, World};
use crate::report::{self, Row, RowInfo, UpdateRow, fmt_dur, timed_pass};
use crate::{Args, casbin_eng, cedar_eng};

pub struct Ctx<'a> {
    pub w: &'a World,
    pub reqs: &'a [Request],
    pub truth: &'a [Option<Level>],
    pub args: &'a Args,
}

/// Answers for requests past the end of a budget-limited timed pass, untimed.
fn complete<F: FnMut(usize) -> (Option<Level>, usize)>(
    ans: &mut Vec<Option<Level>>,
    errors: &mut usize,
    n: usize,
    mut f: F,
) {
    for i in ans.len()..n {
        let (a, e) = f(i);
        ans.push(a);
        *errors += e;
    }
}

pub fn cedar(ctx: &Ctx<'_>, rows: &mut Vec<Row>, updates: &mut Vec<UpdateRow>) {
    let (w, reqs, truth, args) = (ctx.w, ctx.reqs, ctx.truth, ctx.args);
    let auth = cedar_policy::Authorizer::new();
    let t0 = Instant::now();
    let ents = cedar_eng::build_entities(w);
    let t_ents = t0.elapsed();
    let t0 = Instant::now();
    let creqs = cedar_eng::prepare(w, reqs);
    let t_req = t0.elapsed();
    let texts = cedar_eng::policy_texts(w);
    println!(
        "  cedar setup: Entities store {} ({} entities); {} Request objects built in {} (outside the timed loop)",
        fmt_dur(t_ents),
        w.tree.len() + w.depts.len() + w.records.len() + w.cases.len(),
        creqs.len(),
        fmt_dur(t_req),
    );

    if args.wants("cedar") {
        let t0 = Instant::now();
        let ps = cedar_eng::policy_set(texts.iter());
        let t_pol = t0.elapsed();
        println!(
            "  cedar: {} policies parsed into one PolicySet in {}",
            texts.len(),
            fmt_dur(t_pol)
        );
        for r in creqs.iter().take(20) {
            black_box(cedar_eng::decide(&auth, &ps, &ents, r));
        }
        let (lat, ans, errs, wall) = timed_pass(creqs.len(), args.budget, |i| {
            cedar_eng::decide(&auth, &ps, &ents, &creqs[i])
        });
        let info = RowInfo {
            name: "cedar (one PolicySet)",
            setup: t_ents + t_pol,
            size: format!("{} policies", texts.len()),
            per_sec: ans.len() as f64 / wall.as_secs_f64(),
            per_sec_note: "",
        };
        rows.push(report::make_row(info, truth, lat, &ans, errs));
        report::print_row(rows.last().expect("just pushed"));
    }

    if !args.wants("cedar-split") {
        return;
    }
    let n_depts = w.depts.len();
    let t0 = Instant::now();
    let by_dept: Vec<cedar_policy::PolicySet> = (0..n_depts as u16)
        .map(|d| cedar_eng::policy_set(texts.iter().filter(|t| t.dept == d)))
        .collect();
    let t_split = t0.elapsed();
    let dec =
        |i: usize| cedar_eng::decide(&auth, &by_dept[reqs[i].dept as usize], &ents, &creqs[i]);
    for i in 0..1000.min(creqs.len()) {
        black_box(dec(i));
    }
    let (lat, mut ans, mut errs, wall) = timed_pass(creqs.len(), args.budget * 3, dec);
    let timed = ans.len();
    complete(&mut ans, &mut errs, creqs.len(), dec);
    let info = RowInfo {
        name: "cedar (PolicySet per dept)",
        setup: t_ents + t_split,
        size: format!(
            "{n_depts} sets, {:.0} policies avg",
            texts.len() as f64 / n_depts as f64
        ),
        per_sec: timed as f64 / wall.as_secs_f64(),
        per_sec_note: "",
    };
    rows.push(report::make_row(info, truth, lat, &ans, errs));
    report::print_row(rows.last().expect("just pushed"));
    drop(by_dept);

    let np = data::PURPOSES.len();
    let t0 = Instant::now();
    let mut groups: Vec<Vec<&cedar_eng::PolicyText>> = vec![Vec::new(); n_depts * np];
    for t in &texts {
        groups[t.dept as usize * np + t.purpose as usize].push(t);
    }
    let by_dp: Vec<cedar_policy::PolicySet> = groups
        .iter()
        .map(|g| cedar_eng::policy_set(g.iter().copied()))
        .collect();
    let t_split = t0.elapsed();
    let dec = |i: usize| {
        let r = &reqs[i];
        let set = &by_dp[r.dept as usize * np + r.purpose as usize];
        cedar_eng::decide(&auth, set, &ents, &creqs[i])
    };
    for i in 0..2000.min(creqs.len()) {
        black_box(dec(i));
    }
    let (lat, mut ans, mut errs, _) = timed_pass(creqs.len(), args.budget * 3, dec);
    let timed = ans.len();
    let tput = report::batch_pass(timed, dec);
    complete(&mut ans, &mut errs, creqs.len(), dec);
    let info = RowInfo {
        name: "cedar (PolicySet per dept+purpose)",
        setup: t_ents + t_split,
        size: format!(
            "{} sets, {:.1} policies avg",
            by_dp.len(),
            texts.len() as f64 / by_dp.len() as f64
        ),
        per_sec: tput,
        per_sec_note: " (batch)",
    };
    rows.push(report::make_row(info, truth, lat, &ans, errs));
    report::print_row(rows.last().expect("just pushed"));

    // A grant change in the partitioned encoding: re-parse its (department, purpose) set.
    let mut lat = Vec::new();
    for g in groups.iter().filter(|g| !g.is_empty()).take(1000) {
        let t = Instant::now();
        black_box(cedar_eng::policy_set(g.iter().copied()));
        lat.push(t.elapsed().as_nanos() as u64);
    }
    updates.push(UpdateRow::new(
        "cedar: re-parse the (dept, purpose) PolicySet of one changed grant",
        lat,
    ));

    // A case reassignment: upsert one Case entity into the shared store (Cedar recomputes the
    // transitive closure of the whole store).
    let mut lat = Vec::new();
    for k in 0..args.cedar_upserts {
        let store = ents.clone();
        let case = &w.cases[k];
        let moved = data::Case {
            name: case.name.clone(),
            open: true,
            assignees: vec![(case.assignees[0] + 1) % data::N_DEPTS as u16],
            records: case.records.clone(),
        };
        let entity = cedar_eng::case_entity(w, &moved);
        let t = Instant::now();
        let store = store
            .upsert_entities([entity], None)
            .expect("upsert of a well-formed case");
        lat.push(t.elapsed().as_nanos() as u64);
        drop(store);
    }
    updates.push(UpdateRow::new(
        "cedar: `Entities::upsert_entities` of one reassigned case (210 k-entity store)",
        lat,
    ));
}

pub fn casbin(
    ctx: &Ctx<'_>,
    rt: &tokio::runtime::Runtime,
    rows: &mut Vec<Row>,
    updates: &mut Vec<UpdateRow>,
) {
    let (w, reqs, truth, args) = (ctx.w, ctx.reqs, ctx.truth, ctx.args);
    let t0 = Instant::now();
    casbin_eng::init_maps(w);
    let t_maps = t0.elapsed();
    let creqs = casbin_eng::prepare(w, reqs);
    let all_lines = casbin_eng::policy_lines(w, None);
    let n_lines = all_lines.len();

    if args.wants("casbin") {
        let t0 = Instant::now();
        let e = rt.block_on(casbin_eng::build_enforcer(all_lines));
        let t_enf = t0.elapsed();
        for r in creqs.iter().take(20) {
            black_box(casbin_eng::decide(&e, r));
        }
        let (lat, ans, errs, wall) = timed_pass(creqs.len(), args.budget, |i| {
            (casbin_eng::decide(&e, &creqs[i]), 0)
        });
        let info = RowInfo {
            name: "casbin (one Enforcer)",
            setup: t_maps + t_enf,
            size: format!("{n_lines} policy lines"),
            per_sec: ans.len() as f64 / wall.as_secs_f64(),
            per_sec_note: "",
        };
        rows.push(report::make_row(info, truth, lat, &ans, errs));
        report::print_row(rows.last().expect("just pushed"));
    }

    if !args.wants("casbin-split") {
        return;
    }
    let t0 = Instant::now();
    let mut per_dept: Vec<casbin::Enforcer> = (0..w.depts.len())
        .map(|d| {
            let lines = casbin_eng::policy_lines(w, Some(d as u16));
            rt.block_on(casbin_eng::build_enforcer(lines))
        })
        .collect();
    let t_split = t0.elapsed();
    {
        let dec = |i: usize| {
            let e = &per_dept[reqs[i].dept as usize];
            (casbin_eng::decide(e, &creqs[i]), 0)
        };
        for i in 0..1000.min(creqs.len()) {
            black_box(dec(i));
        }
        let (lat, mut ans, mut errs, wall) = timed_pass(creqs.len(), args.budget * 3, dec);
        let timed = ans.len();
        complete(&mut ans, &mut errs, creqs.len(), dec);
        let info = RowInfo {
            name: "casbin (Enforcer per dept)",
            setup: t_maps + t_split,
            size: format!(
                "{} enforcers, {:.0} lines avg",
                w.depts.len(),
                n_lines as f64 / w.depts.len() as f64
            ),
            per_sec: timed as f64 / wall.as_secs_f64(),
            per_sec_note: "",
        };
        rows.push(report::make_row(info, truth, lat, &ans, errs));
        report::print_row(rows.last().expect("just pushed"));
    }

    // A grant change: add its lines to (then remove them from) its department's enforcer. Note
    // that `add_policies` appends, so a real approval would also have to restore the
    // most-revealing-first order this encoding relies on.
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for g in w.grants.iter().filter(|g| g.approved).take(1000) {
        let mut lines = casbin_eng::grant_lines(w, g);
        for line in &mut lines {
            line[8] = format!("{}1", line[8]); // a distinct expiry: not a duplicate line
        }
        let e = &mut per_dept[g.dept as usize];
        let t = Instant::now();
        let added = rt
            .block_on(e.add_policies(lines.clone()))
            .expect("add_policies");
        add.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        let removed = rt
            .block_on(e.remove_policies(lines))
            .expect("remove_policies");
        remove.push(t.elapsed().as_nanos() as u64);
        assert!(added && removed, "casbin update did not apply");
    }
    updates.push(UpdateRow::new(
        "casbin: `add_policies` of one grant's lines (dept enforcer)",
        add,
    ));
    updates.push(UpdateRow::new(
        "casbin: `remove_policies` of one grant's lines (dept enforcer)",
        remove,
    ));
}
