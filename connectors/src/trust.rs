//! What this client trusts about the hub's ledger: the pinned verifier key and the chain of keys
//! followed from it (`keys`), and the last verified checkpoint, kept in memory and (optionally)
//! in the shared state file. Invariant: the trusted checkpoint only moves forward, and only to a
//! checkpoint proved consistent with it; a checkpoint another process stored is checked against
//! ours, never overwritten; a checkpoint or receipt is accepted only under a key of the chain,
//! and the chain follows only transitions that lead from the pinned key.

use std::sync::{Arc, RwLock};

use tlog::cosignature::{CosignatureVerifier, verify_witnesses};
use tlog::note::Verifier;
use tokio::sync::{Mutex, OnceCell};

use crate::error::{Error, Result};
use crate::keys::{Keys, LedgerKeys, transitions_extend};
use crate::model::Receipt;
use crate::state::{State, StateFile};
use crate::transport::Hub;
use crate::verify::{self, ConsistencyProof, SignedCheckpoint, Step};

/// The ledger's public key answer (`GET /v1/audit/public-key`), the part used here.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct PublicKey {
    /// The current key.
    pub(crate) verifier: String,
    /// The key transitions, oldest first (absent from a hub that never rotated its key).
    #[serde(default)]
    pub(crate) transitions: Vec<String>,
}

/// The hub's public ledger endpoints, read without a token: `Hub` serves them over HTTPS, the
/// tests from memory.
pub(crate) trait Ledger {
    /// `GET /v1/audit/public-key`.
    async fn public_key(&self) -> Result<PublicKey>;
    /// `GET /v1/audit/checkpoint`, with `min_cosignatures` when witnesses are required.
    async fn checkpoint(&self, min_cosignatures: Option<usize>) -> Result<String>;
    /// `GET /v1/audit/proofs/consistency`.
    async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof>;
}

impl Ledger for Hub {
    async fn public_key(&self) -> Result<PublicKey> {
        self.get_json("/v1/audit/public-key", &()).await
    }

    async fn checkpoint(&self, min_cosignatures: Option<usize>) -> Result<String> {
        match min_cosignatures {
            Some(k) => {
                self.get_text("/v1/audit/checkpoint", &[("min_cosignatures", k)])
                    .await
            }
            None => self.get_text("/v1/audit/checkpoint", &()).await,
        }
    }

    async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        self.get_json(
            "/v1/audit/proofs/consistency",
            &[("from", from), ("to", to)],
        )
        .await
    }
}

/// Checkpoints must carry this many cosignatures of these witnesses.
#[derive(Debug)]
pub(crate) struct WitnessRule {
    witnesses: Vec<CosignatureVerifier>,
    required: usize,
}

