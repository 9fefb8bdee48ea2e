//! Changes that can take `roles:write` away from its last holder — replacing a role's
//! permissions, replacing a user's roles, disabling a user — and the operator's recovery that
//! restores it.
//!
//! Invariant (guarded change): one write transaction takes the policy lock first (the version
//! bump: SQLite's `BEGIN IMMEDIATE` already holds the write lock; PostgreSQL's row lock on
//! `policy_state` queues every other policy change behind it, and under READ COMMITTED each
//! later statement sees what the one before it committed), applies the change, reads the whole
//! policy as it would commit (`read_policy_snapshot!` on the transaction) and asks the caller's
//! `PolicyGuard`. A refused change, or any change under `Apply::Check`, is rolled back. So two
//! concurrent changes cannot both pass a check that each would pass alone.

use async_trait::async_trait;
use sqlx::Row;

use super::identity::{BUMP_VERSION, read_policy_snapshot};
use super::{Inserted, PermissionLine, PolicySnapshot, RoleSeed, Store, WriteTx, on_write};

/// A condition on the whole policy that a guarded change must leave true.
#[async_trait]
pub trait PolicyGuard: Send + Sync {
    /// Is `after` — the policy as the change would commit it — acceptable? Any doubt is `false`.
    async fn admits(&self, after: &PolicySnapshot) -> bool;
}

/// Whether a guarded change is only checked (always rolled back) or committed if admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    Check,
    Commit,
}

/// Outcome of a guarded change.
#[derive(Debug, PartialEq, Eq)]
pub enum Guarded<T> {
    /// The guard admitted it (and, under `Apply::Commit`, it is committed).
    Admitted(T),
    /// The guard refused it; nothing was written.
    Refused,
}

/// The admin account the recovery makes sure of.
pub struct RecoveredAdmin {
    /// The id to create the account with if there is none of that username.
    pub new_id: String,
    pub username: String,
    pub password_hash: String,
    /// The role it must hold.
    pub role: String,
}

/// What the recovery did to the account.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// Existed (its id): enabled, its password replaced, `role` added if it lacked it.
    Restored(String),
    /// Did not exist: created with `role` (`new_id`).
    Created,
}

/// Finish a guarded transaction: roll back unless admitted under `Apply::Commit`.
macro_rules! finish_guarded {
    ($tx:ident, $guard:expr, $apply:expr, $value:expr) => {{
        let after = read_policy_snapshot!(&mut *$tx)?;
        if !$guard.admits(&after).await {
            $tx.rollback().await?;
            return Ok(Guarded::Refused);
        }
        match $apply {
            Apply::Check => $tx.rollback().await?,
            Apply::Commit => $tx.commit().await?,
        }
        Ok(Guarded::Admitted($value))
    }};
}

impl Store {
    /// Create or replace a role's permissions (object, action, grids) if `guard` admits the
    /// result; `Created` when the role is new.
    pub async fn put_role(
        &self,
        name: &str,
        description: &str,
        permissions: &[PermissionLine],
        now: i64,
        guard: &dyn PolicyGuard,
        apply: Apply,
    ) -> Result<Guarded<Inserted>, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            // The policy lock, before anything is read (module invariant).
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            let existed = sqlx::query("SELECT 1 AS one FROM roles WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            sqlx::query(
                "INSERT INTO roles (name, description, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET description = excluded.description",
            )
            .bind(name.to_owned())
            .bind(description.to_owned())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM casbin_rule WHERE ptype = 'p' AND v0 = $1")
                .bind(name.to_owned())
                .execute(&mut *tx)
                .await?;
            for (object, action, grids) in permissions {
                sqlx::query(
                    "INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', $1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(name.to_owned())
                .bind(grids.clone())
                .bind(object.clone())
                .bind(action.clone())
                .execute(&mut *tx)
                .await?;
            }
            let outcome = if existed {
                Inserted::AlreadyExists
            } else {
                Inserted::Created
            };
            finish_guarded!(tx, guard, apply, outcome)
        })
    }

    /// Replace a user's roles (its grids stay) if `guard` admits the result. `Admitted(false)`
    /// when there is no such user (nothing written).
    pub async fn set_user_roles(
        &self,
        user_id: &str,
        roles: &[String],
        guard: &dyn PolicyGuard,
        apply: Apply,
    ) -> Result<Guarded<bool>, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            let found = sqlx::query("SELECT 1 AS one FROM users WHERE id = $1")
                .bind(user_id.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !found {
                tx.rollback().await?;
                return Ok(Guarded::Admitted(false));
            }
            sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                .bind(user_id.to_owned())
                .execute(&mut *tx)
                .await?;
            for role in roles {
                sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                    .bind(user_id.to_owned())
                    .bind(role.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            finish_guarded!(tx, guard, apply, true)
        })
    }

    /// Disable or enable user `id` if `guard` admits the result (a disabled user's role
    /// assignments leave the policy, so disabling can take `roles:write` from its last holder).
    /// `Admitted(false)` when there is no such user (nothing written).
    pub async fn set_user_disabled(
        &self,
        id: &str,
        disabled: bool,
        guard: &dyn PolicyGuard,
        apply: Apply,
    ) -> Result<Guarded<bool>, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            let done = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Guarded::Admitted(false));
            }
            finish_guarded!(tx, guard, apply, true)
        })
    }

    /// The operator's recovery, in one transaction: every role of `roles` gets exactly its
    /// description and permissions back (created if missing; other roles are left alone), and
    /// `admin` exists, is enabled, has the given password hash and holds its role. Bumps the
    /// policy version, so a running hub follows on its next request.
    pub async fn recover_admin(
        &self,
        roles: &[RoleSeed],
        admin: &RecoveredAdmin,
        now: i64,
    ) -> Result<AdminOutcome, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            for (name, description, permissions) in roles {
                sqlx::query(
                    "INSERT INTO roles (name, description, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET description = excluded.description",
                )
                .bind(*name)
                .bind(*description)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM casbin_rule WHERE ptype = 'p' AND v0 = $1")
                    .bind(*name)
                    .execute(&mut *tx)
                    .await?;
                for (object, action, grids) in permissions {
                    sqlx::query(
                        "INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) \
                         VALUES ('p', $1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(*name)
                    .bind(grids.clone())
                    .bind(object.clone())
                    .bind(action.clone())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let existing = sqlx::query("SELECT id FROM users WHERE username = $1")
                .bind(admin.username.clone())
                .fetch_optional(&mut *tx)
                .await?;
            let (id, outcome) = match existing {
                Some(row) => {
                    let id: String = row.try_get("id")?;
                    sqlx::query("UPDATE users SET disabled = $1, password_hash = $2 WHERE id = $3")
                        .bind(false)
                        .bind(admin.password_hash.clone())
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                    (id.clone(), AdminOutcome::Restored(id))
                }
                None => {
                    sqlx::query(
                        "INSERT INTO users (id, username, password_hash, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(admin.new_id.clone())
                    .bind(admin.username.clone())
                    .bind(admin.password_hash.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    (admin.new_id.clone(), AdminOutcome::Created)
                }
            };
            sqlx::query(
                "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(admin.role.clone())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }
}
