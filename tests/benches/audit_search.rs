//! Audit search over a large ledger: `Oversight::search_entries` (what `GET /v1/audit/entries`
//! and the console's audit explorer call) on 1 000 000 entries, for the explorer's main
//! queries, beside the same query written as plain SQL on the same database; then the main
//! query end to end as `GET /v1/audit/entries` (JSON) and as the console's `GET /console/audit`
//! page (HTML, signed in as the DPO), each timed 100 times in the same run.
//!
//! Run: `cargo bench -p gridhub-tests --bench audit_search` (PostgreSQL as for the tests);
//! `AUDIT_BENCH_ENTRIES` sets the ledger (default 1 000 000), `AUDIT_BENCH_QUERIES` the queries
//! timed per kind (default 200), `AUDIT_BENCH_BACKENDS` `sqlite`, `postgres` or both;
//! `AUDIT_BENCH_KEEP=1` leaves the PostgreSQL database behind (and skips the migration figure).
//!
//! Seeding: the hub is started (init, grids, users), stopped, and the entries are appended
//! straight to its database in batches of 4 096 through the ledger's own write path
//! (`ledger::stored_form`: canonical text, leaf hash, interior tree nodes and the filter
//! columns, exactly as the writer builds them; `Store::append_ledger`: the writer's SQL). The
//! one shortcut is the time: the writer dates entries by the wall clock, the seeder spreads them
//! over the 30 days after the hub's own entries (times never go back). On SQLite the staged
//! subject rows are then merged into one run, as the writer would have done a slice at a time;
//! on PostgreSQL the table is vacuumed and analysed, as autovacuum would after the inserts. The
//! hub is started again on the result and `audit verify`'s check runs over every entry before
//! anything is timed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark binary: failing loudly is the point"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use gridhub::auth::Principal;
use gridhub::config::DatabaseLocation;
use gridhub::ledger::{Actor, Decision, EntryDraft, FieldLevels, RecordRef};
use gridhub::oversight::audit_search::{AuditQuery, Order};
use gridhub::oversight::{AuditPage, AuditParams};
use gridhub::storage::Store;
use gridhub_tests::{Backend, TestApp, spawn_app};
use sqlx::Connection;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 30;
const BATCH: usize = 4096;
/// Departments and their share of department traffic.
const DEPARTMENTS: [(&str, u32); 8] = [
    ("civil-affairs", 30),
    ("health", 20),
    ("police", 15),
    ("housing", 10),
    ("education", 8),
    ("tax", 7),
    ("transport", 5),
    ("water", 5),
];
/// The grant of the rare filter: about one entry in 20 000 carries it.
const RARE_GRANT: &str = "0193f1d2-7a11-7000-8000-00000000a11e";
const RESIDENTS: usize = 200_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: the same ledger and the same queries on every run and backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// What the seeder draws entries from.
struct Mix {
    residents: Vec<String>,
    /// Field-level maps of disclosures (shared between the records of an entry).
    levels: Vec<FieldLevels>,
    written: FieldLevels,
    /// One grant per department.
    grants: Vec<String>,
}

