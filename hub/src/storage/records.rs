//! Record rows: metadata, the wrapped DEK, sealed fields and blind-index tokens. This module
//! only ever sees ciphertext and HMAC tokens; plaintext exists in `crate::records::sealing` only.
//! Erasure deletes the wrapped DEK, every sealed field and every token in one transaction.

use sqlx::Row;

use super::sealed_fields::{self, FieldRef, Malformed};
use super::{Store, WriteTx, on_read, on_write};
use crate::vault::{SealedField, WrappedDek};

/// Rows per multi-row INSERT; keeps bind counts far below SQLite's and PostgreSQL's limits.
const CHUNK: usize = 400;

/// The row of `write_locks` every upsert transaction on PostgreSQL takes `FOR UPDATE`, so two
/// upserts never both create a record for the same new key (a row lock, not an advisory lock:
/// docs/SCALING.md).
const UPSERT_LOCK: &str = "SELECT name FROM write_locks WHERE name = 'record-keys' FOR UPDATE";

/// Live records of `category` holding one of `tokens` for `field`, as (token, record id), on
/// one connection (a pool's, or inside a write transaction for the upsert's re-check): one
/// array bind on PostgreSQL (`PG_BY_TOKENS`), `IN` lists of `CHUNK` binds on SQLite (which has
/// no array type).
trait RecordsByTokens {
    async fn records_by_tokens(
        &mut self,
        category: &str,
        field: &str,
        tokens: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, String)>, sqlx::Error>;
}

/// PostgreSQL: live records of category $1 holding one of the tokens $3 for field $2, one
/// index probe per token whatever the statistics say. A plain `token = ANY($3)` or a join
/// with `unnest($3)` is planned from the table's statistics, and during a bulk import they
/// lag far behind (a million rows in, none analysed yet): the planner then scans the whole
/// (category, field) range per batch — seconds, then minutes. `OFFSET 0` keeps the lateral
/// subquery from being flattened into such a join.
const PG_BY_TOKENS: &str = "SELECT m.token, m.id FROM unnest($3::bytea[]) AS t(token) \
     CROSS JOIN LATERAL (SELECT b.token AS token, b.record_id AS id FROM blind_index b \
     JOIN records r ON r.id = b.record_id WHERE r.erased_at IS NULL AND b.category = $1 \
     AND b.field = $2 AND b.token = t.token OFFSET 0) m";

fn token_and_id<R: Row>(row: &R) -> Result<(Vec<u8>, String), sqlx::Error>
where
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok((row.try_get("token")?, row.try_get("id")?))
}

impl RecordsByTokens for sqlx::SqliteConnection {
    async fn records_by_tokens(
        &mut self,
        category: &str,
        field: &str,
        tokens: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, String)>, sqlx::Error> {
        let mut found = Vec::new();
        for chunk in tokens.chunks(CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT b.token AS token, b.record_id AS id FROM blind_index b \
                 JOIN records r ON r.id = b.record_id WHERE r.erased_at IS NULL AND b.category = ",
            );
            qb.push_bind(category.to_owned())
                .push(" AND b.field = ")
                .push_bind(field.to_owned())
                .push(" AND b.token IN (");
            let mut list = qb.separated(", ");
            for token in chunk {
                list.push_bind(token.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *self).await? {
                found.push(token_and_id(&row)?);
            }
        }
        Ok(found)
    }
}

