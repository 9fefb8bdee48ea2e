//! Password login, shared by `POST /v1/auth/login` (which then issues a token) and the
//! console's login form (which then opens a session). Guarantees: throttled per username and
//! per address (`LoginLimiter`); every attempt is in the ledger before it is answered (a
//! refusal as a `deny` entry, a success as an `allow` entry under `action`); an unknown
//! username and a wrong password get the same answer, and an entry names an account only if it
//! exists.

use std::net::IpAddr;
use std::time::Instant;

use super::Access;
use super::login_limiter::LoginLimiter;
use super::password;
use crate::error::{Error, current_request_id};
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::storage::{Store, UserRow};

/// What a password check needs.
pub struct PasswordLogin<'a> {
    pub store: &'a Store,
    pub access: &'a Access,
    pub limiter: &'a LoginLimiter,
}

impl PasswordLogin<'_> {
    /// The active user `username` if `password` is theirs; audited as `action`.
    pub async fn check(
        &self,
        username: &str,
        password: String,
        address: IpAddr,
        action: &str,
    ) -> Result<UserRow, Error> {
        if let Err(wait) = self.limiter.check(username, address, Instant::now()) {
            tracing::info!(outcome = "throttled", action, "login");
            return Err(self
                .access
                .deny(
                    Actor::default(),
                    action,
                    "too many failed logins for this username or address",
                    Error::RateLimited {
                        retry_after_secs: wait.as_secs().max(1),
                    },
                )
                .await);
        }
        let user = self.store.user_by_username(username).await?;
        let hash = user
            .as_ref()
            .filter(|u| !u.disabled)
            .map(|u| u.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, hash.as_deref()))
            .await
            .map_err(|e| Error::Internal(format!("password check task failed: {e}")))?;
        let user = match (ok, user) {
            (true, Some(user)) => user,
            (_, known) => {
                self.limiter.failed(username, address, Instant::now());
                tracing::info!(outcome = "failure", action, "login");
                // Name the account only if it exists: a mistyped username may be anything.
                let actor = known.map(|u| Actor::user(&u.id)).unwrap_or_default();
                return Err(self
                    .access
                    .deny(
                        actor,
                        action,
                        "wrong username or password",
                        Error::Unauthenticated,
                    )
                    .await);
            }
        };
        self.access
            .record(EntryDraft::new(
                Actor::user(&user.id),
                action,
                Decision::Allow,
                current_request_id(),
            ))
            .await?;
        self.limiter.succeeded(username);
        tracing::info!(outcome = "success", action, user_id = %user.id, "login");
        Ok(user)
    }
}
