//! Reading and planning one page (DESIGN.md §3 rules 4–5): candidate records are read in
//! chunks sized for the database until the page is full, the scan reaches the end, or the
//! request's scan budget is spent; each record is planned by the policy engine, and what the
//! ledger entry will record is derived from that plan. Nothing is decrypted here.

use std::collections::{BTreeMap, BTreeSet};

use policy::{Candidates, CategoryDef, GridCode, Record, RecordPlan};
use serde_json::{Map, Value};

use super::ask::{Ask, Cursor};
use crate::decisions::StoredRow;
use crate::error::Error;
use crate::ledger::{RecordRef, SharedLevels};
use crate::records;
use crate::storage::{FieldNeeds, PageQuery, PageRecord, QuotaClaim, Store};

/// Most candidate rows read from the database at a time while a page fills. The first read
/// asks for `limit` rows (a grant that keeps most records fills its page at once, reading no
/// row it does not use); each further read asks for four times more, up to this, so a row
/// filter keeping 1 record in 200 fills a page of 5 within a few reads. How many rows one
/// answer may read in all is the setting `pull_scan_budget_rows`.
const SCAN_CHUNK: u32 = 500;

/// A record planned for release: what `release` needs to open and transform its fields once
/// the ledger entry naming them is durable.
pub(super) struct Pending {
    pub record: PageRecord,
    pub grid: GridCode,
    pub public: Map<String, Value>,
    /// Invariant: built by the policy engine for this record; the entry's reference to the
    /// record was derived from it (`records::releases`).
    pub plan: RecordPlan,
}

/// A page planned, not yet recorded or opened.
pub(super) struct PlannedPage {
    pub pending: Vec<Pending>,
    /// The entry's records, one per pending record, in the same order.
    pub refs: Vec<RecordRef>,
    /// Grants the page drew on (the entry's `grants`).
    pub credited: Vec<String>,
    /// Records per grant with a daily quota, charged with the entry.
    pub claims: Vec<QuotaClaim>,
    pub next_cursor: Option<Cursor>,
    /// False when the scan budget ran out before the page was full and before the end.
    pub complete: bool,
}

/// Read and plan up to `ask.limit` records the candidates disclose something of, reading at
/// most `budget` rows.
pub(super) async fn plan_page(
    store: &Store,
    category: &CategoryDef,
    candidates: &Candidates,
    ask: &Ask,
    budget: u32,
) -> Result<PlannedPage, Error> {
    let scopes: Vec<String> = candidates
        .grants()
        .iter()
        .flat_map(|g| g.scope().iter().map(|s| s.as_str().to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let only = candidates.only_case_records();
    let needs = FieldNeeds::of(category, candidates);
    let limit = ask.limit.get();
    let names = candidates.field_names();
    let mut after = ask.cursor.as_ref().map(|c| c.as_str().to_owned());
    let mut pending: Vec<Pending> = Vec::new();
    let mut refs = Vec::new();
    // Records per grant in this answer: a record counts once against each grant it drew on.
    let mut per_grant: BTreeMap<usize, i64> = BTreeMap::new();
    // Records that got the same field levels share one map of them in the entry.
    let mut shared_levels = SharedLevels::default();
    let mut exhausted = false;
    let mut scanned = 0u32;
    let mut chunk = limit;
    while scanned < budget {
        chunk = chunk.min(budget - scanned);
        let page = store
            .disclosure_page(&PageQuery {
                category: &category.name,
                scopes: &scopes,
                only: only.as_deref(),
                within: ask.within.as_ref().map(GridCode::as_str),
                token: ask
                    .key
                    .as_ref()
                    .map(|k| (k.field.as_str(), k.token.as_slice())),
                after: after.as_deref(),
                limit: i64::from(chunk),
                needs: &needs,
            })
            .await?;
        scanned += chunk;
        exhausted = page.len() < chunk as usize;
        chunk = (chunk.saturating_mul(4)).min(SCAN_CHUNK.max(limit));
        for record in page {
            after = Some(record.id.clone());
            let grid = GridCode::parse(&record.grid)
                .map_err(|_| Error::Integrity(format!("record `{}` has a bad grid", record.id)))?;
            let public = records::public_fields(&record.id, &record.plain_fields)?;
            let row = StoredRow::new(&record.tokens, public);
            let plan = candidates.plan(&Record {
                id: &record.id,
                grid: &grid,
                row: &row,
            });
            if !plan.discloses() {
                continue;
            }
            // What the entry records is decided here, from the plan and what the record holds;
            // nothing is decrypted before the entry is durable (`release`).
            let released = records::releases(category, &record, row.plain(), &plan);
            let drew_on: BTreeSet<usize> = released.iter().map(|r| r.grant as usize).collect();
            for g in drew_on {
                *per_grant.entry(g).or_default() += 1;
            }
            let levels = released
                .iter()
                .map(|r| (r.position, r.level.as_str()))
                .collect();
            refs.push(RecordRef::sharing(
                &record.id,
                shared_levels.get(names, levels),
            ));
            pending.push(Pending {
                public: row.plain().clone(),
                grid,
                plan,
                record,
            });
            if pending.len() == limit as usize {
                break;
            }
        }
        if exhausted || pending.len() == limit as usize {
            break;
        }
    }
    let credited = per_grant
        .keys()
        .filter_map(|g| Some(candidates.grants().get(*g)?.id.to_string()))
        .collect();
    // The cursor resumes after the last record looked at, unless the scan reached the end.
    let full = pending.len() == limit as usize;
    let next_cursor = if exhausted && !full {
        None
    } else {
        after.map(Cursor::after)
    };
    // Every grant the page draws on is counted, in the ledger's commit of the page's entry: a
    // grant's daily quota is checked against it, and a grant without one (`u32::MAX`: never
    // reached) still shows the day it was last used (the grant watchlist).
    let claims = per_grant
        .iter()
        .filter_map(|(g, n)| {
            let grant = candidates.grants().get(*g)?;
            Some(QuotaClaim {
                grant: grant.id.to_string(),
                quota: grant.daily_quota().unwrap_or(u32::MAX),
                records: *n,
            })
        })
        .collect();
    Ok(PlannedPage {
        pending,
        refs,
        credited,
        claims,
        next_cursor,
        // Neither full nor at the end: the budget cut the page short.
        complete: full || exhausted,
    })
}
