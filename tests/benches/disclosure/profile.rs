//! Where a page's time goes, measured in-process on the running hub (its `AppState`), one call
//! at a time with nothing else running: the steps `GET /v1/data/{category}` takes, in its
//! order, each timed `n` times (median and p99), scaled to one page of 100 records. The load
//! generator's own per-page work (reading the JSON) is timed the same way. The steps call the
//! same functions the handler calls; the handler's glue between them is not timed.

use std::future::Future;
use std::time::Instant;

use gridhub::auth::permissions::{NO_GRID, client_subject};
use gridhub::decisions::StoredRow;
use gridhub::ledger::{Actor, Decision, EntryDraft, RecordRef, SharedLevels};
use gridhub::records::{self, DiscloseInput};
use gridhub::state::AppState;
use gridhub::storage::{FieldNeeds, PageQuery, PageRecord, QuotaCharge, QuotaClaim};
use gridhub::time::now_ms;
use policy::{Candidates, CategoryDef, GridCode, Record, RecordPlan, Request};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::loadgen::{PageCount, PageSpec};
use crate::setup::{CATEGORY, Fixture, PAGE, PURPOSE};

/// One step: median and p99 of one call, and how many calls one page makes.
pub struct Step {
    pub label: &'static str,
    pub median_us: f64,
    pub p99_us: f64,
    pub per_page: f64,
    /// Only for sealed answers / only on the load generator's side.
    pub kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every plain page, inside the hub.
    Hub,
    /// Only a sealed page.
    Sealed,
    /// The load generator, not the hub.
    Client,
}

impl Step {
    pub fn page_us(&self) -> f64 {
        self.median_us * self.per_page
    }
}

fn summary(label: &'static str, mut us: Vec<f64>, per_page: f64, kind: Kind) -> Step {
    us.sort_by(f64::total_cmp);
    let at = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize];
    Step {
        label,
        median_us: at(0.5),
        p99_us: at(0.99),
        per_page,
        kind,
    }
}

async fn timed<T, F: Future<Output = T>>(n: usize, mut f: impl FnMut(usize) -> F) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(f(i).await);
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

fn timed_sync<T>(n: usize, mut f: impl FnMut(usize) -> T) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(f(i));
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

/// The cursor of page `i` of the table (`None` for the first).
pub fn cursor_of(page: &PageSpec) -> Option<String> {
    page.path
        .split("cursor=")
        .nth(1)
        .map(|c| c.split('&').next().unwrap_or(c).to_owned())
}

async fn page_at(
    state: &AppState,
    scopes: &[String],
    needs: &FieldNeeds,
    after: Option<&str>,
) -> Vec<PageRecord> {
    state
        .store
        .disclosure_page(&PageQuery {
            category: CATEGORY,
            scopes,
            only: None,
            within: None,
            token: None,
            after,
            limit: PAGE as i64,
            needs,
        })
        .await
        .unwrap()
}

