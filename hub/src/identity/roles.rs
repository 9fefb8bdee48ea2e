//! Roles and their permissions (the casbin `p` lines), and which roles users and clients hold.
//!
//! Invariants: a stored permission names an object and action of the closed vocabulary
//! (`auth::permissions::OBJECTS`) and `*` or an existing grid (only for grid-bound objects), so
//! nothing a caller sends becomes matcher text; a role name is `valid_role_name`; an assignment
//! names only existing roles. Storage writes each change in one transaction that bumps the
//! policy version, so it takes effect on the next request. A change of role permissions or of
//! a user's roles that would leave no active user able to write roles is refused (409
//! `last_role_admin`, audited as a denial): checked before the change is audited as allowed,
//! and again inside the transaction that writes it (`KeepsARoleAdministrator`), so two
//! concurrent changes cannot both pass.

use policy::FieldProblem;

use super::{Identity, problem};
use crate::auth::Principal;
use crate::auth::permissions::{EVERY_GRID, object_spec, valid_role_name};
use crate::auth::role_administrators::KeepsARoleAdministrator;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::{Apply, Guarded, Inserted, PermissionLine, RoleRow};
use crate::time::now_ms;

/// A permission as asked for: nothing checked yet.
pub struct Permission {
    pub object: String,
    pub action: String,
    /// Grid codes or `*`.
    pub grids: Vec<String>,
}

/// A role's new description and permissions, as asked for.
pub struct RolePut {
    /// `None` keeps the stored description (empty for a new role).
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
}

impl RolePut {
    /// The description asked for, trimmed (`None`: keep the stored one), or 422 unless it is
    /// one line of at most 200 characters.
    pub fn checked_description(&self) -> Result<Option<String>, Error> {
        match self.description.as_deref().map(str::trim) {
            Some(d) if d.chars().count() > 200 || d.contains(['\n', '\r']) => Err(
                Error::validation("description", "one line of at most 200 characters"),
            ),
            Some(d) => Ok(Some(d.to_owned())),
            None => Ok(None),
        }
    }
}

/// Whose roles an assignment replaces.
#[derive(Clone, Copy)]
enum Holder {
    User,
    Client,
}

impl Holder {
    /// (permission object, audit action, not-found name)
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Holder::User => ("users", "user.roles", "user"),
            Holder::Client => ("clients", "client.roles", "client"),
        }
    }
}

impl Identity {
    /// Every role with its permissions (role permission `roles:read`).
    pub async fn roles(&self, who: &Principal) -> Result<Vec<RoleRow>, Error> {
        self.access
            .authorize(who, "roles", "read", None, "role.read")
            .await?;
        let mut roles = Vec::new();
        for name in self.store.role_names().await? {
            if let Some(row) = self.store.role(&name).await? {
                roles.push(row);
            }
        }
        Ok(roles)
    }

    /// One role with its permissions (role permission `roles:read`).
    pub async fn role(&self, who: &Principal, name: &str) -> Result<RoleRow, Error> {
        self.access
            .authorize(who, "roles", "read", None, "role.read")
            .await?;
        self.store.role(name).await?.ok_or(Error::NotFound("role"))
    }

