//! The repository layer: all SQL of the hub lives under this module. Two backends, SQLite (the
//! embedded default, WAL, one file) and PostgreSQL, run the same statements (`$n` parameters
//! work on both); each has its own migrations. On SQLite every write goes through a
//! single-connection pool, so writers queue instead of failing with "database is locked", while
//! reads use their own pool.

mod activity;
mod anomaly_reviews;
mod audit_search;
mod cases;
mod catalog;
mod console_sessions;
mod disclosure;
// A database URL with several hosts: the pool follows their primary (issue 22).
mod failover;
mod grants;
mod grids;
mod idempotency;
mod identity;
mod keys;
mod ledger;
mod ledger_keys;
// The outbox of webhooks and the NATS publisher (issue 21).
pub(crate) mod outbox;
mod purposes;
mod records;
mod retention;
mod role_changes;
pub mod sealed_fields;
mod statistics;
mod users;
// The ledger-and-keys page and the grant watchlist (issue 20).
mod watch;
// Departments as witnesses: their keys and cosignatures (issue 21).
mod witnesses;
mod write_tx;

use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use activity::{CaseLoad, DisclosureRow};
pub use anomaly_reviews::AnomalyReviewRow;
pub use audit_search::{AuditFilters, AuditWindow};
pub use cases::{AssignmentRow, CaseChange, CaseEvent, CaseRow, NewCase};
pub use catalog::StoredCategory;
pub use console_sessions::ConsoleSessionRow;
pub use disclosure::{FieldNeeds, PageQuery, PageRecord};
pub use grants::{
    Consent, ConsentAnswer, ConsentState, GrantEvent, GrantRow, GrantTransition, QuotaCharge,
    QuotaClaim, Transitioned, UsageIncrease,
};
pub use grids::GridRow;
pub use idempotency::Claim;
pub use identity::{
    ClientRow, DepartmentRow, Inserted, NewClient, PermissionLine, PolicySnapshot, RoleRow,
    RoleSeed, Versions,
};
pub use keys::{DekTable, KekRow, KekState, MovedDek, RewrapCursor, StoredDek};
pub use ledger::{
    EntryFilter, Hash, LedgerAppend, LedgerChunk, LedgerHead, LedgerPageRow, LedgerRow, NodeId,
    StoredCheckpoint,
};
pub use ledger_keys::KeyTransitionRow;
pub use outbox::{DeliveryMark, OutboxEvent, OutboxRow, ReplayFilter, WebhookEndpointRow};
pub use purposes::PurposeRow;
pub use records::{
    BlindEntry, NewRecord, RecordUpdate, Replacement, StoredRecord, UpdateOutcome, UpsertKey,
    UpsertOutcome,
};
pub use retention::DueRecord;
pub use role_changes::{AdminOutcome, Apply, Guarded, PolicyGuard, RecoveredAdmin};
pub use statistics::{CountQuery, CountRow};
pub use users::{NewUser, UserRow};
pub use watch::DekCount;
pub use witnesses::{CosignatureRow, WitnessKeyRow};
pub use write_tx::WriteTx;

use crate::config::DatabaseLocation;

/// The schema's migrations per backend (public so that tests can build an older schema).
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

#[derive(Clone)]
enum Backend {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// A handle on the hub's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Whether events also go to the NATS sink of the outbox (`Store::publish_to_nats`).
    nats_outbox: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Run `$body` with `$pool` bound to the backend's read pool (SQLite) or its one pool (PostgreSQL).
/// The body is type-checked once per backend, so the same statement text serves both.
macro_rules! on_read {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::storage::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::storage::Backend::Postgres($pool) => $body,
        }
    };
}

