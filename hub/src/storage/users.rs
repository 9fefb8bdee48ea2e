//! Users, their roles and the grids they work in. Password hashes are argon2id PHC strings.

use std::collections::HashMap;

use sqlx::Row;

use super::identity::BUMP_VERSION;
use super::{Store, WriteTx, on_read, on_write};

pub struct NewUser {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub department: Option<String>,
    pub roles: Vec<String>,
    pub grids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub department: Option<String>,
    pub disabled: bool,
    pub roles: Vec<String>,
    pub grids: Vec<String>,
    /// When it was created (Unix epoch milliseconds).
    pub created_at: i64,
}

impl Store {
    /// `Ok(false)` when the username is taken (nothing written).
    pub async fn insert_user(&self, u: &NewUser, now: i64) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "INSERT INTO users (id, username, password_hash, department, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING",
            )
            .bind(u.id.clone())
            .bind(u.username.clone())
            .bind(u.password_hash.clone())
            .bind(u.department.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            for role in &u.roles {
                sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                    .bind(u.id.clone())
                    .bind(role.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            for grid in &u.grids {
                sqlx::query("INSERT INTO user_grids (user_id, grid) VALUES ($1, $2)")
                    .bind(u.id.clone())
                    .bind(grid.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            // New role assignments: every replica reloads its role permissions.
            sqlx::query("UPDATE policy_state SET version = version + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
        self.user_where("username", username).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
        self.user_where("id", id).await
    }

    async fn user_where(&self, column: &str, value: &str) -> Result<Option<UserRow>, sqlx::Error> {
        // Two fixed statements: the column name never comes from input.
        let sql = if column == "id" {
            "SELECT id, username, password_hash, department, disabled, created_at FROM users \
             WHERE id = $1"
        } else {
            "SELECT id, username, password_hash, department, disabled, created_at FROM users \
             WHERE username = $1"
        };
        on_read!(self, |pool| {
            let Some(row) = sqlx::query(sql)
                .bind(value.to_owned())
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let id: String = row.try_get("id")?;
            let roles = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
                .bind(id.clone())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("role"))
                .collect::<Result<Vec<_>, _>>()?;
            let grids = sqlx::query("SELECT grid FROM user_grids WHERE user_id = $1 ORDER BY grid")
                .bind(id.clone())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("grid"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(UserRow {
                id,
                username: row.try_get("username")?,
                password_hash: row.try_get("password_hash")?,
                department: row.try_get("department")?,
                disabled: row.try_get("disabled")?,
                roles,
                grids,
                created_at: row.try_get("created_at")?,
            }))
        })
    }

    /// Every user, by username, with its roles and grids (three statements, not one per user).
    pub async fn users(&self) -> Result<Vec<UserRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, username, password_hash, department, disabled, created_at FROM users \
                 ORDER BY username",
            )
            .fetch_all(pool)
            .await?;
            let mut roles: HashMap<String, Vec<String>> = HashMap::new();
            for r in sqlx::query("SELECT user_id, role FROM user_roles ORDER BY role")
                .fetch_all(pool)
                .await?
            {
                roles
                    .entry(r.try_get("user_id")?)
                    .or_default()
                    .push(r.try_get("role")?);
            }
            let mut grids: HashMap<String, Vec<String>> = HashMap::new();
            for r in sqlx::query("SELECT user_id, grid FROM user_grids ORDER BY grid")
                .fetch_all(pool)
                .await?
            {
                grids
                    .entry(r.try_get("user_id")?)
                    .or_default()
                    .push(r.try_get("grid")?);
            }
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get("id")?;
                    Ok(UserRow {
                        roles: roles.remove(&id).unwrap_or_default(),
                        grids: grids.remove(&id).unwrap_or_default(),
                        id,
                        username: row.try_get("username")?,
                        password_hash: row.try_get("password_hash")?,
                        department: row.try_get("department")?,
                        disabled: row.try_get("disabled")?,
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect()
        })
    }

    /// Replace user `id`'s grids (its roles stay); `Ok(false)` when there is no such user
    /// (nothing written). The grids are where it holds its roles: the policy version is bumped
    /// in the same transaction.
    pub async fn set_user_grids(&self, id: &str, grids: &[String]) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            let found = sqlx::query("SELECT 1 AS one FROM users WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !found {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM user_grids WHERE user_id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
            for grid in grids {
                sqlx::query("INSERT INTO user_grids (user_id, grid) VALUES ($1, $2)")
                    .bind(id.to_owned())
                    .bind(grid.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