    /// Create role `name` or replace its permissions (role permission `roles:write`; audited
    /// before it is stored). Answers whether it was created, and the stored role.
    pub async fn put_role(
        &self,
        who: &Principal,
        name: &str,
        put: RolePut,
    ) -> Result<(Inserted, RoleRow), Error> {
        self.access
            .authorize(who, "roles", "write", None, "role.update")
            .await?;
        if !valid_role_name(name) {
            return Err(Error::validation(
                "role",
                "1–64 characters of a-z, 0-9, _ and -, starting with a letter",
            ));
        }
        let description = put.checked_description()?;
        let lines = self.permission_lines(&put.permissions).await?;
        let description = match description {
            Some(d) => d,
            None => self
                .store
                .role(name)
                .await?
                .map(|r| r.description)
                .unwrap_or_default(),
        };
        let summary = lines
            .iter()
            .map(|(o, a, g)| format!("{o}:{a}@{g}"))
            .collect::<Vec<_>>()
            .join(" ");
        let write = |apply| {
            self.store.put_role(
                name,
                &description,
                &lines,
                now_ms(),
                &KeepsARoleAdministrator,
                apply,
            )
        };
        let what = format!("role {name}");
        if write(Apply::Check).await? == Guarded::Refused {
            return Err(self.refuse_lock_out(who, "role.update", &what).await);
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "role.update",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("{what}: {summary}")),
            )
            .await?;
        let Guarded::Admitted(outcome) = write(Apply::Commit).await? else {
            // A concurrent change got there first; its transaction committed before this one.
            return Err(self.refuse_lock_out(who, "role.update", &what).await);
        };
        tracing::info!(role = name, by = %who.id(), "role permissions replaced");
        let row = self
            .store
            .role(name)
            .await?
            .ok_or(Error::NotFound("role"))?;
        Ok((outcome, row))
    }

    /// Replace user `id`'s roles (its grids stay as they are); answers the roles stored,
    /// sorted and without duplicates.
    pub async fn assign_user_roles(
        &self,
        who: &Principal,
        id: &str,
        roles: &[String],
    ) -> Result<Vec<String>, Error> {
        self.assign(who, Holder::User, id, roles).await
    }

    /// Replace client `id`'s roles; answers the roles stored, sorted and without duplicates.
    pub async fn assign_client_roles(
        &self,
        who: &Principal,
        id: &str,
        roles: &[String],
    ) -> Result<Vec<String>, Error> {
        self.assign(who, Holder::Client, id, roles).await
    }

    /// Check, audit and store a role assignment.
    async fn assign(
        &self,
        who: &Principal,
        holder: Holder,
        id: &str,
        roles: &[String],
    ) -> Result<Vec<String>, Error> {
        let (object, action, what) = holder.names();
        self.access
            .authorize(who, object, "write", None, action)
            .await?;
        let roles = self.checked_roles(roles).await?;
        let exists = match holder {
            Holder::User => self.store.user_by_id(id).await?.is_some(),
            Holder::Client => self.store.client(id).await?.is_some(),
        };
        if !exists {
            return Err(Error::NotFound(what));
        }
        let subject = format!("{what} {id}");
        if let Holder::User = holder
            && self
                .store
                .set_user_roles(id, &roles, &KeepsARoleAdministrator, Apply::Check)
                .await?
                == Guarded::Refused
        {
            return Err(self.refuse_lock_out(who, action, &subject).await);
        }
        self.access
            .record(
                EntryDraft::new(who.actor(), action, Decision::Allow, current_request_id())
                    .reason(&format!("{subject}: roles {}", roles.join(","))),
            )
            .await?;
        let stored = match holder {
            Holder::User => match self
                .store
                .set_user_roles(id, &roles, &KeepsARoleAdministrator, Apply::Commit)
                .await?
            {
                Guarded::Admitted(found) => found,
                // A concurrent change got there first (see `put_role`).
                Guarded::Refused => {
                    return Err(self.refuse_lock_out(who, action, &subject).await);
                }
            },
            Holder::Client => self.store.set_client_roles(id, &roles).await?,
        };
        if !stored {
            return Err(Error::NotFound(what));
        }
        Ok(roles)
    }

    /// Audit the refusal of a change to `what` that would leave nobody able to write roles, and
    /// answer with it (409 `last_role_admin`).
    pub(super) async fn refuse_lock_out(&self, who: &Principal, action: &str, what: &str) -> Error {
        tracing::warn!(by = %who.id(), action, "refused: would leave no active user able to write roles");
        self.access
            .deny(
                who.actor(),
                action,
                &format!("{what}: would leave no active user able to write roles"),
                Error::LastRoleAdministrator,
            )
            .await
    }

    /// Existing role names, sorted and without duplicates, or a problem per unknown one.
    async fn checked_roles(&self, roles: &[String]) -> Result<Vec<String>, Error> {
        let known = self.store.role_names().await?;
        let mut problems = Vec::new();
        for (i, r) in roles.iter().enumerate() {
            if !known.contains(r) {
                problems.push(problem(&format!("roles[{i}]"), "unknown role"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        Ok(roles)
    }

    /// Validate a permission list into stored lines (object, action, grids), sorted and without
    /// duplicates; problems name the field, never echo what was sent.
    async fn permission_lines(
        &self,
        permissions: &[Permission],
    ) -> Result<Vec<PermissionLine>, Error> {
        let mut problems: Vec<FieldProblem> = Vec::new();
        let mut lines = Vec::new();
        for (i, p) in permissions.iter().enumerate() {
            let Some(spec) = object_spec(&p.object) else {
                problems.push(problem(
                    &format!("permissions[{i}].object"),
                    "unknown object",
                ));
                continue;
            };
            if !spec.actions.contains(&p.action.as_str()) {
                problems.push(problem(
                    &format!("permissions[{i}].action"),
                    &format!(
                        "not an action on `{}`: {}",
                        spec.name,
                        spec.actions.join(", ")
                    ),
                ));
                continue;
            }
            if p.grids.is_empty() {
                problems.push(problem(
                    &format!("permissions[{i}].grids"),
                    "at least one grid code, or `*`",
                ));
            }
            for (j, g) in p.grids.iter().enumerate() {
                let field = format!("permissions[{i}].grids[{j}]");
                if g == EVERY_GRID {
                    lines.push((p.object.clone(), p.action.clone(), g.clone()));
                    continue;
                }
                if !spec.grid_bound {
                    problems.push(problem(
                        &field,
                        &format!("`{}` belongs to no grid: use `*`", spec.name),
                    ));
                    continue;
                }
                match self.known_grid(&field, g).await? {
                    Ok(code) => {
                        lines.push((p.object.clone(), p.action.clone(), code.as_str().to_owned()));
                    }
                    Err(p) => problems.push(p),
                }
            }
        }
        if problems.is_empty() {
            lines.sort();
            lines.dedup();
            Ok(lines)
        } else {
            Err(Error::Validation(problems))
        }
    }
}
