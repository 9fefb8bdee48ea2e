//! No admin lock-out: a change of role permissions or user roles must leave at least one active
//! user who may `write` on `roles` — otherwise nobody could ever change a role again through the
//! API, and only `gridhub admin recover` would help.
//!
//! Invariant: "may write roles" is decided exactly as requests are (`SnapshotDecider`: the same
//! casbin model, matcher and fail-closed rules), on the policy the change would commit, which
//! storage reads inside the change's own transaction (`storage::role_changes`). Clients do not
//! count: the way back is a person logging in. Any failure to decide refuses the change.

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;

use super::permissions::{NO_GRID, SnapshotDecider, user_subject};
use crate::storage::{PolicyGuard, PolicySnapshot};

/// The permission nobody may be left without.
pub const OBJECT: &str = "roles";
pub const ACTION: &str = "write";

/// The guard every role-permission and user-role change passes (`PolicyGuard`).
pub struct KeepsARoleAdministrator;

#[async_trait]
impl PolicyGuard for KeepsARoleAdministrator {
    async fn admits(&self, after: &PolicySnapshot) -> bool {
        someone_may_write_roles(after).await
    }
}

/// Does at least one active user of `policy` hold a role that permits `write` on `roles`?
/// (`policy` holds assignments of active users only: disabled users are left out when it is
/// read.)
pub async fn someone_may_write_roles(policy: &PolicySnapshot) -> bool {
    // Only users holding a role with a `roles write` line can pass the matcher
    // (`g(r.sub, p.sub, _) && r.obj == p.obj && r.act == p.act`, and the only `g` lines are
    // subject → role), so asking casbin about them alone loses nobody.
    let granting: HashSet<&str> = policy
        .permissions
        .iter()
        .filter(|(_, _, object, action)| object == OBJECT && action == ACTION)
        .map(|(role, ..)| role.as_str())
        .collect();
    let users_prefix = user_subject("");
    let candidates: BTreeSet<&str> = policy
        .assignments
        .iter()
        .filter(|(subject, role, _)| {
            subject.starts_with(&users_prefix) && granting.contains(role.as_str())
        })
        .map(|(subject, ..)| subject.as_str())
        .collect();
    if candidates.is_empty() {
        return false;
    }
    match SnapshotDecider::new(policy.clone()).await {
        Ok(decider) => candidates
            .iter()
            .any(|subject| decider.allows(subject, NO_GRID, OBJECT, ACTION)),
        Err(e) => {
            tracing::error!(error = %e, "cannot decide who may write roles: refusing the change");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(lines: &[[&str; 4]], links: &[[&str; 3]]) -> PolicySnapshot {
        let own = |s: &&str| (*s).to_owned();
        PolicySnapshot {
            permissions: lines
                .iter()
                .map(|[a, b, c, d]| (own(a), own(b), own(c), own(d)))
                .collect(),
            assignments: links
                .iter()
                .map(|[a, b, c]| (own(a), own(b), own(c)))
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_user_holding_a_role_that_writes_roles_is_enough() {
        let p = policy(
            &[["admin", "*", "roles", "write"]],
            &[["user:a", "admin", "*"]],
        );
        assert!(someone_may_write_roles(&p).await);
    }

    #[tokio::test]
    async fn a_role_held_only_in_a_grid_still_writes_roles() {
        // `roles` belongs to no grid: holding the role anywhere is enough, as for requests.
        let p = policy(
            &[["ops", "*", "roles", "write"]],
            &[["user:w", "ops", "330110.001"]],
        );
        assert!(someone_may_write_roles(&p).await);
    }

    #[tokio::test]
    async fn nobody_is_left_without_the_line_or_without_a_holder() {
        let no_line = policy(
            &[
                ["admin", "*", "roles", "read"],
                ["admin", "*", "users", "write"],
            ],
            &[["user:a", "admin", "*"]],
        );
        assert!(!someone_may_write_roles(&no_line).await);
        let no_holder = policy(
            &[["admin", "*", "roles", "write"]],
            &[["user:a", "dpo", "*"]],
        );
        assert!(!someone_may_write_roles(&no_holder).await);
    }

    #[tokio::test]
    async fn clients_do_not_count() {
        let p = policy(
            &[["admin", "*", "roles", "write"]],
            &[["client:c", "admin", "*"]],
        );
        assert!(!someone_may_write_roles(&p).await);
    }
}
