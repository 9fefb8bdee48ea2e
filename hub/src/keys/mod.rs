//! KEK rotation (issue 22). Each key category (a catalog category, or the case texts' scope)
//! has versioned KEKs: the keyring file holds their bytes, the database (`kek_usage`, see
//! `storage::keys`) says which version does what, and every hub process sharing the database
//! follows it.
//!
//! A rotation (`Keys::rotate`: `gridhub keys rotate --category C`, `POST
//! /v1/admin/keys/{category}/rotate`, or the hub itself when a version nears its wrap budget):
//! 1. a new version is saved in the keyring file (before anything can use it);
//! 2. the rotation is written to the ledger (`keys.rotate`);
//! 3. one transaction makes it the active version and the old one `rewrap`.
//!
//! From then on new data keys are wrapped under the new version (at once in the process that
//! rotated, within `POLL` in the others). The rewrap (`rewrap::run`, a background job of the
//! hub, or `gridhub keys rewrap`) then moves every data key of the old version to the new one,
//! a batch per transaction: unwrap and wrap only, never a field decrypted. It resumes where it
//! stopped (`kek_usage.rewrap_cursor`) and stores each key by compare-and-swap on its old
//! bytes, so nothing is rewrapped twice. When nothing is left under the old version, and the
//! other processes have had `retire_grace` to learn of the rotation, it is retired: it
//! unwraps nothing from then on (the minimum decryption version), `keys.retire` in the ledger.

pub mod command;
pub mod ledger_key;
pub mod rewrap;

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::ledger::{Actor, Decision, EntryDraft, Ledger};
use crate::storage::{KekRow, KekState, Store};
use crate::time::Clock;
use crate::vault::Vault;
use crate::vault::keyring::{AgeFileStore, KeyringStore};

/// How often a hub re-reads the KEK states (another process may have rotated) and looks for
/// rewrap work.
pub const POLL: Duration = Duration::from_secs(5);

/// When a rotation happens by itself, how fast the rewrap runs and when a version retires.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    /// Wraps under one version after which the hub rotates it by itself: well before the
    /// AES-GCM random-nonce bound of 2^32 (NIST SP 800-38D §8.3), where `KEK_WRAP_LIMIT`
    /// refuses wraps.
    pub rotate_after_wraps: i64,
    /// Data keys rewrapped per second at most (0: no limit).
    pub rewrap_rate: u32,
    /// How long after a rotation the old version may be retired: every process must have
    /// learnt of the rotation by then (it re-reads the states every `POLL`).
    pub retire_grace: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            rotate_after_wraps: DEFAULT_ROTATE_AFTER_WRAPS,
            rewrap_rate: 5_000,
            retire_grace: Duration::from_secs(60),
        }
    }
}

/// The lease that one process at a time holds while it saves a new key version in the keyring
/// file; it lapses after `KEYRING_LEASE_MS` if the process dies holding it.
const KEYRING_LEASE: &str = "keyring";
const KEYRING_LEASE_MS: i64 = 60 * 1000;

/// 2^30 wraps: a quarter of the AES-GCM bound.
pub const DEFAULT_ROTATE_AFTER_WRAPS: i64 = 1 << 30;

/// A rotation done.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rotation {
    pub category: String,
    /// The new version: it wraps new data keys from now on.
    pub version: u32,
    /// The version it supersedes (being rewrapped now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<u32>,
    /// The ledger entry of the rotation.
    pub ledger_index: u64,
}

/// KEK rotation and the rewrap (module docs).
pub struct Keys {
    store: Store,
    vault: Arc<Vault>,
    keyring: AgeFileStore,
    ledger: Ledger,
    clock: Arc<dyn Clock>,
    policy: RotationPolicy,
    /// Wakes the worker at once (a rotation asked of this process).
    wake: tokio::sync::Notify,
}

