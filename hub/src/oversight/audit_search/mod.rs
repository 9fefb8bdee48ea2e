//! Audit search (`GET /v1/audit/entries`, the console's audit explorer and its export): the
//! ledger entries that match typed filters, a page at a time, oldest first from `start` or
//! newest first below `before`. Needs `audit:read`; a search is not itself audited (a refusal
//! is), an export is (`audit.export`).
//!
//! Invariants:
//! - Bounded: one page examines at most `budget` entries (`ScanBudget`, 50 000 by default)
//!   whatever the filters (`storage::audit_search`). A page the budget cut short says so
//!   (`scan_limited`) and its `next` continues where the scan stopped, so a rare filter over
//!   millions of entries answers at once and the caller keeps paging.
//! - Exact: following `next` from the first page to the last visits every matching entry of the
//!   range exactly once, in order. Filters with a column are compared in SQL; `grant` and
//!   `field` are narrowed in SQL by a substring of the canonical text (a necessary condition)
//!   and decided here on the parsed entry.
//! - A time range is an index range (entry times never decrease with the index), found with two
//!   seeks of the time index, so "one day" reads that day's entries only.
//!
//! The query and its parsing are in `query`.

mod query;

pub use query::{
    AuditFilter, AuditParams, AuditQuery, DEFAULT_PAGE, Exact, MAX_PAGE, MAX_SCAN_BUDGET, Order,
    PageSize, ScanBudget,
};

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Oversight;
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft, Stream};
use crate::storage::{AuditFilters, Store};

/// A ledger entry found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundEntry {
    pub index: u64,
    /// The exact text that was hashed into the leaf.
    pub canonical: String,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// Matching entries, in the query's order.
    pub entries: Vec<FoundEntry>,
    /// Where the next page starts: its `start` (oldest first) or its `before` (newest first),
    /// for `AuditQuery::continued`. `None`: the range holds no further entries to look at.
    pub next: Option<u64>,
    /// The page is short because it examined its budget of entries, not because the range
    /// ended: `next` continues the scan.
    pub scan_limited: bool,
}

impl Oversight {
    /// A page of the ledger entries matching `query` (role permission `audit:read`; a refusal
    /// is audited as `audit.entries`).
    pub async fn search_entries(
        &self,
        who: &Principal,
        query: &AuditQuery,
    ) -> Result<AuditPage, Error> {
        self.access
            .authorize(who, "audit", "read", None, "audit.entries")
            .await?;
        search(&self.store, self.access.ledger().size(), query).await
    }

    /// Every entry matching `query`, a page at a time, for a download (role permission
    /// `audit:read`; audited as `audit.export` before anything is read). The range ends at the
    /// ledger's size now, so entries appended meanwhile are not in it and the export ends.
    pub async fn export_entries(
        &self,
        who: &Principal,
        query: &AuditQuery,
    ) -> Result<AuditExport, Error> {
        self.access
            .authorize(who, "audit", "read", None, "audit.export")
            .await?;
        let size = self.access.ledger().size();
        let mut query = query.clone();
        query.end = Some(query.end.map_or(size, |end| end.min(size)));
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "audit.export",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&describe(&query)),
            )
            .await?;
        Ok(AuditExport {
            store: self.store.clone(),
            size,
            query,
            done: false,
        })
    }
}

/// An export in progress: `next_page` until it answers `None`.
pub struct AuditExport {
    store: Store,
    size: u64,
    query: AuditQuery,
    done: bool,
}

impl AuditExport {
    /// The next page's entries (possibly none: a page the scan budget cut short), or `None`
    /// once every matching entry was handed out.
    pub async fn next_page(&mut self) -> Result<Option<Vec<FoundEntry>>, Error> {
        if self.done {
            return Ok(None);
        }
        let page = search(&self.store, self.size, &self.query).await?;
        match page.next {
            Some(next) => self.query = self.query.continued(next),
            None => self.done = true,
        }
        Ok(Some(page.entries))
    }
}

/// The export's query in the ledger entry that records it (identifiers only: no filter takes a
/// personal value).
fn describe(q: &AuditQuery) -> String {
    let f = &q.filter;
    let mut parts = vec![format!(
        "entries {}..{}",
        q.start,
        q.end.map_or(String::new(), |e| e.to_string())
    )];
    let texts = [
        ("department", &f.department),
        ("actor", &f.actor),
        ("action", &f.action),
        ("category", &f.category),
        ("field", &f.field),
        ("purpose", &f.purpose),
        ("grant", &f.grant),
        ("case", &f.case),
        ("request_id", &f.request_id),
    ];
    for (name, value) in texts {
        if let Some(v) = value {
            parts.push(format!("{name}={}", v.as_str()));
        }
    }
    if let Some(d) = f.decision {
        parts.push(format!("decision={}", d.as_str()));
    }
    if let Some(s) = f.stream {
        parts.push(format!("stream={}", s.as_str()));
    }
    for (name, value) in [("since", f.since_ms), ("until", f.until_ms)] {
        if let Some(ms) = value {
            parts.push(format!("{name}={}", crate::time::rfc3339(ms)));
        }
    }
    parts.join(" ")
}