/// As `on_read!`, with the serialised write pool on SQLite. On PostgreSQL the body (one whole
/// transaction, or one statement) runs again when the database asks for a retry (`retryable`:
/// a serialization failure or a deadlock), at most `WRITE_ATTEMPTS` times in all. A failed
/// attempt committed nothing, so nothing is done twice; what the body returns is answered only
/// after an attempt committed.
macro_rules! on_write {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::storage::Backend::Sqlite { write: $pool, .. } => $body,
            $crate::storage::Backend::Postgres($pool) => {
                let mut attempt = 1;
                loop {
                    let result = async { $body }.await;
                    match result {
                        Err(e)
                            if attempt < $crate::storage::WRITE_ATTEMPTS
                                && $crate::storage::Retryable::retryable(&e) =>
                        {
                            ::tracing::info!(
                                attempt,
                                "a write transaction is retried: the database asked for it"
                            );
                            $crate::storage::retry_pause(attempt).await;
                            attempt += 1;
                        }
                        other => break other,
                    }
                }
            }
        }
    };
}

/// Attempts at one write transaction on PostgreSQL (`on_write!`).
pub const WRITE_ATTEMPTS: u32 = 8;

/// An error after which the whole transaction may simply run again: SQLSTATE 40001
/// (`serialization_failure`: PostgreSQL under SERIALIZABLE or REPEATABLE READ, and the
/// distributed engines at any level) or 40P01 (`deadlock_detected`). Such a transaction was
/// rolled back by the database and committed nothing.
pub trait Retryable {
    fn retryable(&self) -> bool;
}

impl Retryable for sqlx::Error {
    fn retryable(&self) -> bool {
        retryable(self)
    }
}

impl Retryable for StoreError {
    fn retryable(&self) -> bool {
        match self {
            StoreError::Query(e) | StoreError::Connect(e) => retryable(e),
            StoreError::Migrate(_) => false,
        }
    }
}

/// Whether `e` asks for the transaction to be run again (`Retryable`).
pub fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// The pause before attempt `attempt + 1`: exponential from 2 ms, at most 250 ms, with full
/// jitter, so transactions that collided do not collide again in step.
pub async fn retry_pause(attempt: u32) {
    let ceiling_us = (2_000u64 << attempt.min(7)).min(250_000);
    let us = rand::random_range(ceiling_us / 4..=ceiling_us);
    tokio::time::sleep(Duration::from_micros(us)).await;
}
pub(crate) use {on_read, on_write};

/// Longest wait for a PostgreSQL connection (see `open_postgres`).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pool options without sqlx's idle/lifetime reaper. In sqlx 0.9.0 a pool that is closed while
/// a connection is being taken can wrap its idle count below zero; the reaper then loops over
/// `0..usize::MAX` without yielding, a tokio worker spins at 100 % and the runtime never shuts
/// down (sqlx issue #3645, fix in PR #4289; seen here once, as a hung test at hub shutdown).
/// With no idle timeout, no lifetime and no minimum, sqlx starts no reaper. SQLite connections
/// are files and lose nothing by it; PostgreSQL connections that sat idle are pinged before use
/// (`open_postgres`), and the pool holds at most 16.
fn no_reaper<DB: sqlx::Database>(
    options: sqlx::pool::PoolOptions<DB>,
) -> sqlx::pool::PoolOptions<DB> {
    options
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// What a process opening the database mostly does; on SQLite it sets how reads are served and
/// how often the WAL is checkpointed. PostgreSQL is opened the same way for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The hub serving requests: reads map the file (`mmap_size` 1 GiB), and SQLite's default
    /// checkpoint every 1 000 WAL pages keeps the log short.
    Serving,
    /// A bulk writer (`gridhub import`, `gridhub connector run`): reads go through SQLite's own
    /// caches, 16 MB for the writer and 2 MB per reader (no mapping, so the resident set does
    /// not grow with the database), and the WAL is checkpointed every 16 384 pages (64 MB): a
    /// blind-index page dirtied by several batches is copied into the main file once, not once
    /// per batch.
    Bulk,
}

impl Store {
    /// Open (and create, for SQLite) the database and bring its schema up to date.
    pub async fn open(location: &DatabaseLocation) -> Result<Store, StoreError> {
        Store::open_for(location, Workload::Serving).await
    }

