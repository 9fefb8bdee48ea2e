//! The ledger's signing key as the database knows it (issue 22, migration 0025): which key signs
//! checkpoints now (`ledger_head.key_id`, the hex C2SP key hash) and the transition statement of
//! every rotation (`ledger_key_transitions`). The keyring file holds the keys themselves.
//!
//! The fence: `insert_checkpoint` stores a checkpoint only while its signer's key id is
//! `ledger_head.key_id`, and `record_key_transition` moves that id by compare-and-swap, in the
//! same transaction as the statement, and only while no checkpoint newer than the one the
//! statement names is stored. So the retired key signs nothing past the transition's size, even
//! in a process that has not yet learnt of the rotation.

use sqlx::Row;

use super::{Store, WriteTx, on_read, on_write};

/// A rotation to record (`record_key_transition`).
#[derive(Debug, Clone)]
pub struct KeyTransitionRow {
    pub old_key_id: String,
    pub new_key_id: String,
    /// The size of the checkpoint the statement names.
    pub size: i64,
    /// The transition statement (a signed note).
    pub note: String,
    pub time_ms: i64,
}

impl Store {
    /// The key that signs checkpoints now (`None` before any process claimed one).
    pub async fn ledger_key_id(&self) -> Result<Option<String>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT key_id FROM ledger_head WHERE id = 1")
                .fetch_one(pool)
                .await?
                .try_get("key_id")
        })
    }

    /// Name `key_id` as the signing key if none is named yet; returns the key named now. Once
    /// a key is named this only reads (every start of a process opens the ledger).
    pub async fn claim_ledger_key(&self, key_id: &str) -> Result<String, sqlx::Error> {
        if let Some(named) = self.ledger_key_id().await? {
            return Ok(named);
        }
        on_write!(self, |pool| {
            sqlx::query("UPDATE ledger_head SET key_id = $1 WHERE id = 1 AND key_id IS NULL")
                .bind(key_id.to_owned())
                .execute(pool)
                .await?;
            sqlx::query("SELECT key_id FROM ledger_head WHERE id = 1")
                .fetch_one(pool)
                .await?
                .try_get::<Option<String>, _>("key_id")?
                .ok_or_else(|| sqlx::Error::Protocol("the ledger's key id is unset".into()))
        })
    }

    /// The newest checkpoint's size as the coordination row holds it (-1: none yet).
    pub async fn checkpoint_size(&self) -> Result<i64, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT checkpoint_size FROM ledger_head WHERE id = 1")
                .fetch_one(pool)
                .await?
                .try_get("checkpoint_size")
        })
    }

    /// Record a rotation: the signing key becomes `t.new_key_id` if it is `t.old_key_id` and the
    /// newest stored checkpoint is still of size `checkpoint_size` (-1: none), and the
    /// statement is stored, in one transaction. `false` (nothing done) if either moved.
    pub async fn record_key_transition(
        &self,
        t: &KeyTransitionRow,
        checkpoint_size: i64,
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let moved = sqlx::query(
                "UPDATE ledger_head SET key_id = $1 \
                 WHERE id = 1 AND key_id = $2 AND checkpoint_size = $3",
            )
            .bind(t.new_key_id.clone())
            .bind(t.old_key_id.clone())
            .bind(checkpoint_size)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO ledger_key_transitions \
                 (position, old_key_id, new_key_id, size, note, time_ms) \
                 SELECT COALESCE(MAX(position), 0) + 1, $1, $2, $3, $4, $5 \
                 FROM ledger_key_transitions",
            )
            .bind(t.old_key_id.clone())
            .bind(t.new_key_id.clone())
            .bind(t.size)
            .bind(t.note.clone())
            .bind(t.time_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Every transition statement, oldest first.
    pub async fn key_transitions(&self) -> Result<Vec<String>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT note FROM ledger_key_transitions ORDER BY position")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get("note"))
                .collect()
        })
    }
}
