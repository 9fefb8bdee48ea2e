//! Idempotency keys. Disclosures: (client, key) → the request's fingerprint and the ledger
//! entry that recorded it. Claimed before the disclosure (so two concurrent retries cannot both
//! disclose), completed with the ledger index after it, released if it failed.
//!
//! Record writes (`record_write_keys`): (principal, key) → fingerprint, then the answer (ledger
//! index and record ids). Invariant: a key's answer is set only in the transaction that inserts
//! its records (`Store::insert_records_once`) and only by the attempt holding the claim, so a
//! key never has two sets of records, and after a crash the records exist if and only if the
//! answer does. A claim whose request died is taken over by the next retry (`claim_write_key`).

use std::sync::LazyLock;

use sqlx::Row;

use super::{Store, WriteTx, on_write};

/// What a claim found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier use expired): go ahead, then `complete` or `release`.
    New,
    /// Used before for this very request, recorded as ledger entry `index`.
    Replay { index: i64 },
    /// Used before for this request, which has not finished yet.
    InProgress,
    /// Used before for a different request.
    Mismatch,
}

/// This process's boot id: a claim made under another one belongs to a request whose process
/// ended (killed, crashed or restarted), so it will never complete.
static BOOT_ID: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().to_string());

/// Expired record-write keys forgotten per claim at most (a claim stays short; a backlog is
/// cleared over the next claims).
const PURGE_BATCH: i64 = 64;

impl Store {
    /// How long an idempotency key (of a pull or of a record write) is remembered.
    pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3_600_000;

    /// Claim `key` of `client` for a request with `fingerprint`; uses older than `expired_before`
    /// (Unix ms) are forgotten first.
    pub async fn claim_idempotency(
        &self,
        client: &str,
        key: &str,
        fingerprint: &[u8],
        now: i64,
        expired_before: i64,
    ) -> Result<Claim, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE client_id = $1 AND idem_key = $2 \
                 AND created_at < $3",
            )
            .bind(client.to_owned())
            .bind(key.to_owned())
            .bind(expired_before)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (client_id, idem_key, fingerprint, ledger_index, \
                 created_at) VALUES ($1, $2, $3, NULL, $4) \
                 ON CONFLICT (client_id, idem_key) DO NOTHING",
            )
            .bind(client.to_owned())
            .bind(key.to_owned())
            .bind(fingerprint.to_vec())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let claim = if inserted == 1 {
                Claim::New
            } else {
                let row = sqlx::query(
                    "SELECT fingerprint, ledger_index FROM idempotency_keys \
                     WHERE client_id = $1 AND idem_key = $2",
                )
                .bind(client.to_owned())
                .bind(key.to_owned())
                .fetch_one(&mut *tx)
                .await?;
                let stored: Vec<u8> = row.try_get("fingerprint")?;
                let index: Option<i64> = row.try_get("ledger_index")?;
                match index {
                    _ if stored != fingerprint => Claim::Mismatch,
                    Some(index) => Claim::Replay { index },
                    None => Claim::InProgress,
                }
            };
            tx.commit().await?;
            Ok(claim)
        })
    }

    /// The disclosure under `key` was recorded as ledger entry `index`.
    pub async fn complete_idempotency(
        &self,
        client: &str,
        key: &str,
        index: i64,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query(
                "UPDATE idempotency_keys SET ledger_index = $3 WHERE client_id = $1 AND idem_key = $2",
            )
            .bind(client.to_owned())
            .bind(key.to_owned())
            .bind(index)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// The disclosure under `key` did not happen: the key may be used again.
    pub async fn release_idempotency(&self, client: &str, key: &str) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE client_id = $1 AND idem_key = $2 \
                 AND ledger_index IS NULL",
            )
            .bind(client.to_owned())
            .bind(key.to_owned())
            .execute(pool)
            .await
            .map(|_| ())
        })
    }
}

