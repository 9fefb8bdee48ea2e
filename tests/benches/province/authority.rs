//! The province's departments, grants and open cases, made through the hub's own services on
//! the running test hub (`AppState::grants`, `AppState::cases`: the API's role checks, terms
//! checks, sealing of case texts, ledger entry first, decision index kept current) — the API
//! without HTTP. Departments (a hundred) are made through the API. Grants are requested by the
//! admin for each department (`grants:request_any`) and approved by the DPO; cases are reported
//! by the admin about one loaded person each, in that person's grid, and dispatched to one or
//! two departments with a reply due in 5 working days.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gridhub::auth::Principal;
use gridhub::cases::{AssignmentDraft, ReportDraft};
use gridhub::demo::synth::{DemoGrid, GridLevel};
use gridhub::grants::GrantDraft;
use gridhub::state::AppState;
use gridhub_tests::TestApp;

/// The department whose pulls and lookups are timed, and its one grant over them.
pub const BENCH_DEPT: &str = "province-civil";
pub const PURPOSE: &str = "elderly-care";
pub const DEPARTMENTS: usize = 100;
/// Service calls in flight at once.
const TASKS: usize = 16;
const DAY_MS: i64 = 86_400_000;

/// A small deterministic generator (the bench needs no `rand`).
#[derive(Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// A department: its id and its jurisdiction (one grid).
pub struct Department {
    pub id: String,
    pub jurisdiction: String,
}

/// The bench department over the whole city, then departments over the city, a district, a
/// street or a community in turn.
pub fn departments(grids: &[DemoGrid]) -> Vec<Department> {
    let at = |level: GridLevel| -> Vec<&DemoGrid> {
        grids
            .iter()
            .filter(|g| g.level == level && !g.code.starts_with("L."))
            .collect()
    };
    let levels = [
        at(GridLevel::City),
        at(GridLevel::District),
        at(GridLevel::Street),
        at(GridLevel::Community),
    ];
    let mut out = vec![Department {
        id: BENCH_DEPT.to_owned(),
        jurisdiction: levels[0][0].code.clone(),
    }];
    for i in 1..DEPARTMENTS {
        let level = &levels[i % levels.len()];
        out.push(Department {
            id: format!("dept-{i:03}"),
            jurisdiction: level[(i / levels.len()) % level.len()].code.clone(),
        });
    }
    out
}

pub async fn create_departments(app: &TestApp, departments: &[Department]) {
    for d in departments {
        app.create_department(&d.id, &[d.jurisdiction.as_str()])
            .await;
    }
}

async fn user(state: &AppState, username: &str) -> Principal {
    let row = state.store.user_by_username(username).await.unwrap();
    Principal::of_user(row.unwrap(), state.store.versions().await.unwrap())
}

/// Field levels per category that every grant may ask for.
fn fields(category: &str, wide: bool) -> Vec<(&'static str, &'static str)> {
    match (category, wide) {
        ("person", true) => vec![
            ("name", "clear"),
            ("phone", "masked"),
            ("birth_date", "generalized"),
            ("address", "generalized"),
            ("id_number", "pseudonym"),
        ],
        ("person", false) => vec![("name", "masked"), ("tags", "clear")],
        ("household", _) => vec![("head_name", "masked"), ("size", "clear")],
        _ => vec![
            ("name", "clear"),
            ("kind", "clear"),
            ("owner_name", "masked"),
        ],
    }
}

fn draft(
    grantee: &str,
    purpose: &str,
    category: &str,
    scope: &str,
    wide: bool,
    now: i64,
) -> GrantDraft {
    GrantDraft {
        kind: None,
        group_by: None,
        min_cell: None,
        privacy: None,
        grantee: grantee.to_owned(),
        purpose: purpose.to_owned(),
        category: category.to_owned(),
        fields: fields(category, wide)
            .into_iter()
            .map(|(f, l)| (f.to_owned(), l.to_owned()))
            .collect(),
        scope: vec![scope.to_owned()],
        row_filter: None,
        case_bound: false,
        valid_from: gridhub::time::rfc3339(now - DAY_MS),
        valid_until: gridhub::time::rfc3339(now + 365 * DAY_MS),
        daily_quota: Some(10_000_000),
        legal_basis: Some("PIPL art. 13(1)(3); province data-sharing regulation".to_owned()),
    }
}

