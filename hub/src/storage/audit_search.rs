//! Audit search reads over `ledger_entries` (`oversight::audit_search` composes them into
//! pages). Read-only. Invariant: a search examines a bounded number of entries per call — it
//! first fixes an index window that holds at most `budget` entries of its driving index
//! (`audit_window`), then reads candidates only inside that window (`audit_candidates`), so a
//! rare filter over millions of entries costs at most `budget` index entries and rows.
//!
//! The driving index is the most selective indexed filter given: `request_id`, `actor`,
//! `department`, `stream` (each index ends in `idx`, so "these entries below index N, newest
//! first" is one range); without one, the primary key. The bound holds only if the scan goes
//! through that index, so nothing is left to the planner's choice: every other indexed column is
//! compared through an expression (`col || ''`, `time_ms + 0`) that no index serves; on SQLite
//! the driving index is named (`INDEXED BY`); on PostgreSQL the window is a range of the driving
//! index's key (`(col, idx) >= (v, lo)`), which the primary key cannot serve, ordered as that
//! index is (`push_range`, `push_order`), so a generic plan is as bounded as a custom one.

use sqlx::Row;

use super::{Backend, Store, on_read};

/// The filters of an audit search as storage compares them: every `Some` must hold.
#[derive(Debug, Default, Clone)]
pub struct AuditFilters {
    pub request_id: Option<String>,
    /// The `actor` column: the client id, else the user id.
    pub actor: Option<String>,
    pub department: Option<String>,
    /// A stored stream name (`ledger::Stream::as_str`).
    pub stream: Option<&'static str>,
    pub action: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<&'static str>,
    pub purpose: Option<String>,
    pub case_id: Option<String>,
    pub category: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Texts the canonical entry must contain. A necessary condition only (the caller checks
    /// its filter exactly on what comes back); it saves sending rows that cannot match.
    pub texts: Vec<String>,
}

/// The index window a search reads: entries with index in `lo..hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditWindow {
    pub lo: i64,
    pub hi: i64,
    /// Where the budget cut the window: the last entry it lets the search examine (the lowest
    /// index newest first, the highest oldest first). `None`: the window is the whole range.
    pub cut_at: Option<i64>,
}

/// The indexed column that drives a search, with its SQLite index and the value compared.
struct Driving<'a> {
    column: &'static str,
    sqlite_index: &'static str,
    value: &'a str,
}

fn driving(f: &AuditFilters) -> Option<Driving<'_>> {
    let candidates = [
        (
            "request_id",
            "ledger_entries_by_request",
            f.request_id.as_deref(),
        ),
        ("actor", "ledger_entries_by_actor", f.actor.as_deref()),
        (
            "department",
            "ledger_entries_by_department",
            f.department.as_deref(),
        ),
        ("stream", "ledger_entries_by_stream", f.stream),
    ];
    candidates
        .into_iter()
        .find_map(|(column, sqlite_index, value)| {
            value.map(|value| Driving {
                column,
                sqlite_index,
                value,
            })
        })
}

