//! Deterministic workload: grid tree, departments, grants, records, cases, requests. Copied from
//! `shared/reference/policy-bench/src/data.rs` (its README describes the workload); changed: the
//! `Level` order is Gridhub's normative one (DESIGN.md §3: clear › pseudonym › masked ›
//! generalized) and each grant keeps its status (approved / pending / revoked). The random
//! stream is untouched, so a seed gives the same world and requests as the reference.

use std::collections::HashMap;

/// Fixed "current time" (unix seconds) used by every engine.
pub const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

pub const PURPOSES: [&str; 12] = [
    "care_visit",
    "epidemic_control",
    "social_assistance",
    "elderly_care",
    "disability_support",
    "housing_safety",
    "public_security",
    "civil_affairs",
    "education_support",
    "employment_service",
    "health_followup",
    "emergency_response",
];
pub const FIELDS: [&str; 10] = [
    "name",
    "id_number",
    "phone",
    "address",
    "birth_date",
    "gender",
    "household_reg",
    "health_status",
    "income",
    "employer",
];
pub const TAGS: [&str; 5] = [
    "elderly_alone",
    "disabled",
    "low_income",
    "veteran",
    "minor",
];
const TAG_P: [f64; 5] = [0.12, 0.06, 0.10, 0.03, 0.15];
pub const CATEGORIES: [&str; 3] = ["person", "household", "enterprise"];
pub const CAT_PERSON: u8 = 0;

pub const N_DEPTS: usize = 200;
pub const N_GRANTS: usize = 10_000;
pub const N_RECORDS: usize = 100_000;
pub const N_OPEN_CASES: usize = 100_000;
pub const N_CLOSED_CASES: usize = 10_000;

/// Disclosure level; the order is "how much is revealed" (Clear is the most), as Gridhub's
/// `Disclosure` (the reference orders Pseudonym below Masked).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Level {
    Generalized = 0,
    Masked = 1,
    Pseudonym = 2,
    Clear = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Generalized => "generalized",
            Level::Pseudonym => "pseudonym",
            Level::Masked => "masked",
            Level::Clear => "clear",
        }
    }
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "generalized" => Level::Generalized,
            "pseudonym" => Level::Pseudonym,
            "masked" => Level::Masked,
            "clear" => Level::Clear,
            _ => return None,
        })
    }
    pub const ALL_DESC: [Level; 4] = [
        Level::Clear,
        Level::Pseudonym,
        Level::Masked,
        Level::Generalized,
    ];
}

