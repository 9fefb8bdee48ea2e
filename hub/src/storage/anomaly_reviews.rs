//! Anomaly reviews (`anomaly_reviews`, migration 0020): the acknowledge and resolve steps a DPO
//! took on a computed anomaly, one row per step. Rows are inserted, never updated or deleted;
//! at most one row per (anomaly, state), so a step taken twice is reported, not written.
//! Nothing here decides which step may follow which (`oversight::anomaly_reviews`).

use sqlx::Row;

use super::{Store, on_read, on_write};

/// One review step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyReviewRow {
    pub anomaly_id: String,
    /// `acknowledged` or `resolved`.
    pub state: String,
    pub kind: String,
    pub actor_key: String,
    pub first_entry: i64,
    /// `user:<id>` (or `client:<id>`) of who took the step.
    pub by: String,
    pub at_ms: i64,
    pub note: Option<String>,
    /// The ledger entry that recorded the step.
    pub ledger_index: i64,
}

impl Store {
    /// Store a step; `false` (nothing written) if the anomaly already has a step of that state.
    pub async fn insert_anomaly_review(&self, r: &AnomalyReviewRow) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO anomaly_reviews (anomaly_id, state, kind, actor_key, first_entry, \
                 by_subject, at_ms, note, ledger_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (anomaly_id, state) DO NOTHING",
            )
            .bind(r.anomaly_id.clone())
            .bind(r.state.clone())
            .bind(r.kind.clone())
            .bind(r.actor_key.clone())
            .bind(r.first_entry)
            .bind(r.by.clone())
            .bind(r.at_ms)
            .bind(r.note.clone())
            .bind(r.ledger_index)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The steps of the anomalies `ids`, oldest first (by the index of their ledger entry).
    pub async fn anomaly_reviews(
        &self,
        ids: &[String],
    ) -> Result<Vec<AnomalyReviewRow>, sqlx::Error> {
        let mut out = Vec::new();
        // Bounded statements: an anomaly report holds a few hundred anomalies at most.
        for chunk in ids.chunks(200) {
            let rows = on_read!(self, |pool| {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT anomaly_id, state, kind, actor_key, first_entry, by_subject, at_ms, \
                     note, ledger_index FROM anomaly_reviews WHERE anomaly_id IN (",
                );
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                qb.push(") ORDER BY ledger_index");
                qb.build()
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(AnomalyReviewRow {
                            anomaly_id: r.try_get("anomaly_id")?,
                            state: r.try_get("state")?,
                            kind: r.try_get("kind")?,
                            actor_key: r.try_get("actor_key")?,
                            first_entry: r.try_get("first_entry")?,
                            by: r.try_get("by_subject")?,
                            at_ms: r.try_get("at_ms")?,
                            note: r.try_get("note")?,
                            ledger_index: r.try_get("ledger_index")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            out.extend(rows);
        }
        out.sort_by_key(|r| r.ledger_index);
        Ok(out)
    }
}
