//! What this client trusts about the hub's ledger: the pinned verifier key and the last
//! verified checkpoint, kept in memory and (optionally) in the shared state file. Invariant:
//! the trusted checkpoint only moves forward, and only to a checkpoint proved consistent with
//! it; a checkpoint another process stored is checked against ours, never overwritten.

use std::sync::{Arc, RwLock};

use tlog::cosignature::{CosignatureVerifier, verify_witnesses};
use tlog::note::Verifier;
use tokio::sync::{Mutex, OnceCell};

use crate::error::{Error, Result};
use crate::state::{State, StateFile};
use crate::transport::Hub;
use crate::verify::{self, ConsistencyProof, SignedCheckpoint, Step};

/// The ledger's public key answer (`GET /v1/audit/public-key`), the part used here.
#[derive(serde::Deserialize)]
struct PublicKey {
    verifier: String,
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
    verifier: OnceCell<Verifier>,
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
            verifier: OnceCell::new(),
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

    /// The pinned ledger verifier: configured, else pinned in the state file, else fetched
    /// from the hub and pinned there (trust on first use).
    pub(crate) async fn verifier(&self, hub: &Hub) -> Result<&Verifier> {
        self.verifier.get_or_try_init(|| self.pin(hub)).await
    }

    async fn pin(&self, hub: &Hub) -> Result<Verifier> {
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
            (None, None) => {
                hub.get_json::<PublicKey, _>("/v1/audit/public-key", &())
                    .await?
                    .verifier
            }
        };
        let verifier = Verifier::from_vkey(&vkey)
            .map_err(|e| Error::Config(format!("the ledger verifier key: {e}")))?;
        if let Some(file) = self.store.clone() {
            let mine = vkey.clone();
            let stored = blocking(move || {
                file.update(|current| {
                    Ok(current.vkey.is_none().then(|| State {
                        vkey: Some(mine),
                        checkpoint: current.checkpoint.clone(),
                    }))
                })
            })
            .await?;
            if stored.vkey.as_deref() != Some(vkey.as_str()) {
                return Err(Error::Config(
                    "another process pinned a different ledger key in the state file".to_owned(),
                ));
            }
        }
        Ok(verifier)
    }

    /// The trusted checkpoint as stored (the state file's, else this process's).
    async fn base(&self, verifier: &Verifier) -> Result<Option<SignedCheckpoint>> {
        let Some(file) = self.store.clone() else {
            return Ok(self.last());
        };
        let stored = blocking(move || file.load()).await?.checkpoint;
        stored
            .map(|note| stored_checkpoint(verifier, &note))
            .transpose()
    }

    /// Fetch the hub's checkpoint, verify it and prove it consistent with the trusted one;
    /// it becomes the trusted checkpoint (or a newer one another process stored does).
    pub(crate) async fn advance(&self, hub: &Hub) -> Result<SignedCheckpoint> {
        let verifier = self.verifier(hub).await?;
        let _moving = self.moving.lock().await;
        // Read what is trusted before asking the hub: an honest hub never presents less.
        let mut base = self.base(verifier).await?;
        let presented = self.presented(hub, verifier).await?;
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
                        vkey: current.vkey.clone(),
                        checkpoint: Some(mine),
                    }))
                })
            })
            .await?;
            let Some(stored) = stored.checkpoint else {
                return Err(Error::StateFile(
                    "the stored checkpoint vanished".to_owned(),
                ));
            };
            if stored == presented.note() {
                self.set_last(&presented);
                return Ok(presented);
            }
            // Another process stored a checkpoint meanwhile: check ours against theirs.
            let theirs = stored_checkpoint(verifier, &stored)?;
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
}

impl Trust {
    /// The hub's checkpoint, verified (and witnessed, if witnesses are required).
    async fn presented(&self, hub: &Hub, verifier: &Verifier) -> Result<SignedCheckpoint> {
        let Some(rule) = &self.witnesses else {
            let note = hub.get_text("/v1/audit/checkpoint", &()).await?;
            return SignedCheckpoint::verify(verifier, &note);
        };
        let note = hub
            .get_text(
                "/v1/audit/checkpoint",
                &[("min_cosignatures", rule.required)],
            )
            .await?;
        verify_witnesses(&note, verifier, &rule.witnesses, rule.required)
            .map_err(|e| Error::BadCheckpoint(e.to_string()))?;
        SignedCheckpoint::verify(verifier, &note)
    }
}

/// A checkpoint read back from the state file must still verify with the pinned key.
fn stored_checkpoint(verifier: &Verifier, note: &str) -> Result<SignedCheckpoint> {
    SignedCheckpoint::verify(verifier, note)
        .map_err(|e| Error::StateFile(format!("the stored checkpoint does not verify: {e}")))
}

/// Check `newer` extends `trusted` (fetching a consistency proof when the size grew).
async fn extends(hub: &Hub, trusted: &SignedCheckpoint, newer: &SignedCheckpoint) -> Result<()> {
    match verify::step(trusted, newer)? {
        Step::Same | Step::FromEmpty => Ok(()),
        Step::Extend { from, to } => {
            let proof: ConsistencyProof = hub
                .get_json(
                    "/v1/audit/proofs/consistency",
                    &[("from", from), ("to", to)],
                )
                .await?;
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
