//! Ledger rows: entries, subjects, perfect-subtree nodes and checkpoints. Append-only: nothing
//! here updates or deletes a ledger row, but for the start-up repair of derived tree nodes
//! (`replace_ledger_nodes`). All rows of one group commit go in one transaction.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, UsageIncrease, WriteTx, on_read, on_write};

/// SHA-256 outputs and tree-node keys, as stored; the ledger (`tlog::merkle`) computes them.
pub use tlog::merkle::{Hash, NodeId};

/// One entry as stored.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub index: i64,
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub purpose: Option<String>,
    pub case_id: Option<String>,
    pub decision: String,
    /// The actor's department (`actor.department` of `canonical`).
    pub department: Option<String>,
    /// `category` of `canonical`.
    pub category: Option<String>,
    /// `request_id` of `canonical`.
    pub request_id: String,
    /// `ledger::Stream::of(action)`, as stored (`disclosure`, `admin`, …).
    pub stream: &'static str,
    pub canonical: String,
    pub leaf_hash: Vec<u8>,
    pub subjects: Vec<String>,
}

#[cfg(test)]
impl LedgerRow {
    /// A `data.read` entry at `index` naming `subjects`, for tests of the subject index (its
    /// canonical text is only `{"index":N}`).
    pub(crate) fn naming(index: i64, subjects: Vec<String>) -> LedgerRow {
        LedgerRow {
            index,
            time_ms: 0,
            actor: "{}".to_owned(),
            action: "data.read".to_owned(),
            purpose: None,
            case_id: None,
            decision: "allow".to_owned(),
            department: None,
            category: None,
            request_id: "-".to_owned(),
            stream: "disclosure",
            canonical: format!("{{\"index\":{index}}}"),
            leaf_hash: vec![0; 32],
            subjects,
        }
    }
}

/// Filters of `GET /v1/audit/entries`; `None` means "any".
#[derive(Debug, Default, Clone)]
pub struct EntryFilter {
    pub start: i64,
    pub end: i64,
    pub actor: Option<String>,
    pub purpose: Option<String>,
    pub case_id: Option<String>,
    pub decision: Option<String>,
    /// The action, exactly (`auth.token.refusals`).
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: i64,
}

/// A run of entries read in one query, in pieces; see `Store::ledger_chunk`.
pub struct LedgerChunk {
    /// The index the chunk was asked from (its first entry, if the log has no gap there).
    pub first: i64,
    pieces: ChunkPieces,
}

/// Where a chunk's texts live. On SQLite they stay in the rows the driver returned and are lent
/// out as bytes: no copy into a `String`, no UTF-8 pass (the verifier hashes bytes).
enum ChunkPieces {
    /// Invariant: every row's `texts` column decodes as a non-null `&[u8]` (checked in
    /// `ledger_chunk`).
    Sqlite(Vec<sqlx::sqlite::SqliteRow>),
    Owned(Vec<Vec<u8>>),
}

/// Entries per piece of a chunk: few enough that SQLite builds each piece, and the driver copies
/// it, in ~128 KiB of memory that the allocator reuses warm (a single piece for 10 000 entries
/// took fresh pages from the kernel every time), many enough that the driver's per-row cost and
/// wake-ups are shared (measured on 2 cores: 64 < 128 < 256 ≈ 512 ≈ 1024).
const CHUNK_PIECE: i64 = 256;

impl LedgerChunk {
    /// The pieces in index order, each a run of canonical texts joined by `\n`.
    pub fn pieces(&self) -> Vec<&[u8]> {
        match &self.pieces {
            // INVARIANT (ChunkPieces::Sqlite): decoding succeeded once, so it cannot fail now;
            // were it ever to, the piece is left out and the entries no longer line up, so the
            // verifier reads them again row by row.
            ChunkPieces::Sqlite(rows) => rows
                .iter()
                .filter_map(|r| r.try_get::<Option<&[u8]>, _>("texts").ok().flatten())
                .collect(),
            ChunkPieces::Owned(pieces) => pieces.iter().map(Vec::as_slice).collect(),
        }
    }
}

pub struct LedgerPageRow {
    pub index: i64,
    pub canonical: String,
    pub leaf_hash: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub time_ms: i64,
}

/// The ledger's coordination row (`ledger_head`): where the next entry goes and the time of
/// the newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerHead {
    pub size: u64,
    pub last_time_ms: i64,
}

const LEDGER_HEAD: &str = "SELECT size, last_time_ms FROM ledger_head WHERE id = 1";

fn head_of<R: Row>(row: &R) -> Result<LedgerHead, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let size: i64 = row.try_get("size")?;
    Ok(LedgerHead {
        size: u64::try_from(size)
            .map_err(|_| sqlx::Error::Decode("the ledger head's size is negative".into()))?,
        last_time_ms: row.try_get("last_time_ms")?,
    })
}