/// Grant `k` (0-based) of department `d`: the bench grant first; then purposes, categories,
/// scopes (a grid inside the jurisdiction), row filters and case binding in turn. The bench
/// department's other grants are for other purposes, so its pulls are decided by one grant.
fn grant(d: &Department, k: usize, grids: &[DemoGrid], dice: &mut Dice, now: i64) -> GrantDraft {
    if d.id == BENCH_DEPT && k == 0 {
        return draft(&d.id, PURPOSE, "person", &d.jurisdiction, true, now);
    }
    const PURPOSES: [&str; 5] = [
        "elderly-care",
        "epidemic-prevention",
        "rental-registration",
        "population-registration",
        "case-investigation",
    ];
    const CATEGORIES: [&str; 4] = ["person", "person", "household", "place"];
    let mut purpose = PURPOSES[k % PURPOSES.len()];
    if d.id == BENCH_DEPT && purpose == PURPOSE {
        purpose = "population-registration";
    }
    let category = CATEGORIES[(k / PURPOSES.len()) % CATEGORIES.len()];
    let inside: Vec<&DemoGrid> = grids
        .iter()
        .filter(|g| g.code.starts_with(&d.jurisdiction) && g.level != GridLevel::Grid)
        .collect();
    let scope = &inside[dice.below(inside.len())].code;
    let mut g = draft(&d.id, purpose, category, scope, k.is_multiple_of(3), now);
    if category == "person" && purpose == "elderly-care" && k % 2 == 1 {
        g.row_filter = Some("tags has \"elderly_alone\"".to_owned());
    }
    g.case_bound = purpose == "case-investigation";
    g
}

/// `n` approved grants spread evenly over `departments`; seconds taken.
pub async fn grants(
    state: &AppState,
    departments: &[Department],
    grids: &[DemoGrid],
    n: usize,
) -> f64 {
    let admin = user(state, "admin").await;
    let dpo = user(state, "dpo").await;
    let now = gridhub::time::now_ms();
    let mut dice = Dice::new(22);
    let drafts: Vec<GrantDraft> = (0..n)
        .map(|i| {
            let d = &departments[i % departments.len()];
            grant(d, i / departments.len(), grids, &mut dice, now)
        })
        .collect();
    let started = Instant::now();
    let state = state.clone();
    run_all(drafts, move |draft| {
        let (state, admin, dpo) = (state.clone(), admin.clone(), dpo.clone());
        async move {
            let row = state
                .grants
                .request(&admin, draft)
                .await
                .unwrap_or_else(|e| panic!("grant request refused: {e:?}"));
            state.grants.approve(&dpo, &row.id, None).await.unwrap();
        }
    })
    .await;
    started.elapsed().as_secs_f64()
}

/// `n` open cases, each about one person of `subjects` (record id, grid), dispatched to one
/// department (every tenth to two); seconds taken.
pub async fn cases(
    state: &AppState,
    departments: &[Department],
    subjects: &[(String, String)],
    n: usize,
) -> f64 {
    const KINDS: [&str; 5] = [
        "dispute",
        "safety_hazard",
        "sanitation",
        "rental_check",
        "elderly_visit",
    ];
    let admin = user(state, "admin").await;
    let mut dice = Dice::new(2022);
    let work: Vec<(ReportDraft, Vec<String>)> = (0..n)
        .map(|i| {
            let (record, grid) = &subjects[i % subjects.len()];
            let report = ReportDraft {
                grid: policy::GridCode::parse(grid).unwrap(),
                kind: KINDS[i % KINDS.len()].to_owned(),
                summary: format!("第{i}号事件：网格员走访发现的问题，需相关部门核实处理。"),
                subjects: vec![record.clone()],
                confidential: i % 20 == 0,
            };
            let mut to = vec![
                departments[1 + dice.below(departments.len() - 1)]
                    .id
                    .clone(),
            ];
            if i % 10 == 0 {
                to.push(
                    departments[1 + dice.below(departments.len() - 1)]
                        .id
                        .clone(),
                );
                to.dedup();
            }
            (report, to)
        })
        .collect();
    let started = Instant::now();
    let state = state.clone();
    run_all(work, move |(report, to)| {
        let (state, admin) = (state.clone(), admin.clone());
        async move {
            let case = state
                .cases
                .report(&admin, report)
                .await
                .unwrap_or_else(|e| panic!("case report refused: {e:?}"));
            let dispatch = AssignmentDraft {
                departments: to,
                deadline: None,
                working_days: Some(5),
            };
            state
                .cases
                .assign(&admin, &case.id, dispatch)
                .await
                .unwrap_or_else(|e| panic!("case dispatch refused: {e:?}"));
        }
    })
    .await;
    started.elapsed().as_secs_f64()
}

/// Run `each` over `items` from `TASKS` tasks, every call in a request-id scope of its own (the
/// ledger entries carry it, as an API request's would).
async fn run_all<T, F, Fut>(items: Vec<T>, each: F)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let total = items.len();
    let queue = Arc::new(std::sync::Mutex::new(items));
    let (each, done) = (Arc::new(each), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (queue, each, done) = (queue.clone(), each.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(item) = queue.lock().unwrap().pop() else {
                    break;
                };
                let id = uuid::Uuid::now_v7().to_string();
                gridhub::error::REQUEST_ID.scope(id, each(item)).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 20_000 == 0 {
                    println!("    {n}/{total}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
