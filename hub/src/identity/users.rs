//! Users, created by admins with roles and (for grid workers) grids. Invariants: a stored user
//! has a username of 3–64 of letters, digits and `. _ - @`, at least one role, only existing
//! roles, department and grids, a grid if it is a grid worker, and an argon2id hash of a
//! password of 12–256 characters (the password itself is never stored or logged).

use secrecy::{ExposeSecret, SecretString};

use super::{Identity, problem};
use crate::auth::{Principal, password};
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::NewUser;
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
