//! Witness keys of department clients and the cosignatures they handed in (`witness_keys`,
//! `witness_cosignatures`, migration 0022). A key row is never deleted: replacing or removing a
//! client's key stamps `removed_ms` on the current row. A cosignature row is inserted once per
//! (checkpoint size, key) and never updated. Nothing here checks a signature
//! (`identity::witnesses` does, before anything is stored).

use sqlx::Row;

use super::{Store, StoredCheckpoint, WriteTx, on_read, on_write};

/// A client's current witness key, with the client's department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKeyRow {
    pub client: String,
    pub department: String,
    pub key_name: String,
    pub public_key: Vec<u8>,
    /// Invariant: the canonical cosignature/v1 vkey of `key_name` and `public_key`.
    pub vkey: String,
    pub registered_ms: i64,
}

/// One collected cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureRow {
    pub size: i64,
    pub key_name: String,
    pub key_hash: Vec<u8>,
    /// The cosignature's own timestamp (POSIX seconds).
    pub timestamp: i64,
    /// The signature line, without newline.
    pub line: String,
    pub client: String,
    pub received_ms: i64,
}

/// The current keys with their clients' departments (a literal: sqlx takes only those).
macro_rules! key_columns {
    () => {
        "SELECT w.client_id, c.department_id, w.key_name, w.public_key, \
     w.vkey, w.registered_ms FROM witness_keys w JOIN clients c ON c.id = w.client_id \
     WHERE w.removed_ms IS NULL"
    };
}

fn key_row<R: Row>(r: &R) -> Result<WitnessKeyRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(WitnessKeyRow {
        client: r.try_get("client_id")?,
        department: r.try_get("department_id")?,
        key_name: r.try_get("key_name")?,
        public_key: r.try_get("public_key")?,
        vkey: r.try_get("vkey")?,
        registered_ms: r.try_get("registered_ms")?,
    })
}

fn cosignature_row<R: Row>(r: &R) -> Result<CosignatureRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(CosignatureRow {
        size: r.try_get("size")?,
        key_name: r.try_get("key_name")?,
        key_hash: r.try_get("key_hash")?,
        timestamp: r.try_get("timestamp")?,
        line: r.try_get("line")?,
        client: r.try_get("client_id")?,
        received_ms: r.try_get("received_ms")?,
    })
}

macro_rules! cosignature_columns {
    () => {
        "SELECT size, key_name, key_hash, timestamp, line, client_id, received_ms \
         FROM witness_cosignatures"
    };
}

impl Store {
    /// Make `key` the client's current witness key (a current one is marked removed at
    /// `key.registered_ms`); `false` if the client does not exist.
    pub async fn set_witness_key(&self, key: &WitnessKeyRow) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let found = sqlx::query("SELECT 1 AS one FROM clients WHERE id = $1")
                .bind(key.client.clone())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !found {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "UPDATE witness_keys SET removed_ms = $2 WHERE client_id = $1 \
                 AND removed_ms IS NULL",
            )
            .bind(key.client.clone())
            .bind(key.registered_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO witness_keys (client_id, key_name, public_key, vkey, \
                 registered_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key.client.clone())
            .bind(key.key_name.clone())
            .bind(key.public_key.clone())
            .bind(key.vkey.clone())
            .bind(key.registered_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Mark the client's current witness key removed; `false` if it had none.
    pub async fn remove_witness_key(&self, client: &str, at_ms: i64) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "UPDATE witness_keys SET removed_ms = $2 WHERE client_id = $1 \
                 AND removed_ms IS NULL",
            )
            .bind(client.to_owned())
            .bind(at_ms)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The client's current witness key.
    pub async fn witness_key(&self, client: &str) -> Result<Option<WitnessKeyRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(key_columns!(), " AND w.client_id = $1"))
                .bind(client.to_owned())
                .fetch_optional(pool)
                .await?
                .map(|r| key_row(&r))
                .transpose()
        })
    }

    /// Every current witness key of a client that is not revoked, by client id.
    pub async fn witness_keys(&self) -> Result<Vec<WitnessKeyRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                key_columns!(),
                " AND c.status = 'active' ORDER BY w.client_id"
            ))
            .fetch_all(pool)
            .await?
            .iter()
            .map(key_row)
            .collect()
        })
    }

    /// Store a cosignature unless one of its (size, key) exists; returns the stored row (the
    /// one given, or the one kept before) and whether it was new.
    pub async fn insert_cosignature(
        &self,
        c: &CosignatureRow,
    ) -> Result<(CosignatureRow, bool), sqlx::Error> {
        let created = on_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO witness_cosignatures (size, key_name, key_hash, timestamp, line, \
                 client_id, received_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (size, key_name, key_hash) DO NOTHING",
            )
            .bind(c.size)
            .bind(c.key_name.clone())
            .bind(c.key_hash.clone())
            .bind(c.timestamp)
            .bind(c.line.clone())
            .bind(c.client.clone())
            .bind(c.received_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1)
        })?;
        if created {
            return Ok((c.clone(), true));
        }
        // Read back on the write pool: the row just committed there.
        let kept = on_write!(self, |pool| {
            sqlx::query(concat!(
                cosignature_columns!(),
                " WHERE size = $1 AND key_name = $2 AND key_hash = $3"
            ))
            .bind(c.size)
            .bind(c.key_name.clone())
            .bind(c.key_hash.clone())
            .fetch_one(pool)
            .await
            .and_then(|r| cosignature_row(&r))
        })?;
        Ok((kept, false))
    }

    /// The cosignatures collected for the checkpoint of `size`, in the order they came.
    pub async fn cosignatures(&self, size: i64) -> Result<Vec<CosignatureRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                cosignature_columns!(),
                " WHERE size = $1 ORDER BY received_ms, key_name, key_hash"
            ))
            .bind(size)
            .fetch_all(pool)
            .await?
            .iter()
            .map(cosignature_row)
            .collect()
        })
    }

    /// The stored checkpoint of exactly `size` entries.
    pub async fn checkpoint_of_size(
        &self,
        size: i64,
    ) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT size, root, note, time_ms FROM ledger_checkpoints WHERE size = $1")
                .bind(size)
                .fetch_optional(pool)
                .await?
                .map(|r| {
                    Ok(StoredCheckpoint {
                        size: r.try_get("size")?,
                        root: r.try_get("root")?,
                        note: r.try_get("note")?,
                        time_ms: r.try_get("time_ms")?,
                    })
                })
                .transpose()
        })
    }

    /// The largest stored checkpoint with at least `min` collected cosignatures.
    pub async fn newest_cosigned_checkpoint(
        &self,
        min: i64,
    ) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT c.size, c.root, c.note, c.time_ms FROM ledger_checkpoints c \
                 WHERE (SELECT COUNT(*) FROM witness_cosignatures w WHERE w.size = c.size) >= $1 \
                 ORDER BY c.size DESC LIMIT 1",
            )
            .bind(min)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok(StoredCheckpoint {
                    size: r.try_get("size")?,
                    root: r.try_get("root")?,
                    note: r.try_get("note")?,
                    time_ms: r.try_get("time_ms")?,
                })
            })
            .transpose()
        })
    }
}
