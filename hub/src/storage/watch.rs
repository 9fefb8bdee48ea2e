//! Read-only counts for the ledger-and-keys page and the grant watchlist: data keys per KEK
//! version, the last day each grant was used, and which departments hold open or closed case
//! assignments; the signed checkpoints one range of a verification can meet. Nothing here
//! writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::Row;

use super::{Store, on_read};

/// Data keys wrapped under one KEK version of one key category, as stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DekCount {
    pub category: String,
    pub kek_version: u32,
    /// Live (not erased) records whose DEK this version wraps.
    pub deks: i64,
}

fn version(v: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(v).map_err(|_| sqlx::Error::Decode("a KEK version is out of range".into()))
}

impl Store {
    /// Wrapped DEKs per (record category, KEK version): one per live record (an erased record
    /// has none left). Case texts have their DEKs under `case_category`, one per case.
    pub async fn dek_counts(&self, case_category: &str) -> Result<Vec<DekCount>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut out = Vec::new();
            for r in sqlx::query(
                "SELECT category, kek_version, COUNT(*) AS n FROM records \
                 WHERE wrapped_dek IS NOT NULL GROUP BY category, kek_version",
            )
            .fetch_all(pool)
            .await?
            {
                out.push(DekCount {
                    category: r.try_get("category")?,
                    kek_version: version(r.try_get("kek_version")?)?,
                    deks: r.try_get("n")?,
                });
            }
            for r in
                sqlx::query("SELECT kek_version, COUNT(*) AS n FROM cases GROUP BY kek_version")
                    .fetch_all(pool)
                    .await?
            {
                out.push(DekCount {
                    category: case_category.to_owned(),
                    kek_version: version(r.try_get("kek_version")?)?,
                    deks: r.try_get("n")?,
                });
            }
            Ok(out)
        })
    }

    /// Every (category, KEK version) → DEK wraps performed so far (the rotation counter).
    pub async fn kek_wrap_counts(&self) -> Result<HashMap<(String, u32), i64>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut out = HashMap::new();
            for r in sqlx::query("SELECT category, kek_version, wraps FROM kek_usage")
                .fetch_all(pool)
                .await?
            {
                out.insert(
                    (r.try_get("category")?, version(r.try_get("kek_version")?)?),
                    r.try_get("wraps")?,
                );
            }
            Ok(out)
        })
    }

    /// The last China Standard Time day (`YYYY-MM-DD`) on which anything was disclosed or
    /// counted under each grant that has ever been used, from the use the ledger writer counts
    /// in the same transaction as each disclosure's entry (`grant_usage`; a statistics
    /// grant's ε budget is kept there under `<day>/epsilon`).
    pub async fn grant_last_use_days(&self) -> Result<HashMap<String, String>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut out: HashMap<String, String> = HashMap::new();
            for r in sqlx::query(
                "SELECT grant_id, MAX(day) AS day FROM grant_usage WHERE records > 0 \
                 GROUP BY grant_id",
            )
            .fetch_all(pool)
            .await?
            {
                let day: String = r.try_get("day")?;
                // `<day>/epsilon` sorts after `<day>`; the day is its first 10 characters.
                let day = day.get(..10).unwrap_or(&day).to_owned();
                out.insert(r.try_get("grant_id")?, day);
            }
            Ok(out)
        })
    }

    /// Departments with a current assignment on an open case, and per department the number
    /// of closed cases it was ever assigned.
    pub async fn case_assignment_summary(
        &self,
    ) -> Result<(BTreeSet<String>, BTreeMap<String, i64>), sqlx::Error> {
        on_read!(self, |pool| {
            let mut open = BTreeSet::new();
            for r in sqlx::query(
                "SELECT DISTINCT a.department FROM case_assignments a \
                 JOIN cases c ON c.id = a.case_id AND c.status <> 'closed' WHERE a.current = $1",
            )
            .bind(true)
            .fetch_all(pool)
            .await?
            {
                open.insert(r.try_get("department")?);
            }
            let mut closed = BTreeMap::new();
            for r in sqlx::query(
                "SELECT a.department, COUNT(DISTINCT a.case_id) AS n FROM case_assignments a \
                 JOIN cases c ON c.id = a.case_id AND c.status = 'closed' GROUP BY a.department",
            )
            .fetch_all(pool)
            .await?
            {
                closed.insert(r.try_get("department")?, r.try_get("n")?);
            }
            Ok((open, closed))
        })
    }

    /// The open cases `record` is linked to.
    pub async fn open_cases_of_record(&self, record: &str) -> Result<Vec<String>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT s.case_id FROM case_subjects s \
                 JOIN cases c ON c.id = s.case_id AND c.status <> 'closed' \
                 WHERE s.record_id = $1 ORDER BY s.case_id",
            )
            .bind(record.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get("case_id"))
            .collect()
        })
    }

    /// The signed checkpoint notes of sizes `from..=last` (from `from` on without `last`),
    /// smallest first: what one range of a verification can meet, without reading every
    /// checkpoint a long-lived ledger has signed.
    pub async fn checkpoint_notes_between(
        &self,
        from: i64,
        last: Option<i64>,
    ) -> Result<Vec<String>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT note FROM ledger_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size",
            )
            .bind(from)
            .bind(last.unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get("note"))
            .collect()
        })
    }
}