/// The part of an entry the exact `grant` and `field` checks read.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    records: Vec<ProbeRecord>,
}

#[derive(Deserialize)]
struct ProbeRecord {
    #[serde(default)]
    fields: BTreeMap<String, IgnoredAny>,
}

/// Do the filters storage cannot compare exactly hold for `canonical`? A text that does not
/// parse matches no such filter.
fn matches_exactly(f: &AuditFilter, canonical: &str) -> bool {
    if f.grant.is_none() && f.field.is_none() {
        return true;
    }
    let Ok(probe) = serde_json::from_str::<Probe>(canonical) else {
        return false;
    };
    f.grant
        .as_ref()
        .is_none_or(|g| probe.grants.iter().any(|x| x == g.as_str()))
        && f.field.as_ref().is_none_or(|name| {
            probe
                .records
                .iter()
                .any(|r| r.fields.contains_key(name.as_str()))
        })
}

/// The storage filters of `f`: columns, and for `grant` and `field` the JSON text each must
/// appear as in a matching entry (canonical text is serde_json's, so the same escaping).
fn storage_filters(f: &AuditFilter) -> AuditFilters {
    let text = |e: &Option<Exact>| e.as_ref().map(|e| e.as_str().to_owned());
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut texts = Vec::new();
    if let Some(g) = &f.grant {
        texts.push(quoted(g.as_str()));
    }
    if let Some(name) = &f.field {
        texts.push(format!("{}:", quoted(name.as_str())));
    }
    AuditFilters {
        request_id: text(&f.request_id),
        actor: text(&f.actor),
        department: text(&f.department),
        stream: f.stream.map(Stream::as_str),
        action: text(&f.action),
        decision: f.decision.map(Decision::as_str),
        purpose: text(&f.purpose),
        case_id: text(&f.case),
        category: text(&f.category),
        since_ms: f.since_ms,
        until_ms: f.until_ms,
        texts,
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The index range `lo..hi` a search covers: the query's range within the ledger, below
/// `before`, narrowed to its time range.
async fn index_range(store: &Store, size: u64, q: &AuditQuery) -> Result<(i64, i64), Error> {
    let mut lo = to_i64(q.start);
    let mut hi = to_i64(q.end.map_or(size, |end| end.min(size)));
    if let Order::Descending {
        before: Some(before),
    } = q.order
    {
        hi = hi.min(to_i64(before));
    }
    if lo < hi
        && let Some(since) = q.filter.since_ms
    {
        lo = match store.ledger_first_index_at(since).await? {
            Some(first) => lo.max(first),
            None => hi,
        };
    }
    if lo < hi
        && let Some(until) = q.filter.until_ms
        && let Some(first_after) = store.ledger_first_index_at(until).await?
    {
        hi = hi.min(first_after);
    }
    Ok((lo, hi.max(lo)))
}

/// Entries of the driving index the first window of a page holds; each next window holds
/// `WINDOW_GROWTH` times more, up to the budget.
const FIRST_WINDOW: u32 = 1024;
const WINDOW_GROWTH: u32 = 8;

/// One page of `q` over a ledger of `size` entries.
///
/// The page is read through windows that grow (1 024, then 8 192 entries of the driving index,
/// then the budget), each read only where the one before did not reach: a page that fills
/// early pays for a small window, a rare filter for the budget, never more.
async fn search(store: &Store, size: u64, q: &AuditQuery) -> Result<AuditPage, Error> {
    let (lo, hi) = index_range(store, size, q).await?;
    let newest_first = matches!(q.order, Order::Descending { .. });
    let reader = PageReader {
        store,
        filter: &q.filter,
        filters: storage_filters(&q.filter),
        newest_first,
        limit: usize::try_from(q.limit.get()).unwrap_or(usize::MAX),
    };
    let limit = reader.limit;
    let budget = q.budget.get();
    let mut entries: Vec<FoundEntry> = Vec::new();
    // Not yet examined: `lo..below` newest first, `from..hi` oldest first.
    let (mut from, mut below) = (lo, hi);
    let mut stage = budget.min(FIRST_WINDOW);
    let cut_at = loop {
        let window = store
            .audit_window(&reader.filters, lo, hi, newest_first, i64::from(stage))
            .await?;
        if newest_first {
            from = window.lo;
        } else {
            below = window.hi;
        }
        reader.read(&mut from, &mut below, &mut entries).await?;
        if entries.len() == limit || window.cut_at.is_none() || stage == budget {
            break window.cut_at;
        }
        // INVARIANT (window read whole): the page is not full, so every candidate of the
        // window was read; the next window continues at its edge.
        if newest_first {
            below = window.lo;
        } else {
            from = window.hi;
        }
        stage = budget.min(stage.saturating_mul(WINDOW_GROWTH));
    };
    let full = entries.len() == limit;
    let next = match (entries.last(), cut_at) {
        (Some(last), _) if full && newest_first => Some(last.index),
        (Some(last), _) if full => Some(last.index + 1),
        (_, Some(cut)) if newest_first => Some(to_u64(cut)),
        (_, Some(cut)) => Some(to_u64(cut) + 1),
        (_, None) => None,
    };
    Ok(AuditPage {
        entries,
        next,
        scan_limited: !full && cut_at.is_some(),
    })
}

/// What one page reads candidates with.
struct PageReader<'a> {
    store: &'a Store,
    filter: &'a AuditFilter,
    filters: AuditFilters,
    newest_first: bool,
    limit: usize,
}

impl PageReader<'_> {
    /// Read the candidates of `from..below` in the page's order into `entries` until the page
    /// is full or none are left, moving the bound that was passed. Every candidate is examined
    /// at most once: each read continues past the last candidate of the one before (there is
    /// more than one read only when candidates fail the exact check).
    async fn read(
        &self,
        from: &mut i64,
        below: &mut i64,
        entries: &mut Vec<FoundEntry>,
    ) -> Result<(), Error> {
        while *from < *below && entries.len() < self.limit {
            let need = self.limit - entries.len();
            let rows = self
                .store
                .audit_candidates(
                    &self.filters,
                    *from,
                    *below,
                    self.newest_first,
                    to_i64(need as u64),
                )
                .await?;
            let read = rows.len();
            for (index, canonical) in rows {
                if self.newest_first {
                    *below = index;
                } else {
                    *from = index + 1;
                }
                if matches_exactly(self.filter, &canonical) {
                    entries.push(FoundEntry {
                        index: to_u64(index),
                        canonical,
                    });
                }
            }
            if read < need {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grant_and_field_are_decided_on_the_parsed_entry() {
        let text = r#"{"action":"data.read","actor":{"client":"c"},"decision":"allow","grants":["g-1","g-2"],"index":3,"reason":"\"g-9\" \"phone\":","records":[{"fields":{"name":"clear"},"id":"r1"},{"fields":{"phone":"masked"},"id":"r2"}],"request_id":"q","time":"2026-01-01T00:00:00.000Z"}"#;
        let with = |grant: Option<&str>, field: Option<&str>| AuditFilter {
            grant: grant.map(|g| Exact::parse("grant", g).unwrap()),
            field: field.map(|f| Exact::parse("field", f).unwrap()),
            ..AuditFilter::default()
        };
        assert!(matches_exactly(&with(Some("g-2"), None), text));
        assert!(matches_exactly(&with(None, Some("phone")), text));
        assert!(matches_exactly(&with(Some("g-1"), Some("name")), text));
        // In the text, but not where the filter looks: no match.
        assert!(!matches_exactly(&with(Some("g-9"), None), text));
        assert!(!matches_exactly(&with(None, Some("id")), text));
        assert!(!matches_exactly(&with(Some("g-1"), None), "not json"));
        // The substrings storage narrows by are the JSON forms.
        let f = storage_filters(&with(Some("g\"1"), Some("name")));
        assert_eq!(f.texts, [r#""g\"1""#, r#""name":"#]);
    }

    /// A ledger of `n` entries of four departments (and none), some denied, some under a rare
    /// grant, in a fresh SQLite store, written through the ledger's own write path.
    async fn ledger(n: u64) -> (tempfile::TempDir, Store, Vec<crate::storage::LedgerRow>) {
        use crate::ledger::{Actor, RecordRef};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&crate::config::DatabaseLocation::Sqlite(
            dir.path().join("a.db"),
        ))
        .await
        .unwrap();
        let drafts: Vec<EntryDraft> = (0..n)
            .map(|i| {
                let department = ["d0", "d1", "d2", "d3"].get((i % 5) as usize).copied();
                let actor = Actor {
                    client: Some(format!("c{}", i % 5)),
                    department: department.map(str::to_owned),
                    ..Actor::default()
                };
                let decision = if i % 7 == 0 {
                    Decision::Deny
                } else {
                    Decision::Allow
                };
                let action = if i % 3 == 0 {
                    "grant.request"
                } else {
                    "data.read"
                };
                let grant = if i % 97 == 0 { "rare" } else { "common" };
                EntryDraft::new(actor, action, decision, format!("r{}", i % 11))
                    .grants(vec![grant.to_owned()])
                    .records(vec![RecordRef::new(
                        "x",
                        [(format!("f{}", i % 4), "clear")],
                    )])
            })
            .collect();
        let mut frontier = crate::ledger::merkle::Frontier::new();
        let (rows, nodes, _) = crate::ledger::stored_form(
            &mut frontier,
            drafts
                .iter()
                .enumerate()
                .map(|(i, d)| (d, 1_000 * i as i64)),
        );
        store.append_ledger(&rows, &nodes).await.unwrap();
        (dir, store, rows)
    }

    /// Every page of `q` from the first to the last: the indexes served, in order, and how many
    /// pages the budget cut short.
    async fn all_pages(store: &Store, size: u64, mut q: AuditQuery) -> (Vec<u64>, usize) {
        let (mut found, mut cut) = (Vec::new(), 0);
        loop {
            let page = search(store, size, &q).await.unwrap();
            assert!(page.entries.len() <= q.limit.get() as usize);
            cut += usize::from(page.scan_limited);
            found.extend(page.entries.iter().map(|e| e.index));
            match page.next {
                Some(next) => q = q.continued(next),
                None => return (found, cut),
            }
        }
    }

    /// Whatever the budget (one window, several growing ones, cut short or not), the page size
    /// and the order, paging visits exactly the matching entries, each once, in order.
    #[tokio::test]
    async fn paging_visits_every_match_once_whatever_the_budget() {
        let n = 12_000;
        let (_dir, store, rows) = ledger(n).await;
        let exact = |name: &str, v: &str| Some(Exact::parse(name, v).unwrap());
        let filters = [
            AuditFilter {
                department: exact("department", "d1"),
                decision: Some(Decision::Deny),
                ..AuditFilter::default()
            },
            AuditFilter {
                grant: exact("grant", "rare"),
                ..AuditFilter::default()
            },
            AuditFilter {
                stream: Some(Stream::Admin),
                field: exact("field", "f2"),
                ..AuditFilter::default()
            },
            AuditFilter {
                request_id: exact("request_id", "r3"),
                department: exact("department", "d0"),
                ..AuditFilter::default()
            },
            AuditFilter {
                since_ms: Some(2_000_000),
                until_ms: Some(9_000_500),
                decision: Some(Decision::Allow),
                ..AuditFilter::default()
            },
        ];
        for filter in filters {
            let expected: Vec<u64> = rows
                .iter()
                .filter(|r| {
                    let e = crate::ledger::entry::parse_canonical(&r.canonical).unwrap();
                    let text = |f: &Option<Exact>, v: Option<&str>| {
                        f.as_ref().is_none_or(|f| Some(f.as_str()) == v)
                    };
                    text(&filter.department, e.actor.department.as_deref())
                        && text(&filter.request_id, Some(&e.request_id))
                        && filter.decision.is_none_or(|d| d == e.decision)
                        && filter.stream.is_none_or(|s| s == Stream::of(&e.action))
                        && filter
                            .grant
                            .as_ref()
                            .is_none_or(|g| e.grants.iter().any(|x| x == g.as_str()))
                        && filter.field.as_ref().is_none_or(|f| {
                            e.records
                                .iter()
                                .any(|rec| rec.fields.contains_key(f.as_str()))
                        })
                        && filter.since_ms.is_none_or(|t| r.time_ms >= t)
                        && filter.until_ms.is_none_or(|t| r.time_ms < t)
                })
                .map(|r| r.index as u64)
                .collect();
            assert!(!expected.is_empty(), "{filter:?}");
            for (budget, limit) in [
                (5, 3),
                (700, 50),
                (3_000, 1000),
                (50_000, 7),
                (50_000, 1000),
            ] {
                for order in [Order::Ascending, Order::Descending { before: None }] {
                    let q = AuditQuery {
                        order,
                        filter: filter.clone(),
                        limit: PageSize::parse("limit", limit).unwrap(),
                        budget: ScanBudget::new(budget),
                        ..AuditQuery::default()
                    };
                    let (mut found, cut) = all_pages(&store, n, q).await;
                    if order != Order::Ascending {
                        found.reverse();
                    }
                    assert_eq!(
                        found, expected,
                        "{filter:?} budget {budget} limit {limit} {order:?}"
                    );
                    if budget == 50_000 {
                        assert_eq!(cut, 0, "a budget above the ledger never cuts");
                    }
                }
            }
        }
    }
}
