//! The demo acts through the same services as the API: they are built here once, over the
//! demo's store, ledger and vault, as start-up builds them; and the demo's users and department
//! systems become `Principal`s as an authenticated request would see them. So the demo story
//! passes the same role checks, sealing and ledger-first rule as API callers.

use std::sync::Arc;

use anyhow::Context;
use policy::WorkingCalendar;

use crate::auth::permissions::Permissions;
use crate::auth::refusals::Refusals;
use crate::auth::tokens::TokenIssuer;
use crate::auth::{Access, Principal};
use crate::cases::Cases;
use crate::catalog::CatalogService;
use crate::decisions::Decisions;
use crate::grants::Grants;
use crate::ledger::Ledger;
use crate::records::Records;
use crate::startup::shipped_role_rows;
use crate::storage::{Store, UserRow};
use crate::time::{SystemClock, now_ms};
use crate::vault::Vault;
use crate::vault::keyring::AgeFileStore;

/// The services the demo story calls.
pub struct Services {
    pub catalog: CatalogService,
    pub records: Records,
    pub grants: Grants,
    pub cases: Cases,
}

impl Services {
    /// The services over the demo's parts. The shipped roles are seeded first (start-up would
    /// do it next), so the demo's callers pass the same role checks as the API's.
    pub async fn build(
        store: &Store,
        ledger: &Ledger,
        vault: Arc<Vault>,
        tokens: TokenIssuer,
        calendar: &WorkingCalendar,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Services> {
        store
            .seed_roles(&shipped_role_rows(), now_ms())
            .await
            .context("cannot seed the shipped roles")?;
        let permissions = Permissions::load(store.clone())
            .await
            .context("cannot load role permissions")?;
        let decisions = Decisions::load(store.clone(), Arc::clone(&vault))
            .await
            .map_err(|e| anyhow::anyhow!("cannot build the decision index: {e}"))?;
        // The demo refuses no request (no network): the counter is never used.
        let refusals = Arc::new(Refusals::new(Arc::new(SystemClock), ledger.clone()));
        let access = Access::new(ledger.clone(), Arc::new(permissions), refusals);
        let decisions = Arc::new(decisions);
        Ok(Services {
            catalog: CatalogService::new(
                access.clone(),
                store.clone(),
                Arc::clone(&vault),
                Arc::clone(&decisions),
                AgeFileStore::in_dir(data_dir),
            ),
            records: Records::new(
                access.clone(),
                store.clone(),
                Arc::clone(&vault),
                Arc::clone(&decisions),
                std::time::Duration::from_secs(30),
            ),
            grants: Grants::new(
                access.clone(),
                store.clone(),
                Arc::clone(&vault),
                Arc::clone(&decisions),
                Arc::new(tokens),
                calendar.clone(),
            ),
            cases: Cases::new(access, store.clone(), vault, decisions, calendar.clone()),
        })
    }
}

/// The system of `department` (client `<department>-system`).
pub async fn department_system(store: &Store, department: &str) -> anyhow::Result<Principal> {
    let id = format!("{department}-system");
    let client = store
        .client(&id)
        .await?
        .with_context(|| format!("the demo has no client `{id}`"))?;
    Ok(Principal::of_client(client, None, store.versions().await?))
}

/// User `id` (not disabled).
pub async fn user(store: &Store, id: &str) -> anyhow::Result<Principal> {
    principal(store, store.user_by_id(id).await?, id).await
}

/// The user named `username` (not disabled).
pub async fn user_named(store: &Store, username: &str) -> anyhow::Result<Principal> {
    principal(store, store.user_by_username(username).await?, username).await
}

async fn principal(store: &Store, row: Option<UserRow>, who: &str) -> anyhow::Result<Principal> {
    let user = row
        .filter(|u| !u.disabled)
        .with_context(|| format!("the demo user `{who}` is missing or disabled"))?;
    Ok(Principal::of_user(user, store.versions().await?))
}
