//! Idempotency keys of disclosures: (client, key) → the request's fingerprint and the ledger
//! entry that recorded it. Claimed before the disclosure (so two concurrent retries cannot both
//! disclose), completed with the ledger index after it, released if it failed.

use sqlx::Row;

use super::{Store, on_write};

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

impl Store {
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
            let mut tx = pool.begin().await?;
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
