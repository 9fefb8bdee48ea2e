//! Reads behind the console's charts and `GET /v1/audit/activity` (`oversight::activity`):
//! disclosures and denials over an index window of the ledger, and the current case load per
//! department. Read-only. Invariant: every ledger read here is confined to an index range
//! `lo..hi` that the caller has bounded (the primary key serves it; the disclosure read also
//! narrows by the `stream` index of migration 0017), so its cost does not grow with the ledger.

use sqlx::Row;

use super::{Store, on_read};

/// A disclosure entry in a window: its index, time and canonical text.
pub struct DisclosureRow {
    pub index: i64,
    pub time_ms: i64,
    pub canonical: String,
}

/// One department's case load now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseLoad {
    pub department: String,
    /// Open cases with a current assignment to the department.
    pub open: i64,
    /// Of those, the ones whose assignment deadline has passed without a reply.
    pub overdue: i64,
}

/// Milliseconds of China Standard Time ahead of UTC, and of a day: the SQL day number of a
/// time is `(time_ms + CST) / DAY` (both backends divide integers as integers).
const CST_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

impl Store {
    /// Allowed pulls and lookups (`data.read`, `data.lookup`) with index in `lo..hi`, oldest
    /// first.
    pub async fn disclosures_between(
        &self,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<DisclosureRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT idx, time_ms, canonical FROM ledger_entries \
                 WHERE stream = 'disclosure' AND idx >= $1 AND idx < $2 AND decision = 'allow' \
                 AND action IN ('data.read', 'data.lookup') ORDER BY idx",
            )
            .bind(lo)
            .bind(hi)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(DisclosureRow {
                    index: r.try_get("idx")?,
                    time_ms: r.try_get("time_ms")?,
                    canonical: r.try_get("canonical")?,
                })
            })
            .collect()
        })
    }

    /// Entries with decision `deny` and index in `lo..hi`, per China Standard Time day (days
    /// since the epoch), as (day, entries).
    pub async fn denials_by_day(&self, lo: i64, hi: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT (time_ms + $3) / $4 AS day, COUNT(*) AS n FROM ledger_entries \
                 WHERE idx >= $1 AND idx < $2 AND decision = 'deny' \
                 GROUP BY 1 ORDER BY 1",
            )
            .bind(lo)
            .bind(hi)
            .bind(CST_MS)
            .bind(DAY_MS)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect()
        })
    }

    /// Open cases per assigned department, with how many are past their assignment's deadline
    /// without a reply at `now_ms`; departments without open cases are absent.
    pub async fn case_load(&self, now_ms: i64) -> Result<Vec<CaseLoad>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT a.department AS department, COUNT(*) AS open, \
                 SUM(CASE WHEN a.replied_at IS NULL AND a.deadline < $2 THEN 1 ELSE 0 END) \
                 AS overdue \
                 FROM case_assignments a JOIN cases c ON c.id = a.case_id AND c.status <> 'closed' \
                 WHERE a.current = $1 GROUP BY a.department ORDER BY a.department",
            )
            .bind(true)
            .bind(now_ms)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CaseLoad {
                    department: r.try_get("department")?,
                    open: r.try_get("open")?,
                    overdue: r.try_get("overdue")?,
                })
            })
            .collect()
        })
    }
}
