//! Retention rows: the records whose retention date has passed, their crypto-shredding in
//! batches, and the lease that lets one process at a time run the sweep (`crate::retention`).

use sqlx::Row;

use super::{Store, WriteTx, on_read, on_write};

/// A record due for erasure: its retention date has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRecord {
    pub id: String,
    pub category: String,
    pub retention_until: i64,
}

impl Store {
    /// Live records whose retention date is at or before `now`, oldest date first, at most
    /// `limit`.
    pub async fn records_due(&self, now: i64, limit: i64) -> Result<Vec<DueRecord>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT id, category, retention_until FROM records \
                 WHERE retention_until IS NOT NULL AND retention_until <= $1 \
                 AND erased_at IS NULL ORDER BY retention_until, id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(DueRecord {
                    id: r.try_get("id")?,
                    category: r.try_get("category")?,
                    retention_until: r.try_get("retention_until")?,
                })
            })
            .collect()
        })
    }

    /// Crypto-shred those of `ids` that are still live and due at `now` (their data keys,
    /// sealed fields, plain fields and blind-index entries go), in one transaction; returns the
    /// ids erased. A record given a later retention date meanwhile is left alone.
    pub async fn expire_records(
        &self,
        ids: &[String],
        now: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let mut erased = Vec::with_capacity(ids.len());
            for id in ids {
                let done = sqlx::query(
                    "UPDATE records SET wrapped_dek = NULL, kek_version = NULL, \
                     sealed_fields = NULL, plain_fields = '{}', erased_at = $1, updated_at = $1 \
                     WHERE id = $2 AND erased_at IS NULL AND retention_until <= $1",
                )
                .bind(now)
                .bind(id.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    sqlx::query("DELETE FROM blind_index WHERE record_id = $1")
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                    erased.push(id.clone());
                }
            }
            tx.commit().await?;
            Ok(erased)
        })
    }

    /// Claim job `name` for `holder` until `until`: granted when the lease has run out by `now`
    /// or `holder` already holds it.
    pub async fn claim_job(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "UPDATE job_leases SET holder = $2, until_ms = $3 \
                 WHERE name = $1 AND (until_ms < $4 OR holder = $2)",
            )
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .bind(until)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(done == 1)
        })
    }

    /// Give job `name` up, if `holder` holds it.
    pub async fn release_job(&self, name: &str, holder: &str) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query("UPDATE job_leases SET until_ms = 0 WHERE name = $1 AND holder = $2")
                .bind(name.to_owned())
                .bind(holder.to_owned())
                .execute(pool)
                .await
                .map(|_| ())
        })
    }
}