/// Plan every record of `page` as the handler does; the plans and their ledger references.
fn plan_page(
    category: &CategoryDef,
    candidates: &Candidates,
    page: &[PageRecord],
) -> Vec<(RecordPlan, RecordRef)> {
    let mut shared = SharedLevels::default();
    page.iter()
        .map(|record| {
            let grid = GridCode::parse(&record.grid).unwrap();
            let public = records::public_fields(&record.id, &record.plain_fields).unwrap();
            let row = StoredRow::new(&record.tokens, public);
            let plan = candidates.plan(&Record {
                id: &record.id,
                grid: &grid,
                row: &row,
            });
            let levels: Vec<(usize, &'static str)> =
                records::releases(category, record, row.plain(), &plan)
                    .iter()
                    .map(|r| (r.position, r.level.as_str()))
                    .collect();
            let levels = shared.get(candidates.field_names(), levels);
            (plan, RecordRef::sharing(&record.id, levels))
        })
        .collect()
}

fn draft(client: &str, department: &str, grant: &str, refs: Vec<RecordRef>) -> EntryDraft {
    let n = refs.len();
    EntryDraft::new(
        Actor {
            client: Some(client.to_owned()),
            department: Some(department.to_owned()),
            ..Actor::default()
        },
        "data.read",
        Decision::Allow,
        uuid::Uuid::new_v4().to_string(),
    )
    .category(CATEGORY)
    .purpose(PURPOSE)
    .grants(vec![grant.to_owned()])
    .records(refs)
    .reason(&format!("{n} records disclosed"))
}

/// A ledger entry like a full page's, for probes: 100 records, five fields each.
pub fn page_entry(fx: &Fixture) -> EntryDraft {
    let refs = (0..PAGE)
        .map(|_| {
            RecordRef::new(
                &uuid::Uuid::now_v7().to_string(),
                [
                    ("address".to_owned(), "generalized"),
                    ("birth_date".to_owned(), "generalized"),
                    ("id_number".to_owned(), "pseudonym"),
                    ("name".to_owned(), "clear"),
                    ("phone".to_owned(), "masked"),
                ],
            )
        })
        .collect();
    draft(&fx.client.id, &fx.client.department, &fx.grant_id, refs)
}

/// A full page's charge against the bench grant's daily quota (today, CST as the handler
/// counts; the quota is large enough never to refuse).
pub fn page_charge(fx: &Fixture) -> QuotaCharge {
    let cst = time::OffsetDateTime::now_utc() + time::Duration::hours(8);
    QuotaCharge {
        day: cst.date().to_string(),
        claims: vec![QuotaClaim {
            grant: fx.grant_id.clone(),
            quota: crate::setup::DAILY_QUOTA,
            records: PAGE as i64,
        }],
    }
}

/// The shape `DisclosedPage` serialises to (its fields are private to the hub).
#[derive(Serialize, serde::Deserialize)]
struct PageShape {
    records: Vec<RecordShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    receipt: Value,
}

#[derive(Serialize, serde::Deserialize)]
struct RecordShape {
    id: String,
    grid: String,
    fields: Map<String, Value>,
}

/// Time every step; `n` calls each (fewer for the slow ones).
pub async fn steps(fx: &Fixture, n: usize) -> Vec<Step> {
    let state = &fx.app.state;
    let client = &fx.client;
    let department = client.department.as_str();
    let token = fx.app.client_token(client).await;
    let category = state
        .decisions
        .catalog()
        .unwrap()
        .category(CATEGORY)
        .unwrap();
    let request = || Request {
        department,
        category: CATEGORY,
        purpose: PURPOSE,
        case: None,
        now: now_ms(),
    };
    let candidates = state
        .decisions
        .with_index(|i| i.candidates(&request()))
        .unwrap()
        .unwrap();
    let scopes = &vec!["330110".to_owned()][..];
    let needs = &FieldNeeds::of(category, &candidates);
    let cursors: Vec<Option<String>> = fx.pages.iter().map(cursor_of).collect();
    let cursor = |i: usize| cursors[i % cursors.len()].clone();
    let few = (n / 4).max(20);
    let mut out = Vec::new();
    let hub = Kind::Hub;

    out.push(summary(
        "JWT verify (TokenIssuer::verify, remembered)",
        timed_sync(n, |_| state.tokens.verify(&token).unwrap()),
        1.0,
        hub,
    ));
    out.push(summary(
        "state versions (Store::versions, 1 query)",
        timed(n, |_| async { state.store.versions().await.unwrap() }).await,
        1.0,
        hub,
    ));
    let versions = state.store.versions().await.unwrap();
    out.push(summary(
        "client by certificate (remembered per version)",
        timed_sync(n, |_| {
            state.known_clients.get(&client.thumbprint, versions.policy)
        }),
        1.0,
        hub,
    ));
    out.push(summary(
        "  when not remembered: client + roles (2 queries)",
        timed(n, |_| state.store.client_by_thumbprint(&client.thumbprint)).await,
        0.0,
        hub,
    ));
    let subject = client_subject(&client.id);
    out.push(summary(
        "role check (casbin enforce at that version)",
        timed(n, |_| {
            state
                .permissions
                .allows_at(versions.policy, &subject, NO_GRID, "data", "read")
        })
        .await,
        1.0,
        hub,
    ));
    out.push(summary(
        "decision index freshness (at that version)",
        timed(n, |_| async {
            state.decisions.refresh_to(versions.decision).await.unwrap()
        })
        .await,
        1.0,
        hub,
    ));
    out.push(summary(
        "candidate grants",
        timed_sync(n, |_| {
            state.decisions.with_index(|i| i.candidates(&request()))
        }),
        1.0,
        hub,
    ));
    out.push(summary(
        "read 100 records (1 query)",
        timed(few, |i| {
            let after = cursor(i);
            async move { page_at(state, scopes, needs, after.as_deref()).await }
        })
        .await,
        1.0,
        hub,
    ));
    let pages: Vec<Vec<PageRecord>> = {
        let mut v = Vec::new();
        for i in 0..8 {
            v.push(page_at(state, scopes, needs, cursor(i * 7).as_deref()).await);
        }
        v
    };
    out.push(summary(
        "plan 100 records (StoredRow + plan)",
        timed_sync(few, |i| {
            plan_page(category, &candidates, &pages[i % pages.len()])
        }),
        1.0,
        hub,
    ));
    let plans: Vec<Vec<(RecordPlan, RecordRef)>> = pages
        .iter()
        .map(|p| plan_page(category, &candidates, p))
        .collect();
    // As the handler: one pseudonym key per page, each record's grid and public fields parsed
    // once (the plan above parsed them too).
    let disclose_page = |i: usize| {
        let (page, plans) = (&pages[i % pages.len()], &plans[i % pages.len()]);
        let pseudonyms = state.vault.pseudonyms(department);
        page.iter()
            .zip(plans)
            .map(|(r, (plan, _))| {
                let grid = GridCode::parse(&r.grid).unwrap();
                let public = records::public_fields(&r.id, &r.plain_fields).unwrap();
                let input = DiscloseInput {
                    grid: &grid,
                    public: &public,
                    pseudonyms: &pseudonyms,
                };
                records::disclose(&state.vault, category, r, &input, plan).unwrap()
            })
            .collect::<Vec<_>>()
    };
    out.push(summary(
        "decrypt + transform 100 records",
        timed_sync(few, disclose_page),
        1.0,
        hub,
    ));
    let refs = |i: usize| -> Vec<RecordRef> {
        plans[i % plans.len()]
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    };
    out.push(summary(
        "ledger entry: build + canonical JSON",
        timed_sync(few, |i| {
            draft(&client.id, department, &fx.grant_id, refs(i))
                .canonical_at(7, "2026-11-24T00:00:00.000Z")
        }),
        1.0,
        hub,
    ));
    out.push(summary(
        "ledger append + quota charge (durable commit)",
        timed(few, |_| {
            let (entry, charge) = (page_entry(fx), page_charge(fx));
            async move { state.ledger.append_charged(entry, charge).await.unwrap() }
        })
        .await,
        1.0,
        hub,
    ));
    let mut appended = None;
    out.push(summary(
        "  the same without a quota charge",
        timed(few, |i| {
            let (state, d) = (
                state.clone(),
                draft(&client.id, department, &fx.grant_id, refs(i)),
            );
            async move { state.ledger.append(d).await.unwrap() }
        })
        .await,
        0.0,
        hub,
    ));
    if let Ok(a) = state.ledger.append(page_entry(fx)).await {
        appended = Some(a);
    }
    let appended = appended.unwrap();
    out.push(summary(
        "receipt (Ed25519 sign)",
        timed_sync(n, |_| state.ledger.receipt(&appended)),
        1.0,
        hub,
    ));
    let shape: PageShape = serde_json::from_slice(&fx.sample_body).unwrap();
    out.push(summary(
        "JSON encode the page",
        timed_sync(n, |_| serde_json::to_vec(&shape).unwrap()),
        1.0,
        hub,
    ));
    let recipient = fx.identity.to_public();
    out.push(summary(
        "age seal the page",
        timed_sync(few, |_| age::encrypt(&recipient, &fx.sample_body).unwrap()),
        1.0,
        Kind::Sealed,
    ));
    out.push(summary(
        "load generator: read the JSON, count fields",
        timed_sync(n, |_| PageCount::parse(&fx.sample_body).fields()),
        1.0,
        Kind::Client,
    ));
    out
}

/// How many page-sized ledger entries, without and with the page's quota charge, the hub's
/// ledger writer commits per second when `tasks` callers keep it busy for `secs` (nothing else
/// running): the most pages per second it lets through. Returns (entries/s, entries per
/// commit, charged entries/s).
pub async fn writer_capacity(fx: &Fixture, tasks: usize, secs: f64) -> (f64, f64, f64) {
    let state = &fx.app.state;
    let span = std::time::Duration::from_secs_f64(secs);
    let (commits_before, entries_before) = state.ledger.commit_stats();
    let end = Instant::now() + span;
    let appenders: Vec<_> = (0..tasks)
        .map(|_| {
            let (state, fx_entry) = (state.clone(), page_entry(fx));
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    state.ledger.append(fx_entry.clone()).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut entries = 0;
    for a in appenders {
        entries += a.await.unwrap();
    }
    let (commits_after, entries_after) = state.ledger.commit_stats();
    let per_commit =
        (entries_after - entries_before) as f64 / (commits_after - commits_before).max(1) as f64;
    let end = Instant::now() + span;
    let reservers: Vec<_> = (0..tasks)
        .map(|_| {
            let (state, entry, charge) = (state.clone(), page_entry(fx), page_charge(fx));
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    state
                        .ledger
                        .append_charged(entry.clone(), charge.clone())
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut reservations = 0;
    for r in reservers {
        reservations += r.await.unwrap();
    }
    (
        entries as f64 / secs,
        per_commit,
        reservations as f64 / secs,
    )
}
