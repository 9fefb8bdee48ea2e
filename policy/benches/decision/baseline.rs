//! Plain Rust baseline (copied from `shared/reference/policy-bench/src/baseline.rs`), the
//! reference answer every engine must give: grants compiled into a HashMap keyed by
//! (department, purpose, category); then field / expiry / scope / row filter /
//! jurisdiction-or-case checks on the few candidates.

use crate::data::{CAT_PERSON, Level, Request, World, grid_contains};
use std::collections::HashMap;

struct CGrant {
    expires: i64,
    fields: Vec<(u8, Level)>,
    scope: Vec<Box<str>>,
    /// 0 = no row filter, else the bit that must be set in the record's tags
    tag_mask: u8,
    case_bound: bool,
}

pub struct Baseline<'w> {
    index: HashMap<u32, Vec<CGrant>>,
    juris: Vec<Vec<Box<str>>>,
    w: &'w World,
}

#[inline]
fn key(dept: u16, purpose: u8, cat: u8) -> u32 {
    (dept as u32) << 16 | (purpose as u32) << 8 | cat as u32
}

impl<'w> Baseline<'w> {
    /// Only approved grants are compiled in (a status change triggers a rebuild);
    /// expiry is checked at decision time.
    pub fn build(w: &'w World) -> Self {
        let mut index: HashMap<u32, Vec<CGrant>> = HashMap::new();
        for g in w.grants.iter().filter(|g| g.approved) {
            index
                .entry(key(g.dept, g.purpose, g.cat))
                .or_default()
                .push(CGrant {
                    expires: g.expires,
                    fields: g.fields.clone(),
                    scope: g.scope.iter().map(|s| s.as_str().into()).collect(),
                    tag_mask: g.tag.map(|t| 1u8 << t).unwrap_or(0),
                    case_bound: g.case_bound,
                });
        }
        let juris = w
            .depts
            .iter()
            .map(|d| d.jurisdiction.iter().map(|s| s.as_str().into()).collect())
            .collect();
        Baseline { index, juris, w }
    }

    pub fn index_keys(&self) -> usize {
        self.index.len()
    }

    /// The most revealing level granted for the field, or None (deny).
    #[inline]
    pub fn decide(&self, r: &Request, now: i64) -> Option<Level> {
        self.decide_why(r, now).map(|x| x.0)
    }

    /// Same, plus whether the winning grant was case-bound (for workload statistics).
    #[inline]
    pub fn decide_why(&self, r: &Request, now: i64) -> Option<(Level, bool)> {
        let cands = self.index.get(&key(r.dept, r.purpose, CAT_PERSON))?;
        let rec = &self.w.records[r.rec as usize];
        let grid: &str = &self.w.grids[rec.grid as usize];
        let mut best: Option<(Level, bool)> = None;
        let mut juris_ok: Option<bool> = None;
        for g in cands {
            if now >= g.expires {
                continue;
            }
            let Some(&(_, lvl)) = g.fields.iter().find(|(f, _)| *f == r.field) else {
                continue;
            };
            if best.is_some_and(|b| b.0 >= lvl) {
                continue;
            }
            if !g.scope.iter().any(|p| grid_contains(p, grid)) {
                continue;
            }
            if rec.tags & g.tag_mask != g.tag_mask {
                continue;
            }
            let ok = if !g.case_bound {
                *juris_ok.get_or_insert_with(|| {
                    self.juris[r.dept as usize]
                        .iter()
                        .any(|j| grid_contains(j, grid))
                })
            } else {
                match r.case {
                    None => false,
                    Some(c) => {
                        let c = &self.w.cases[c as usize];
                        c.open && c.assignees.contains(&r.dept) && c.records.contains(&r.rec)
                    }
                }
            };
            if ok {
                best = Some((lvl, g.case_bound));
            }
        }
        best
    }
}
