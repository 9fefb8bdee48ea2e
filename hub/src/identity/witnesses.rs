//! Departments as witnesses (issue 21): an admin registers a department client's C2SP
//! tlog-cosignature v1 key; the client then hands in cosignatures of checkpoints it verified,
//! and the hub serves them after its own signature line.
//!
//! Invariants: a witness key is set or removed only with `clients` `write`, as an `allow` ledger
//! entry written before the change is stored; a cosignature is stored only if it verifies under
//! the calling client's own current key over the exact text of a checkpoint the hub signed and
//! stored, and only after its `allow` entry; every refusal is a `deny` entry first.

use policy::FieldProblem;
use tlog::cosignature::{CosignatureVerifier, add_signature_lines};
use tlog::note::Checkpoint;

use super::{Identity, problem};
use crate::auth::{Caller, Principal};
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::{CosignatureRow, WitnessKeyRow};
use crate::time::now_ms;

/// The action of every cosignature entry (accepted or refused).
const COSIGN: &str = "audit.cosign";

/// A cosignature as the hub keeps it, and whether this request stored it.
pub struct AcceptedCosignature {
    pub size: u64,
    pub key_name: String,
    pub timestamp: u64,
    pub created: bool,
}

impl Identity {
    /// Register (or replace) a client's witness key from its cosignature/v1 vkey (role
    /// permission `clients:write`; audited before it is stored).
    pub async fn set_witness_key(
        &self,
        who: &Principal,
        client: &str,
        vkey: &str,
    ) -> Result<WitnessKeyRow, Error> {
        self.access
            .authorize(who, "clients", "write", None, "client.witness.set")
            .await?;
        let verifier = CosignatureVerifier::from_vkey(vkey).map_err(|e| {
            Error::Validation(vec![problem(
                "vkey",
                &format!("not a tlog-cosignature/v1 Ed25519 verifier key (alg 0x04): {e}"),
            )])
        })?;
        let Some(row) = self.store.client(client).await? else {
            return Err(Error::NotFound("client"));
        };
        // One key, one witness: a key shared by two clients would count once for both, and a
        // department could not tell its own cosignatures from the other's.
        let held = self.store.witness_keys().await?;
        if held
            .iter()
            .any(|k| k.public_key == verifier.public_key() && k.client != row.id)
        {
            return Err(Error::Conflict(
                "another client holds this witness key".to_owned(),
            ));
        }
        let key = WitnessKeyRow {
            client: row.id,
            department: row.department,
            key_name: verifier.name().to_owned(),
            public_key: verifier.public_key().to_vec(),
            vkey: verifier.vkey(),
            registered_ms: now_ms(),
        };
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "client.witness.set",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("client {client} witness key {}", key.vkey)),
            )
            .await?;
        if !self.store.set_witness_key(&key).await? {
            return Err(Error::NotFound("client"));
        }
        tracing::info!(client_id = %client, key_name = %key.key_name, "witness key registered");
        Ok(key)
    }

    /// Remove a client's witness key (role permission `clients:write`; audited before it is
    /// stored). Its cosignatures already collected stay.
    pub async fn remove_witness_key(&self, who: &Principal, client: &str) -> Result<(), Error> {
        self.access
            .authorize(who, "clients", "write", None, "client.witness.remove")
            .await?;
        if self.store.client(client).await?.is_none() {
            return Err(Error::NotFound("client"));
        }
        let Some(key) = self.store.witness_key(client).await? else {
            return Err(Error::NotFound("witness key"));
        };
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "client.witness.remove",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("client {client} witness key {}", key.vkey)),
            )
            .await?;
        if !self.store.remove_witness_key(client, now_ms()).await? {
            return Err(Error::NotFound("witness key"));
        }
        tracing::info!(client_id = %client, "witness key removed");
        Ok(())
    }

    /// Every current witness key of an active client (any authenticated caller: the keys are
    /// public, as the ledger's own is).
    pub async fn witnesses(&self) -> Result<Vec<WitnessKeyRow>, Error> {
        Ok(self.store.witness_keys().await?)
    }

    /// Accept the calling client's cosignature `line` of `checkpoint` (the checkpoint text:
    /// origin, size, root, each with its newline). Idempotent: the same (size, key) again
    /// answers what is stored, `created: false`.
    pub async fn accept_cosignature(
        &self,
        who: &Principal,
        checkpoint: &str,
        line: &str,
    ) -> Result<AcceptedCosignature, Error> {
        let Caller::Client { id: client, .. } = &who.caller else {
            return Err(self
                .refuse(who, "only a department client can cosign", forbidden())
                .await);
        };
        let Some(key) = self.store.witness_key(client).await? else {
            return Err(self
                .refuse(who, "the client has no witness key", forbidden())
                .await);
        };
        let cp = match Checkpoint::parse(checkpoint) {
            Ok(cp) => cp,
            Err(e) => {
                let error = invalid("checkpoint", &e.to_string());
                return Err(self.refuse(who, "malformed checkpoint", error).await);
            }
        };
        let size = i64::try_from(cp.size).unwrap_or(i64::MAX);
        let signed = self.store.checkpoint_of_size(size).await?;
        if signed.as_ref().and_then(|c| note_text(&c.note)) != Some(checkpoint) {
            let reason = format!("the hub signed no such checkpoint of size {}", cp.size);
            return Err(self
                .refuse(who, &reason, Error::NotFound("checkpoint"))
                .await);
        }
        let verifier = CosignatureVerifier::from_vkey(&key.vkey)
            .map_err(|e| Error::Internal(format!("stored witness key of {client}: {e}")))?;
        let timestamp = match verifier.verify_line(checkpoint, line) {
            Ok(t) => t,
            Err(e) => {
                let reason = format!(
                    "cosignature of checkpoint {} refused for witness key {}: {e}",
                    cp.size, key.key_name
                );
                let error = invalid("cosignature", &e.to_string());
                return Err(self.refuse(who, &reason, error).await);
            }
        };
        self.access
            .record(
                EntryDraft::new(who.actor(), COSIGN, Decision::Allow, current_request_id()).reason(
                    &format!(
                        "cosignature of checkpoint {} by witness key {}",
                        cp.size, key.vkey
                    ),
                ),
            )
            .await?;
        let (stored, created) = self
            .store
            .insert_cosignature(&CosignatureRow {
                size,
                key_name: key.key_name.clone(),
                key_hash: verifier.key_hash().to_vec(),
                timestamp: i64::try_from(timestamp).unwrap_or(i64::MAX),
                line: line.to_owned(),
                client: client.clone(),
                received_ms: now_ms(),
            })
            .await?;
        Ok(AcceptedCosignature {
            size: cp.size,
            key_name: stored.key_name,
            timestamp: u64::try_from(stored.timestamp).unwrap_or(0),
            created,
        })
    }

    /// `note` (a checkpoint the hub signed) with every cosignature collected for it appended
    /// after the hub's own line.
    pub async fn with_cosignatures(&self, note: String) -> Result<String, Error> {
        let size = note_text(&note)
            .and_then(|t| Checkpoint::parse(t).ok())
            .map(|c| i64::try_from(c.size).unwrap_or(i64::MAX))
            .ok_or_else(|| Error::Internal("a stored checkpoint is malformed".to_owned()))?;
        let lines: Vec<String> = self
            .store
            .cosignatures(size)
            .await?
            .into_iter()
            .map(|c| c.line)
            .collect();
        add_signature_lines(&note, &lines)
            .map_err(|e| Error::Internal(format!("checkpoint {size} with cosignatures: {e}")))
    }

    /// The newest stored checkpoint carrying at least `min` cosignatures, with them.
    pub async fn cosigned_checkpoint(&self, min: u64) -> Result<String, Error> {
        let min = i64::try_from(min).unwrap_or(i64::MAX);
        let Some(stored) = self.store.newest_cosigned_checkpoint(min).await? else {
            return Err(Error::NotFound("checkpoint with that many cosignatures"));
        };
        self.with_cosignatures(stored.note).await
    }

    async fn refuse(&self, who: &Principal, reason: &str, error: Error) -> Error {
        self.access.deny(who.actor(), COSIGN, reason, error).await
    }
}

fn forbidden() -> Error {
    Error::Forbidden("only a department client with a registered witness key can cosign".to_owned())
}

fn invalid(field: &str, text: &str) -> Error {
    let problems: Vec<FieldProblem> = vec![problem(field, text)];
    Error::Validation(problems)
}

/// The text of a signed note (up to and including the newline before the blank line).
pub fn note_text(note: &str) -> Option<&str> {
    note.rfind("\n\n").and_then(|i| note.get(..=i))
}
