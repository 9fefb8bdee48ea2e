//! Users, created by admins with roles and (for grid workers) grids, listed, given other
//! grids, disabled and enabled again. Invariants: a stored user has a username of 3–64 of
//! letters, digits and `. _ - @`, at least one role, only existing roles, department and grids,
//! a grid if it is a grid worker, and an argon2id hash of a password of 12–256 characters (the
//! password itself is never stored, logged or shown). A disabled user cannot log in, and its
//! tokens and console sessions stop working on their next request (both read the user's row
//! afresh, `auth::principal`, `console::session`); nobody disables itself (409
//! `cannot_disable_self`), and disabling the last active user who may write roles is refused
//! like any other lock-out (409 `last_role_admin`). Listing and changing users both take
//! `users:write`: there is no separate read permission for the list of accounts.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{Identity, problem};
use crate::auth::role_administrators::KeepsARoleAdministrator;
use crate::auth::{Caller, Principal, Role, password};
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::{Apply, Guarded, NewUser, PolicyGuard, PolicySnapshot, UserRow};
use crate::time::now_ms;

/// A user as asked for: nothing checked yet.
pub struct UserDraft {
    pub username: String,
    pub password: SecretString,
    pub roles: Vec<String>,
    pub department: Option<String>,
    /// Grid codes as sent.
    pub grids: Vec<String>,
}

/// A user as stored, without its password hash.
pub struct CreatedUser {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    /// Canonical grid codes.
    pub grids: Vec<String>,
}

/// A user as admins see it: everything but its password hash.
pub struct UserView {
    pub id: String,
    pub username: String,
    /// Sorted.
    pub roles: Vec<String>,
    pub department: Option<String>,
    /// Canonical grid codes, sorted.
    pub grids: Vec<String>,
    pub disabled: bool,
    /// Unix epoch milliseconds.
    pub created_at: i64,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> UserView {
        UserView {
            id: u.id,
            username: u.username,
            roles: u.roles,
            department: u.department,
            grids: u.grids,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// Enabling a user only adds assignments to the policy: it can never lock anybody out (and must
/// stay possible while nobody may write roles).
struct AddsOnly;

#[async_trait]
impl PolicyGuard for AddsOnly {
    async fn admits(&self, _after: &PolicySnapshot) -> bool {
        true
    }
}

/// 3–64 of letters, digits and `. _ - @`.
pub fn valid_username(u: &str) -> bool {
    (3..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

impl Identity {
    /// Create a user (role permission `users:write`; audited before it is stored).
    pub async fn create_user(
        &self,
        who: &Principal,
        draft: UserDraft,
    ) -> Result<CreatedUser, Error> {
        self.access
            .authorize(who, "users", "write", None, "user.create")
            .await?;
        let grids = self.checked_user(&draft).await?;
        let pw = draft.password;
        let hash = tokio::task::spawn_blocking(move || password::hash(pw.expose_secret()))
            .await
            .map_err(|e| Error::Internal(format!("hash task failed: {e}")))?
            .map_err(|e| Error::validation("password", e.to_string()))?;
        let user = NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            username: draft.username,
            password_hash: hash,
            department: draft.department,
            roles: draft.roles,
            grids,
        };
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "user.create",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!(
                    "user {} with roles {}",
                    user.id,
                    user.roles.join(",")
                )),
            )
            .await?;
        if !self.store.insert_user(&user, now_ms()).await? {
            return Err(Error::Conflict("username is taken".to_owned()));
        }
        tracing::info!(admin = %who.id(), user_id = %user.id, "user created");
        Ok(CreatedUser {
            id: user.id,
            username: user.username,
            roles: user.roles,
            grids: user.grids,
        })
    }

    /// Every user, by username (role permission `users:write`).
    pub async fn users(&self, who: &Principal) -> Result<Vec<UserView>, Error> {
        self.access
            .authorize(who, "users", "write", None, "user.read")
            .await?;
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .map(UserView::from)
            .collect())
    }

    /// One user (role permission `users:write`).
    pub async fn user(&self, who: &Principal, id: &str) -> Result<UserView, Error> {
        self.access
            .authorize(who, "users", "write", None, "user.read")
            .await?;
        self.store
            .user_by_id(id)
            .await?
            .map(UserView::from)
            .ok_or(Error::NotFound("user"))
    }

    /// Replace user `id`'s grids (its roles stay); answers the canonical codes stored, sorted
    /// and without duplicates (role permission `users:write`; audited before it is stored).
    pub async fn set_user_grids(
        &self,
        who: &Principal,
        id: &str,
        grids: &[String],
    ) -> Result<Vec<String>, Error> {
        self.access
            .authorize(who, "users", "write", None, "user.grids")
            .await?;
        let user = self
            .store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let mut problems = Vec::new();
        let mut codes = Vec::new();
        for (i, g) in grids.iter().enumerate() {
            match self.known_grid(&format!("grids[{i}]"), g).await? {
                Ok(code) => codes.push(code.as_str().to_owned()),
                Err(p) => problems.push(p),
            }
        }
        if codes.is_empty() && user.roles.iter().any(|r| r == Role::GridWorker.as_str()) {
            problems.push(problem("grids", "a grid worker needs at least one grid"));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        codes.sort();
        codes.dedup();
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "user.grids",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("user {id}: grids {}", codes.join(","))),
            )
            .await?;
        if !self.store.set_user_grids(id, &codes).await? {
            return Err(Error::NotFound("user"));
        }
        tracing::info!(by = %who.id(), user_id = %id, "user grids replaced");
        Ok(codes)
    }

