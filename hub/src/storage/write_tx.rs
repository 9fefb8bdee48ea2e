//! Write transactions that cannot nest and cannot outlive an error. Every write transaction of
//! the hub goes through `WriteTx`; none uses sqlx's `Pool::begin`.
//!
//! Why not sqlx's transactions: sqlx counts a connection's transaction depth itself and turns a
//! `begin` at depth > 0 into a `SAVEPOINT`, a `commit` at depth > 1 into a `RELEASE`. After
//! SQLITE_FULL or an I/O error SQLite may roll the whole transaction back on its own; the
//! `ROLLBACK` that sqlx then sends fails ("no transaction is active") and its depth stays at 1
//! while SQLite is back in autocommit. From then on every `begin` opens a savepoint; the first
//! later failure's `ROLLBACK TO SAVEPOINT` leaves that savepoint open as an outer transaction,
//! and every later "commit" only releases a nested savepoint inside it. Writes were answered as
//! committed and receipted while nothing reached the file, and the connection held the write
//! lock for good (issue 16). Here the statements are our own: `BEGIN` is refused by the database
//! if a transaction is somehow open, and a transaction that does not end in a successful
//! `COMMIT` or `ROLLBACK` closes its connection, which the database rolls back; the pool opens a
//! fresh one for the next writer.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, Pool};

/// An open write transaction on a connection taken from a pool.
///
/// Invariant: while a `WriteTx` exists, its connection is inside the transaction that `begin`
/// opened, and no other transaction. Unless `commit` or `rollback` succeeds, the connection is
/// closed rather than returned to the pool.
pub struct WriteTx<DB: Database> {
    conn: PoolConnection<DB>,
    /// Set only once `COMMIT` or `ROLLBACK` succeeded: the connection is back in autocommit.
    ended: bool,
}

impl<DB: Database> WriteTx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    /// Take a connection and open a transaction on it. SQLite: `BEGIN IMMEDIATE`, so the write
    /// lock is held from the start (a deferred transaction that writes later can fail with
    /// SQLITE_BUSY at once, whatever the busy timeout). `BEGIN` and `COMMIT` are prepared once
    /// per connection and reused (as unprepared statements they cost the ledger's group commit
    /// ~10 % of its appends/s on SQLite; docs/PERFORMANCE.md).
    pub async fn begin(pool: &Pool<DB>) -> Result<WriteTx<DB>, sqlx::Error> {
        // The guard exists before the statement runs: if `BEGIN` fails, or this future is
        // dropped while it runs, the connection is closed, never reused in an unknown state.
        let mut tx = WriteTx {
            conn: pool.acquire().await?,
            ended: false,
        };
        let begin = if DB::NAME == "SQLite" {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN"
        };
        sqlx::query(begin).execute(&mut *tx.conn).await?;
        Ok(tx)
    }

    /// Commit. On error the transaction is not committed as far as this hub is concerned: the
    /// connection is closed (the database rolls back whatever is left open).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.finish("COMMIT").await
    }

    /// Roll back; on error the connection is closed all the same.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.finish("ROLLBACK").await
    }

    async fn finish(mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        sqlx::query(statement).execute(&mut *self.conn).await?;
        // Only a statement that succeeded returns the connection to the pool, in autocommit.
        self.ended = true;
        Ok(())
    }
}

impl<DB: Database> Drop for WriteTx<DB> {
    fn drop(&mut self) {
        if !self.ended {
            // An error, an early return or a cancelled future: close the connection; the
            // database rolls back what it left open, and the pool opens a fresh one.
            self.conn.close_on_drop();
        }
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::str::FromStr;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};

    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::{Backend, Store};

    async fn insert(pool: &sqlx::SqlitePool, x: i64) -> Result<(), sqlx::Error> {
        let mut tx = WriteTx::begin(pool).await?;
        sqlx::query("INSERT INTO t (x) VALUES ($1)")
            .bind(x)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Issue 16's root cause, replayed: SQLite rolls a transaction back by itself
    /// (`RAISE(ROLLBACK)`, as SQLITE_FULL or an I/O error may), then a statement fails inside the
    /// next one (`RAISE(ABORT)`). With sqlx's own transactions the third write was answered as
    /// committed while it only released a savepoint of an outer transaction that never
    /// committed, and the write lock stayed taken. Here it is committed, and another connection
    /// sees it and can take the lock.
    #[tokio::test]
    async fn writes_after_a_rollback_by_the_database_really_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&DatabaseLocation::Sqlite(path.clone()))
            .await
            .unwrap();
        let Backend::Sqlite { write, .. } = &store.backend else {
            unreachable!("a SQLite store")
        };
        sqlx::raw_sql(
            "CREATE TABLE t (x INTEGER); CREATE TABLE switch (mode TEXT); \
             INSERT INTO switch VALUES ('off'); \
             CREATE TRIGGER r BEFORE INSERT ON t WHEN (SELECT mode FROM switch) = 'rollback' \
             BEGIN SELECT RAISE(ROLLBACK, 'injected'); END; \
             CREATE TRIGGER a BEFORE INSERT ON t WHEN (SELECT mode FROM switch) = 'abort' \
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .execute(write)
        .await
        .unwrap();
        let mode = |m: &'static str| async move {
            sqlx::query("UPDATE switch SET mode = $1")
                .bind(m)
                .execute(write)
                .await
                .unwrap();
        };
        mode("rollback").await;
        assert!(insert(write, 1).await.is_err());
        mode("abort").await;
        assert!(insert(write, 2).await.is_err());
        mode("off").await;
        insert(write, 3).await.unwrap();

        let mut other = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .busy_timeout(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap();
        let rows: Vec<i64> = sqlx::query("SELECT x FROM t ORDER BY x")
            .fetch_all(&mut other)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("x"))
            .collect();
        assert_eq!(
            rows,
            [3],
            "only the write answered as committed is committed"
        );
        sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK")
            .execute(&mut other)
            .await
            .expect("no transaction of the hub holds the write lock");
    }

    /// A transaction dropped without commit (an error path's `?`, a cancelled request) leaves
    /// nothing behind: its writes are gone and the next transaction commits for real.
    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("d.db")))
            .await
            .unwrap();
        let Backend::Sqlite { write, read } = &store.backend else {
            unreachable!("a SQLite store")
        };
        sqlx::raw_sql("CREATE TABLE t (x INTEGER)")
            .execute(write)
            .await
            .unwrap();
        {
            let mut tx = WriteTx::begin(write).await.unwrap();
            sqlx::query("INSERT INTO t (x) VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        insert(write, 2).await.unwrap();
        let rows: Vec<i64> = sqlx::query("SELECT x FROM t")
            .fetch_all(read)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("x"))
            .collect();
        assert_eq!(rows, [2]);
    }
}
