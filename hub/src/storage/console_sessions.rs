//! Console sessions (`console_sessions`): a token's SHA-256, its user, its CSRF token and when it
//! was made and last used. Nothing here decides whether a session is still good; that is
//! `crate::console::session`.

use sqlx::Row;

use super::{Store, on_read, on_write};

#[derive(Debug, Clone)]
pub struct ConsoleSessionRow {
    pub user_id: String,
    pub csrf_token: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

impl Store {
    pub async fn insert_console_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf_token: &str,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO console_sessions \
                 (token_hash, user_id, csrf_token, created_ms, last_seen_ms) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(token_hash.to_owned())
            .bind(user_id.to_owned())
            .bind(csrf_token.to_owned())
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSessionRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query(
                "SELECT user_id, csrf_token, created_ms, last_seen_ms \
                 FROM console_sessions WHERE token_hash = $1",
            )
            .bind(token_hash.to_owned())
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(ConsoleSessionRow {
                    user_id: r.try_get("user_id")?,
                    csrf_token: r.try_get("csrf_token")?,
                    created_ms: r.try_get("created_ms")?,
                    last_seen_ms: r.try_get("last_seen_ms")?,
                })
            })
            .transpose()
        })
    }

    /// The session was used at `now_ms`.
    pub async fn touch_console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query("UPDATE console_sessions SET last_seen_ms = $2 WHERE token_hash = $1")
                .bind(token_hash.to_owned())
                .bind(now_ms)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ends one session; `false` if there was none.
    pub async fn delete_console_session(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
                .bind(token_hash.to_owned())
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Deletes the sessions made before `created_before` or idle since before `seen_before`.
    pub async fn delete_stale_console_sessions(
        &self,
        created_before: i64,
        seen_before: i64,
    ) -> Result<u64, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "DELETE FROM console_sessions WHERE created_ms < $1 OR last_seen_ms < $2",
            )
            .bind(created_before)
            .bind(seen_before)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
