//! `gridhub audit verify --witness VKEY… --min-witnesses K`: find the newest checkpoint that
//! carries the most witness cosignatures (up to K), from the database or a running hub, and
//! require K of the named witness keys on it (`tlog::cosignature::verify_witnesses`). The
//! checkpoint found is then verified against the entries with the others.

use tlog::cosignature::{CosignError, CosignatureVerifier, add_signature_lines, verify_witnesses};

use super::keychain::KeyChain;
use super::sources::HttpSource;
use crate::storage::Store;

/// The witness keys asked for, parsed; the message names the one at fault.
pub fn parse_witnesses(vkeys: &[String]) -> Result<Vec<CosignatureVerifier>, String> {
    vkeys
        .iter()
        .map(|v| {
            CosignatureVerifier::from_vkey(v)
                .map_err(|e| format!("--witness `{v}` is not a cosignature/v1 verifier key: {e}"))
        })
        .collect()
}

/// The newest stored checkpoint with the most cosignatures, `required` at most, with its
/// cosignatures appended (`None` if no checkpoint is stored).
pub async fn from_store(store: &Store, required: usize) -> Result<Option<String>, String> {
    for min in (0..=required).rev() {
        let min = i64::try_from(min).unwrap_or(i64::MAX);
        let found = store
            .newest_cosigned_checkpoint(min)
            .await
            .map_err(|e| format!("cannot read checkpoints: {e}"))?;
        if let Some(cp) = found {
            let lines: Vec<String> = store
                .cosignatures(cp.size)
                .await
                .map_err(|e| format!("cannot read cosignatures: {e}"))?
                .into_iter()
                .map(|c| c.line)
                .collect();
            return add_signature_lines(&cp.note, &lines)
                .map(Some)
                .map_err(|e| format!("checkpoint {}: {e}", cp.size));
        }
    }
    Ok(None)
}

/// As `from_store`, from a running hub (`GET /v1/audit/checkpoint?min_cosignatures=K`).
pub async fn from_hub(source: &HttpSource, required: usize) -> Result<Option<String>, String> {
    for min in (0..=required).rev() {
        if let Some(note) = source.cosigned_checkpoint(min).await? {
            return Ok(Some(note));
        }
    }
    Ok(None)
}

/// Require `required` of `witnesses` on `note` (signed by a key of the ledger's `keys`, within
/// its span); returns the
/// checkpoint text. The message of a failure says how many valid witnesses were found and which
/// keys were expected.
pub fn check(
    note: Option<&str>,
    keys: &KeyChain,
    witnesses: &[CosignatureVerifier],
    required: usize,
) -> Result<String, String> {
    let expected = || {
        witnesses
            .iter()
            .map(CosignatureVerifier::vkey)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(note) = note else {
        return Err(format!(
            "witness check failed: no signed checkpoint found (0 valid witness cosignatures, \
             {required} required of: {})",
            expected()
        ));
    };
    let (_, log) = keys
        .verify_checkpoint(note)
        .map_err(|e| format!("witness check failed: the checkpoint does not verify: {e}"))?;
    verify_witnesses(note, log, witnesses, required).map_err(|e| match e {
        CosignError::TooFewWitnesses { required, got, .. } => format!(
            "witness check failed: {got} valid witness cosignature(s) found, {required} \
             required of: {}",
            expected()
        ),
        other => format!("witness check failed: {other}"),
    })
}
