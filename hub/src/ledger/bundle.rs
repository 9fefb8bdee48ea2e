//! Evidence bundles: chosen ledger entries, each with its canonical text and its RFC 9162
//! inclusion proof, and the signed checkpoint they were all proved against. A bundle is checked
//! offline (`gridhub audit verify --bundle FILE`), with no access to the hub: the checkpoint's
//! Ed25519 signature under the verifier key, then every entry's leaf hash, computed from its
//! text, up its proof to the checkpoint's root. Invariant: `EvidenceBundle::verify` accepts a
//! bundle only if every one of these checks passes; it names the first entry that fails.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::keychain::KeyChain;
use super::merkle::{Hash, leaf_hash, verify_inclusion};
use super::note::Verifier;
use super::{Ledger, LedgerError};

pub const BUNDLE_FORMAT: &str = "gridhub-evidence/v1";

/// Most entries in one bundle: a bundle is evidence for a question, not a copy of the ledger.
pub const MAX_BUNDLE_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// `gridhub-evidence/v1`.
    pub format: String,
    /// The ledger's C2SP verifier key as the hub published it (check it against one you hold:
    /// `--vkey`).
    pub verifier_key: String,
    /// The signed checkpoint (C2SP signed note) every proof leads to.
    pub checkpoint: String,
    pub entries: Vec<BundleEntry>,
    /// The ledger key's transition statements, oldest first (tlog `keychain`): a verifier that
    /// pinned an earlier key follows them to the key that signed the checkpoint. Absent when
    /// the key never rotated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_transitions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    pub index: u64,
    /// The exact text hashed into the leaf.
    pub canonical: String,
    /// The inclusion proof, base64 hashes from the leaf up.
    pub proof: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("not a {BUNDLE_FORMAT} bundle (format `{0}`)")]
    Format(String),
    #[error("bad verifier key: {0}")]
    VerifierKey(String),
    #[error("the bundle's key `{bundle}` is not the key given `{given}`")]
    OtherKey { bundle: String, given: String },
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(String),
    #[error("entry {index}: {problem}")]
    Entry { index: u64, problem: String },
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    pub entries: usize,
    pub checkpoint_size: u64,
    pub origin: String,
    pub verifier_key: String,
}

impl EvidenceBundle {
    /// Check the bundle (module docs), under `pinned` if given (it must be the bundle's key or
    /// one that the bundle's key transitions lead from or to), else under the key the bundle
    /// names.
    pub fn verify(&self, pinned: Option<&str>) -> Result<BundleReport, BundleError> {
        if self.format != BUNDLE_FORMAT {
            return Err(BundleError::Format(self.format.clone()));
        }
        let named = Verifier::from_vkey(&self.verifier_key)
            .map_err(|e| BundleError::VerifierKey(e.to_string()))?;
        let anchor = match pinned {
            Some(given) => {
                Verifier::from_vkey(given).map_err(|e| BundleError::VerifierKey(e.to_string()))?
            }
            None => named.clone(),
        };
        let other_key = || BundleError::OtherKey {
            bundle: self.verifier_key.clone(),
            given: pinned.unwrap_or_default().to_owned(),
        };
        let chain = KeyChain::new(anchor, &self.key_transitions).map_err(|_| other_key())?;
        if !chain.keys().contains(&named) {
            return Err(other_key());
        }
        let (checkpoint, _) = chain
            .verify_checkpoint(&self.checkpoint)
            .map_err(|e| BundleError::Checkpoint(e.to_string()))?;
        for entry in &self.entries {
            let bad = |problem: String| BundleError::Entry {
                index: entry.index,
                problem,
            };
            let proof = entry
                .proof
                .iter()
                .map(|h| {
                    B64.decode(h)
                        .ok()
                        .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
                        .ok_or_else(|| bad("a proof hash is not 32 bytes of base64".to_owned()))
                })
                .collect::<Result<Vec<Hash>, _>>()?;
            let leaf = leaf_hash(entry.canonical.as_bytes());
            verify_inclusion(
                entry.index,
                checkpoint.size,
                &leaf,
                &proof,
                &checkpoint.root,
            )
            .map_err(|e| bad(format!("not included in the checkpoint: {e}")))?;
            // The text must also say it is the entry at that index.
            let named: Option<u64> = serde_json::from_str::<serde_json::Value>(&entry.canonical)
                .ok()
                .and_then(|v| v.get("index").and_then(serde_json::Value::as_u64));
            if named != Some(entry.index) {
                return Err(bad("its text names another index".to_owned()));
            }
        }
        Ok(BundleReport {
            entries: self.entries.len(),
            checkpoint_size: checkpoint.size,
            origin: checkpoint.origin,
            verifier_key: self.verifier_key.clone(),
        })
    }
}

impl Ledger {
    /// A bundle of `entries` (index, canonical text), proved against the current signed
    /// checkpoint (a new one is signed if the log grew).
    pub async fn evidence_bundle(
        &self,
        entries: Vec<(i64, String)>,
    ) -> Result<EvidenceBundle, LedgerError> {
        if entries.len() > MAX_BUNDLE_ENTRIES {
            return Err(LedgerError::BadRequest(format!(
                "at most {MAX_BUNDLE_ENTRIES} entries in one bundle; narrow the filter"
            )));
        }
        let checkpoint = self.checkpoint().await?;
        let chain = self.key_chain().await?;
        let (size, verifier) = chain
            .verify_checkpoint(&checkpoint)
            .map(|(cp, by)| (cp.size, by.clone()))
            .map_err(|e| LedgerError::Integrity(format!("own checkpoint: {e}")))?;
        let mut out = Vec::with_capacity(entries.len());
        for (index, canonical) in entries {
            let index = u64::try_from(index).unwrap_or(u64::MAX);
            let (_, proof) = self.inclusion_proof(index, size).await?;
            out.push(BundleEntry {
                index,
                canonical,
                proof: proof.iter().map(|h| B64.encode(h)).collect(),
            });
        }
        Ok(EvidenceBundle {
            format: BUNDLE_FORMAT.to_owned(),
            verifier_key: verifier.verifier_key(),
            checkpoint,
            entries: out,
            key_transitions: chain.transitions().to_vec(),
        })
    }
}
