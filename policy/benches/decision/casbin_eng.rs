//! casbin-rs encoding (copied from `shared/reference/policy-bench/src/casbin_eng.rs`; the level
//! order is Gridhub's, see `data.rs`): one policy line per (approved grant, field), ABAC matcher with
//! custom functions for grid-prefix containment, row filter, jurisdiction and case
//! assignment (the last two look up in-memory maps, since casbin custom functions are
//! plain `fn` pointers they live in process-wide statics).
//!
//! Lines are loaded most-revealing level first, so with `some(where (p.eft == allow))`
//! (which stops at the first allowing line) the line reported by `enforce_ex` carries
//! the highest level that any matching grant gives; that is the answer.

use crate::data::{CATEGORIES, FIELDS, Grant, Level, NOW, PURPOSES, Request, World, grid_contains};
use casbin::function_map::OperatorFunction;
use casbin::prelude::*;
use casbin::rhai::{Dynamic, ImmutableString};
use std::collections::HashMap;
use std::sync::OnceLock;

pub const MODEL: &str = r#"
[request_definition]
r = sub, rec, grid, tags, field, purpose, cat, case, now

[policy_definition]
p = sub, purpose, cat, field, level, scope, tag, cb, exp

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.purpose == p.purpose && r.field == p.field && r.cat == p.cat && r.now < p.exp && inScope(r.grid, p.scope) && (p.tag == "" || hasTag(r.tags, p.tag)) && ((p.cb == "0" && inJuris(r.sub, r.grid)) || (p.cb == "1" && caseOk(r.case, r.sub, r.rec)))
"#;

struct CaseInfo {
    open: bool,
    assignees: Vec<String>,
    records: Vec<String>,
}

static JURIS: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
static CASES: OnceLock<HashMap<String, CaseInfo>> = OnceLock::new();

#[inline]
fn s(d: Dynamic) -> ImmutableString {
    d.into_immutable_string().unwrap_or_default()
}

/// p.scope is "prefix1|prefix2|..."
fn in_scope(grid: Dynamic, scope: Dynamic) -> Dynamic {
    let (g, sc) = (s(grid), s(scope));
    sc.split('|').any(|p| grid_contains(p, &g)).into()
}
/// r.tags is "tag1|tag2"
fn has_tag(tags: Dynamic, tag: Dynamic) -> Dynamic {
    let (ts, t) = (s(tags), s(tag));
    ts.split('|').any(|x| x == t.as_str()).into()
}
fn in_juris(dept: Dynamic, grid: Dynamic) -> Dynamic {
    let (d, g) = (s(dept), s(grid));
    JURIS
        .get()
        .unwrap()
        .get(d.as_str())
        .is_some_and(|js| js.iter().any(|j| grid_contains(j, &g)))
        .into()
}
fn case_ok(case: Dynamic, dept: Dynamic, rec: Dynamic) -> Dynamic {
    let (c, d, r) = (s(case), s(dept), s(rec));
    if c.is_empty() {
        return false.into();
    }
    CASES
        .get()
        .unwrap()
        .get(c.as_str())
        .is_some_and(|ci| {
            ci.open
                && ci.assignees.iter().any(|a| a == d.as_str())
                && ci.records.iter().any(|x| x == r.as_str())
        })
        .into()
}

/// Fill the lookup maps the custom functions use (once per process).
pub fn init_maps(w: &World) {
    JURIS.get_or_init(|| {
        w.depts
            .iter()
            .map(|d| (d.name.clone(), d.jurisdiction.clone()))
            .collect()
    });
    CASES.get_or_init(|| {
        w.cases
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    CaseInfo {
                        open: c.open,
                        assignees: c
                            .assignees
                            .iter()
                            .map(|d| w.depts[*d as usize].name.clone())
                            .collect(),
                        records: c
                            .records
                            .iter()
                            .map(|r| w.records[*r as usize].name.clone())
                            .collect(),
                    },
                )
            })
            .collect()
    });
}

/// Policy lines for the approved grants of `dept` (all departments when None),
/// ordered clear → pseudonym → masked → generalized.
pub fn policy_lines(w: &World, dept: Option<u16>) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for lvl in Level::ALL_DESC {
        for g in w
            .grants
            .iter()
            .filter(|g| g.approved && dept.is_none_or(|d| d == g.dept))
        {
            for (f, l) in &g.fields {
                if *l == lvl {
                    lines.push(line(w, g, *f, lvl));
                }
            }
        }
    }
    lines
}

/// One grant's lines, most revealing first.
pub fn grant_lines(w: &World, g: &Grant) -> Vec<Vec<String>> {
    let mut fields = g.fields.clone();
    fields.sort_by_key(|f| std::cmp::Reverse(f.1));
    fields.iter().map(|(f, l)| line(w, g, *f, *l)).collect()
}

fn line(w: &World, g: &Grant, field: u8, lvl: Level) -> Vec<String> {
    vec![
        w.depts[g.dept as usize].name.clone(),
        PURPOSES[g.purpose as usize].to_string(),
        CATEGORIES[g.cat as usize].to_string(),
        FIELDS[field as usize].to_string(),
        lvl.as_str().to_string(),
        g.scope.join("|"),
        g.tag
            .map(|t| crate::data::TAGS[t as usize].to_string())
            .unwrap_or_default(),
        if g.case_bound { "1" } else { "0" }.to_string(),
        g.expires.to_string(),
    ]
}

pub async fn build_enforcer(lines: Vec<Vec<String>>) -> Enforcer {
    let m = DefaultModel::from_str(MODEL).await.expect("casbin model");
    let mut e = Enforcer::new(m, MemoryAdapter::default())
        .await
        .expect("enforcer");
    e.add_function("inScope", OperatorFunction::Arg2(in_scope));
    e.add_function("hasTag", OperatorFunction::Arg2(has_tag));
    e.add_function("inJuris", OperatorFunction::Arg2(in_juris));
    e.add_function("caseOk", OperatorFunction::Arg3(case_ok));
    if !lines.is_empty() {
        e.add_policies(lines).await.expect("add_policies");
    }
    e
}

/// The request as casbin sees it: 9 strings (built outside the timed section).
pub struct CReq {
    pub v: [String; 9],
}

pub fn prepare(w: &World, reqs: &[Request]) -> Vec<CReq> {
    let now = NOW.to_string();
    reqs.iter()
        .map(|r| {
            let rec = &w.records[r.rec as usize];
            CReq {
                v: [
                    w.depts[r.dept as usize].name.clone(),
                    rec.name.clone(),
                    w.grids[rec.grid as usize].clone(),
                    w.tags_joined(rec.tags),
                    FIELDS[r.field as usize].to_string(),
                    PURPOSES[r.purpose as usize].to_string(),
                    "person".to_string(),
                    r.case
                        .map(|c| w.cases[c as usize].name.clone())
                        .unwrap_or_default(),
                    now.clone(),
                ],
            }
        })
        .collect()
}

#[inline]
pub fn decide(e: &Enforcer, r: &CReq) -> Option<Level> {
    let v = &r.v;
    let (ok, rules) = e
        .enforce_ex((
            v[0].as_str(),
            v[1].as_str(),
            v[2].as_str(),
            v[3].as_str(),
            v[4].as_str(),
            v[5].as_str(),
            v[6].as_str(),
            v[7].as_str(),
            v[8].as_str(),
        ))
        .expect("enforce");
    if !ok {
        return None;
    }
    rules.first().and_then(|rule| Level::parse(&rule[4]))
}