impl Store {
    /// Claim `key` of `principal` for a record write with `fingerprint`, as attempt `attempt`
    /// (a fresh random id). Keys older than `IDEMPOTENCY_TTL_MS` are forgotten first.
    ///
    /// A pending claim (no answer yet) with the same fingerprint is `InProgress`, unless its
    /// request cannot be running any more; then this attempt takes it over (`New`):
    /// - it was made under another boot id: its process was killed or restarted, and the
    ///   request died with it (SIGKILL between claim and insert must not block the key);
    /// - it was made before `lease_before`: the caller passes now minus the whole-request
    ///   timeout (plus a margin), after which the request was cancelled, and its release
    ///   (`release_write_key`, best effort) did not happen.
    ///
    /// Taking over is always safe, even if the old attempt were still running (another replica
    /// with its own boot id): the answer is written only by the attempt holding the claim, in
    /// its insert's transaction, so the loser's insert rolls back and no key gets two sets of
    /// records. The rules above only decide when a retry may stop waiting.
    pub async fn claim_write_key(
        &self,
        principal: &str,
        key: &str,
        fingerprint: &[u8],
        attempt: &str,
        now: i64,
        lease_before: i64,
    ) -> Result<Claim, sqlx::Error> {
        let expired_before = now - Store::IDEMPOTENCY_TTL_MS;
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(
                "DELETE FROM record_write_keys WHERE principal = $1 AND idem_key = $2 \
                 AND created_at < $3",
            )
            .bind(principal.to_owned())
            .bind(key.to_owned())
            .bind(expired_before)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM record_write_keys WHERE (principal, idem_key) IN \
                 (SELECT principal, idem_key FROM record_write_keys WHERE created_at < $1 \
                 LIMIT $2)",
            )
            .bind(expired_before)
            .bind(PURGE_BATCH)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO record_write_keys (principal, idem_key, fingerprint, attempt, \
                 boot_id, claimed_at, ledger_index, record_ids, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $6) \
                 ON CONFLICT (principal, idem_key) DO NOTHING",
            )
            .bind(principal.to_owned())
            .bind(key.to_owned())
            .bind(fingerprint.to_vec())
            .bind(attempt.to_owned())
            .bind(BOOT_ID.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let claim = if inserted == 1 {
                Claim::New
            } else {
                let row = sqlx::query(
                    "SELECT fingerprint, ledger_index, attempt, boot_id, claimed_at \
                     FROM record_write_keys WHERE principal = $1 AND idem_key = $2",
                )
                .bind(principal.to_owned())
                .bind(key.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
                match row {
                    // Released between our insert and this read (PostgreSQL): ask again.
                    None => Claim::InProgress,
                    Some(row) => {
                        let stored: Vec<u8> = row.try_get("fingerprint")?;
                        let index: Option<i64> = row.try_get("ledger_index")?;
                        let holder: String = row.try_get("attempt")?;
                        let boot: String = row.try_get("boot_id")?;
                        let claimed_at: i64 = row.try_get("claimed_at")?;
                        match index {
                            _ if stored != fingerprint => Claim::Mismatch,
                            Some(index) => Claim::Replay { index },
                            None if boot != *BOOT_ID || claimed_at < lease_before => {
                                // Conditional on the holder we read: of two retries taking
                                // over at once, one wins and the other waits.
                                let taken = sqlx::query(
                                    "UPDATE record_write_keys SET attempt = $3, boot_id = $4, \
                                     claimed_at = $5, created_at = $5 WHERE principal = $1 \
                                     AND idem_key = $2 AND attempt = $6 AND ledger_index IS NULL",
                                )
                                .bind(principal.to_owned())
                                .bind(key.to_owned())
                                .bind(attempt.to_owned())
                                .bind(BOOT_ID.as_str())
                                .bind(now)
                                .bind(holder)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                                if taken == 1 {
                                    tracing::info!(
                                        "a record write's idempotency key was taken over from \
                                         a request that died"
                                    );
                                    Claim::New
                                } else {
                                    Claim::InProgress
                                }
                            }
                            None => Claim::InProgress,
                        }
                    }
                }
            };
            tx.commit().await?;
            Ok(claim)
        })
    }

    /// The record ids of the answer stored under `key` of `principal`, in request order; `None`
    /// if the key has no answer.
    pub async fn write_key_records(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<Vec<String>>, sqlx::Error> {
        let ids: Option<Option<String>> = on_write!(self, |pool| {
            // The write pool on SQLite: the answer was just seen by a claim on it.
            sqlx::query_scalar(
                "SELECT record_ids FROM record_write_keys WHERE principal = $1 AND idem_key = $2",
            )
            .bind(principal.to_owned())
            .bind(key.to_owned())
            .fetch_optional(pool)
            .await
        })?;
        ids.flatten()
            .map(|text| serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()
    }

    /// Attempt `attempt` on `key` of `principal` wrote nothing: the key may be used again. Does
    /// nothing once the key has an answer or another attempt took it over.
    pub async fn release_write_key(
        &self,
        principal: &str,
        key: &str,
        attempt: &str,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query(
                "DELETE FROM record_write_keys WHERE principal = $1 AND idem_key = $2 \
                 AND attempt = $3 AND ledger_index IS NULL",
            )
            .bind(principal.to_owned())
            .bind(key.to_owned())
            .bind(attempt.to_owned())
            .execute(pool)
            .await
            .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::{Backend, NewRecord};
    use crate::vault::WrappedDek;

    const WHO: &str = "user:w";
    const KEY: &str = "k";
    const PRINT: &[u8] = b"fingerprint";

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("t.db")))
            .await
            .unwrap();
        store
            .sql(
                "INSERT INTO grids (code, name, kind, created_at) VALUES ('g', 'G', 'physical', 0)",
            )
            .await;
        (dir, store)
    }

    impl Store {
        async fn sql(&self, statement: &'static str) {
            let Backend::Sqlite { write, .. } = &self.backend else {
                unreachable!()
            };
            sqlx::query(statement).execute(write).await.unwrap();
        }

        async fn records(&self) -> i64 {
            let Backend::Sqlite { write, .. } = &self.backend else {
                unreachable!()
            };
            sqlx::query_scalar("SELECT COUNT(*) FROM records")
                .fetch_one(write)
                .await
                .unwrap()
        }

        async fn claim(&self, attempt: &str, now: i64, lease_before: i64) -> Claim {
            self.claim_write_key(WHO, KEY, PRINT, attempt, now, lease_before)
                .await
                .unwrap()
        }

        async fn insert_as(&self, attempt: &str, id: &str, index: i64) -> bool {
            let record = NewRecord {
                id: id.to_owned(),
                category: "person".to_owned(),
                grid: "g".to_owned(),
                purpose: "population-registration".to_owned(),
                legal_basis: None,
                retention_until: None,
                collector: "w".to_owned(),
                plain_fields: "{}".to_owned(),
                wrapped: WrappedDek {
                    kek_version: 1,
                    bytes: vec![1],
                },
                sealed: Vec::new(),
                index: Vec::new(),
            };
            self.insert_records_once(&[record], 0, WHO, KEY, attempt, index)
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn only_the_attempt_holding_the_claim_stores_records_and_the_answer() {
        let (_dir, store) = store().await;
        assert_eq!(store.claim("a", 1_000, 0).await, Claim::New);
        assert_eq!(store.claim("b", 1_001, 0).await, Claim::InProgress);
        let other = store
            .claim_write_key(WHO, KEY, b"another request", "x", 1_001, 0)
            .await
            .unwrap();
        assert_eq!(other, Claim::Mismatch);
        // The process of `a` was killed: its claim carries another boot id, and `b` takes over.
        store
            .sql("UPDATE record_write_keys SET boot_id = 'a-killed-process'")
            .await;
        assert_eq!(store.claim("b", 1_002, 0).await, Claim::New);
        // Were `a` still running after all, its insert would store nothing.
        assert!(!store.insert_as("a", "r-a", 7).await);
        assert_eq!(store.records().await, 0);
        assert!(store.insert_as("b", "r-b", 8).await);
        assert_eq!(store.records().await, 1);
        // The answer commits with the records; releases do not touch it, retries replay it.
        store.release_write_key(WHO, KEY, "a").await.unwrap();
        store.release_write_key(WHO, KEY, "b").await.unwrap();
        assert_eq!(
            store.claim("c", 1_003, 2_000).await,
            Claim::Replay { index: 8 }
        );
        assert_eq!(
            store.write_key_records(WHO, KEY).await.unwrap(),
            Some(vec!["r-b".to_owned()])
        );
        assert!(!store.insert_as("c", "r-c", 9).await, "one answer per key");
        assert_eq!(store.records().await, 1);
        // Remembered for the TTL from the claim that was answered (`b` at 1 002), then forgotten.
        assert_eq!(
            store.claim("d", 1_002 + Store::IDEMPOTENCY_TTL_MS, 0).await,
            Claim::Replay { index: 8 }
        );
        let later = 1_002 + Store::IDEMPOTENCY_TTL_MS + 1;
        assert_eq!(store.claim("d", later, 0).await, Claim::New);
        assert_eq!(store.write_key_records(WHO, KEY).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_claim_older_than_its_lease_is_taken_over_and_a_released_one_is_free() {
        let (_dir, store) = store().await;
        assert_eq!(store.claim("a", 1_000, 0).await, Claim::New);
        assert_eq!(store.claim("b", 2_000, 1_000).await, Claim::InProgress);
        assert_eq!(store.claim("b", 2_000, 1_001).await, Claim::New);
        // `a` no longer holds the claim: its release leaves `b`'s alone.
        store.release_write_key(WHO, KEY, "a").await.unwrap();
        assert_eq!(store.claim("c", 2_001, 0).await, Claim::InProgress);
        store.release_write_key(WHO, KEY, "b").await.unwrap();
        assert_eq!(store.claim("c", 2_002, 0).await, Claim::New);
    }
}
