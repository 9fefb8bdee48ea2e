//! Ledger signing-key rotation (issue 22). The ledger's Ed25519 key signs its checkpoints and
//! receipts; verifiers (`gridhub audit verify`, the department SDK, witnesses, evidence bundles)
//! pin it. A rotation (`gridhub keys rotate --ledger-key`, `POST /v1/admin/ledger-key/rotate`):
//! 1. the rotation is written to the ledger (`keys.rotate_ledger`, receipted by the old key),
//!    and the old key signs a checkpoint covering it;
//! 2. the keyring file gets the new key, the old one kept as `previous_ledger_key`;
//! 3. one transaction records the transition statement — signed by the old key and the new,
//!    naming both and the size and root of the old key's newest checkpoint (tlog `keychain`) —
//!    and makes the new key the one whose checkpoints may be stored (`ledger_head.key_id`, by
//!    compare-and-swap: the old key publishes nothing after);
//! 4. this process signs with the new key; the others follow within `POLL` (`follow`), and
//!    until then their checkpoints are refused and they serve the newest stored one;
//! 5. the keyring file drops the old key.
//!
//! A crash between 2 and 3 leaves a keyring whose key the database does not name yet: the next
//! start completes the transition (`complete_interrupted`). Verifiers follow the statements
//! (`GET /v1/audit/public-key` → `transitions`) from the key they pinned: checkpoints on both
//! sides of each change verify, each under its own key, and the old key signs nothing larger
//! than the size its statement names.

use super::Keys;
use crate::error::Error;
use crate::ledger::keychain::Transition;
use crate::ledger::merkle::Frontier;
use crate::ledger::note::NoteSigner;
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::storage::{KeyTransitionRow, Store};
use crate::vault::keyring::KeyringStore;

/// A ledger-key rotation done.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LedgerKeyRotation {
    /// Key id (hex C2SP key hash) of the retired key.
    pub old_key_id: String,
    /// Key id of the key that signs from now on.
    pub new_key_id: String,
    /// The new key's C2SP verifier key.
    pub verifier: String,
    /// The size of the old key's newest checkpoint: it signs nothing larger.
    pub size: u64,
    /// The ledger entry of the rotation.
    pub ledger_index: u64,
}

fn key_id(signer: &NoteSigner) -> String {
    crate::hex::encode(&signer.key_hash())
}

/// Record the transition from `old` to `new` at the newest stored checkpoint (module docs,
/// step 3), retrying while checkpoints move on under it. Returns the transition's size. Done
/// already (another process completed it): the size is 0 and nothing is written.
pub async fn record_transition(
    store: &Store,
    old: &NoteSigner,
    new: &NoteSigner,
    now_ms: i64,
) -> Result<u64, Error> {
    const ATTEMPTS: usize = 20;
    let (old_id, new_id) = (key_id(old), key_id(new));
    for _ in 0..ATTEMPTS {
        let named = store.ledger_key_id().await?;
        if named.as_deref() == Some(new_id.as_str()) {
            return Ok(0);
        }
        if named.as_deref() != Some(old_id.as_str()) {
            return Err(Error::Conflict(
                "the ledger's key changed meanwhile (another rotation); nothing was done"
                    .to_owned(),
            ));
        }
        let at = store.checkpoint_size().await?;
        let (size, root) = match store.latest_checkpoint().await? {
            Some(c) if c.size == at => {
                let root: [u8; 32] = c.root.as_slice().try_into().map_err(|_| {
                    Error::Internal("a stored checkpoint root is not 32 bytes".to_owned())
                })?;
                (u64::try_from(c.size).unwrap_or(0), root)
            }
            // A checkpoint is being stored right now: read again.
            Some(_) => continue,
            None => (0, Frontier::new().root()),
        };
        let note = Transition::sign(old, new, size, root)
            .map_err(|e| Error::Internal(format!("cannot sign the key transition: {e}")))?;
        let row = KeyTransitionRow {
            old_key_id: old_id.clone(),
            new_key_id: new_id.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            note,
            time_ms: now_ms,
        };
        if store.record_key_transition(&row, at).await? {
            return Ok(size);
        }
    }
    Err(Error::Conflict(
        "checkpoints kept moving while the key transition was recorded; try again".to_owned(),
    ))
}

