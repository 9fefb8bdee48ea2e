//! The ledger and the keys as a DPO or admin reads them (`GET /v1/audit/status`,
//! `POST /v1/audit/verify`, `GET /v1/admin/keys`, and the console's ledger page): the ledger's
//! size and newest signed checkpoint, the ledger verified range by range
//! (`Ledger::verify_range`, the code of `gridhub audit verify`), and every category's KEK
//! versions with the data keys each wraps. Each method checks `audit:read` itself; no key
//! material and no personal value leaves.

use serde::Serialize;
use utoipa::ToSchema;

use super::Oversight;
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::chunked::{CheckpointStatus, RangeCheck};
use crate::ledger::{Decision, EntryDraft};

/// Most entries one verify range covers (a range of a million entries takes about a second).
pub const MAX_VERIFY_RANGE: u64 = 1_000_000;

/// The ledger's size, newest signed checkpoint and signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerStatus {
    /// Entries in the ledger now.
    pub size: u64,
    /// The newest signed checkpoint; absent before the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointStatus>,
    /// The checkpoint's age in whole minutes on the hub's clock (never negative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_age_minutes: Option<i64>,
    /// The ledger key's name (the log's origin) and key id (hex of its C2SP key hash).
    pub key_name: String,
    pub key_id: String,
}

/// One KEK version of a category.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct KeyVersion {
    pub version: u32,
    /// Wraps the data keys of new records.
    pub current: bool,
    /// Data keys (one per live record; one per case for case texts) this version wraps now.
    pub deks: i64,
    /// DEK wraps performed under this version so far (new data keys and rewrapped ones); the
    /// hub rotates by itself at `rotate_after_wraps` and refuses wraps at `wrap_limit`.
    pub wraps: i64,
    /// `active` (wraps new data keys), `rewrap` (its data keys are being moved to the active
    /// version) or `retired` (unwraps nothing any more).
    pub state: crate::storage::KekState,
    /// Data keys the rewrap has moved off this version so far: with `deks`, the rewrap's
    /// progress.
    pub rewrapped: i64,
}

/// A key category (a catalog category, or `case-texts`) and its KEK versions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryKeys {
    pub category: String,
    pub versions: Vec<KeyVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyReport {
    pub categories: Vec<CategoryKeys>,
    /// Wraps per KEK version past which wrapping is refused (90 % of 2^32).
    pub wrap_limit: i64,
    /// Wraps per KEK version at which the hub rotates by itself.
    pub rotate_after_wraps: i64,
}

impl Oversight {
    /// The ledger's size, newest signed checkpoint (with its age at `now_ms`) and key.
    pub async fn ledger_status(&self, who: &Principal, now_ms: i64) -> Result<LedgerStatus, Error> {
        self.admit(who, "audit.status").await?;
        let ledger = self.access.ledger();
        let checkpoint = ledger.latest_checkpoint().await?;
        let signer = ledger.signer();
        Ok(LedgerStatus {
            size: ledger.size(),
            checkpoint_age_minutes: checkpoint
                .as_ref()
                .map(|c| (now_ms - c.signed_ms).max(0) / 60_000),
            checkpoint,
            key_name: signer.name().to_owned(),
            key_id: crate::hex::encode(&signer.key_hash()),
        })
    }

    /// Verify the entries `from..to` (at most `MAX_VERIFY_RANGE` of them). The range that
    /// reaches the end, or finds something wrong, is recorded as `audit.verify` with what it
    /// found; the ranges before it are reads like any other.
    pub async fn verify_range(
        &self,
        who: &Principal,
        from: u64,
        to: u64,
    ) -> Result<RangeCheck, Error> {
        self.admit(who, "audit.verify").await?;
        if to < from || to - from > MAX_VERIFY_RANGE {
            return Err(Error::validation(
                "to",
                "must be at least `from` and at most 1000000 entries after it",
            ));
        }
        let check = self.access.ledger().verify_range(from, to).await?;
        let reason = match &check.failure {
            Some(failure) => Some(format!("ledger verification FAILED: {failure}")),
            None if check.to >= check.size => Some(format!(
                "ledger verified: entries {}..{} match their texts, the stored tree and {} signed checkpoint(s) in the last range",
                check.from, check.to, check.checkpoints
            )),
            None => None,
        };
        if let Some(reason) = reason {
            self.access
                .record(
                    EntryDraft::new(
                        who.actor(),
                        "audit.verify",
                        Decision::Allow,
                        current_request_id(),
                    )
                    .reason(&reason),
                )
                .await?;
        }
        Ok(check)
    }

    /// Every key category's KEK versions (the current one marked) and the data keys each
    /// wraps.
    pub async fn key_versions(&self, who: &Principal) -> Result<KeyReport, Error> {
        self.admit(who, "keys.read").await?;
        let deks = self.store.dek_counts(crate::vault::CASE_TEXTS).await?;
        let rows = self.store.kek_rows().await?;
        let categories = self
            .vault
            .kek_versions()
            .into_iter()
            .map(|k| CategoryKeys {
                versions: k
                    .versions
                    .iter()
                    .map(|&version| KeyVersion {
                        version,
                        current: version == k.active,
                        deks: deks
                            .iter()
                            .filter(|d| d.category == k.category && d.kek_version == version)
                            .map(|d| d.deks)
                            .sum(),
                        wraps: row(&rows, &k.category, version).map_or(0, |r| r.wraps),
                        state: row(&rows, &k.category, version).map_or(
                            if version == k.active {
                                crate::storage::KekState::Active
                            } else if k.retired.contains(&version) {
                                crate::storage::KekState::Retired
                            } else {
                                crate::storage::KekState::Rewrap
                            },
                            |r| r.state,
                        ),
                        rewrapped: row(&rows, &k.category, version).map_or(0, |r| r.rewrapped),
                    })
                    .collect(),
                category: k.category,
            })
            .collect();
        Ok(KeyReport {
            categories,
            wrap_limit: crate::vault::KEK_WRAP_LIMIT,
            rotate_after_wraps: self.rotate_after_wraps,
        })
    }
}

fn row<'a>(
    rows: &'a [crate::storage::KekRow],
    category: &str,
    version: u32,
) -> Option<&'a crate::storage::KekRow> {
    rows.iter()
        .find(|r| r.category == category && r.version == version)
}