    /// `open`, tuned for `workload`.
    pub async fn open_for(
        location: &DatabaseLocation,
        workload: Workload,
    ) -> Result<Store, StoreError> {
        let store = match location {
            DatabaseLocation::Sqlite(path) => Store::open_sqlite(path, workload).await?,
            DatabaseLocation::Postgres(url) => Store::open_postgres(url.expose_secret()).await?,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_sqlite(path: &Path, workload: Workload) -> Result<Store, StoreError> {
        let (mmap_size, checkpoint_pages, read_cache) = match workload {
            Workload::Serving => ("1073741824", "1000", "-16384"),
            Workload::Bulk => ("0", "16384", "-2048"),
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk when it returns (the ledger relies on this).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Erased records' bytes are overwritten, not left in free pages.
            .pragma("secure_delete", "ON")
            // Statement journals of multi-row inserts stay in memory, not in temp files.
            .pragma("temp_store", "MEMORY")
            // Reads map the file instead of copying each page through `pread` into a 2 MB
            // per-connection cache (disclosure pages touch a few hundred pages each).
            .pragma("mmap_size", mmap_size)
            .pragma("cache_size", "-16384")
            // A page of up to 500 rows goes to the caller without the worker thread blocking:
            // with sqlx's default of 50 buffered rows, the worker waited on a full channel and
            // every row taken after that woke it again (a futex round trip per row).
            .row_buffer_size(512);
        // No ping before each use: a file connection does not go away, and the ping is one more
        // trip through the connection's worker thread per statement. No reaper (`no_reaper`).
        let write = no_reaper(SqlitePoolOptions::new())
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", checkpoint_pages),
            )
            .await
            .map_err(StoreError::Connect)?;
        let read = no_reaper(SqlitePoolOptions::new())
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true).pragma("cache_size", read_cache))
            .await
            .map_err(StoreError::Connect)?;
        Ok(Store {
            backend: Backend::Sqlite { read, write },
            nats_outbox: std::sync::Arc::default(),
        })
    }