impl Keys {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        keyring: AgeFileStore,
        ledger: Ledger,
        clock: Arc<dyn Clock>,
        policy: RotationPolicy,
    ) -> Keys {
        Keys {
            store,
            vault,
            keyring,
            ledger,
            clock,
            policy,
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn keyring(&self) -> &AgeFileStore {
        &self.keyring
    }

    /// Take the `keyring` lease (one process at a time saves the shared keyring file); returns
    /// the holder name to release it with. 409 while another process holds it.
    async fn claim_keyring(&self) -> Result<String, Error> {
        let now = self.clock.now_ms();
        let holder = format!("rotate-{}", uuid::Uuid::now_v7());
        if self
            .store
            .claim_job(KEYRING_LEASE, &holder, now, now + KEYRING_LEASE_MS)
            .await?
        {
            Ok(holder)
        } else {
            Err(Error::Conflict(
                "another key rotation is being saved now; try again in a minute".to_owned(),
            ))
        }
    }

    async fn release_keyring(&self, holder: &str) {
        if let Err(e) = self.store.release_job(KEYRING_LEASE, holder).await {
            tracing::warn!(error = %e, "the keyring lease could not be released; it lapses");
        }
    }

    /// At start-up: give every version of the keyring a row (the keyring's active version is
    /// the active one where the database has none yet), then follow the database's states.
    pub async fn sync(&self) -> Result<(), Error> {
        let now = self.clock.now_ms();
        for k in self.vault.kek_versions() {
            self.store
                .ensure_kek_rows(&k.category, &k.versions, k.active, now)
                .await?;
        }
        self.refresh().await.map(|_| ())
    }

    /// Follow the database's KEK states, reloading the keyring file if the database names a
    /// version this process does not hold yet (another process rotated), and its ledger key
    /// (`ledger_key`). Returns the KEK rows.
    pub async fn refresh(&self) -> Result<Vec<KekRow>, Error> {
        self.follow_ledger_key().await?;
        let rows = self.store.kek_rows().await?;
        let states: Vec<(String, u32, KekState)> = rows
            .iter()
            .map(|r| (r.category.clone(), r.version, r.state))
            .collect();
        if self.vault.apply_states(&states).is_err() {
            let file = self.keyring.load().map_err(|e| {
                Error::Internal(format!("cannot reload the keyring after a rotation: {e}"))
            })?;
            self.vault
                .learn_versions(&file)
                .map_err(|e| Error::Internal(format!("the keyring is malformed: {e}")))?;
            self.vault.apply_states(&states).map_err(|e| {
                Error::Internal(format!(
                    "the database names a key version the keyring file does not hold ({e}); \
                     the keyring file is older than the database"
                ))
            })?;
        }
        Ok(rows)
    }

    /// Rotate the KEK of `category` (module docs); `actor` is who asked, `request` the request
    /// id the ledger entry carries.
    pub async fn rotate(
        &self,
        actor: Actor,
        request: String,
        category: &str,
        why: &str,
    ) -> Result<Rotation, Error> {
        if self.vault.active_kek_version(category).is_err() {
            return Err(Error::NotFound("key category"));
        }
        // The keyring file is shared by every process: one rotation at a time saves it.
        let holder = self.claim_keyring().await?;
        let now = self.clock.now_ms();
        let rotated = self
            .rotate_holding(actor, request, category, why, now)
            .await;
        self.release_keyring(&holder).await;
        rotated
    }

    /// `rotate`, with the `keyring` lease held.
    async fn rotate_holding(
        &self,
        actor: Actor,
        request: String,
        category: &str,
        why: &str,
        now: i64,
    ) -> Result<Rotation, Error> {
        let version = self
            .vault
            .add_kek_version(&self.keyring, category, now)
            .map_err(|e| Error::Internal(format!("cannot save the new key version: {e}")))?;
        let previous = self.vault.active_kek_version(category).ok();
        let appended = self
            .ledger
            .append(
                EntryDraft::new(actor, "keys.rotate", Decision::Allow, request).reason(&format!(
                    "KEK of `{category}`: version {version} wraps new data keys; version {} is \
                     rewrapped and then retired ({why})",
                    previous.map_or_else(|| "-".to_owned(), |v| v.to_string())
                )),
            )
            .await?;
        let previous = self.store.activate_kek(category, version, now).await?;
        self.refresh().await?;
        self.wake.notify_one();
        tracing::info!(category, version, "KEK rotated; the rewrap follows");
        Ok(Rotation {
            category: category.to_owned(),
            version,
            previous,
            ledger_index: appended.index,
        })
    }

    /// Rotate every active version past `rotate_after_wraps` (the wrap budget).
    pub async fn rotate_worn(&self, rows: &[KekRow]) -> Result<Vec<Rotation>, Error> {
        let mut done = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.state == KekState::Active && r.wraps >= self.policy.rotate_after_wraps)
        {
            let why = format!(
                "{} wraps reached the rotation threshold of {}",
                row.wraps, self.policy.rotate_after_wraps
            );
            done.push(
                self.rotate(Actor::system(), "-".to_owned(), &row.category, &why)
                    .await?,
            );
        }
        Ok(done)
    }

    /// Every `POLL` (or at once when woken): follow the states, rotate worn versions and
    /// rewrap, one process at a time (`rewrap::run` holds the `keys` lease).
    pub fn spawn_worker(self: Arc<Self>) {
        let holder = format!("hub-{}", uuid::Uuid::now_v7());
        tokio::spawn(async move {
            loop {
                let woken = self.wake.notified();
                if let Err(e) = self.work_once(&holder).await {
                    tracing::warn!(error = %e, "key rotation work failed; it runs again later");
                }
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        });
    }

    async fn work_once(&self, holder: &str) -> Result<(), Error> {
        let rows = self.refresh().await?;
        let worn = rows
            .iter()
            .any(|r| r.state == KekState::Active && r.wraps >= self.policy.rotate_after_wraps);
        let pending = rows.iter().any(|r| r.state == KekState::Rewrap);
        if !worn && !pending {
            return Ok(());
        }
        rewrap::run(self, holder, self.policy.rewrap_rate, &mut |_| {}).await?;
        Ok(())
    }
}

/// How a rotation policy reads the settings.
pub fn policy_of(settings: &crate::config::Settings) -> RotationPolicy {
    RotationPolicy {
        rotate_after_wraps: settings.kek_rotate_after_wraps,
        rewrap_rate: settings.rewrap_rate,
        retire_grace: Duration::from_secs(settings.kek_retire_grace_secs),
    }
}
