//! `gridhub admin recover`: the operator's way back from an admin lock-out, with direct access
//! to the data directory (keyring) and the database, the hub running or not.
//!
//! Guarantees: the shipped roles get exactly their shipped descriptions and permissions back
//! (`auth::permissions::shipped_roles`, the definition the hub seeds; roles added by admins are
//! left alone); the named account exists, is enabled, holds `admin` and has a new password;
//! all of that in one transaction that bumps the policy version (a running hub follows on its
//! next request). The recovery is a ledger entry (`admin.recover`, actor `system`) written
//! before the database is changed: if the ledger cannot record it, nothing is changed.

use std::path::PathBuf;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::password;
use crate::auth::role_administrators::someone_may_write_roles;
use crate::config::{Overrides, Settings};
use crate::identity::valid_username;
use crate::init::{generate_password, is_initialised};
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::startup::{open_ledger, shipped_role_rows};
use crate::storage::{AdminOutcome, RecoveredAdmin, Store};
use crate::time::now_ms;
use crate::vault::Vault;
use crate::vault::keyring::AgeFileStore;

/// The shipped role the recovered account holds (it permits everything, `roles write` too).
pub const ADMIN_ROLE: &str = "admin";

pub struct RecoverOptions {
    pub data_dir: PathBuf,
    /// Overrides the config's database (as for `serve`).
    pub database_url: Option<String>,
    pub username: String,
    /// `None`: generate one (shown once).
    pub password: Option<SecretString>,
}

pub struct RecoverReport {
    pub username: String,
    pub user_id: String,
    /// The account did not exist and was created.
    pub created: bool,
    /// Set when the password was generated (shown once to the operator).
    pub generated_password: Option<SecretString>,
    /// The roles whose shipped permissions were restored.
    pub roles: Vec<&'static str>,
}

pub async fn recover(opts: RecoverOptions) -> anyhow::Result<RecoverReport> {
    if !is_initialised(&opts.data_dir) {
        bail!(
            "`{}` is not an initialised data directory (no gridhub.toml)",
            opts.data_dir.display()
        );
    }
    if !valid_username(&opts.username) {
        bail!("--username: 3–64 characters of letters, digits and . _ - @");
    }
    let (password, generated) = match opts.password {
        Some(pw) => (pw, None),
        None => {
            let pw = generate_password()?;
            (pw.clone(), Some(pw))
        }
    };
    if !(12..=256).contains(&password.expose_secret().chars().count()) {
        bail!("the admin password must be between 12 and 256 characters");
    }
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(opts.data_dir.clone()),
            listen: None,
            database_url: opts.database_url,
        },
    )?;
    let vault = Vault::unlock(&AgeFileStore::in_dir(&opts.data_dir))
        .context("cannot unlock the keyring")?;
    let pw = password.expose_secret().to_owned();
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&pw)).await??;
    let store = Store::open(&settings.database()?)
        .await
        .context("cannot open the database")?;
    let result = recover_in(
        &store,
        &vault,
        &settings.instance,
        &opts.username,
        password_hash,
    )
    .await;
    store.close().await;
    let (user_id, created, roles) = result?;
    Ok(RecoverReport {
        username: opts.username,
        user_id,
        created,
        generated_password: generated,
        roles,
    })
}

/// Audit, restore, and check that someone may write roles again.
async fn recover_in(
    store: &Store,
    vault: &Vault,
    instance: &str,
    username: &str,
    password_hash: String,
) -> anyhow::Result<(String, bool, Vec<&'static str>)> {
    let ledger = open_ledger(vault, store.clone(), instance).await?;
    let seeds = shipped_role_rows();
    let roles: Vec<&'static str> = seeds.iter().map(|(name, ..)| *name).collect();
    let admin = RecoveredAdmin {
        new_id: uuid::Uuid::now_v7().to_string(),
        username: username.to_owned(),
        password_hash,
        role: ADMIN_ROLE.to_owned(),
    };
    let user_id = match store.user_by_username(username).await? {
        Some(user) => user.id,
        None => admin.new_id.clone(),
    };
    // Audit first: if the ledger cannot record the recovery, nothing is changed.
    ledger
        .append(
            EntryDraft::new(
                Actor::system(),
                "admin.recover",
                Decision::Allow,
                "cli".to_owned(),
            )
            .reason(&format!(
                "shipped roles restored: {}; user {user_id} enabled with role {ADMIN_ROLE} and a \
                 new password",
                roles.join(",")
            )),
        )
        .await
        .map_err(|e| anyhow::anyhow!("the audit ledger cannot record the recovery: {e}"))?;
    let outcome = store.recover_admin(&seeds, &admin, now_ms()).await?;
    let (user_id, created) = match outcome {
        AdminOutcome::Restored(id) => (id, false),
        AdminOutcome::Created => (admin.new_id, true),
    };
    if !someone_may_write_roles(&store.policy_snapshot().await?).await {
        bail!("after the recovery still no active user may write roles; this is a bug");
    }
    Ok((user_id, created, roles))
}