    async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        // One host, or several of which the pool follows the primary (`failover`, issue 22).
        let hosts = failover::Hosts::parse(url)?;
        let pool = hosts
            .connect(
                no_reaper(PgPoolOptions::new())
                    .max_connections(16)
                    // Ping only connections that sat idle (`failover::IDLE_PING_AFTER`); sqlx's
                    // default pings before every use, a round trip per statement.
                    .test_before_acquire(false)
                    // sqlx retries a refused connection (the server is down or restarting) with
                    // backoff until this deadline: it bounds how long a request waits before its
                    // 503 during an outage (10 s before issue 16), and how long one waits for a
                    // free connection.
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT),
            )
            .await?;
        Ok(Store {
            backend: Backend::Postgres(pool),
            nats_outbox: std::sync::Arc::default(),
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .map_err(StoreError::Migrate)?;
        self.seed_purposes().await?;
        Ok(())
    }

    /// From now on, case events and checkpoints also get a `nats` outbox row (the NATS
    /// publisher is configured).
    pub fn publish_to_nats(&self) {
        self.nats_outbox
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether events get a `nats` outbox row.
    pub fn nats_outbox(&self) -> bool {
        self.nats_outbox.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections of each pool, for `/metrics`: (pool, open, idle, most allowed).
    pub fn pool_use(&self) -> Vec<(&'static str, u32, u32, u32)> {
        fn of<DB: sqlx::Database>(
            name: &'static str,
            pool: &sqlx::Pool<DB>,
        ) -> (&'static str, u32, u32, u32) {
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            (
                name,
                pool.size(),
                idle,
                pool.options().get_max_connections(),
            )
        }
        match &self.backend {
            Backend::Sqlite { read, write } => vec![of("read", read), of("write", write)],
            Backend::Postgres(pool) => vec![of("postgres", pool)],
        }
    }

    /// Which backend this is, for logs and `/readyz`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Round-trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_read!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Close the pools (waits for checked-out connections).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// SQLite only: move the WAL into the main file and truncate it, so bytes overwritten by
    /// an erasure do not linger in the log. A no-op on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> Result<(), sqlx::Error> {
        if let Backend::Sqlite { write, .. } = &self.backend {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(write)
                .await?;
        }
        Ok(())
    }
}

/// True when `e` is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::SealedField;

    /// Migrations 0010 to 0012 rebuild `ledger_subjects` (as runs and staged rows) and move
    /// `record_fields` (without rowid, then into `records.sealed_fields`) on SQLite: a database
    /// written before them keeps every row, its sealed fields read back byte for byte in the
    /// stored format, and its subjects are found afterwards.
    #[tokio::test]
    async fn sqlite_rebuilt_tables_keep_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let old = sqlx::SqlitePool::connect(&url).await.unwrap();
        SQLITE_MIGRATIONS.run_to(9, &old).await.unwrap();
        for sql in [
            "INSERT INTO grids (code, name, kind, created_at) VALUES ('g', 'G', 'physical', 0)",
            "INSERT INTO purposes (id, description, legal_basis, created_at) \
             VALUES ('p', 'P', 'consent', 0)",
            "INSERT INTO records (id, category, grid, version, purpose, collector, plain_fields, \
             kek_version, wrapped_dek, created_at, updated_at) \
             VALUES ('r1', 'resident', 'g', 1, 'p', 'w', '{}', 1, x'01', 0, 0), \
             ('r2', 'resident', 'g', 1, 'p', 'w', '{}', 1, x'02', 0, 0)",
            "INSERT INTO record_fields (record_id, field, kek_version, sealed) \
             VALUES ('r1', 'phone', 2, x'0c'), ('r1', 'birth_date', 3, zeroblob(300)), \
             ('r1', 'name', 1, x'0a0b')",
            "INSERT INTO ledger_entries (idx, time_ms, actor, action, decision, canonical, \
             leaf_hash) VALUES (0, 0, 'a', 'data.read', 'allow', '{\"index\":0}', x'00'), \
             (1, 0, 'a', 'data.read', 'allow', '{\"index\":1}', x'00'), \
             (2, 0, 'a', 'data.read', 'allow', '{\"index\":2}', x'00')",
            "INSERT INTO ledger_subjects (record_id, idx) VALUES ('r1', 0), ('r2', 0), ('r1', 1)",
            "INSERT INTO ledger_subjects_recent (record_id, idx) VALUES ('r1', 2), ('r2', 2)",
        ] {
            sqlx::query(sql).execute(&old).await.unwrap();
        }
        old.close().await;

        let store = Store::open(&crate::config::DatabaseLocation::Sqlite(path))
            .await
            .unwrap();
        let Backend::Sqlite { read, .. } = &store.backend else {
            unreachable!("a SQLite store")
        };
        let expected = [
            SealedField {
                field: "birth_date".to_owned(),
                kek_version: 3,
                sealed: vec![0; 300],
            },
            SealedField {
                field: "name".to_owned(),
                kek_version: 1,
                sealed: vec![0x0a, 0x0b],
            },
            SealedField {
                field: "phone".to_owned(),
                kek_version: 2,
                sealed: vec![0x0c],
            },
        ];
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT sealed_fields FROM records WHERE id = 'r1'")
                .fetch_one(read)
                .await
                .unwrap();
        assert_eq!(Some(stored), sealed_fields::encode(&expected).unwrap());
        assert_eq!(store.record("r1").await.unwrap().unwrap().sealed, expected);
        assert!(store.record("r2").await.unwrap().unwrap().sealed.is_empty());
        let runs: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT run, record_id, idx FROM ledger_subject_runs ORDER BY run, record_id, idx",
        )
        .fetch_all(read)
        .await
        .unwrap();
        assert_eq!(
            runs,
            [
                (0, "r1".to_owned(), 0),
                (0, "r1".to_owned(), 1),
                (0, "r2".to_owned(), 0)
            ]
        );
        assert_eq!(store.staged_subject_rows().await.unwrap(), 2);
        let found = |rows: Vec<(i64, String)>| rows.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(
            found(store.ledger_entries_for_subject("r1", 10).await.unwrap()),
            [0, 1, 2]
        );
        assert_eq!(
            found(store.ledger_entries_for_subject("r2", 10).await.unwrap()),
            [0, 2]
        );
    }
}