/// splitmix64: tiny, deterministic, no dependency.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn range(&mut self, lo: usize, hi_incl: usize) -> usize {
        lo + self.below(hi_incl - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// index chosen with the given weights
    pub fn weighted(&mut self, w: &[f64]) -> usize {
        let total: f64 = w.iter().sum();
        let mut x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        for (i, wi) in w.iter().enumerate() {
            if x < *wi {
                return i;
            }
            x -= wi;
        }
        w.len() - 1
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// `prefix` contains `code` when it equals it or is a prefix by whole dotted segments.
#[inline]
pub fn grid_contains(prefix: &str, code: &str) -> bool {
    code.len() >= prefix.len()
        && code.as_bytes().starts_with(prefix.as_bytes())
        && (code.len() == prefix.len() || code.as_bytes()[prefix.len()] == b'.')
}

pub struct Dept {
    pub name: String,
    pub jurisdiction: Vec<String>,
}

/// A grant's status in the workload (the reference keeps only `approved`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Approved,
    Pending,
    Revoked,
}

pub struct Grant {
    pub id: u32,
    pub dept: u16,
    pub purpose: u8,
    pub cat: u8,
    /// distinct fields, each with its own disclosure level
    pub fields: Vec<(u8, Level)>,
    /// grid prefixes (district / street / community level)
    pub scope: Vec<String>,
    /// row filter: this tag must be present on the record
    pub tag: Option<u8>,
    pub case_bound: bool,
    pub approved: bool,
    pub status: Status,
    pub expires: i64,
}

pub struct Record {
    pub name: String,
    pub grid: u32,
    /// bit i set = TAGS[i]
    pub tags: u8,
}

pub struct Case {
    pub name: String,
    pub open: bool,
    pub assignees: Vec<u16>,
    pub records: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub dept: u16,
    pub rec: u32,
    pub field: u8,
    pub purpose: u8,
    pub case: Option<u32>,
}

pub struct World {
    pub city: String,
    pub districts: Vec<String>,
    pub streets: Vec<String>,
    pub communities: Vec<String>,
    /// leaf grids
    pub grids: Vec<String>,
    /// every tree node with its parent (None for the city)
    pub tree: Vec<(String, Option<String>)>,
    pub depts: Vec<Dept>,
    pub grants: Vec<Grant>,
    pub records: Vec<Record>,
    pub records_by_grid: Vec<Vec<u32>>,
    pub cases: Vec<Case>,
}

impl World {
    pub fn record_grid(&self, r: u32) -> &str {
        &self.grids[self.records[r as usize].grid as usize]
    }
    pub fn tags_joined(&self, mask: u8) -> String {
        let mut v = Vec::new();
        for (i, t) in TAGS.iter().enumerate() {
            if mask & (1 << i) != 0 {
                v.push(*t);
            }
        }
        v.join("|")
    }
    pub fn approved_person_grants(&self) -> usize {
        self.grants
            .iter()
            .filter(|g| g.approved && g.cat == CAT_PERSON)
            .count()
    }
}

fn random_prefix(rng: &mut Rng, w: &World, wd: f64, ws: f64, wc: f64) -> String {
    match rng.weighted(&[wd, ws, wc]) {
        0 => rng.pick(&w.districts).clone(),
        1 => rng.pick(&w.streets).clone(),
        _ => rng.pick(&w.communities).clone(),
    }
}

/// A random district/street/community prefix inside (or equal to) `j`.
fn prefix_under(rng: &mut Rng, w: &World, j: &str) -> String {
    let mut cands: Vec<&String> = Vec::new();
    for p in w
        .districts
        .iter()
        .chain(w.streets.iter())
        .chain(w.communities.iter())
    {
        if grid_contains(j, p) {
            cands.push(p);
        }
    }
    if cands.is_empty() {
        // j is a leaf grid (not used for jurisdictions) – fall back to its community
        return j
            .rsplit_once('.')
            .map(|x| x.0.to_string())
            .unwrap_or_else(|| j.to_string());
    }
    cands[rng.below(cands.len())].clone()
}

pub fn generate(seed: u64) -> World {
    let mut rng = Rng::new(seed);
    let city = "330110".to_string();
    let mut districts = Vec::new();
    let mut streets = Vec::new();
    let mut communities = Vec::new();
    let mut grids = Vec::new();
    let mut tree = vec![(city.clone(), None)];
    for d in 1..=2 {
        let dc = format!("{city}.{d:03}");
        tree.push((dc.clone(), Some(city.clone())));
        districts.push(dc.clone());
        for s in 1..=3 {
            let sc = format!("{dc}.{s:03}");
            tree.push((sc.clone(), Some(dc.clone())));
            streets.push(sc.clone());
            for c in 1..=4 {
                let cc = format!("{sc}.{:03}", (s - 1) * 4 + c);
                tree.push((cc.clone(), Some(sc.clone())));
                communities.push(cc.clone());
                let n = rng.range(6, 10);
                for g in 1..=n {
                    let gc = format!("{cc}.{g:03}");
                    tree.push((gc.clone(), Some(cc.clone())));
                    grids.push(gc);
                }
            }
        }
    }
    let mut w = World {
        city,
        districts,
        streets,
        communities,
        grids,
        tree,
        depts: Vec::new(),
        grants: Vec::new(),
        records: Vec::new(),
        records_by_grid: Vec::new(),
        cases: Vec::new(),
    };

    // departments and jurisdictions
    for i in 0..N_DEPTS {
        let n = if rng.chance(0.3) { 2 } else { 1 };
        let mut juris: Vec<String> = Vec::new();
        for _ in 0..n {
            let p = match rng.weighted(&[0.03, 0.22, 0.35, 0.40]) {
                0 => w.city.clone(),
                1 => rng.pick(&w.districts).clone(),
                2 => rng.pick(&w.streets).clone(),
                _ => rng.pick(&w.communities).clone(),
            };
            if !juris.contains(&p) {
                juris.push(p);
            }
        }
        w.depts.push(Dept {
            name: format!("dept{i:03}"),
            jurisdiction: juris,
        });
    }

    // grants
    for id in 0..N_GRANTS {
        let dept = rng.below(N_DEPTS) as u16;
        let purpose = rng.below(PURPOSES.len()) as u8;
        let cat = rng.weighted(&[0.8, 0.1, 0.1]) as u8;
        let nf = rng.range(1, 3);
        let mut fields: Vec<(u8, Level)> = Vec::new();
        while fields.len() < nf {
            let f = rng.below(FIELDS.len()) as u8;
            if fields.iter().any(|x| x.0 == f) {
                continue;
            }
            let lvl = match rng.weighted(&[0.2, 0.4, 0.2, 0.2]) {
                0 => Level::Clear,
                1 => Level::Masked,
                2 => Level::Pseudonym,
                _ => Level::Generalized,
            };
            fields.push((f, lvl));
        }
        let case_bound = rng.chance(0.3);
        let ns = 1 + rng.weighted(&[0.6, 0.3, 0.1]);
        let mut scope: Vec<String> = Vec::new();
        for _ in 0..ns {
            let p = if case_bound {
                random_prefix(&mut rng, &w, 0.4, 0.4, 0.2)
            } else if rng.chance(0.6) {
                let j = rng.pick(&w.depts[dept as usize].jurisdiction).clone();
                prefix_under(&mut rng, &w, &j)
            } else {
                random_prefix(&mut rng, &w, 0.2, 0.4, 0.4)
            };
            if !scope.contains(&p) {
                scope.push(p);
            }
        }
        let tag = if rng.chance(0.25) {
            Some(rng.weighted(&[0.5, 0.125, 0.125, 0.125, 0.125]) as u8)
        } else {
            None
        };
        let status = match rng.weighted(&[0.85, 0.10, 0.05]) {
            0 => Status::Approved,
            1 => Status::Pending,
            _ => Status::Revoked,
        };
        let approved = status == Status::Approved;
        let expires = if rng.chance(0.10) {
            NOW - rng.range(1, 90) as i64 * DAY
        } else {
            NOW + rng.range(1, 365) as i64 * DAY
        };
        w.grants.push(Grant {
            id: id as u32,
            dept,
            purpose,
            cat,
            fields,
            scope,
            tag,
            case_bound,
            approved,
            status,
            expires,
        });
    }

    // person records
    w.records_by_grid = vec![Vec::new(); w.grids.len()];
    for i in 0..N_RECORDS {
        let grid = rng.below(w.grids.len()) as u32;
        let mut tags = 0u8;
        for (t, p) in TAG_P.iter().enumerate() {
            if rng.chance(*p) {
                tags |= 1 << t;
            }
        }
        w.records_by_grid[grid as usize].push(i as u32);
        w.records.push(Record {
            name: format!("r{i:06}"),
            grid,
            tags,
        });
    }

    // cases: records of one case live in one community
    let grids_by_comm: Vec<Vec<usize>> = w
        .communities
        .iter()
        .map(|c| {
            (0..w.grids.len())
                .filter(|&g| grid_contains(c, &w.grids[g]))
                .collect()
        })
        .collect();
    for i in 0..(N_OPEN_CASES + N_CLOSED_CASES) {
        let open = i < N_OPEN_CASES;
        let na = if rng.chance(0.4) { 2 } else { 1 };
        let mut assignees: Vec<u16> = Vec::new();
        while assignees.len() < na {
            let d = rng.below(N_DEPTS) as u16;
            if !assignees.contains(&d) {
                assignees.push(d);
            }
        }
        let comm = rng.below(w.communities.len());
        let nr = rng.range(1, 3);
        let mut records: Vec<u32> = Vec::new();
        while records.len() < nr {
            let g = *rng.pick(&grids_by_comm[comm]);
            let rs = &w.records_by_grid[g];
            if rs.is_empty() {
                continue;
            }
            let r = *rng.pick(rs);
            if !records.contains(&r) {
                records.push(r);
            }
        }
        w.cases.push(Case {
            name: format!("c{i:06}"),
            open,
            assignees,
            records,
        });
    }
    w
}

const TARGETED: f64 = 0.80;
const PERTURB: f64 = 0.20;

/// Requests: a mix of "targeted" requests derived from a grant (mostly allowed, some
/// perturbed) and fully random ones (mostly denied).
pub fn gen_requests(w: &World, seed: u64, n: usize) -> Vec<Request> {
    let mut rng = Rng::new(seed);
    let mut open_cases_by_dept: HashMap<u16, Vec<u32>> = HashMap::new();
    for (i, c) in w.cases.iter().enumerate() {
        if c.open {
            for d in &c.assignees {
                open_cases_by_dept.entry(*d).or_default().push(i as u32);
            }
        }
    }
    let person_grants: Vec<&Grant> = w.grants.iter().filter(|g| g.cat == CAT_PERSON).collect();
    let live_person_grants: Vec<&Grant> = person_grants
        .iter()
        .copied()
        .filter(|g| g.approved && g.expires > NOW)
        .collect();
    let n_cases = w.cases.len();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if rng.chance(TARGETED) {
            // requests mostly exercise live grants; some use pending/revoked/expired ones
            let g = if rng.chance(0.8) {
                *rng.pick(&live_person_grants)
            } else {
                *rng.pick(&person_grants)
            };
            let dept = g.dept;
            let (field, _) = *rng.pick(&g.fields);
            let mut rec: u32;
            let mut case: Option<u32> = None;
            if !g.case_bound {
                let juris = &w.depts[dept as usize].jurisdiction;
                let p = rng.pick(&g.scope).clone();
                let in_p: Vec<usize> = (0..w.grids.len())
                    .filter(|&i| grid_contains(&p, &w.grids[i]))
                    .collect();
                let mut grid = *rng.pick(&in_p);
                for _ in 0..8 {
                    let cand = *rng.pick(&in_p);
                    if juris.iter().any(|j| grid_contains(j, &w.grids[cand])) {
                        grid = cand;
                        break;
                    }
                }
                let rs = &w.records_by_grid[grid];
                rec = *rng.pick(rs);
                if let Some(t) = g.tag
                    && rng.chance(0.85)
                {
                    for _ in 0..60 {
                        let r = *rng.pick(rs);
                        if w.records[r as usize].tags & (1 << t) != 0 {
                            rec = r;
                            break;
                        }
                    }
                }
                if rng.chance(0.15) {
                    case = Some(rng.below(n_cases) as u32);
                }
            } else {
                let mine = open_cases_by_dept.get(&dept);
                let mut chosen: Option<(u32, u32)> = None;
                let mut fallback: Option<(u32, u32)> = None;
                for _ in 0..40 {
                    let c = match mine {
                        Some(v) => *rng.pick(v),
                        None => rng.below(n_cases) as u32,
                    };
                    let r = *rng.pick(&w.cases[c as usize].records);
                    if fallback.is_none() {
                        fallback = Some((c, r));
                    }
                    let rg = w.record_grid(r);
                    let tag_ok = g
                        .tag
                        .is_none_or(|t| w.records[r as usize].tags & (1 << t) != 0);
                    if g.scope.iter().any(|p| grid_contains(p, rg)) && tag_ok {
                        chosen = Some((c, r));
                        break;
                    }
                }
                let (c, r) = chosen.or(fallback).unwrap();
                case = Some(c);
                rec = r;
            }
            let mut req = Request {
                dept,
                rec,
                field,
                purpose: g.purpose,
                case,
            };
            if rng.chance(PERTURB) {
                match rng.below(5) {
                    0 => req.field = rng.below(FIELDS.len()) as u8,
                    1 => req.purpose = rng.below(PURPOSES.len()) as u8,
                    2 => req.dept = rng.below(N_DEPTS) as u16,
                    3 => req.rec = rng.below(w.records.len()) as u32,
                    _ => {
                        req.case = if rng.chance(0.5) {
                            None
                        } else {
                            Some(rng.below(n_cases) as u32)
                        }
                    }
                }
            }
            out.push(req);
        } else {
            let dept = rng.below(N_DEPTS) as u16;
            let case = match rng.weighted(&[0.5, 0.25, 0.25]) {
                0 => None,
                1 => Some(rng.below(n_cases) as u32),
                _ => open_cases_by_dept.get(&dept).map(|v| *rng.pick(v)),
            };
            out.push(Request {
                dept,
                rec: rng.below(w.records.len()) as u32,
                field: rng.below(FIELDS.len()) as u8,
                purpose: rng.below(PURPOSES.len()) as u8,
                case,
            });
        }
    }
    out
}