impl RecordsByTokens for sqlx::PgConnection {
    async fn records_by_tokens(
        &mut self,
        category: &str,
        field: &str,
        tokens: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, String)>, sqlx::Error> {
        sqlx::query(PG_BY_TOKENS)
            .bind(category.to_owned())
            .bind(field.to_owned())
            .bind(tokens.to_vec())
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(token_and_id)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct BlindEntry {
    pub field: String,
    pub token: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NewRecord {
    pub id: String,
    pub category: String,
    pub grid: String,
    pub purpose: String,
    pub legal_basis: Option<String>,
    /// Unix ms; the retention job erases the record then (`retention`).
    pub retention_until: Option<i64>,
    pub collector: String,
    /// JSON object of the category's non-encrypted fields.
    pub plain_fields: String,
    pub wrapped: WrappedDek,
    pub sealed: Vec<SealedField>,
    pub index: Vec<BlindEntry>,
}

#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub id: String,
    pub category: String,
    pub grid: String,
    pub version: i64,
    pub purpose: String,
    pub legal_basis: Option<String>,
    pub collector: String,
    pub plain_fields: String,
    pub wrapped: WrappedDek,
    pub sealed: Vec<SealedField>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Unix ms, if the record has a retention date.
    pub retention_until: Option<i64>,
}

/// A change to one record, applied only if its version is still `expected_version`.
#[derive(Debug, Clone)]
pub struct RecordUpdate {
    pub id: String,
    pub category: String,
    pub expected_version: i64,
    pub plain_fields: String,
    pub upsert: Vec<SealedField>,
    pub remove: Vec<String>,
    /// Indexed fields whose tokens are replaced wholesale (an empty list clears the field).
    pub reindex: Vec<(String, Vec<Vec<u8>>)>,
}

/// A live record whose whole content an upsert replaces: new grid, purpose, fields, data key
/// and tokens under the same id, applied only if it is still at `expected_version`.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub record: NewRecord,
    pub expected_version: i64,
}

/// The key of an upsert: records created by it must not find their `field` token taken by
/// a live record of `category` when the write commits (a concurrent upsert got there first).
pub struct UpsertKey<'a> {
    pub category: &'a str,
    pub field: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    Written,
    /// A replaced record changed, or a created record's key appeared, since the batch looked;
    /// nothing was written.
    Raced,
}

/// What one write transaction of records does besides inserting.
#[derive(Default)]
struct WriteExtras<'a> {
    answer: Option<KeyAnswer<'a>>,
    replace: &'a [Replacement],
    key: Option<UpsertKey<'a>>,
}

/// The answer of an idempotency key, stored with the records it names.
struct KeyAnswer<'a> {
    principal: &'a str,
    key: &'a str,
    /// Invariant: the answer is stored only while this attempt holds the key's claim.
    attempt: &'a str,
    ledger_index: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated(i64),
    NotFound,
    VersionMismatch,
}

fn version_u32(v: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn encode_sealed(fields: &[SealedField]) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sealed_fields::encode(fields).map_err(|e: Malformed| sqlx::Error::Encode(Box::new(e)))
}

fn decode_sealed(bytes: Option<&[u8]>) -> Result<Vec<SealedField>, sqlx::Error> {
    Ok(sealed_fields::decode(bytes)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
        .into_iter()
        .map(FieldRef::to_owned_field)
        .collect())
}

impl Store {
    /// Insert records with their sealed fields and tokens: all of them or none.
    pub async fn insert_records(&self, records: &[NewRecord], now: i64) -> Result<(), sqlx::Error> {
        self.insert_records_with(records, now, WriteExtras::default())
            .await
            .map(|_| ())
    }

    /// Insert `records` and replace `replace` in one transaction (an upsert by `key`): all of
    /// it, or nothing and `Raced` if a replaced record changed or a new record's key token
    /// appeared on a live record since the caller looked.
    pub async fn upsert_records(
        &self,
        records: &[NewRecord],
        replace: &[Replacement],
        key: UpsertKey<'_>,
        now: i64,
    ) -> Result<UpsertOutcome, sqlx::Error> {
        let extras = WriteExtras {
            answer: None,
            replace,
            key: Some(key),
        };
        let written = self.insert_records_with(records, now, extras).await?;
        Ok(if written {
            UpsertOutcome::Written
        } else {
            UpsertOutcome::Raced
        })
    }