impl Store {
    /// The index of the first entry dated `time_ms` or later (`None`: every entry is older).
    /// INVARIANT (monotonic time, `ledger::append_batch`): times never decrease with the
    /// index, so the entries of a time range are the index range between two such answers.
    /// Two seeks of the time index: the earliest such time, then the lowest index with it.
    pub async fn ledger_first_index_at(&self, time_ms: i64) -> Result<Option<i64>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT MIN(idx) AS i FROM ledger_entries WHERE time_ms = \
                 (SELECT MIN(time_ms) FROM ledger_entries WHERE time_ms >= $1)",
            )
            .bind(time_ms)
            .fetch_one(pool)
            .await?
            .try_get("i")
        })
    }

    /// The window of `lo..hi` that a search examines: all of it, or, when more than `budget`
    /// entries of the driving index (or of the log) lie in it, the `budget` newest of them
    /// (`newest_first`) or the `budget` oldest. Index-only on the driving index.
    pub async fn audit_window(
        &self,
        f: &AuditFilters,
        lo: i64,
        hi: i64,
        newest_first: bool,
        budget: i64,
    ) -> Result<AuditWindow, sqlx::Error> {
        let budget = budget.max(1);
        let hi = hi.max(lo);
        let whole = AuditWindow {
            lo,
            hi,
            cut_at: None,
        };
        if lo == hi {
            return Ok(whole);
        }
        let Some(d) = driving(f) else {
            // Indexes are 0..size without gaps while the log is intact; a gap only makes the
            // window hold fewer entries.
            return Ok(match hi.saturating_sub(lo) > budget {
                true if newest_first => AuditWindow {
                    lo: hi - budget,
                    hi,
                    cut_at: Some(hi - budget),
                },
                true => AuditWindow {
                    lo,
                    hi: lo + budget,
                    cut_at: Some(lo + budget - 1),
                },
                false => whole,
            });
        };
        let sqlite = matches!(self.backend, Backend::Sqlite { .. });
        let edge: Option<i64> = on_read!(self, |pool| {
            let mut qb = sqlx::QueryBuilder::new("SELECT idx FROM ledger_entries");
            push_range(&mut qb, Some(&d), sqlite, lo, hi);
            push_order(&mut qb, Some(&d), sqlite, newest_first);
            qb.push(" LIMIT 1 OFFSET ").push_bind(budget - 1);
            qb.build()
                .fetch_optional(pool)
                .await?
                .map(|r| r.try_get("idx"))
                .transpose()?
        });
        Ok(match edge {
            Some(edge) if newest_first => AuditWindow {
                lo: edge,
                hi,
                cut_at: Some(edge),
            },
            Some(edge) => AuditWindow {
                lo,
                hi: edge + 1,
                cut_at: Some(edge),
            },
            None => whole,
        })
    }

    /// Up to `limit` entries of `lo..hi` matching `f`, as `(index, canonical)`, newest first or
    /// oldest first. The caller keeps `lo..hi` inside an `audit_window`.
    pub async fn audit_candidates(
        &self,
        f: &AuditFilters,
        lo: i64,
        hi: i64,
        newest_first: bool,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sqlite = matches!(self.backend, Backend::Sqlite { .. });
        let d = driving(f);
        on_read!(self, |pool| {
            let mut qb = sqlx::QueryBuilder::new("SELECT idx, canonical FROM ledger_entries");
            push_range(&mut qb, d.as_ref(), sqlite, lo, hi);
            // Indexed columns that do not drive the scan, as expressions no index serves.
            let columns = [
                ("request_id", f.request_id.as_deref()),
                ("actor", f.actor.as_deref()),
                ("department", f.department.as_deref()),
                ("stream", f.stream),
            ];
            for (column, value) in columns {
                if let Some(value) = value
                    && d.as_ref().is_none_or(|d| d.column != column)
                {
                    qb.push(format!(" AND {column} || '' = "))
                        .push_bind(value.to_owned());
                }
            }
            let plain = [
                ("action", f.action.as_deref()),
                ("decision", f.decision),
                ("purpose", f.purpose.as_deref()),
                ("case_id", f.case_id.as_deref()),
                ("category", f.category.as_deref()),
            ];
            for (column, value) in plain {
                if let Some(value) = value {
                    qb.push(format!(" AND {column} = "))
                        .push_bind(value.to_owned());
                }
            }
            if let Some(since) = f.since_ms {
                qb.push(" AND time_ms + 0 >= ").push_bind(since);
            }
            if let Some(until) = f.until_ms {
                qb.push(" AND time_ms + 0 < ").push_bind(until);
            }
            for text in &f.texts {
                qb.push(if sqlite {
                    " AND instr(canonical, "
                } else {
                    " AND strpos(canonical, "
                })
                .push_bind(text.clone())
                .push(") > 0");
            }
            push_order(&mut qb, d.as_ref(), sqlite, newest_first);
            qb.push(" LIMIT ").push_bind(limit);
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("idx")?, r.try_get("canonical")?)))
                .collect()
        })
    }
}

/// `WHERE` the entries of `lo..hi` (of the driving index, if one): on SQLite through the named
/// index (`INDEXED BY`; an index on a column ends in the rowid, `idx`); on PostgreSQL as a range
/// of the driving index's key, `(col, idx)`, which neither the primary key nor any other index
/// can serve. (With `col = v AND idx >= lo AND idx < hi`, a generic plan may walk the primary
/// key and filter, reading every entry of the window's span; with `col = v` beside the row
/// range, the backward scan starts at the end of `v`'s entries instead of at `hi`.)
fn push_range<DB: sqlx::Database>(
    qb: &mut sqlx::QueryBuilder<DB>,
    d: Option<&Driving<'_>>,
    sqlite: bool,
    lo: i64,
    hi: i64,
) where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    match d {
        Some(d) if sqlite => {
            qb.push(format!(
                " INDEXED BY {} WHERE {} = ",
                d.sqlite_index, d.column
            ))
            .push_bind(d.value.to_owned())
            .push(" AND idx >= ")
            .push_bind(lo)
            .push(" AND idx < ")
            .push_bind(hi);
        }
        Some(d) => {
            // `IS NOT NULL`: what the partial department index covers, said outright.
            qb.push(format!(
                " WHERE {0} IS NOT NULL AND ({0}, idx) >= (",
                d.column
            ))
            .push_bind(d.value.to_owned())
            .push(", ")
            .push_bind(lo)
            .push(format!(") AND ({}, idx) < (", d.column))
            .push_bind(d.value.to_owned())
            .push(", ")
            .push_bind(hi)
            .push(")");
        }
        None => {
            qb.push(" WHERE idx >= ")
                .push_bind(lo)
                .push(" AND idx < ")
                .push_bind(hi);
        }
    }
}

/// `ORDER BY` index, in the driving index's own order (on PostgreSQL `(col, idx)`: the same
/// order, as `col` is one value in the range, and one the index gives without a sort).
fn push_order<DB: sqlx::Database>(
    qb: &mut sqlx::QueryBuilder<DB>,
    d: Option<&Driving<'_>>,
    sqlite: bool,
    newest_first: bool,
) {
    let direction = if newest_first { " DESC" } else { "" };
    match d {
        Some(d) if !sqlite => {
            qb.push(format!(
                " ORDER BY {0}{direction}, idx{direction}",
                d.column
            ));
        }
        _ => {
            qb.push(format!(" ORDER BY idx{direction}"));
        }
    }
}
