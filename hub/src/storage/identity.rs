//! Departments, department clients, roles with their permissions (casbin policy lines) and the
//! policy version. Every statement that changes who may do what bumps `policy_state.version` in
//! the same transaction, so every replica reloads its enforcer on its next request.

use sqlx::Row;

use super::{Store, WriteTx, on_read, on_write};

#[derive(Debug, Clone)]
pub struct DepartmentRow {
    pub id: String,
    pub name: String,
    pub jurisdiction: Vec<String>,
}

pub struct NewClient {
    pub id: String,
    pub department: String,
    pub thumbprint: String,
    pub certificate_pem: String,
    /// `hub` or `external`.
    pub issuer: &'static str,
    pub not_after: i64,
    pub age_recipient: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: String,
    pub department: String,
    pub thumbprint: String,
    pub certificate_pem: String,
    pub issuer: String,
    pub not_after: i64,
    pub age_recipient: Option<String>,
    pub active: bool,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub permissions: Vec<PermissionLine>,
}

/// Everything the enforcer loads: `p` lines (role, grids, object, action) and `g` lines
/// (subject, role, grids).
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    pub permissions: Vec<(String, String, String, String)>,
    pub assignments: Vec<(String, String, String)>,
}

/// A stored permission: (object, action, grids).
pub type PermissionLine = (String, String, String);

/// A role to seed: (name, description, permissions).
pub type RoleSeed = (&'static str, &'static str, Vec<PermissionLine>);

/// Outcome of an insert keyed by a unique id.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    Created,
    AlreadyExists,
}

/// The versions of the state every request depends on. `policy` is bumped with every change
/// of role permissions, roles, departments and clients; `decision` with every change the
/// decision index depends on (grants, cases, jurisdictions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub policy: i64,
    pub decision: i64,
}

/// Read the whole policy (`PolicySnapshot`) through `$on`: a pool, or `&mut *tx` to see what a
/// transaction would commit. A macro so that one text serves both backends and both kinds of
/// executor; it evaluates `$on` once per statement.
macro_rules! read_policy_snapshot {
    ($on:expr) => {{
        let permissions =
            sqlx::query("SELECT v0, v1, v2, v3 FROM casbin_rule WHERE ptype = 'p' ORDER BY id")
                .fetch_all($on)
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("v0")?,
                        r.try_get("v1")?,
                        r.try_get("v2")?,
                        r.try_get("v3")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // A user holds each role in each of its grids, or everywhere when it has none.
        let users = sqlx::query(
            "SELECT r.user_id, r.role, g.grid FROM user_roles r \
             JOIN users u ON u.id = r.user_id AND NOT u.disabled \
             LEFT JOIN user_grids g ON g.user_id = r.user_id",
        )
        .fetch_all($on)
        .await?;
        let mut assignments = Vec::with_capacity(users.len());
        for r in users {
            let user: String = r.try_get("user_id")?;
            let grid: Option<String> = r.try_get("grid")?;
            assignments.push((
                format!("user:{user}"),
                r.try_get("role")?,
                grid.unwrap_or_else(|| "*".to_owned()),
            ));
        }
        let clients = sqlx::query(
            "SELECT r.client_id, r.role FROM client_roles r \
             JOIN clients c ON c.id = r.client_id AND c.status = 'active'",
        )
        .fetch_all($on)
        .await?;
        for r in clients {
            let client: String = r.try_get("client_id")?;
            assignments.push((
                format!("client:{client}"),
                r.try_get("role")?,
                "*".to_owned(),
            ));
        }
        Ok::<PolicySnapshot, sqlx::Error>(PolicySnapshot {
            permissions,
            assignments,
        })
    }};
}
pub(crate) use read_policy_snapshot;

pub(super) const BUMP_VERSION: &str = "UPDATE policy_state SET version = version + 1 WHERE id = 1";

const CLIENT_COLUMNS: &str = "id, department_id, cert_thumbprint, certificate_pem, issuer, \
     not_after, age_recipient, status";