    /// Live records of `category` holding one of `tokens` for `field`, as (token, record id);
    /// one query on PostgreSQL (an array bind), one per `CHUNK` tokens on SQLite.
    pub async fn records_by_tokens(
        &self,
        category: &str,
        field: &str,
        tokens: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, String)>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut conn = pool.acquire().await?;
            (*conn).records_by_tokens(category, field, tokens).await
        })
    }

    /// As `insert_records`, for a write under an idempotency key claimed by `attempt`
    /// (`claim_write_key`): the key's answer (`ledger_index` and the records' ids) is stored in
    /// the same transaction, so after a crash either both exist or neither. Returns false, and
    /// inserts nothing, if `attempt` no longer holds the claim (a retry took it over).
    pub async fn insert_records_once(
        &self,
        records: &[NewRecord],
        now: i64,
        principal: &str,
        key: &str,
        attempt: &str,
        ledger_index: i64,
    ) -> Result<bool, sqlx::Error> {
        let answer = KeyAnswer {
            principal,
            key,
            attempt,
            ledger_index,
        };
        let extras = WriteExtras {
            answer: Some(answer),
            ..WriteExtras::default()
        };
        self.insert_records_with(records, now, extras).await
    }

    /// The one write transaction of new records (and, for an upsert, replaced ones). Returns
    /// false, having written nothing, when an idempotency claim was lost or an upsert raced.
    async fn insert_records_with(
        &self,
        records: &[NewRecord],
        now: i64,
        extras: WriteExtras<'_>,
    ) -> Result<bool, sqlx::Error> {
        let WriteExtras {
            answer,
            replace,
            key,
        } = extras;
        let fresh_tokens: Vec<Vec<u8>> = match &key {
            Some(key) => records
                .iter()
                .flat_map(|r| r.index.iter())
                .filter(|e| e.field == key.field)
                .map(|e| e.token.clone())
                .collect(),
            None => Vec::new(),
        };
        let postgres = matches!(self.backend, super::Backend::Postgres(_));
        let record_ids = match &answer {
            Some(_) => serde_json::to_string(&records.iter().map(|r| &r.id).collect::<Vec<_>>())
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
            None => String::new(),
        };
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            if let Some(answer) = &answer {
                // First, so that an attempt that lost its claim writes nothing at all.
                let answered = sqlx::query(
                    "UPDATE record_write_keys SET ledger_index = $4, record_ids = $5 \
                     WHERE principal = $1 AND idem_key = $2 AND attempt = $3 \
                     AND ledger_index IS NULL",
                )
                .bind(answer.principal.to_owned())
                .bind(answer.key.to_owned())
                .bind(answer.attempt.to_owned())
                .bind(answer.ledger_index)
                .bind(record_ids.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if answered != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            if let Some(key) = &key {
                // INVARIANT (no duplicate keys): checked inside the write transaction, and
                // upserts take it one at a time: SQLite has one writer; on PostgreSQL every
                // upsert first takes the same row of `write_locks`.
                if postgres {
                    sqlx::query(UPSERT_LOCK).fetch_one(&mut *tx).await?;
                }
                let taken = (*tx)
                    .records_by_tokens(key.category, key.field, &fresh_tokens)
                    .await?;
                if !taken.is_empty() {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            for r in replace {
                let sealed = encode_sealed(&r.record.sealed)?;
                let n = &r.record;
                let bumped = sqlx::query(
                    "UPDATE records SET version = version + 1, grid = $1, purpose = $2, \
                     legal_basis = $3, plain_fields = $4, kek_version = $5, wrapped_dek = $6, \
                     sealed_fields = $7, updated_at = $8, retention_until = $11 \
                     WHERE id = $9 AND version = $10 AND erased_at IS NULL",
                )
                .bind(n.grid.clone())
                .bind(n.purpose.clone())
                .bind(n.legal_basis.clone())
                .bind(n.plain_fields.clone())
                .bind(i64::from(n.wrapped.kek_version))
                .bind(n.wrapped.bytes.clone())
                .bind(sealed)
                .bind(now)
                .bind(n.id.clone())
                .bind(r.expected_version)
                .bind(n.retention_until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if bumped != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("DELETE FROM blind_index WHERE record_id = $1")
                    .bind(n.id.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in records.chunks(CHUNK / 4) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO records (id, category, grid, version, purpose, legal_basis, \
                     collector, plain_fields, kek_version, wrapped_dek, sealed_fields, \
                     created_at, updated_at, retention_until) ",
                );
                let sealed = chunk
                    .iter()
                    .map(|r| encode_sealed(&r.sealed))
                    .collect::<Result<Vec<_>, _>>()?;
                qb.push_values(chunk.iter().zip(sealed), |mut b, (r, sealed)| {
                    b.push_bind(r.id.clone())
                        .push_bind(r.category.clone())
                        .push_bind(r.grid.clone())
                        .push_bind(1_i64)
                        .push_bind(r.purpose.clone())
                        .push_bind(r.legal_basis.clone())
                        .push_bind(r.collector.clone())
                        .push_bind(r.plain_fields.clone())
                        .push_bind(i64::from(r.wrapped.kek_version))
                        .push_bind(r.wrapped.bytes.clone())
                        .push_bind(sealed)
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(r.retention_until);
                });
                qb.build().execute(&mut *tx).await?;
            }
            let mut tokens: Vec<(&NewRecord, &BlindEntry)> = records
                .iter()
                .chain(replace.iter().map(|r| &r.record))
                .flat_map(|r| r.index.iter().map(move |e| (r, e)))
                .collect();
            // In the primary key's order: each insert lands at or after the one before it in
            // the (category, field, token) tree, instead of at random.
            tokens.sort_unstable_by(|(a, x), (b, y)| {
                (&a.category, &x.field, &x.token).cmp(&(&b.category, &y.field, &y.token))
            });
            for chunk in tokens.chunks(CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO blind_index (category, field, token, record_id) ",
                );
                qb.push_values(chunk, |mut b, (r, e)| {
                    b.push_bind(r.category.clone())
                        .push_bind(e.field.clone())
                        .push_bind(e.token.clone())
                        .push_bind(r.id.clone());
                });
                qb.build().execute(&mut *tx).await?;
            }
            // Count KEK wraps (NIST SP 800-38D usage limit), per category and version.
            let mut wraps: std::collections::BTreeMap<(&str, u32), i64> = Default::default();
            for r in records.iter().chain(replace.iter().map(|r| &r.record)) {
                *wraps
                    .entry((r.category.as_str(), r.wrapped.kek_version))
                    .or_default() += 1;
            }
            for ((category, version), n) in wraps {
                super::keys::charge_kek!(&mut *tx, category, version, n);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Total DEK wraps performed under one KEK version.
    pub async fn kek_wraps(&self, category: &str, version: u32) -> Result<i64, sqlx::Error> {
        on_read!(self, |pool| {
            let row =
                sqlx::query("SELECT wraps FROM kek_usage WHERE category = $1 AND kek_version = $2")
                    .bind(category.to_owned())
                    .bind(i64::from(version))
                    .fetch_optional(pool)
                    .await?;
            match row {
                Some(r) => r.try_get("wraps"),
                None => Ok(0),
            }
        })
    }

    /// A live (not erased) record with its sealed fields.
    pub async fn record(&self, id: &str) -> Result<Option<StoredRecord>, sqlx::Error> {
        on_read!(self, |pool| {
            let Some(row) = sqlx::query(
                "SELECT id, category, grid, version, purpose, legal_basis, collector, plain_fields, \
                 kek_version, wrapped_dek, sealed_fields, created_at, updated_at, retention_until \
                 FROM records WHERE id = $1 AND erased_at IS NULL",
            )
            .bind(id.to_owned())
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let stored: Option<Vec<u8>> = row.try_get("sealed_fields")?;
            let sealed = decode_sealed(stored.as_deref())?;
            let kek_version: Option<i64> = row.try_get("kek_version")?;
            let wrapped: Option<Vec<u8>> = row.try_get("wrapped_dek")?;
            let (Some(kek_version), Some(bytes)) = (kek_version, wrapped) else {
                // A live record always has its key; treat a missing one as gone.
                return Ok(None);
            };
            Ok(Some(StoredRecord {
                id: row.try_get("id")?,
                category: row.try_get("category")?,
                grid: row.try_get("grid")?,
                version: row.try_get("version")?,
                purpose: row.try_get("purpose")?,
                legal_basis: row.try_get("legal_basis")?,
                collector: row.try_get("collector")?,
                plain_fields: row.try_get("plain_fields")?,
                wrapped: WrappedDek {
                    kek_version: version_u32(kek_version)?,
                    bytes,
                },
                sealed,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                retention_until: row.try_get("retention_until")?,
            }))
        })
    }

    /// A record's blind-index tokens, as (field, token).
    pub async fn record_tokens(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT field, token FROM blind_index WHERE record_id = $1")
                .bind(id.to_owned())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("field")?, r.try_get("token")?)))
                .collect()
        })
    }

    /// Apply an update if the record is live and still at the expected version.
    pub async fn update_record(
        &self,
        u: &RecordUpdate,
        now: i64,
    ) -> Result<UpdateOutcome, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let bumped = sqlx::query(
                "UPDATE records SET version = version + 1, plain_fields = $1, updated_at = $2 \
                 WHERE id = $3 AND version = $4 AND erased_at IS NULL",
            )
            .bind(u.plain_fields.clone())
            .bind(now)
            .bind(u.id.clone())
            .bind(u.expected_version)
            .execute(&mut *tx)
            .await?;
            if bumped.rows_affected() == 0 {
                let exists =
                    sqlx::query("SELECT 1 AS one FROM records WHERE id = $1 AND erased_at IS NULL")
                        .bind(u.id.clone())
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some();
                tx.rollback().await?;
                return Ok(if exists {
                    UpdateOutcome::VersionMismatch
                } else {
                    UpdateOutcome::NotFound
                });
            }
            if !u.upsert.is_empty() || !u.remove.is_empty() {
                // The row is this transaction's now (the version check above wrote it).
                let stored: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT sealed_fields FROM records WHERE id = $1")
                        .bind(u.id.clone())
                        .fetch_one(&mut *tx)
                        .await?;
                let mut sealed = decode_sealed(stored.as_deref())?;
                sealed.retain(|f| {
                    !u.remove.contains(&f.field) && !u.upsert.iter().any(|n| n.field == f.field)
                });
                sealed.extend(u.upsert.iter().cloned());
                sqlx::query("UPDATE records SET sealed_fields = $1 WHERE id = $2")
                    .bind(encode_sealed(&sealed)?)
                    .bind(u.id.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            for (field, tokens) in &u.reindex {
                sqlx::query("DELETE FROM blind_index WHERE record_id = $1 AND field = $2")
                    .bind(u.id.clone())
                    .bind(field.clone())
                    .execute(&mut *tx)
                    .await?;
                for token in tokens {
                    sqlx::query(
                        "INSERT INTO blind_index (category, field, token, record_id) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(u.category.clone())
                    .bind(field.clone())
                    .bind(token.clone())
                    .bind(u.id.clone())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(UpdateOutcome::Updated(u.expected_version + 1))
        })
    }

    /// Crypto-shred a record: its wrapped DEK, sealed fields, tokens and public fields are
    /// deleted; the row stays as a tombstone (id, category, grid, times) so later reads say 404
    /// and the erasure can be audited. Returns false if there was no live record.
    pub async fn erase_record(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "UPDATE records SET wrapped_dek = NULL, kek_version = NULL, sealed_fields = NULL, \
                 plain_fields = '{}', erased_at = $1, updated_at = $1 \
                 WHERE id = $2 AND erased_at IS NULL",
            )
            .bind(now)
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM blind_index WHERE record_id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Live records of `category` whose blind index holds `token` for `field`.
    pub async fn records_with_token(
        &self,
        category: &str,
        field: &str,
        token: &[u8],
    ) -> Result<Vec<String>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT b.record_id AS id FROM blind_index b JOIN records r ON r.id = b.record_id \
                 WHERE b.category = $1 AND b.field = $2 AND b.token = $3 \
                 AND r.erased_at IS NULL ORDER BY b.record_id LIMIT 100",
            )
            .bind(category.to_owned())
            .bind(field.to_owned())
            .bind(token.to_vec())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect()
        })
    }

    /// Live records per category (for the demo and `/readyz` detail).
    pub async fn count_records(&self, category: &str) -> Result<i64, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM records WHERE category = $1 AND erased_at IS NULL",
            )
            .bind(category.to_owned())
            .fetch_one(pool)
            .await?;
            row.try_get("n")
        })
    }
}