/// At start-up (`startup::open_ledger`): a keyring that still holds the key a rotation replaced,
/// while the database names that old key, is a rotation interrupted before its transition was
/// recorded: record it now. Returns the signer to open the ledger with.
pub async fn complete_interrupted(
    store: &Store,
    previous: Option<NoteSigner>,
    current: NoteSigner,
    now_ms: i64,
) -> Result<NoteSigner, Error> {
    let Some(previous) = previous else {
        return Ok(current);
    };
    if store.ledger_key_id().await?.as_deref() == Some(key_id(&previous).as_str()) {
        let size = record_transition(store, &previous, &current, now_ms).await?;
        tracing::warn!(
            size,
            key_id = %key_id(&current),
            "an interrupted ledger-key rotation was completed"
        );
    }
    Ok(current)
}

impl Keys {
    /// Rotate the ledger's signing key (module docs); `actor` is who asked, `request` the
    /// request id the ledger entry carries.
    pub async fn rotate_ledger_key(
        &self,
        actor: Actor,
        request: String,
        why: &str,
    ) -> Result<LedgerKeyRotation, Error> {
        let holder = self.claim_keyring().await?;
        let rotated = self.rotate_ledger_key_holding(actor, request, why).await;
        self.release_keyring(&holder).await;
        rotated
    }

    async fn rotate_ledger_key_holding(
        &self,
        actor: Actor,
        request: String,
        why: &str,
    ) -> Result<LedgerKeyRotation, Error> {
        let ledger = self.ledger();
        let old = ledger.signer();
        let appended = ledger
            .append(
                EntryDraft::new(actor, "keys.rotate_ledger", Decision::Allow, request).reason(
                    &format!(
                        "ledger signing key {} is replaced; its last checkpoint covers this \
                         entry ({why})",
                        key_id(&old)
                    ),
                ),
            )
            .await?;
        ledger.checkpoint().await?;
        let keyring = self.keyring();
        let mut file = keyring
            .load()
            .map_err(|e| Error::Internal(format!("cannot read the keyring: {e}")))?;
        let entry = file
            .rotate_ledger_key(self.now_ms())
            .map_err(|e| Error::Internal(format!("cannot make a ledger key: {e}")))?;
        let new = NoteSigner::new(
            ledger.origin(),
            crate::vault::ledger_key_of(&entry)
                .map_err(|e| Error::Internal(format!("the new ledger key: {e}")))?,
        )
        .map_err(|e| Error::Internal(format!("the new ledger key: {e}")))?;
        keyring
            .save(&file)
            .map_err(|e| Error::Internal(format!("cannot save the new ledger key: {e}")))?;
        let size = record_transition(self.store(), &old, &new, self.now_ms()).await?;
        let rotation = LedgerKeyRotation {
            old_key_id: key_id(&old),
            new_key_id: key_id(&new),
            verifier: new.verifier_key(),
            size,
            ledger_index: appended.index,
        };
        ledger.set_signer(new);
        file.previous_ledger_key = None;
        if let Err(e) = keyring.save(&file) {
            // Harmless: the next rotation replaces it; the database names the new key.
            tracing::warn!(error = %e, "the retired ledger key could not be dropped from the keyring");
        }
        // The new key's first checkpoint (if the log grew since the transition).
        ledger.checkpoint().await?;
        tracing::info!(
            old = %rotation.old_key_id,
            new = %rotation.new_key_id,
            size,
            "ledger signing key rotated"
        );
        Ok(rotation)
    }

    /// Sign with the key the database names, if another process rotated it: reload the
    /// keyring file (`refresh`, every `POLL`).
    pub(super) async fn follow_ledger_key(&self) -> Result<(), Error> {
        let ledger = self.ledger();
        let Some(named) = self.store().ledger_key_id().await? else {
            return Ok(());
        };
        if named == ledger.key_id() {
            return Ok(());
        }
        let file = self.keyring().load().map_err(|e| {
            Error::Internal(format!("cannot reload the keyring after a rotation: {e}"))
        })?;
        let key = file
            .ledger_key
            .as_ref()
            .map(crate::vault::ledger_key_of)
            .transpose()
            .map_err(|e| Error::Internal(format!("the keyring's ledger key: {e}")))?;
        let signer = key
            .map(|k| NoteSigner::new(ledger.origin(), k))
            .transpose()
            .map_err(|e| Error::Internal(format!("the keyring's ledger key: {e}")))?;
        match signer {
            Some(s) if key_id(&s) == named => {
                tracing::info!(key_id = %named, "the ledger key rotated elsewhere; signing with the new one");
                ledger.set_signer(s);
                Ok(())
            }
            _ => Err(Error::Internal(format!(
                "the database names ledger key {named}, which the keyring file does not hold; \
                 the keyring file is older than the database"
            ))),
        }
    }
}