    /// Disable user `id` (`disabled`) or enable it again (role permission `users:write`;
    /// audited as `user.disable` / `user.enable` before it is stored). Its logins, tokens and
    /// console sessions stop working, or work again, from the next request. Refused: the
    /// caller's own account (409 `cannot_disable_self`) and the last active user who may write
    /// roles (409 `last_role_admin`); both refusals are audited.
    pub async fn set_user_disabled(
        &self,
        who: &Principal,
        id: &str,
        disabled: bool,
    ) -> Result<(), Error> {
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.access
            .authorize(who, "users", "write", None, action)
            .await?;
        if self.store.user_by_id(id).await?.is_none() {
            return Err(Error::NotFound("user"));
        }
        let subject = format!("user {id}");
        if disabled && matches!(&who.caller, Caller::User { id: me, .. } if me == id) {
            return Err(self
                .access
                .deny(
                    who.actor(),
                    action,
                    &format!("{subject}: an account cannot disable itself"),
                    Error::CannotDisableSelf,
                )
                .await);
        }
        let guard: &dyn PolicyGuard = if disabled {
            &KeepsARoleAdministrator
        } else {
            &AddsOnly
        };
        if self
            .store
            .set_user_disabled(id, disabled, guard, Apply::Check)
            .await?
            == Guarded::Refused
        {
            return Err(self.refuse_lock_out(who, action, &subject).await);
        }
        self.access
            .record(
                EntryDraft::new(who.actor(), action, Decision::Allow, current_request_id())
                    .reason(&subject),
            )
            .await?;
        match self
            .store
            .set_user_disabled(id, disabled, guard, Apply::Commit)
            .await?
        {
            Guarded::Admitted(true) => {}
            Guarded::Admitted(false) => return Err(Error::NotFound("user")),
            // A concurrent change got there first (see `put_role`).
            Guarded::Refused => return Err(self.refuse_lock_out(who, action, &subject).await),
        }
        tracing::info!(by = %who.id(), user_id = %id, disabled, "user status changed");
        Ok(())
    }

    /// The draft's grids as canonical codes, or every field problem the draft has.
    async fn checked_user(&self, draft: &UserDraft) -> Result<Vec<String>, Error> {
        let mut problems = Vec::new();
        if !valid_username(&draft.username) {
            problems.push(problem(
                "username",
                "3–64 characters of letters, digits and . _ - @",
            ));
        }
        if draft.roles.is_empty() {
            problems.push(problem("roles", "at least one role is required"));
        }
        let known_roles = self.store.role_names().await?;
        for (i, role) in draft.roles.iter().enumerate() {
            if !known_roles.contains(role) {
                problems.push(problem(&format!("roles[{i}]"), "unknown role"));
            }
        }
        if let Some(d) = &draft.department
            && self.store.department(d).await?.is_none()
        {
            problems.push(problem("department", "unknown department"));
        }
        let mut grids = Vec::new();
        for (i, g) in draft.grids.iter().enumerate() {
            match self.known_grid(&format!("grids[{i}]"), g).await? {
                Ok(code) => grids.push(code.as_str().to_owned()),
                Err(p) => problems.push(p),
            }
        }
        if draft.roles.iter().any(|r| r == "grid_worker") && grids.is_empty() {
            problems.push(problem("grids", "a grid worker needs at least one grid"));
        }
        let chars = draft.password.expose_secret().chars().count();
        if !(12..=256).contains(&chars) {
            problems.push(problem("password", "must be between 12 and 256 characters"));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        Ok(grids)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_username;

    #[test]
    fn usernames_are_letters_digits_and_a_few_marks() {
        assert!(valid_username("ops.admin@city"));
        assert!(!valid_username("ab"));
        assert!(!valid_username("with space"));
        assert!(!valid_username(&"a".repeat(65)));
    }
}
