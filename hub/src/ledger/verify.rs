//! Offline verification of a ledger (`gridhub audit verify`): recompute every leaf from its
//! stored canonical text and the tree root at every checkpoint size, check each checkpoint's
//! signature, and report the first index where anything disagrees. Pure over a `LedgerSource`,
//! so the same code checks a database or a remote hub.

use std::time::Instant;

use super::merkle::{self, Frontier, Hash};
use super::note::{Checkpoint, Verifier};

/// One entry as read back: index, canonical text and (from a database) its stored leaf hash.
pub struct SourceEntry {
    pub index: i64,
    pub canonical: String,
    pub leaf_hash: Option<Vec<u8>>,
}

/// Where entries and checkpoints come from.
#[allow(async_fn_in_trait)]
pub trait LedgerSource {
    /// Signed checkpoint notes, any order.
    async fn checkpoints(&mut self) -> Result<Vec<String>, String>;
    /// Up to `limit` entries with index ≥ `from`, in index order.
    async fn page(&mut self, from: i64, limit: i64) -> Result<Vec<SourceEntry>, String>;
}

#[derive(Debug)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: usize,
    pub root: Hash,
    pub seconds: f64,
}

/// Why verification failed; `index` is the first entry that is wrong, when one is.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifyFailure {
    pub index: Option<u64>,
    pub problem: String,
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

fn fail(index: Option<u64>, problem: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        index,
        problem: problem.into(),
    }
}

const PAGE: i64 = 50_000;

/// The top-level `index` of a canonical entry, without parsing the whole entry. In canonical
/// JSON a quote inside a string is escaped, so the unescaped `,"index":` followed by a digit can
/// only be the entry's own key (a catalog field called `index` maps to a string, not a number).
/// The leaf hash binds the bytes; this only catches entries moved between positions.
pub(crate) fn claimed_index(canonical: &str) -> Option<u64> {
    let start = canonical.find(",\"index\":")? + 9;
    let digits: &str = canonical.get(start..)?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits.get(..end)?.parse().ok()
}

/// Check one page — contiguous indexes from `first`, each entry at the index it claims, each
/// stored leaf hash equal to the recomputed one — and return the recomputed leaf hashes.
fn leaves_of(page: Vec<SourceEntry>, first: u64) -> Result<Vec<Hash>, VerifyFailure> {
    let mut leaves = Vec::with_capacity(page.len());
    for (expected, e) in (first..).zip(page) {
        if e.index != i64::try_from(expected).unwrap_or(-1) {
            return Err(fail(
                Some(expected),
                format!("entry is missing (the next stored entry is {})", e.index),
            ));
        }
        let claimed = claimed_index(&e.canonical)
            .ok_or_else(|| fail(Some(expected), "entry has no index (altered)"))?;
        if claimed != expected {
            return Err(fail(
                Some(expected),
                format!("entry claims index {claimed} (moved or swapped)"),
            ));
        }
        let leaf = merkle::leaf_hash(e.canonical.as_bytes());
        if e.leaf_hash.as_deref().is_some_and(|h| h != leaf) {
            return Err(fail(
                Some(expected),
                "stored text does not match its leaf hash (altered)",
            ));
        }
        leaves.push(leaf);
    }
    Ok(leaves)
}

/// Verify everything `source` holds. `progress(done)` is called after every page.
pub async fn verify(
    source: &mut impl LedgerSource,
    verifier: &Verifier,
    origin: &str,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyFailure> {
    let started = Instant::now();
    let mut checkpoints = Vec::new();
    for note in source.checkpoints().await.map_err(|e| fail(None, e))? {
        let body = verifier.verify_note(&note).map_err(|e| {
            fail(
                None,
                format!("a checkpoint's signature does not verify: {e}"),
            )
        })?;
        let cp = Checkpoint::parse(body)
            .map_err(|e| fail(None, format!("a checkpoint is malformed: {e}")))?;
        if cp.origin != origin {
            return Err(fail(
                None,
                format!(
                    "a checkpoint names origin `{}`, expected `{origin}`",
                    cp.origin
                ),
            ));
        }
        checkpoints.push(cp);
    }
    checkpoints.sort_by_key(|c| c.size);
    let mut next_cp = 0usize;
    let mut frontier = Frontier::new();
    // A checkpoint of size 0 covers the empty tree.
    while let Some(cp) = checkpoints.get(next_cp).filter(|c| c.size == 0) {
        if cp.root != merkle::empty_root() {
            return Err(fail(
                None,
                "the checkpoint of size 0 does not sign the empty tree",
            ));
        }
        next_cp += 1;
    }
    // Pipeline: while the leaves of page k are hashed on a blocking thread, page k+1 is being
    // read and page k-1 is folded into the tree here. Pages are folded strictly in order, so
    // the first failure reported is still the first bad index.
    let mut next_from = frontier.size();
    let mut hashing: Option<tokio::task::JoinHandle<Result<Vec<Hash>, VerifyFailure>>> = None;
    loop {
        let from = i64::try_from(next_from).unwrap_or(i64::MAX);
        let page = source.page(from, PAGE).await.map_err(|e| fail(None, e))?;
        let job = (!page.is_empty()).then(|| {
            let first = next_from;
            next_from += page.len() as u64;
            tokio::task::spawn_blocking(move || leaves_of(page, first))
        });
        if let Some(previous) = hashing.take() {
            let leaves = previous
                .await
                .map_err(|e| fail(None, format!("hashing task failed: {e}")))??;
            for leaf in leaves {
                frontier.push(leaf);
                while let Some(cp) = checkpoints
                    .get(next_cp)
                    .filter(|c| c.size == frontier.size())
                {
                    if cp.root != frontier.root() {
                        let first = next_cp
                            .checked_sub(1)
                            .and_then(|i| checkpoints.get(i))
                            .map_or(0, |c| c.size);
                        return Err(fail(
                            Some(first),
                            format!(
                                "entries {first}..{} do not match the signed checkpoint of size {}",
                                cp.size, cp.size
                            ),
                        ));
                    }
                    next_cp += 1;
                }
            }
            progress(frontier.size());
        }
        match job {
            Some(job) => hashing = Some(job),
            None => break,
        }
    }
    if let Some(cp) = checkpoints.get(next_cp) {
        return Err(fail(
            Some(frontier.size()),
            format!(
                "log truncated: a checkpoint signs {} entries but only {} are stored",
                cp.size,
                frontier.size()
            ),
        ));
    }
    Ok(VerifyReport {
        entries: frontier.size(),
        checkpoints: checkpoints.len(),
        root: frontier.root(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