impl Mix {
    fn new(rng: &mut Rng) -> Mix {
        let map = |pairs: &[(&str, &str)]| -> FieldLevels {
            Arc::new(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        Mix {
            residents: (0..RESIDENTS).map(|_| rng.uuid()).collect(),
            levels: vec![
                map(&[("name", "clear"), ("phone", "masked")]),
                map(&[
                    ("address", "generalized"),
                    ("birth_date", "generalized"),
                    ("name", "clear"),
                ]),
                map(&[("id_number", "pseudonym"), ("tags", "clear")]),
                map(&[
                    ("name", "clear"),
                    ("phone", "clear"),
                    ("residence", "clear"),
                    ("tags", "clear"),
                ]),
            ],
            written: map(&[
                ("address", "written"),
                ("birth_date", "written"),
                ("gender", "written"),
                ("id_number", "written"),
                ("name", "written"),
                ("phone", "written"),
                ("residence", "written"),
                ("tags", "written"),
            ]),
            grants: (0..DEPARTMENTS.len()).map(|_| rng.uuid()).collect(),
        }
    }

    fn department(&self, rng: &mut Rng) -> usize {
        let total: u32 = DEPARTMENTS.iter().map(|d| d.1).sum();
        let mut pick = rng.below(u64::from(total)) as u32;
        for (i, (_, share)) in DEPARTMENTS.iter().enumerate() {
            if pick < *share {
                return i;
            }
            pick -= share;
        }
        0
    }

    fn records(&self, rng: &mut Rng, n: usize) -> Vec<RecordRef> {
        let levels = &self.levels[rng.below(self.levels.len() as u64) as usize];
        (0..n)
            .map(|_| {
                let id = &self.residents[rng.below(RESIDENTS as u64) as usize];
                RecordRef::sharing(id, Arc::clone(levels))
            })
            .collect()
    }

    /// Entry `i`: a realistic mix of disclosures (pages of 1–100 records), lookups, refusals,
    /// statistics, explanations, record writes, logins and administration.
    fn draft(&self, rng: &mut Rng) -> EntryDraft {
        let d = self.department(rng);
        let dept = DEPARTMENTS[d].0;
        let client = Actor {
            client: Some(format!("{dept}-sys-{}", rng.below(3))),
            department: Some(dept.to_owned()),
            on_behalf_of: Some(format!("officer-{}", rng.below(40))),
            user: None,
        };
        let request = rng.uuid();
        let roll = rng.below(1000);
        let purpose = ["elderly-care", "epidemic-prevention", "case-investigation"][d % 3];
        let grants = if rng.below(20_000) == 0 {
            vec![RARE_GRANT.to_owned()]
        } else {
            vec![self.grants[d].clone()]
        };
        match roll {
            0..400 => {
                let n = match rng.below(100) {
                    0..75 => 1 + rng.below(5) as usize,
                    75..97 => 6 + rng.below(15) as usize,
                    _ => 100,
                };
                EntryDraft::new(client, "data.read", Decision::Allow, request)
                    .category("person")
                    .purpose(purpose)
                    .grants(grants)
                    .records(self.records(rng, n))
            }
            400..500 => EntryDraft::new(client, "data.lookup", Decision::Allow, request)
                .category("person")
                .purpose(purpose)
                .grants(grants)
                .records(self.records(rng, 1)),
            500..530 => EntryDraft::new(client, "data.read", Decision::Deny, request)
                .category("person")
                .purpose(purpose)
                .reason("no approved grant is valid now")
                .source(Some(format!("10.0.{d}.{}", rng.below(200)))),
            530..540 => EntryDraft::new(client, "data.statistics", Decision::Allow, request)
                .category("person")
                .purpose(purpose)
                .grants(grants),
            540..560 => EntryDraft::new(client, "decision.explain", Decision::Allow, request)
                .category("person")
                .purpose(purpose)
                .records(self.records(rng, 1)),
            560..760 => {
                let worker = Actor::user(&format!("worker-{}", rng.below(500)));
                let action =
                    ["record.create", "record.update", "record.read"][rng.below(3) as usize];
                let record = RecordRef::sharing(
                    &self.residents[rng.below(RESIDENTS as u64) as usize],
                    Arc::clone(&self.written),
                );
                EntryDraft::new(worker, action, Decision::Allow, request)
                    .category("person")
                    .records(vec![record])
            }
            760..860 => EntryDraft::new(client, "auth.client_token", Decision::Allow, request),
            860..900 => EntryDraft::new(
                Actor::user(&format!("worker-{}", rng.below(500))),
                "auth.login",
                Decision::Allow,
                request,
            ),
            900..920 => EntryDraft::new(Actor::default(), "auth.token", Decision::Deny, request)
                .reason("invalid token")
                .source(Some(format!("192.168.1.{}", rng.below(250)))),
            920..960 => EntryDraft::new(client, "grant.request", Decision::Allow, request)
                .category("person")
                .purpose(purpose)
                .grants(grants),
            960..980 => EntryDraft::new(
                Actor::user("dpo"),
                "grant.approve",
                Decision::Allow,
                request,
            )
            .category("person")
            .purpose(purpose)
            .grants(grants),
            980..990 => EntryDraft::new(
                Actor::user("admin"),
                "role.update",
                Decision::Allow,
                request,
            )
            .reason("department: records:read"),
            990..999 => EntryDraft::new(
                Actor::user("admin"),
                "case.assign",
                Decision::Allow,
                request,
            )
            .case(&format!("case-{}", rng.below(5000))),
            _ => EntryDraft::new(
                Actor::system(),
                "grant.expire",
                Decision::Allow,
                "-".to_owned(),
            )
            .grants(grants),
        }
    }
}

/// Append `n` entries to the stopped hub's database at `location`, dated over the 30 days from
/// its newest entry; returns the time of the first one and the request ids of every 1 000th
/// entry (for the request id query).
async fn seed(location: &DatabaseLocation, n: usize) -> (i64, Vec<String>) {
    let store = Store::open(location).await.unwrap();
    let (mut frontier, last_time) = gridhub::ledger::stored_head(&store).await.unwrap();
    let first = frontier.size();
    let start = last_time.max(gridhub::time::now_ms()) + 1;
    let span = DAYS * DAY_MS;
    let mut rng = Rng(0x5EED_A0D1_7000_0001);
    let mix = Mix::new(&mut rng);
    let mut request_ids = Vec::new();
    let started = Instant::now();
    let mut done = 0usize;
    while done < n {
        let count = BATCH.min(n - done);
        let drafts: Vec<EntryDraft> = (0..count).map(|_| mix.draft(&mut rng)).collect();
        let dated = drafts.iter().enumerate().map(|(k, d)| {
            let i = (done + k) as i64;
            (d, start + i * span / n as i64)
        });
        let (rows, nodes, _) = gridhub::ledger::stored_form(&mut frontier, dated);
        for (k, d) in drafts.iter().enumerate() {
            if (done + k).is_multiple_of(1000) {
                request_ids.push(d.request_id.clone());
            }
        }
        store.append_ledger(&rows, &nodes).await.unwrap();
        done += count;
        if done % (BATCH * 16) < BATCH || done == n {
            eprint!(
                "\r  seeded {done:>9} / {n} entries ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!();
    println!(
        "  seeded {n} entries (indexes {first}..{}) in {:.0} s: {:.0} entries/s",
        frontier.size(),
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    match location {
        DatabaseLocation::Sqlite(_) => {
            let sorted = store.sort_staged_subjects(i64::MAX).await.unwrap();
            let run = store.next_subject_run().await.unwrap();
            store
                .append_subject_run(run, 0..sorted, Some(i64::MAX))
                .await
                .unwrap();
            println!(
                "  merged {sorted} staged subject rows into run {run} in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        DatabaseLocation::Postgres(url) => {
            use secrecy::ExposeSecret;
            let mut conn = sqlx::PgConnection::connect(url.expose_secret())
                .await
                .unwrap();
            sqlx::query("VACUUM (ANALYZE) ledger_entries")
                .execute(&mut conn)
                .await
                .unwrap();
            println!("  VACUUM (ANALYZE) in {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    store.close().await;
    (start, request_ids)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One kind of query: its parameters for run `k`, and the same query as plain SQL (with `$1`,
/// `$2`, `$3` for the text value and the two numbers it takes).
struct Kind {
    name: &'static str,
    params: Box<DrawParams>,
    plain_sql: &'static str,
    plain_runs: usize,
}

/// Draws the parameters of one run of a query kind.
type DrawParams = dyn Fn(&mut Rng) -> (Query, PlainArgs);

struct Query {
    params: AuditParams<'static>,
    before: Option<u64>,
}

struct PlainArgs {
    text: String,
    a: i64,
    b: i64,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn rfc3339(ms: i64) -> &'static str {
    leak(gridhub::time::rfc3339(ms))
}

fn kinds(sqlite: bool, first_time: i64, size: u64, request_ids: Vec<String>) -> Vec<Kind> {
    let newest_first = || AuditParams {
        order: Some("desc"),
        limit: Some(50),
        ..AuditParams::default()
    };
    let size = size as i64;
    let random_before =
        move |rng: &mut Rng| size / 10 + rng.below((size - size / 10) as u64) as i64;
    let request_ids = Arc::new(request_ids);
    vec![
        Kind {
            name: "one department, one day, newest first, 50",
            params: Box::new(move |rng| {
                let dept = DEPARTMENTS[rng.below(DEPARTMENTS.len() as u64) as usize].0;
                let day = first_time + rng.below(DAYS as u64) as i64 * DAY_MS;
                let q = AuditParams {
                    department: Some(dept),
                    since: Some(rfc3339(day)),
                    until: Some(rfc3339(day + DAY_MS)),
                    ..newest_first()
                };
                (
                    Query {
                        params: q,
                        before: None,
                    },
                    PlainArgs {
                        text: dept.to_owned(),
                        a: day,
                        b: day + DAY_MS,
                    },
                )
            }),
            plain_sql: "SELECT idx, canonical FROM ledger_entries WHERE department = $1 \
                        AND time_ms >= $2 AND time_ms < $3 ORDER BY idx DESC LIMIT 50",
            plain_runs: usize::MAX,
        },
        Kind {
            name: "stream=admin, newest first below a random index, 50",
            params: Box::new(move |rng| {
                let before = random_before(rng);
                (
                    Query {
                        params: AuditParams {
                            stream: Some("admin"),
                            ..newest_first()
                        },
                        before: Some(before as u64),
                    },
                    PlainArgs {
                        text: "admin".into(),
                        a: before,
                        b: 0,
                    },
                )
            }),
            plain_sql: "SELECT idx, canonical FROM ledger_entries WHERE stream = $1 \
                        AND idx < $2 AND $3 = 0 ORDER BY idx DESC LIMIT 50",
            plain_runs: usize::MAX,
        },
        Kind {
            name: "department + decision=deny, newest first, 50",
            params: Box::new(move |rng| {
                let dept = DEPARTMENTS[rng.below(DEPARTMENTS.len() as u64) as usize].0;
                let before = random_before(rng);
                (
                    Query {
                        params: AuditParams {
                            department: Some(dept),
                            decision: Some("deny"),
                            ..newest_first()
                        },
                        before: Some(before as u64),
                    },
                    PlainArgs {
                        text: dept.to_owned(),
                        a: before,
                        b: 0,
                    },
                )
            }),
            plain_sql: "SELECT idx, canonical FROM ledger_entries WHERE department = $1 \
                        AND decision = 'deny' AND idx < $2 AND $3 = 0 ORDER BY idx DESC LIMIT 50",
            plain_runs: usize::MAX,
        },
        Kind {
            name: "a rare grant (1 in 20 000), newest first, first page",
            params: Box::new(move |rng| {
                let before = random_before(rng);
                (
                    Query {
                        params: AuditParams {
                            grant: Some(RARE_GRANT),
                            ..newest_first()
                        },
                        before: Some(before as u64),
                    },
                    PlainArgs {
                        text: format!("\"{RARE_GRANT}\""),
                        a: before,
                        b: 0,
                    },
                )
            }),
            plain_sql: if sqlite {
                "SELECT idx, canonical FROM ledger_entries WHERE instr(canonical, $1) > 0 \
                 AND idx < $2 AND $3 = 0 ORDER BY idx DESC LIMIT 50"
            } else {
                "SELECT idx, canonical FROM ledger_entries WHERE strpos(canonical, $1) > 0 \
                 AND idx < $2 AND $3 = 0 ORDER BY idx DESC LIMIT 50"
            },
            plain_runs: 10,
        },
        Kind {
            name: "one request id",
            params: Box::new(move |rng| {
                let id = request_ids[rng.below(request_ids.len() as u64) as usize].clone();
                let q = AuditParams {
                    request_id: Some(leak(id.clone())),
                    ..newest_first()
                };
                (
                    Query {
                        params: q,
                        before: None,
                    },
                    PlainArgs {
                        text: id,
                        a: 0,
                        b: 0,
                    },
                )
            }),
            plain_sql: "SELECT idx, canonical FROM ledger_entries WHERE request_id = $1 \
                        AND $2 = 0 AND $3 = 0 ORDER BY idx DESC LIMIT 50",
            plain_runs: usize::MAX,
        },
    ]
}

/// Times of `runs` plain queries on one connection of their own, and rows per answer.
async fn plain(app: &TestApp, sql: &'static str, args: &[PlainArgs]) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(args.len());
    let mut rows = 0;
    macro_rules! timed {
        ($conn:expr) => {{
            let mut conn = $conn;
            for a in args {
                let t = Instant::now();
                let found = sqlx::query(sql)
                    .bind(a.text.clone())
                    .bind(a.a)
                    .bind(a.b)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                rows += found.len();
            }
        }};
    }
    match app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}?mode=ro", app.sqlite_path().display());
            timed!(sqlx::SqliteConnection::connect(&url).await.unwrap())
        }
        Backend::Postgres => {
            timed!(
                sqlx::PgConnection::connect(app.database_url.as_deref().unwrap())
                    .await
                    .unwrap()
            )
        }
    }
    (times, rows / args.len().max(1))
}

/// The plans PostgreSQL picks for the service's two statements of "department + deny" as
/// generic plans (what a cached prepared statement gets after five runs, not knowing the values:
/// the worst it could get), as `storage::audit_search` writes them.
async fn show_plans(app: &TestApp) {
    if app.backend != Backend::Postgres {
        return;
    }
    let mut conn = sqlx::PgConnection::connect(app.database_url.as_deref().unwrap())
        .await
        .unwrap();
    for sql in [
        "SET plan_cache_mode = force_generic_plan",
        "PREPARE w (text, bigint, text, bigint, bigint) AS SELECT idx FROM ledger_entries \
         WHERE department IS NOT NULL AND (department, idx) >= ($1, $2) \
         AND (department, idx) < ($3, $4) ORDER BY department DESC, idx DESC LIMIT 1 OFFSET $5",
        "PREPARE c (text, bigint, text, bigint, text, bigint) AS SELECT idx, canonical \
         FROM ledger_entries WHERE department IS NOT NULL AND (department, idx) >= ($1, $2) \
         AND (department, idx) < ($3, $4) AND decision = $5 \
         ORDER BY department DESC, idx DESC LIMIT $6",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for sql in [
        "EXPLAIN EXECUTE w('health', 0, 'health', 900000, 49999)",
        "EXPLAIN EXECUTE c('health', 0, 'health', 900000, 'deny', 50)",
    ] {
        use sqlx::Row;
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        println!("  plan of {sql}:");
        for r in rows {
            println!("    {}", r.get::<String, _>(0));
        }
    }
}

async fn run(backend: Backend, entries: usize, queries: usize) {
    println!("\n{backend:?}: {entries} entries");
    let app = spawn_app(backend).await;
    let location = match backend {
        Backend::Sqlite => DatabaseLocation::Sqlite(app.sqlite_path()),
        Backend::Postgres => DatabaseLocation::Postgres(app.database_url.clone().unwrap().into()),
    };
    let mut seeded = (0, Vec::new());
    let app = app
        .restart_after(|| {
            tokio::task::block_in_place(|| {
                seeded = tokio::runtime::Handle::current().block_on(seed(&location, entries));
            })
        })
        .await;
    let (first_time, request_ids) = seeded;
    let store = app.state.store.clone();
    let size = app.state.ledger.size();
    // Every entry checks out as `gridhub audit verify` checks it.
    app.state.ledger.checkpoint().await.unwrap();
    let keys = app.state.ledger.key_chain().await.unwrap();
    let t = Instant::now();
    let report = gridhub::ledger::verify::verify(
        &mut gridhub::ledger::sources::StoreSource::new(&store),
        &keys,
        app.state.ledger.origin(),
        |_| {},
    )
    .await
    .unwrap();
    println!(
        "  verified {} entries in {:.1} s",
        report.entries,
        t.elapsed().as_secs_f64()
    );
    let user = store.user_by_username("dpo").await.unwrap().unwrap();
    let who = Principal::of_user(user, store.versions().await.unwrap());
    show_plans(&app).await;

    println!(
        "  {:<52} {:>26} {:>26} {:>9} {:>7}",
        "query", "service p50/p95/p99 ms", "plain SQL p50/p95/p99 ms", "entries", "cut"
    );
    let mut rng = Rng(0xA0D1_7000_5EA2_C401);
    for kind in kinds(backend == Backend::Sqlite, first_time, size, request_ids) {
        let runs: Vec<(Query, PlainArgs)> = (0..queries).map(|_| (kind.params)(&mut rng)).collect();
        let mut times = Vec::with_capacity(queries);
        let mut found = 0usize;
        let mut cut = 0usize;
        // One warm-up, not timed.
        let warm = AuditQuery::parse(&runs[0].0.params).unwrap();
        app.state
            .oversight
            .search_entries(&who, &warm)
            .await
            .unwrap();
        for (q, _) in &runs {
            let mut query = AuditQuery::parse(&q.params).unwrap();
            if let Some(before) = q.before {
                query.order = Order::Descending {
                    before: Some(before),
                };
            }
            let t = Instant::now();
            let page: AuditPage = app
                .state
                .oversight
                .search_entries(&who, &query)
                .await
                .unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found += page.entries.len();
            cut += usize::from(page.scan_limited);
        }
        times.sort_by(f64::total_cmp);
        let plain_args: Vec<PlainArgs> = runs
            .into_iter()
            .take(kind.plain_runs)
            .map(|(_, a)| a)
            .collect();
        let (mut sql, _) = plain(&app, kind.plain_sql, &plain_args).await;
        sql.sort_by(f64::total_cmp);
        let plain_note = if plain_args.len() < queries {
            format!(" ({} runs)", plain_args.len())
        } else {
            String::new()
        };
        println!(
            "  {:<52} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>7}{plain_note}",
            kind.name,
            pct(&times, 0.5),
            pct(&times, 0.95),
            pct(&times, 0.99),
            pct(&sql, 0.5),
            pct(&sql, 0.95),
            pct(&sql, 0.99),
            found as f64 / queries as f64,
            cut,
        );
    }
    // The rare grant, every page from the top: how long finding all of its entries takes.
    let mut query = AuditQuery::parse(&AuditParams {
        grant: Some(RARE_GRANT),
        order: Some("desc"),
        limit: Some(50),
        ..AuditParams::default()
    })
    .unwrap();
    let t = Instant::now();
    let (mut pages, mut found) = (0, 0);
    loop {
        let page = app
            .state
            .oversight
            .search_entries(&who, &query)
            .await
            .unwrap();
        pages += 1;
        found += page.entries.len();
        match page.next {
            Some(next) => query = query.continued(next),
            None => break,
        }
    }
    println!(
        "  rare grant, all pages newest first: {found} entries in {pages} pages, {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // End to end once: the main query through `GET /v1/audit/entries`.
    let day = first_time + 7 * DAY_MS;
    let path = format!(
        "/v1/audit/entries?department=health&since={}&until={}&order=desc&limit=50",
        gridhub::time::rfc3339(day),
        gridhub::time::rfc3339(day + DAY_MS)
    );
    let mut http = Vec::new();
    for _ in 0..queries.min(100) {
        let t = Instant::now();
        let resp = app.get(&app.dpo_token, &path).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        http.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(body["entries"].as_array().unwrap().len(), 50);
    }
    http.sort_by(f64::total_cmp);
    println!(
        "  GET /v1/audit/entries (health, one day, newest first, 50; TLS, JSON): p50 {:.1} p95 {:.1} p99 {:.1} ms",
        pct(&http, 0.5),
        pct(&http, 0.95),
        pct(&http, 0.99)
    );
    console_page(&app, &path, queries.min(100)).await;
    if let (Some(_), Some(url)) = (std::env::var_os("AUDIT_BENCH_KEEP"), &app.database_url) {
        // PostgreSQL only: the database is left for a look at the plans (dropping the app
        // stops the hub; only `stop` drops the database).
        println!("  kept: {url}");
        drop(app);
        return;
    }
    migration_backfill(&app, size).await;
    app.stop().await;
}

/// The same page as the audit explorer shows it: `GET /console/audit` with the filter's query
/// string, signed in as the DPO (session cookie), rendered to HTML (50 rows), end to end over TLS.
async fn console_page(app: &TestApp, api_path: &str, runs: usize) {
    let http = gridhub_tests::client_without_redirects(&app.data_dir.path().join("pki/ca.pem"));
    let login = http
        .post(format!("{}/console/login", app.base))
        .header("origin", &app.base)
        .form(&[
            ("username", "dpo"),
            ("password", gridhub_tests::DPO_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "console login");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let query = api_path.split_once('?').unwrap().1;
    let url = format!("{}/console/audit?{query}", app.base);
    let mut times = Vec::new();
    for _ in 0..=runs {
        let t = Instant::now();
        let resp = http
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(html.matches("<tr data-index=").count(), 50, "a full page");
    }
    // The first was the warm-up.
    times.remove(0);
    times.sort_by(f64::total_cmp);
    println!(
        "  GET /console/audit (the same filter; TLS, session, HTML of 50 rows): p50 {:.1} p95 {:.1} p99 {:.1} ms",
        pct(&times, 0.5),
        pct(&times, 0.95),
        pct(&times, 0.99)
    );
}

/// What migration 0017 costs on this ledger: its backfill and its indexes, run again (the
/// three new indexes dropped first; the columns it adds exist already, and every row is
/// rewritten all the same).
async fn migration_backfill(app: &TestApp, size: u64) {
    let (migration, drops) = match app.backend {
        Backend::Sqlite => (
            include_str!("../../hub/migrations/sqlite/0017_audit_filters.sql"),
            "DROP INDEX ledger_entries_by_department; DROP INDEX ledger_entries_by_stream; \
             DROP INDEX ledger_entries_by_request;",
        ),
        Backend::Postgres => (
            include_str!("../../hub/migrations/postgres/0017_audit_filters.sql"),
            "DROP INDEX ledger_entries_by_department; DROP INDEX ledger_entries_by_stream; \
             DROP INDEX ledger_entries_by_request;",
        ),
    };
    let script: String = migration
        .lines()
        .filter(|l| !l.starts_with("ALTER TABLE ledger_entries ADD COLUMN"))
        .map(|l| format!("{l}\n"))
        .collect();
    macro_rules! timed {
        ($conn:expr) => {{
            let mut conn = $conn;
            sqlx::raw_sql(sqlx::AssertSqlSafe(drops))
                .execute(&mut conn)
                .await
                .unwrap();
            let t = Instant::now();
            sqlx::raw_sql(sqlx::AssertSqlSafe(script))
                .execute(&mut conn)
                .await
                .unwrap();
            t.elapsed().as_secs_f64()
        }};
    }
    let seconds = match app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.sqlite_path().display());
            timed!(sqlx::SqliteConnection::connect(&url).await.unwrap())
        }
        Backend::Postgres => {
            timed!(
                sqlx::PgConnection::connect(app.database_url.as_deref().unwrap())
                    .await
                    .unwrap()
            )
        }
    };
    println!("  migration 0017 (backfill and indexes) over {size} entries: {seconds:.1} s");
}

#[tokio::main]
async fn main() {
    let entries = env_usize("AUDIT_BENCH_ENTRIES", 1_000_000);
    let queries = env_usize("AUDIT_BENCH_QUERIES", 200);
    let backends =
        std::env::var("AUDIT_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "audit search: {queries} timed queries per kind after one warm-up, in-process service calls; plain SQL on one connection of its own; 2 cores"
    );
    for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        if backends.split(',').any(|b| b.trim() == name) {
            run(backend, entries, queries).await;
        }
    }
}
