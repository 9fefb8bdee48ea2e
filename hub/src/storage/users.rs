//! Users, their roles and the grids they work in. Password hashes are argon2id PHC strings.

use sqlx::Row;

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
            "SELECT id, username, password_hash, department, disabled FROM users WHERE id = $1"
        } else {
            "SELECT id, username, password_hash, department, disabled FROM users WHERE username = $1"
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
            }))
        })
    }
}