impl Store {
    /// The role-permission and decision versions in one round trip (what a request reads once
    /// to decide whether its cached client, roles and decision index are current).
    pub async fn versions(&self) -> Result<Versions, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query(
                "SELECT (SELECT version FROM policy_state WHERE id = 1) AS policy, \
                 (SELECT version FROM decision_state WHERE id = 1) AS decision",
            )
            .fetch_one(pool)
            .await?;
            Ok(Versions {
                policy: row.try_get("policy")?,
                decision: row.try_get("decision")?,
            })
        })
    }

    pub async fn policy_version(&self) -> Result<i64, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT version FROM policy_state WHERE id = 1")
                .fetch_one(pool)
                .await?
                .try_get("version")
        })
    }

    pub async fn policy_snapshot(&self) -> Result<PolicySnapshot, sqlx::Error> {
        on_read!(self, |pool| read_policy_snapshot!(pool))
    }

    /// Insert the shipped roles that are missing, with their default permissions. Roles that
    /// exist keep whatever an admin made of them.
    pub async fn seed_roles(&self, roles: &[RoleSeed], now: i64) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let mut changed = false;
            for (name, description, permissions) in roles {
                let done = sqlx::query(
                    "INSERT INTO roles (name, description, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(*name)
                .bind(*description)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    continue;
                }
                changed = true;
                for (object, action, grids) in permissions {
                    sqlx::query(
                        "INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', $1, $2, $3, $4)",
                    )
                    .bind(*name)
                    .bind(grids.clone())
                    .bind(object.clone())
                    .bind(action.clone())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if changed {
                sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    pub async fn role_names(&self) -> Result<Vec<String>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT name FROM roles ORDER BY name")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get("name"))
                .collect()
        })
    }

    pub async fn role(&self, name: &str) -> Result<Option<RoleRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let Some(row) = sqlx::query("SELECT name, description FROM roles WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let permissions = sqlx::query(
                "SELECT v1, v2, v3 FROM casbin_rule WHERE ptype = 'p' AND v0 = $1 \
                 ORDER BY v2, v3, v1",
            )
            .bind(name.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("v2")?, r.try_get("v3")?, r.try_get("v1")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(Some(RoleRow {
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                permissions,
            }))
        })
    }

    /// Replace a client's roles. `false` when there is no such client. (Users' roles change
    /// through `set_user_roles`, which guards the last holder of `roles:write`.)
    pub async fn set_client_roles(
        &self,
        client_id: &str,
        roles: &[String],
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let found = sqlx::query("SELECT 1 AS one FROM clients WHERE id = $1")
                .bind(client_id.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !found {
                return Ok(false);
            }
            sqlx::query("DELETE FROM client_roles WHERE client_id = $1")
                .bind(client_id.to_owned())
                .execute(&mut *tx)
                .await?;
            for role in roles {
                sqlx::query("INSERT INTO client_roles (client_id, role) VALUES ($1, $2)")
                    .bind(client_id.to_owned())
                    .bind(role.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn insert_department(
        &self,
        d: &DepartmentRow,
        now: i64,
    ) -> Result<Inserted, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "INSERT INTO departments (id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(d.id.clone())
            .bind(d.name.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Inserted::AlreadyExists);
            }
            for grid in &d.jurisdiction {
                sqlx::query(
                    "INSERT INTO department_jurisdiction (department_id, grid) VALUES ($1, $2)",
                )
                .bind(d.id.clone())
                .bind(grid.clone())
                .execute(&mut *tx)
                .await?;
            }
            // A jurisdiction bounds decisions: replicas reload their decision index.
            sqlx::query("UPDATE decision_state SET version = version + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Inserted::Created)
        })
    }

    pub async fn department(&self, id: &str) -> Result<Option<DepartmentRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let Some(row) = sqlx::query("SELECT id, name FROM departments WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let jurisdiction = sqlx::query(
                "SELECT grid FROM department_jurisdiction WHERE department_id = $1 ORDER BY grid",
            )
            .bind(id.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get("grid"))
            .collect::<Result<Vec<String>, _>>()?;
            Ok(Some(DepartmentRow {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                jurisdiction,
            }))
        })
    }

    /// Replace department `id`'s jurisdiction; `Ok(false)` when there is no such department
    /// (nothing written). Bumps the decision version in the same transaction, as creating one
    /// does.
    pub async fn set_department_jurisdiction(
        &self,
        id: &str,
        jurisdiction: &[String],
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let found = sqlx::query("SELECT 1 AS one FROM departments WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !found {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM department_jurisdiction WHERE department_id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
            for grid in jurisdiction {
                sqlx::query(
                    "INSERT INTO department_jurisdiction (department_id, grid) VALUES ($1, $2)",
                )
                .bind(id.to_owned())
                .bind(grid.clone())
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE decision_state SET version = version + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn departments(&self) -> Result<Vec<DepartmentRow>, sqlx::Error> {
        let ids: Vec<String> = on_read!(self, |pool| {
            sqlx::query("SELECT id FROM departments ORDER BY id")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<Vec<String>, _>>()
        })?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.department(&id).await? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Register a client with its certificate and roles. A taken id or thumbprint is
    /// `AlreadyExists` (nothing written).
    pub async fn insert_client(&self, c: &NewClient, now: i64) -> Result<Inserted, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let taken =
                sqlx::query("SELECT 1 AS one FROM clients WHERE id = $1 OR cert_thumbprint = $2")
                    .bind(c.id.clone())
                    .bind(c.thumbprint.clone())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
            if taken {
                tx.rollback().await?;
                return Ok(Inserted::AlreadyExists);
            }
            sqlx::query(
                "INSERT INTO clients (id, department_id, cert_thumbprint, certificate_pem, issuer, \
                 not_after, age_recipient, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8)",
            )
            .bind(c.id.clone())
            .bind(c.department.clone())
            .bind(c.thumbprint.clone())
            .bind(c.certificate_pem.clone())
            .bind(c.issuer)
            .bind(c.not_after)
            .bind(c.age_recipient.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for role in &c.roles {
                sqlx::query("INSERT INTO client_roles (client_id, role) VALUES ($1, $2)")
                    .bind(c.id.clone())
                    .bind(role.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Inserted::Created)
        })
    }

    async fn client_where(
        &self,
        by_id: bool,
        value: &str,
    ) -> Result<Option<ClientRow>, sqlx::Error> {
        // Two fixed statements: the column never comes from input.
        let sql = if by_id {
            format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1")
        } else {
            format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE cert_thumbprint = $1")
        };
        on_read!(self, |pool| {
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(value.to_owned())
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let id: String = row.try_get("id")?;
            let roles =
                sqlx::query("SELECT role FROM client_roles WHERE client_id = $1 ORDER BY role")
                    .bind(id.clone())
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| r.try_get("role"))
                    .collect::<Result<Vec<String>, _>>()?;
            let status: String = row.try_get("status")?;
            Ok(Some(ClientRow {
                id,
                department: row.try_get("department_id")?,
                thumbprint: row.try_get("cert_thumbprint")?,
                certificate_pem: row.try_get("certificate_pem")?,
                issuer: row.try_get("issuer")?,
                not_after: row.try_get("not_after")?,
                age_recipient: row.try_get("age_recipient")?,
                active: status == "active",
                roles,
            }))
        })
    }

    pub async fn client(&self, id: &str) -> Result<Option<ClientRow>, sqlx::Error> {
        self.client_where(true, id).await
    }

    pub async fn client_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<ClientRow>, sqlx::Error> {
        self.client_where(false, thumbprint).await
    }

    /// Every client with its roles, by id (two statements, whatever the number of clients).
    pub async fn clients(&self) -> Result<Vec<ClientRow>, sqlx::Error> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY id");
        on_read!(self, |pool| {
            let mut roles: std::collections::HashMap<String, Vec<String>> =
                std::collections::HashMap::new();
            for r in
                sqlx::query("SELECT client_id, role FROM client_roles ORDER BY client_id, role")
                    .fetch_all(pool)
                    .await?
            {
                roles
                    .entry(r.try_get("client_id")?)
                    .or_default()
                    .push(r.try_get("role")?);
            }
            let mut out = Vec::new();
            for row in sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(pool)
                .await?
            {
                let id: String = row.try_get("id")?;
                let status: String = row.try_get("status")?;
                out.push(ClientRow {
                    roles: roles.remove(&id).unwrap_or_default(),
                    id,
                    department: row.try_get("department_id")?,
                    thumbprint: row.try_get("cert_thumbprint")?,
                    certificate_pem: row.try_get("certificate_pem")?,
                    issuer: row.try_get("issuer")?,
                    not_after: row.try_get("not_after")?,
                    age_recipient: row.try_get("age_recipient")?,
                    active: status == "active",
                });
            }
            Ok(out)
        })
    }

    /// Mark a client revoked; `false` when there is no such client. Idempotent.
    pub async fn revoke_client(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let exists = sqlx::query("SELECT 1 AS one FROM clients WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE clients SET status = 'revoked', revoked_at = COALESCE(revoked_at, $2) \
                 WHERE id = $1",
            )
            .bind(id.to_owned())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_VERSION).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