enum AppendTx {
    Sqlite(WriteTx<sqlx::Sqlite>),
    Postgres(WriteTx<sqlx::Postgres>),
}

/// An open append transaction holding the ledger's coordination row (`Store::lock_ledger_head`).
/// Invariant: no other append can commit while it exists. Dropped without `write`: rolled back.
pub struct LedgerAppend {
    tx: AppendTx,
    head: LedgerHead,
}

impl LedgerAppend {
    /// The head as locked: the first of this transaction's entries must be entry `head().size`.
    pub fn head(&self) -> LedgerHead {
        self.head
    }

    /// Store `rows`, the perfect nodes they complete and `usage`, move the head past the last
    /// row, and commit. `Ok(false)`: an increase would pass its quota; nothing was written.
    pub async fn write(
        self,
        rows: &[LedgerRow],
        nodes: &[(NodeId, Hash)],
        usage: &[UsageIncrease],
    ) -> Result<bool, sqlx::Error> {
        macro_rules! common_rows {
            ($tx:ident) => {{
                let mut within_quota = true;
                for u in usage {
                    sqlx::query(
                        "INSERT INTO grant_usage (grant_id, day, records) VALUES ($1, $2, 0) \
                         ON CONFLICT (grant_id, day) DO NOTHING",
                    )
                    .bind(u.grant.clone())
                    .bind(u.day.clone())
                    .execute(&mut *$tx)
                    .await?;
                    let done = sqlx::query(
                        "UPDATE grant_usage SET records = records + $3 \
                         WHERE grant_id = $1 AND day = $2 AND records + $3 <= $4",
                    )
                    .bind(u.grant.clone())
                    .bind(u.day.clone())
                    .bind(u.records)
                    .bind(i64::from(u.quota))
                    .execute(&mut *$tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        within_quota = false;
                        break;
                    }
                }
                if within_quota {
                    for chunk in rows.chunks(300) {
                        let mut qb = sqlx::QueryBuilder::new(
                            "INSERT INTO ledger_entries (idx, time_ms, actor, action, purpose, \
                             case_id, decision, department, category, request_id, stream, \
                             canonical, leaf_hash) ",
                        );
                        qb.push_values(chunk, |mut b, r| {
                            b.push_bind(r.index)
                                .push_bind(r.time_ms)
                                .push_bind(r.actor.clone())
                                .push_bind(r.action.clone())
                                .push_bind(r.purpose.clone())
                                .push_bind(r.case_id.clone())
                                .push_bind(r.decision.clone())
                                .push_bind(r.department.clone())
                                .push_bind(r.category.clone())
                                .push_bind(r.request_id.clone())
                                .push_bind(r.stream)
                                .push_bind(r.canonical.clone())
                                .push_bind(r.leaf_hash.clone());
                        });
                        qb.build().execute(&mut *$tx).await?;
                    }
                    for chunk in nodes.chunks(1000) {
                        let mut qb =
                            sqlx::QueryBuilder::new("INSERT INTO ledger_nodes (level, idx, hash) ");
                        qb.push_values(chunk, |mut b, (id, hash)| {
                            b.push_bind(i32::from(id.level))
                                .push_bind(i64::try_from(id.index).unwrap_or(i64::MAX))
                                .push_bind(hash.to_vec());
                        });
                        qb.build().execute(&mut *$tx).await?;
                    }
                }
                within_quota
            }};
        }
        let size = rows.last().map_or(self.head.size, |r| {
            u64::try_from(r.index + 1).unwrap_or(0).max(self.head.size)
        });
        let last_time = rows
            .iter()
            .map(|r| r.time_ms)
            .max()
            .map_or(self.head.last_time_ms, |t| t.max(self.head.last_time_ms));
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        macro_rules! move_head {
            ($tx:ident) => {
                sqlx::query("UPDATE ledger_head SET size = $1, last_time_ms = $2 WHERE id = 1")
                    .bind(size)
                    .bind(last_time)
                    .execute(&mut *$tx)
                    .await?
            };
        }
        match self.tx {
            AppendTx::Sqlite(mut tx) => {
                if !common_rows!(tx) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // Staged in index order: appends to a small B-tree (`ledger::subject_merge`).
                let subjects: Vec<(i64, &String)> = rows
                    .iter()
                    .flat_map(|r| r.subjects.iter().map(move |s| (r.index, s)))
                    .collect();
                for chunk in subjects.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO ledger_subjects_staged (idx, record_id) ",
                    );
                    qb.push_values(chunk, |mut b, (idx, id)| {
                        b.push_bind(*idx).push_bind((*id).clone());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                move_head!(tx);
                tx.commit().await?;
            }
            AppendTx::Postgres(mut tx) => {
                if !common_rows!(tx) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // One row per entry with its record ids as an array (`ledger_subject_sets`).
                let with_subjects: Vec<&LedgerRow> =
                    rows.iter().filter(|r| !r.subjects.is_empty()).collect();
                for chunk in with_subjects.chunks(300) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO ledger_subject_sets (idx, record_ids) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.index).push_bind(r.subjects.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                move_head!(tx);
                tx.commit().await?;
            }
        }
        Ok(true)
    }
}

/// Entries in the ledger (indexes are 0..size with no gap while it is intact).
const LEDGER_SIZE: &str = "SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM ledger_entries";

fn size_of<R: Row>(row: R) -> Result<u64, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let n: i64 = row.try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn to_hash(bytes: &[u8]) -> Result<Hash, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("stored hash is not 32 bytes".into()))
}

