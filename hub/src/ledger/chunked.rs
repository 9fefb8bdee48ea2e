//! The ledger verified in ranges, for `POST /v1/audit/verify` and the console's verify button
//! (which shows progress between ranges): `verify::verify_range` — the code of `gridhub audit
//! verify`, not a second verifier — over a database, each range continuing the stored tree at
//! its first index. Ranges taken in order from 0 check what one `audit verify` checks: every
//! text re-hashed, every stored tree node and every signed checkpoint against the tree rebuilt
//! from the texts. Read-only.

use serde::Serialize;
use utoipa::ToSchema;

use super::merkle::{Frontier, Hash};
use super::sources::StoreSource;
use super::verify::{self, LedgerSource, Page, SourceEntry, VerifyFailure};
use super::{Ledger, LedgerError, resolve_nodes};

/// What one range of a verification found.
#[derive(Debug)]
pub struct RangeCheck {
    /// The first entry of the range.
    pub from: u64,
    /// One past the last entry checked: the asked end, or further for the last range (which
    /// runs to the end of what is stored), or where the failure stopped it.
    pub to: u64,
    /// The ledger's size when the range was asked for.
    pub size: u64,
    /// Signed checkpoints met in the range (their roots equal the rebuilt tree's).
    pub checkpoints: usize,
    /// The first thing wrong, and the first entry it concerns.
    pub failure: Option<VerifyFailure>,
}

/// The newest signed checkpoint, as its signed note says.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointStatus {
    pub size: u64,
    /// Base64 of the tree root it signs.
    pub root: String,
    /// When it was signed (Unix milliseconds).
    pub signed_ms: i64,
}

/// A database, with only the checkpoints a range can meet: those of sizes from its first
/// index to its last (any larger for the last range, which also reports a checkpoint beyond
/// the stored entries), chosen by their stored size; `verify` checks the signature and the
/// size each note itself states.
struct InRange {
    inner: StoreSource,
    store: crate::storage::Store,
    from: u64,
    /// The range's end; `None` for the last range.
    last: Option<u64>,
}

impl LedgerSource for InRange {
    async fn checkpoints(&mut self) -> Result<Vec<String>, String> {
        let at = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.store
            .checkpoint_notes_between(at(self.from), self.last.map(at))
            .await
            .map_err(|e| format!("cannot read checkpoints: {e}"))
    }

    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, String> {
        self.inner.page(from, limit).await
    }

    async fn stored_nodes(
        &mut self,
        from: u64,
        to: u64,
    ) -> Result<Option<std::collections::HashMap<super::merkle::NodeId, Hash>>, String> {
        self.inner.stored_nodes(from, to).await
    }

    async fn stored_leaves(
        &mut self,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<SourceEntry>>, String> {
        self.inner.stored_leaves(from, to).await
    }
}

impl Ledger {
    /// The tree of the first `size` entries as stored: its frontier nodes, derived from the
    /// stored tree nodes and (below a tile) from the entries' texts.
    async fn stored_tree(&self, size: u64) -> Result<Frontier, LedgerError> {
        let positions = Frontier::positions(size);
        let nodes = resolve_nodes(&self.inner.store, &positions).await?;
        let hashes = positions
            .iter()
            .map(|p| nodes.get(p).copied())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                LedgerError::Integrity(format!("tree nodes for size {size} are missing"))
            })?;
        Frontier::from_parts(size, hashes)
            .ok_or_else(|| LedgerError::Integrity("frontier does not match the size".to_owned()))
    }

    /// Verify the entries `from..to` (to the end of the stored ledger when `to` reaches the
    /// current size), continuing the stored tree at `from`. A `from` beyond the ledger is 400.
    pub async fn verify_range(&self, from: u64, to: u64) -> Result<RangeCheck, LedgerError> {
        let size = self.size();
        if from > size {
            return Err(LedgerError::BadRequest(format!(
                "the ledger has {size} entries; `from` must not exceed that"
            )));
        }
        let to = to.clamp(from, size);
        let last = (to < size).then_some(to);
        let start = match self.stored_tree(from).await {
            Ok(start) => start,
            Err(LedgerError::Integrity(problem)) => {
                return Ok(RangeCheck {
                    from,
                    to: from,
                    size,
                    checkpoints: 0,
                    failure: Some(VerifyFailure {
                        index: Some(from),
                        problem,
                    }),
                });
            }
            Err(e) => return Err(e),
        };
        let mut source = InRange {
            inner: StoreSource::new(&self.inner.store),
            store: self.inner.store.clone(),
            from,
            last,
        };
        let keys = self.key_chain().await?;
        let outcome =
            verify::verify_range(&mut source, &keys, &self.inner.origin, start, last, |_| {}).await;
        Ok(match outcome {
            Ok(report) => RangeCheck {
                from,
                to: report.entries,
                size,
                checkpoints: report.checkpoints,
                failure: None,
            },
            Err(failure) => RangeCheck {
                from,
                to: failure.index.unwrap_or(from).max(from),
                size,
                checkpoints: 0,
                failure: Some(failure),
            },
        })
    }

    /// The newest stored checkpoint, read from its signed note (checked under this ledger's
    /// key); `None` before the first.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointStatus>, LedgerError> {
        let Some(stored) = self.inner.store.latest_checkpoint().await? else {
            return Ok(None);
        };
        let (cp, _) = self
            .key_chain()
            .await?
            .verify_checkpoint(&stored.note)
            .map_err(|e| LedgerError::Integrity(format!("the newest checkpoint: {e}")))?;
        use base64::Engine;
        Ok(Some(CheckpointStatus {
            size: cp.size,
            root: base64::engine::general_purpose::STANDARD.encode(cp.root),
            signed_ms: stored.time_ms,
        }))
    }
}