impl WitnessRule {
    /// Parse the configured witness keys.
    pub(crate) fn parse(vkeys: &[String], required: usize) -> Result<WitnessRule> {
        let witnesses = vkeys
            .iter()
            .map(|v| {
                CosignatureVerifier::from_vkey(v)
                    .map_err(|e| Error::Config(format!("witness key `{v}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if required == 0 || required > witnesses.len() {
            return Err(Error::Config(format!(
                "{required} witnesses required of {}",
                witnesses.len()
            )));
        }
        Ok(WitnessRule {
            witnesses,
            required,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Trust {
    store: Option<StateFile>,
    configured: Option<String>,
    witnesses: Option<WitnessRule>,
    keys: OnceCell<Keys>,
    /// Held while the trusted checkpoint moves (one move at a time in this process).
    moving: Mutex<()>,
    last: RwLock<Option<SignedCheckpoint>>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::StateFile(format!("state file task failed: {e}")))?
}

impl Trust {
    pub(crate) fn new(
        store: Option<StateFile>,
        configured: Option<String>,
        witnesses: Option<WitnessRule>,
    ) -> Trust {
        Trust {
            store,
            configured,
            witnesses,
            keys: OnceCell::new(),
            moving: Mutex::new(()),
            last: RwLock::new(None),
        }
    }

    /// The last checkpoint this client verified.
    pub(crate) fn last(&self) -> Option<SignedCheckpoint> {
        self.last.read().map_or(None, |l| l.clone())
    }

    fn set_last(&self, checkpoint: &SignedCheckpoint) {
        if let Ok(mut last) = self.last.write() {
            *last = Some(checkpoint.clone());
        }
    }

    /// The pinned key and the chain followed from it, once pinned.
    pub(crate) fn ledger_keys(&self) -> Option<LedgerKeys> {
        self.keys.get().map(Keys::describe)
    }

    /// The pinned ledger key — configured, else pinned in the state file, else fetched from
    /// the hub and pinned there (trust on first use) — with the chain of keys followed from it.
    async fn keys(&self, hub: &impl Ledger) -> Result<&Keys> {
        self.keys.get_or_try_init(|| self.pin(hub)).await
    }

    async fn pin(&self, hub: &impl Ledger) -> Result<Keys> {
        let stored = match &self.store {
            Some(file) => {
                let file = file.clone();
                blocking(move || file.load()).await?.vkey
            }
            None => None,
        };
        let vkey = match (&self.configured, stored) {
            (Some(mine), Some(pinned)) if *mine != pinned => {
                return Err(Error::Config(
                    "the configured ledger key differs from the one pinned in the state file"
                        .to_owned(),
                ));
            }
            (Some(mine), _) => mine.clone(),
            (None, Some(pinned)) => pinned,
            (None, None) => hub.public_key().await?.verifier,
        };
        let pinned = Verifier::from_vkey(&vkey)
            .map_err(|e| Error::Config(format!("the ledger verifier key: {e}")))?;
        let Some(file) = self.store.clone() else {
            return Ok(Keys::single(pinned));
        };
        let mine = vkey.clone();
        let stored = blocking(move || {
            file.update(|current| {
                Ok(current.vkey.is_none().then(|| State {
                    vkey: Some(mine),
                    ..current.clone()
                }))
            })
        })
        .await?;
        if stored.vkey.as_deref() != Some(vkey.as_str()) {
            return Err(Error::Config(
                "another process pinned a different ledger key in the state file".to_owned(),
            ));
        }
        Keys::new(pinned, &stored.transitions).map_err(stored_transitions)
    }

    /// Follow the hub's key transitions (`GET /v1/audit/public-key`) from the pinned key and
    /// hold the chain they describe if it extends the one held, in the state file too. Returns
    /// the key the hub names as its current one. `Error::UnendorsedKey` when the transitions do
    /// not lead from the pinned key to that key, or fork from those followed before.
    async fn refresh(&self, hub: &impl Ledger, keys: &Keys) -> Result<String> {
        let published = hub.public_key().await?;
        let unendorsed = |reason: String| Error::UnendorsedKey {
            pinned: keys.pinned().verifier_key(),
            hub_key: published.verifier.clone(),
            reason,
        };
        let offered = keys
            .follow(&published.transitions)
            .map_err(|e| unendorsed(e.to_string()))?;
        if Verifier::from_vkey(&published.verifier).ok().as_ref() != Some(offered.current()) {
            return Err(unendorsed(
                "no transition from the pinned key leads to the hub's key".to_owned(),
            ));
        }
        keys.adopt(offered).map_err(unendorsed)?;
        self.save_transitions(keys).await?;
        Ok(published.verifier)
    }

    /// Store the chain's transitions, unless the state file holds a chain that extends them
    /// (another process followed further): that one is then followed here too.
    async fn save_transitions(&self, keys: &Keys) -> Result<()> {
        let Some(file) = self.store.clone() else {
            return Ok(());
        };
        let mine = keys.chain().transitions().to_vec();
        let stored = blocking(move || {
            file.update(|current| {
                Ok(
                    transitions_extend(&mine, &current.transitions).then(|| State {
                        transitions: mine,
                        ..current.clone()
                    }),
                )
            })
        })
        .await?;
        follow_stored(keys, &stored)
    }

    /// The key of the chain that signed `receipt` (its `key_id`), following the hub's key
    /// transitions once when the chain does not know it.
    pub(crate) async fn receipt_key(
        &self,
        hub: &impl Ledger,
        receipt: &Receipt,
    ) -> Result<Verifier> {
        let keys = self.keys(hub).await?;
        if let Some(key) = keys.by_key_id(&receipt.key_id) {
            return Ok(key);
        }
        self.refresh(hub, keys).await?;
        keys.by_key_id(&receipt.key_id)
            .ok_or_else(|| Error::UnknownReceiptKey {
                index: receipt.index,
                key_id: receipt.key_id.clone(),
            })
    }

    /// The trusted checkpoint as stored (the state file's, else this process's), after
    /// following the key transitions the state file holds.
    async fn base(&self, keys: &Keys) -> Result<Option<SignedCheckpoint>> {
        let Some(file) = self.store.clone() else {
            return Ok(self.last());
        };
        let stored = blocking(move || file.load()).await?;
        follow_stored(keys, &stored)?;
        stored
            .checkpoint
            .map(|note| stored_checkpoint(keys, &note))
            .transpose()
    }

    /// Fetch the hub's checkpoint, verify it and prove it consistent with the trusted one;
    /// it becomes the trusted checkpoint (or a newer one another process stored does).
    pub(crate) async fn advance(&self, hub: &impl Ledger) -> Result<SignedCheckpoint> {
        let keys = self.keys(hub).await?;
        let _moving = self.moving.lock().await;
        // Read what is trusted before asking the hub: an honest hub never presents less.
        let mut base = self.base(keys).await?;
        let presented = self.presented(hub, keys).await?;
        loop {
            if let Some(trusted) = &base {
                extends(hub, trusted, &presented).await?;
            }
            let Some(file) = self.store.clone() else {
                self.set_last(&presented);
                return Ok(presented);
            };
            let expected = base.as_ref().map(|b| b.note().to_owned());
            let mine = presented.note().to_owned();
            let stored = blocking(move || {
                file.update(|current| {
                    Ok((current.checkpoint == expected).then(|| State {
                        checkpoint: Some(mine),
                        ..current.clone()
                    }))
                })
            })
            .await?;
            let Some(note) = stored.checkpoint.as_deref() else {
                return Err(Error::StateFile(
                    "the stored checkpoint vanished".to_owned(),
                ));
            };
            if note == presented.note() {
                self.set_last(&presented);
                return Ok(presented);
            }
            // Another process stored a checkpoint meanwhile (perhaps under a key it followed
            // to): check ours against theirs.
            follow_stored(keys, &stored)?;
            let theirs = stored_checkpoint(keys, note)?;
            if theirs.size() >= presented.size() {
                extends(hub, &presented, &theirs)
                    .await
                    .map_err(swap_roles)?;
                self.set_last(&theirs);
                return Ok(theirs);
            }
            base = Some(theirs);
        }
    }

    /// The hub's checkpoint, verified with the chain (followed further first when no key of
    /// the chain signed it), and witnessed if witnesses are required.
    async fn presented(&self, hub: &impl Ledger, keys: &Keys) -> Result<SignedCheckpoint> {
        let rule = self.witnesses.as_ref();
        let note = hub.checkpoint(rule.map(|r| r.required)).await?;
        let (checkpoint, key) = match keys.verify(&note)? {
            Some(verified) => verified,
            None => {
                let hub_key = self.refresh(hub, keys).await?;
                keys.verify(&note)?.ok_or_else(|| Error::UnendorsedKey {
                    pinned: keys.pinned().verifier_key(),
                    hub_key,
                    reason: "the checkpoint is signed by no key of the chain".to_owned(),
                })?
            }
        };
        if let Some(rule) = rule {
            verify_witnesses(&note, &key, &rule.witnesses, rule.required)
                .map_err(|e| Error::BadCheckpoint(e.to_string()))?;
        }
        Ok(checkpoint)
    }
}

fn stored_transitions(e: tlog::keychain::KeyChainError) -> Error {
    Error::StateFile(format!("the stored key transitions do not verify: {e}"))
}

/// Follow the key transitions of the state file when they extend the chain held (another
/// process followed a rotation); transitions that fork from it are an error.
fn follow_stored(keys: &Keys, stored: &State) -> Result<()> {
    if keys.chain().transitions() == stored.transitions.as_slice() {
        return Ok(());
    }
    let chain = keys
        .follow(&stored.transitions)
        .map_err(stored_transitions)?;
    keys.adopt(chain)
        .map_err(|reason| Error::StateFile(format!("the stored key transitions: {reason}")))
}

/// A checkpoint read back from the state file must still verify with a key of the chain
/// (a retired key only up to the size at which it was retired).
fn stored_checkpoint(keys: &Keys, note: &str) -> Result<SignedCheckpoint> {
    let refused =
        |why: String| Error::StateFile(format!("the stored checkpoint does not verify: {why}"));
    match keys.verify(note) {
        Ok(Some((checkpoint, _))) => Ok(checkpoint),
        Ok(None) => Err(refused("no key of the chain signed it".to_owned())),
        Err(Error::BadCheckpoint(why)) => Err(refused(why)),
        Err(other) => Err(other),
    }
}

/// Check `newer` extends `trusted` (fetching a consistency proof when the size grew). The
/// two may be signed by different keys of the chain: the tree is the same.
async fn extends(
    hub: &impl Ledger,
    trusted: &SignedCheckpoint,
    newer: &SignedCheckpoint,
) -> Result<()> {
    match verify::step(trusted, newer)? {
        Step::Same | Step::FromEmpty => Ok(()),
        Step::Extend { from, to } => {
            let proof = hub.consistency(from, to).await?;
            verify::check_consistency(trusted, newer, &proof)
        }
    }
}

/// When ours was checked as the older one against a stored newer one, the stored one is the
/// trusted evidence.
fn swap_roles(e: Error) -> Error {
    match e {
        Error::Inconsistent { trusted, presented } => Error::Inconsistent {
            trusted: presented,
            presented: trusted,
        },
        other => other,
    }
}

/// Shared handle (the `Client` is cheap to clone).
pub(crate) type SharedTrust = Arc<Trust>;

#[cfg(test)]
mod tests;