impl Store {
    /// Append entries and the perfect nodes they complete, in one transaction.
    pub async fn append_ledger(
        &self,
        rows: &[LedgerRow],
        nodes: &[(NodeId, Hash)],
    ) -> Result<(), sqlx::Error> {
        self.append_ledger_charged(rows, nodes, &[])
            .await
            .map(|_| ())
    }

    /// As `append_ledger`, increasing quota use in the same transaction: the entries are
    /// durable if and only if their quota use is. `Ok(false)`: an increase would pass its quota
    /// (another replica used it meanwhile); nothing was written. For writers that number their
    /// own rows (tools, tests); the ledger's writer numbers them from the locked head
    /// (`lock_ledger_head`).
    pub async fn append_ledger_charged(
        &self,
        rows: &[LedgerRow],
        nodes: &[(NodeId, Hash)],
        usage: &[UsageIncrease],
    ) -> Result<bool, sqlx::Error> {
        self.lock_ledger_head()
            .await?
            .write(rows, nodes, usage)
            .await
    }

    /// Open an append transaction: it takes the ledger's coordination row (`ledger_head`)
    /// before anything else, so no other process appends until it ends. The row says where the
    /// next entry goes (`LedgerAppend::head`).
    pub async fn lock_ledger_head(&self) -> Result<LedgerAppend, sqlx::Error> {
        match &self.backend {
            super::Backend::Sqlite { write, .. } => {
                // `BEGIN IMMEDIATE` already holds the database's only write lock.
                let mut tx = WriteTx::begin(write).await?;
                let row = sqlx::query(LEDGER_HEAD).fetch_one(&mut *tx).await?;
                let head = head_of(&row)?;
                Ok(LedgerAppend {
                    tx: AppendTx::Sqlite(tx),
                    head,
                })
            }
            super::Backend::Postgres(pool) => {
                let mut tx = WriteTx::begin(pool).await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("{LEDGER_HEAD} FOR UPDATE")))
                    .fetch_one(&mut *tx)
                    .await?;
                let head = head_of(&row)?;
                Ok(LedgerAppend {
                    tx: AppendTx::Postgres(tx),
                    head,
                })
            }
        }
    }

    /// The coordination row as committed now (the size every process appends after).
    pub async fn ledger_head(&self) -> Result<LedgerHead, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query(LEDGER_HEAD).fetch_one(pool).await?;
            head_of(&row)
        })
    }

    /// Number of entries (indexes are 0..size with no gap while the ledger is intact).
    pub async fn ledger_size(&self) -> Result<u64, sqlx::Error> {
        on_read!(self, |pool| {
            size_of(sqlx::query(LEDGER_SIZE).fetch_one(pool).await?)
        })
    }

    /// Number of entries as the writer sees it: on SQLite through the write connection, after
    /// whatever transaction it last ran has ended, so the answer is what is committed (the
    /// ledger checks its head against this before it writes again after a failure).
    pub async fn ledger_size_durable(&self) -> Result<u64, sqlx::Error> {
        on_write!(self, |pool| {
            size_of(sqlx::query(LEDGER_SIZE).fetch_one(pool).await?)
        })
    }

    /// Replace every stored interior node with `nodes`, in one transaction. Nodes are derived
    /// from the entries' texts; this is the one place that deletes ledger rows, and only to put
    /// back the same derivation (start-up repair, `ledger::repair`).
    pub async fn replace_ledger_nodes(&self, nodes: &[(NodeId, Hash)]) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query("DELETE FROM ledger_nodes")
                .execute(&mut *tx)
                .await?;
            for chunk in nodes.chunks(1000) {
                let mut qb =
                    sqlx::QueryBuilder::new("INSERT INTO ledger_nodes (level, idx, hash) ");
                qb.push_values(chunk, |mut b, (id, hash)| {
                    b.push_bind(i32::from(id.level))
                        .push_bind(i64::try_from(id.index).unwrap_or(i64::MAX))
                        .push_bind(hash.to_vec());
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// The time of the newest entry, so a restarted hub never issues an earlier one.
    pub async fn ledger_last_time(&self) -> Result<i64, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query("SELECT COALESCE(MAX(time_ms), 0) AS t FROM ledger_entries")
                .fetch_one(pool)
                .await?;
            row.try_get("t")
        })
    }

    /// The canonical texts of the entries at `indexes` (missing ones are absent): what leaf
    /// hashes are computed from, by the ledger, so a proof never rests on an unchecked copy.
    pub async fn ledger_leaf_texts(
        &self,
        indexes: &[u64],
    ) -> Result<HashMap<u64, String>, sqlx::Error> {
        let mut out = HashMap::with_capacity(indexes.len());
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        on_read!(self, |pool| {
            for chunk in indexes.chunks(200) {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT idx, canonical FROM ledger_entries WHERE idx IN (",
                );
                let mut list = qb.separated(", ");
                for index in chunk {
                    list.push_bind(as_i64(*index));
                }
                qb.push(")");
                for row in qb.build().fetch_all(pool).await? {
                    let idx: i64 = row.try_get("idx")?;
                    let canonical: String = row.try_get("canonical")?;
                    let index = u64::try_from(idx).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    out.insert(index, canonical);
                }
            }
            Ok(out)
        })
    }

    /// Stored interior nodes (level > 0) by position; missing ones are absent from the map.
    pub async fn ledger_stored_nodes(
        &self,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, sqlx::Error> {
        let mut out = HashMap::with_capacity(ids.len());
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        on_read!(self, |pool| {
            for chunk in ids.chunks(200) {
                let mut qb =
                    sqlx::QueryBuilder::new("SELECT level, idx, hash FROM ledger_nodes WHERE ");
                for (i, id) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(level = ")
                        .push_bind(i32::from(id.level))
                        .push(" AND idx = ")
                        .push_bind(as_i64(id.index))
                        .push(")");
                }
                for row in qb.build().fetch_all(pool).await? {
                    let level: i32 = row.try_get("level")?;
                    let idx: i64 = row.try_get("idx")?;
                    let hash: Vec<u8> = row.try_get("hash")?;
                    let id = NodeId {
                        level: u8::try_from(level).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        index: u64::try_from(idx).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    };
                    out.insert(id, to_hash(&hash)?);
                }
            }
            Ok(out)
        })
    }

    /// Entries matching `f`, by index, at most `f.limit`.
    pub async fn ledger_entries(&self, f: &EntryFilter) -> Result<Vec<(i64, String)>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut qb =
                sqlx::QueryBuilder::new("SELECT idx, canonical FROM ledger_entries WHERE idx >= ");
            qb.push_bind(f.start).push(" AND idx < ").push_bind(f.end);
            if let Some(v) = &f.actor {
                qb.push(" AND actor = ").push_bind(v.clone());
            }
            if let Some(v) = &f.purpose {
                qb.push(" AND purpose = ").push_bind(v.clone());
            }
            if let Some(v) = &f.case_id {
                qb.push(" AND case_id = ").push_bind(v.clone());
            }
            if let Some(v) = &f.decision {
                qb.push(" AND decision = ").push_bind(v.clone());
            }
            if let Some(v) = &f.action {
                qb.push(" AND action = ").push_bind(v.clone());
            }
            if let Some(v) = f.since_ms {
                qb.push(" AND time_ms >= ").push_bind(v);
            }
            if let Some(v) = f.until_ms {
                qb.push(" AND time_ms < ").push_bind(v);
            }
            qb.push(" ORDER BY idx LIMIT ").push_bind(f.limit);
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("idx")?, r.try_get("canonical")?)))
                .collect()
        })
    }

    /// Do new subject rows go to `ledger_subjects_staged` first (SQLite), to be merged into
    /// `ledger_subject_runs` as sorted runs? On PostgreSQL an entry's subjects are one row of
    /// `ledger_subject_sets` (its record ids as an array, found through a GIN index).
    pub fn stages_subjects(&self) -> bool {
        matches!(self.backend, super::Backend::Sqlite { .. })
    }

    /// Subject rows waiting in `ledger_subjects_staged` (none on PostgreSQL).
    pub async fn staged_subject_rows(&self) -> Result<u64, sqlx::Error> {
        let super::Backend::Sqlite { read, .. } = &self.backend else {
            return Ok(0);
        };
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ledger_subjects_staged")
            .fetch_one(read)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Sort the staged subject rows of entries `0..=through` as a run keeps them (by record,
    /// then index) into `temp.ledger_merge_source` on the writer's connection, numbered from 1
    /// by `rowid` in that order, for `append_subject_run` to copy a slice at a time. Nothing in
    /// the database file changes. Returns the rows sorted (0 on PostgreSQL, which stages
    /// nothing). Only the ledger writer calls this, between its commits.
    pub async fn sort_staged_subjects(&self, through: i64) -> Result<u64, sqlx::Error> {
        let super::Backend::Sqlite { write, .. } = &self.backend else {
            return Ok(0);
        };
        let mut conn = write.acquire().await?;
        sqlx::query("DROP TABLE IF EXISTS temp.ledger_merge_source")
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "CREATE TEMP TABLE ledger_merge_source (record_id TEXT NOT NULL, idx INTEGER NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        let sorted = sqlx::query(
            "INSERT INTO temp.ledger_merge_source (record_id, idx) \
             SELECT record_id, idx FROM ledger_subjects_staged WHERE idx <= $1 \
             ORDER BY record_id, idx",
        )
        .bind(through)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(sorted)
    }

    /// Drop the sorted copy of `sort_staged_subjects`, as a replaced connection would (tests).
    #[cfg(test)]
    pub(crate) async fn forget_sorted_subjects(&self) {
        if let super::Backend::Sqlite { write, .. } = &self.backend {
            sqlx::query("DROP TABLE temp.ledger_merge_source")
                .execute(write)
                .await
                .unwrap();
        }
    }

    /// The number of the next subject run (SQLite; 0 on PostgreSQL).
    pub async fn next_subject_run(&self) -> Result<i64, sqlx::Error> {
        let super::Backend::Sqlite { write, .. } = &self.backend else {
            return Ok(0);
        };
        sqlx::query("SELECT COALESCE(MAX(run) + 1, 0) AS run FROM ledger_subject_runs")
            .fetch_one(write)
            .await?
            .try_get("run")
    }

    /// Append the sorted rows `rows` (by `rowid`, continuing where the last slice stopped) of
    /// `temp.ledger_merge_source` to subject run `run` in one transaction. The run number leads
    /// the key, so they land at the B-tree's right edge in packed pages. With `finish_through`,
    /// the same transaction removes the staged rows of entries `0..=finish_through`: the run is
    /// complete, and every row is in one place again (the sorted copy is then dropped). Until
    /// then a row may be both staged and in the run; lookups take entry indexes as a set, so
    /// they see it once. Fails if the sorted copy is gone (it lives as long as the writer's
    /// connection). Only the ledger writer calls this, between its commits.
    pub async fn append_subject_run(
        &self,
        run: i64,
        rows: std::ops::Range<u64>,
        finish_through: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let super::Backend::Sqlite { write, .. } = &self.backend else {
            return Ok(());
        };
        let bound = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut tx = WriteTx::begin(write).await?;
        sqlx::query(
            "INSERT INTO ledger_subject_runs (run, record_id, idx) \
             SELECT $1, record_id, idx FROM temp.ledger_merge_source \
             WHERE rowid > $2 AND rowid <= $3 ORDER BY rowid",
        )
        .bind(run)
        .bind(bound(rows.start))
        .bind(bound(rows.end))
        .execute(&mut *tx)
        .await?;
        if let Some(through) = finish_through {
            sqlx::query("DELETE FROM ledger_subjects_staged WHERE idx <= $1")
                .bind(through)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if finish_through.is_some() {
            // Best effort, to free its memory: the run is complete whatever happens here, and
            // the next sort replaces the table anyway.
            let _ = sqlx::query("DROP TABLE IF EXISTS temp.ledger_merge_source")
                .execute(write)
                .await;
        }
        Ok(())
    }

    /// Remove the newest subject run if its copying was cut short (by a crash, or a failed
    /// slice): its rows are then still staged, and the next merge copies them again. A
    /// finished run holds only entries older than every staged row. Returns the run removed.
    pub async fn drop_unfinished_subject_run(&self) -> Result<Option<i64>, sqlx::Error> {
        let super::Backend::Sqlite { write, .. } = &self.backend else {
            return Ok(None);
        };
        let mut tx = WriteTx::begin(write).await?;
        let run: Option<i64> = sqlx::query(
            "SELECT r.run AS run FROM (SELECT MAX(run) AS run FROM ledger_subject_runs) r \
             WHERE EXISTS (SELECT 1 FROM ledger_subjects_staged WHERE idx <= \
                 (SELECT MAX(idx) FROM ledger_subject_runs WHERE run = r.run))",
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("run"))
        .transpose()?;
        if let Some(run) = run {
            sqlx::query("DELETE FROM ledger_subject_runs WHERE run = $1")
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(run)
    }

    /// Entries concerning one record, by index. SQLite: one seek per run (the recursive step
    /// walks the distinct run numbers through the primary key) and a scan of the staged rows;
    /// a row both staged and in a run being filled counts once (`IN` takes a set).
    /// PostgreSQL: the GIN index of `ledger_subject_sets`.
    pub async fn ledger_entries_for_subject(
        &self,
        record_id: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = if self.stages_subjects() {
            "WITH RECURSIVE runs (run) AS ( \
                 SELECT MIN(run) FROM ledger_subject_runs \
                 UNION ALL \
                 SELECT (SELECT MIN(l.run) FROM ledger_subject_runs l WHERE l.run > runs.run) \
                 FROM runs WHERE runs.run IS NOT NULL) \
             SELECT e.idx AS idx, e.canonical AS canonical FROM ledger_entries e \
             WHERE e.idx IN ( \
                 SELECT s.idx FROM runs JOIN ledger_subject_runs s \
                     ON s.run = runs.run AND s.record_id = $1 \
                 UNION ALL SELECT idx FROM ledger_subjects_staged WHERE record_id = $1) \
             ORDER BY e.idx LIMIT $2"
        } else {
            "SELECT e.idx AS idx, e.canonical AS canonical FROM ledger_entries e \
             WHERE e.idx IN ( \
                 SELECT s.idx FROM ledger_subject_sets s \
                 WHERE s.record_ids @> ARRAY[$1::text COLLATE \"C\"]) \
             ORDER BY e.idx LIMIT $2"
        };
        on_read!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(record_id.to_owned())
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("idx")?, r.try_get("canonical")?)))
                .collect()
        })
    }

    /// Stored interior nodes of `level` with index in `from..to`, in index order. Read as one
    /// row of concatenated hashes (a verifier reads a thousand level-4 nodes per page, and the
    /// driver's per-row cost was most of it); any range with a missing node or a hash that is
    /// not 32 bytes long is read again row by row, so what comes back is exactly what is stored.
    pub async fn ledger_level(
        &self,
        level: u8,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, sqlx::Error> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let packed: Option<(i64, Vec<u8>)> = on_read!(self, |pool| {
            let sql = match self.backend {
                super::Backend::Sqlite { .. } => {
                    "SELECT COUNT(*) AS n, MIN(idx) AS lo, MAX(idx) AS hi, \
                     CAST(group_concat(hash, '' ORDER BY idx) AS BLOB) AS hashes FROM ledger_nodes \
                     WHERE level = $1 AND idx >= $2 AND idx < $3"
                }
                super::Backend::Postgres(_) => {
                    "SELECT COUNT(*) AS n, MIN(idx) AS lo, MAX(idx) AS hi, \
                     string_agg(hash, ''::bytea ORDER BY idx) AS hashes FROM ledger_nodes \
                     WHERE level = $1 AND idx >= $2 AND idx < $3"
                }
            };
            let row = sqlx::query(sql)
                .bind(i32::from(level))
                .bind(as_i64(from))
                .bind(as_i64(to))
                .fetch_one(pool)
                .await?;
            let n: i64 = row.try_get("n")?;
            let lo: Option<i64> = row.try_get("lo")?;
            let hi: Option<i64> = row.try_get("hi")?;
            let hashes: Option<Vec<u8>> = row.try_get("hashes")?;
            Ok::<_, sqlx::Error>(match (lo, hi, hashes) {
                (Some(lo), Some(hi), Some(hashes))
                    if hi.checked_sub(lo).and_then(|d| d.checked_add(1)) == Some(n)
                        && usize::try_from(n).ok().and_then(|n| n.checked_mul(32))
                            == Some(hashes.len()) =>
                {
                    Some((lo, hashes))
                }
                (None, None, None) if n == 0 => Some((0, Vec::new())),
                _ => None,
            })
        })?;
        if let Some((lo, hashes)) = packed {
            // INVARIANT (checked above): `n` nodes with contiguous indexes from `lo`, 32 bytes
            // each, concatenated in index order.
            let lo = u64::try_from(lo).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let (nodes, _) = hashes.as_chunks::<32>();
            return Ok((lo..).zip(nodes.iter().copied()).collect());
        }
        on_read!(self, |pool| {
            let rows = sqlx::query(
                "SELECT idx, hash FROM ledger_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 \
                 ORDER BY idx",
            )
            .bind(i32::from(level))
            .bind(as_i64(from))
            .bind(as_i64(to))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let idx: i64 = r.try_get("idx")?;
                    let hash: Vec<u8> = r.try_get("hash")?;
                    let index = u64::try_from(idx).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    Ok((index, to_hash(&hash)?))
                })
                .collect()
        })
    }

    /// A page of entries for verification: index, canonical text, stored leaf hash.
    /// Stored leaf hashes of up to `limit` entries from `from`, in index order (a process
    /// catching up with entries others appended; `audit verify` checks them against the texts).
    pub async fn ledger_leaf_hashes(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Hash)>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT idx, leaf_hash FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            )
            .bind(from)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let hash: Vec<u8> = r.try_get("leaf_hash")?;
                Ok((r.try_get("idx")?, to_hash(&hash)?))
            })
            .collect()
        })
    }

    pub async fn ledger_page(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<LedgerPageRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let rows = sqlx::query(
                "SELECT idx, canonical, leaf_hash FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            )
            .bind(from)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(LedgerPageRow {
                        index: r.try_get("idx")?,
                        canonical: r.try_get("canonical")?,
                        leaf_hash: r.try_get("leaf_hash")?,
                    })
                })
                .collect()
        })
    }

    /// Entries from `from` in one query, as pieces of canonical texts joined by newlines
    /// (canonical JSON never holds a raw newline) in index order, so a verifier reading millions
    /// of entries pays the driver's per-row cost once per piece of `CHUNK_PIECE` entries. `None`
    /// if nothing was found.
    ///
    /// On SQLite the chunk covers the indexes `from..from + limit`, one piece per aligned run of
    /// `CHUNK_PIECE` indexes (an index search each, no sort), lent from the rows as bytes; a gap
    /// in the log shows as a short piece, and a chunk that lies wholly in a gap comes back
    /// empty, so callers must not take `None` for the end of the log. On PostgreSQL it holds
    /// the next `limit` entries. Either way the order of pieces and of texts in a piece follows
    /// the index scans; callers must check each entry's own index (a chunk out of order is read
    /// again row by row, never trusted).
    pub async fn ledger_chunk(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Option<LedgerChunk>, sqlx::Error> {
        let pieces = match &self.backend {
            super::Backend::Sqlite { read, .. } => {
                let rows = sqlx::query(
                    "WITH RECURSIVE piece(lo) AS (SELECT $1 UNION ALL \
                     SELECT lo + $3 FROM piece WHERE lo + $3 < $1 + $2) \
                     SELECT (SELECT group_concat(canonical, char(10)) FROM ledger_entries \
                     WHERE idx >= lo AND idx < min(lo + $3, $1 + $2)) AS texts FROM piece",
                )
                .bind(from)
                .bind(limit)
                .bind(CHUNK_PIECE)
                .fetch_all(read)
                .await?;
                let mut kept = Vec::with_capacity(rows.len());
                for row in rows {
                    // Establishes the invariant of ChunkPieces::Sqlite (and caches the borrow).
                    if row.try_get::<Option<&[u8]>, _>("texts")?.is_some() {
                        kept.push(row);
                    }
                }
                if kept.is_empty() {
                    return Ok(None);
                }
                ChunkPieces::Sqlite(kept)
            }
            super::Backend::Postgres(pool) => {
                let rows = sqlx::query(
                    "SELECT string_agg(canonical, chr(10) ORDER BY idx) AS texts FROM \
                     (SELECT idx, canonical FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2) AS page \
                     GROUP BY idx / $3 ORDER BY idx / $3",
                )
                .bind(from)
                .bind(limit)
                .bind(CHUNK_PIECE)
                .fetch_all(pool)
                .await?;
                let pieces = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>("texts").map(String::into_bytes))
                    .collect::<Result<Vec<_>, _>>()?;
                if pieces.is_empty() {
                    return Ok(None);
                }
                ChunkPieces::Owned(pieces)
            }
        };
        Ok(Some(LedgerChunk {
            first: from,
            pieces,
        }))
    }

    /// Store a checkpoint unless one of this size or larger exists, or it would cover entries
    /// not yet committed; returns whether it was new. The newest checkpoint's size
    /// (`ledger_head.checkpoint_size`) moves by compare-and-swap in the same transaction, so of
    /// two processes signing at once only one publishes, and sizes only grow. Only the key
    /// `ledger_head.key_id` names may publish one (`key_id`: the signer's; see `ledger_keys`).
    pub async fn insert_checkpoint(
        &self,
        c: &StoredCheckpoint,
        key_id: &str,
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let advanced = sqlx::query(
                "UPDATE ledger_head SET checkpoint_size = $1 \
                 WHERE id = 1 AND checkpoint_size < $1 AND size >= $1 AND key_id = $2",
            )
            .bind(c.size)
            .bind(key_id.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if advanced != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("INSERT INTO ledger_checkpoints (size, root, note, time_ms) VALUES ($1, $2, $3, $4)")
                .bind(c.size)
                .bind(c.root.clone())
                .bind(c.note.clone())
                .bind(c.time_ms)
                .execute(&mut *tx)
                .await?;
            // The signed checkpoint for the NATS publisher, in its transaction (issue 21).
            if self.nats_outbox() {
                let event = super::outbox::checkpoint_event(c.size, &c.note);
                super::outbox::emit_events!(self, tx, [&event], c.time_ms);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// All stored checkpoints, smallest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
        on_read!(self, |pool| {
            let rows = sqlx::query(
                "SELECT size, root, note, time_ms FROM ledger_checkpoints ORDER BY size",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredCheckpoint {
                        size: r.try_get("size")?,
                        root: r.try_get("root")?,
                        note: r.try_get("note")?,
                        time_ms: r.try_get("time_ms")?,
                    })
                })
                .collect()
        })
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query("SELECT size, root, note, time_ms FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::Backend;

    fn row(index: i64, subjects: &[&str]) -> LedgerRow {
        LedgerRow::naming(index, subjects.iter().map(|s| (*s).to_owned()).collect())
    }

    /// Every staged row into a new run at once (the writer does it a slice per commit).
    async fn merge_all(store: &Store) -> u64 {
        let sorted = store.sort_staged_subjects(i64::MAX).await.unwrap();
        let run = store.next_subject_run().await.unwrap();
        store
            .append_subject_run(run, 0..sorted, Some(i64::MAX))
            .await
            .unwrap();
        sorted
    }

    /// A slice copies only from the sorted copy on the writer's connection: without it (never
    /// made, or gone with the connection) the copy fails and removes nothing staged, rather than
    /// finishing a run with rows missing.
    #[tokio::test]
    async fn a_slice_without_its_sorted_copy_fails_and_keeps_the_staged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("t.db")))
            .await
            .unwrap();
        store
            .append_ledger(&[row(0, &["a", "b"])], &[])
            .await
            .unwrap();
        assert!(store.append_subject_run(0, 0..2, Some(0)).await.is_err());
        assert_eq!(store.staged_subject_rows().await.unwrap(), 2);
        // Sorted, copied and finished: the sorted copy is dropped with the last slice.
        assert_eq!(merge_all(&store).await, 2);
        assert_eq!(store.staged_subject_rows().await.unwrap(), 0);
        assert!(store.append_subject_run(1, 0..2, None).await.is_err());
        let entries = store.ledger_entries_for_subject("a", 10).await.unwrap();
        assert_eq!(entries.len(), 1);
    }

    /// Subject rows are staged, move into a new run with each merge, and a lookup finds
    /// every entry of a record wherever its rows are (staged, one run, several runs), in index
    /// order, with none lost or doubled.
    #[tokio::test]
    async fn subject_lookups_read_staged_rows_and_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("s.db")))
            .await
            .unwrap();
        let indexes =
            |rows: Vec<(i64, String)>| rows.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
        store
            .append_ledger(&[row(0, &["a", "b"]), row(1, &["b"])], &[])
            .await
            .unwrap();
        assert_eq!(store.staged_subject_rows().await.unwrap(), 3);
        assert_eq!(
            indexes(store.ledger_entries_for_subject("b", 10).await.unwrap()),
            [0, 1]
        );
        assert_eq!(merge_all(&store).await, 3);
        assert_eq!(store.staged_subject_rows().await.unwrap(), 0);
        store
            .append_ledger(&[row(2, &["b", "c"]), row(3, &["a"])], &[])
            .await
            .unwrap();
        // Rows of `b` are now staged and in run 0.
        assert_eq!(
            indexes(store.ledger_entries_for_subject("b", 10).await.unwrap()),
            [0, 1, 2]
        );
        assert_eq!(
            indexes(store.ledger_entries_for_subject("a", 10).await.unwrap()),
            [0, 3]
        );
        assert_eq!(
            indexes(store.ledger_entries_for_subject("b", 2).await.unwrap()),
            [0, 1]
        );
        assert!(
            store
                .ledger_entries_for_subject("z", 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(merge_all(&store).await, 3);
        assert_eq!(
            indexes(store.ledger_entries_for_subject("b", 10).await.unwrap()),
            [0, 1, 2]
        );
        // Runs with and without the record, one merge each: the lookup visits every run.
        for index in 4..10 {
            let subjects: &[&str] = if index % 2 == 0 { &["b"] } else { &["c"] };
            store
                .append_ledger(&[row(index, subjects)], &[])
                .await
                .unwrap();
            assert_eq!(merge_all(&store).await, 1);
        }
        let Backend::Sqlite { read, .. } = &store.backend else {
            unreachable!("a SQLite store")
        };
        let runs: i64 = sqlx::query("SELECT COUNT(DISTINCT run) AS n FROM ledger_subject_runs")
            .fetch_one(read)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(runs, 8);
        assert_eq!(
            indexes(store.ledger_entries_for_subject("b", 10).await.unwrap()),
            [0, 1, 2, 4, 6, 8]
        );
        assert_eq!(
            indexes(store.ledger_entries_for_subject("c", 10).await.unwrap()),
            [2, 5, 7, 9]
        );
        assert_eq!(merge_all(&store).await, 0);
    }
}
