//! Offline verification of a ledger (`gridhub audit verify`): recompute every leaf from its
//! stored canonical text and the tree root at every checkpoint size, check each checkpoint's
//! signature, and report the first index where anything disagrees. Pure over a `LedgerSource`,
//! so the same code checks a database or a remote hub.
//!
//! From a database it also checks every stored tree node (levels 4, 8, …: what inclusion and
//! consistency proofs are built from, with leaves hashed from the texts) against the tree
//! recomputed from the texts. The stored leaf hashes are read only to pinpoint a failure — the
//! first entry whose text no longer matches its stored leaf hash — and for the last,
//! incomplete tile, so a normal run reads texts only.

use std::collections::HashMap;

use std::time::Instant;

use super::TILE_LEVELS;
use super::merkle::{self, Frontier, Hash, NodeId};
use super::note::{Checkpoint, Verifier};

/// One entry as read back: index, canonical text and (from a database) its stored leaf hash.
pub struct SourceEntry {
    pub index: i64,
    pub canonical: String,
    pub leaf_hash: Option<Vec<u8>>,
}

/// A page of entries as a source hands it out.
pub enum Page {
    Entries(Vec<SourceEntry>),
    /// `count` canonical texts joined by `\n`, the first at index `first` (a database read in
    /// one row; no per-entry copies).
    Joined {
        first: i64,
        count: usize,
        texts: String,
    },
}

impl Page {
    pub fn len(&self) -> usize {
        match self {
            Page::Entries(e) => e.len(),
            Page::Joined { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where entries and checkpoints come from.
#[allow(async_fn_in_trait)]
pub trait LedgerSource {
    /// Signed checkpoint notes, any order.
    async fn checkpoints(&mut self) -> Result<Vec<String>, String>;
    /// Up to `limit` entries with index ≥ `from`, in index order.
    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, String>;
    /// Stored interior nodes (levels 4, 8, …) completed by the leaves `from..to`; `None` when
    /// the source keeps no tree (a remote hub).
    async fn stored_nodes(
        &mut self,
        _from: u64,
        _to: u64,
    ) -> Result<Option<HashMap<NodeId, Hash>>, String> {
        Ok(None)
    }
    /// Entries `from..to` with their stored leaf hashes; `None` when the source has none.
    async fn stored_leaves(
        &mut self,
        _from: u64,
        _to: u64,
    ) -> Result<Option<Vec<SourceEntry>>, String> {
        Ok(None)
    }
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
fn leaves_of(page: Page, first: u64) -> Result<Vec<Hash>, VerifyFailure> {
    let mut leaves = Vec::with_capacity(page.len());
    let mut check = |expected: u64, index: i64, canonical: &str, stored: Option<&[u8]>| {
        if index != i64::try_from(expected).unwrap_or(-1) {
            return Err(fail(
                Some(expected),
                format!("entry is missing (the next stored entry is {index})"),
            ));
        }
        let claimed = claimed_index(canonical)
            .ok_or_else(|| fail(Some(expected), "entry has no index (altered)"))?;
        if claimed != expected {
            return Err(fail(
                Some(expected),
                format!("entry claims index {claimed} (moved or swapped)"),
            ));
        }
        let leaf = merkle::leaf_hash(canonical.as_bytes());
        if stored.is_some_and(|h| h != leaf) {
            return Err(fail(
                Some(expected),
                "stored text does not match its leaf hash (altered)",
            ));
        }
        leaves.push(leaf);
        Ok(())
    };
    match page {
        Page::Entries(entries) => {
            for (expected, e) in (first..).zip(entries) {
                check(expected, e.index, &e.canonical, e.leaf_hash.as_deref())?;
            }
        }
        Page::Joined {
            first: at,
            count,
            texts,
        } => {
            let mut seen = 0usize;
            for ((expected, index), text) in (first..).zip(at..).zip(texts.split('\n')) {
                check(expected, index, text, None)?;
                seen += 1;
            }
            if seen != count {
                return Err(fail(
                    Some(first + seen as u64),
                    "a page of entries does not split into its entries (altered)",
                ));
            }
        }
    }
    Ok(leaves)
}

/// The first entry in `from..to` whose text no longer matches its stored leaf hash, if the
/// source keeps leaf hashes. Read page by page: only runs when something already disagreed,
/// or over the last incomplete tile.
async fn pinpoint(
    source: &mut impl LedgerSource,
    from: u64,
    to: u64,
) -> Result<Option<VerifyFailure>, VerifyFailure> {
    let mut at = from;
    while at < to {
        let end = to.min(at + PAGE as u64);
        let Some(rows) = source
            .stored_leaves(at, end)
            .await
            .map_err(|e| fail(None, e))?
        else {
            return Ok(None);
        };
        if rows.is_empty() {
            return Ok(None);
        }
        for e in &rows {
            let leaf = merkle::leaf_hash(e.canonical.as_bytes());
            if e.leaf_hash.as_deref() != Some(leaf.as_slice()) {
                let index = u64::try_from(e.index).unwrap_or(at);
                return Ok(Some(fail(
                    Some(index),
                    "stored text does not match its leaf hash (altered)",
                )));
            }
        }
        at = end;
    }
    Ok(None)
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
    type Hashing = (
        u64,
        u64,
        tokio::task::JoinHandle<Result<Vec<Hash>, VerifyFailure>>,
    );
    let mut hashing: Option<Hashing> = None;
    loop {
        let from = i64::try_from(next_from).unwrap_or(i64::MAX);
        let page = source.page(from, PAGE).await.map_err(|e| fail(None, e))?;
        let job = (!page.is_empty()).then(|| {
            let first = next_from;
            let count = page.len() as u64;
            next_from += count;
            (
                first,
                count,
                tokio::task::spawn_blocking(move || leaves_of(page, first)),
            )
        });
        if let Some((first, count, previous)) = hashing.take() {
            let leaves = previous
                .await
                .map_err(|e| fail(None, format!("hashing task failed: {e}")))??;
            let stored = source
                .stored_nodes(first, first + count)
                .await
                .map_err(|e| fail(None, e))?;
            for leaf in leaves {
                let completed = frontier.push(leaf);
                if let Some(stored) = &stored {
                    for (id, hash) in completed
                        .iter()
                        .filter(|(id, _)| id.level > 0 && id.level % TILE_LEVELS == 0)
                    {
                        let found = stored.get(id);
                        if found == Some(hash) {
                            continue;
                        }
                        let span = 1u64 << id.level;
                        let start = id.index * span;
                        if let Some(f) = pinpoint(source, start, start + span).await? {
                            return Err(f);
                        }
                        return Err(fail(
                            Some(start),
                            match found {
                                Some(_) => format!(
                                    "entries {start}..{} do not match the stored tree node {id} \
                                     (text and leaf hash altered together, or the node itself)",
                                    start + span
                                ),
                                None => format!("the stored tree node {id} is missing"),
                            },
                        ));
                    }
                }
                while let Some(cp) = checkpoints
                    .get(next_cp)
                    .filter(|c| c.size == frontier.size())
                {
                    if cp.root != frontier.root() {
                        let first = next_cp
                            .checked_sub(1)
                            .and_then(|i| checkpoints.get(i))
                            .map_or(0, |c| c.size);
                        if let Some(f) = pinpoint(source, first, cp.size).await? {
                            return Err(f);
                        }
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
    // The last, incomplete tile is in no stored node: compare its stored leaf hashes.
    let size = frontier.size();
    let tail = size - size % (1u64 << TILE_LEVELS);
    if let Some(f) = pinpoint(source, tail, size).await? {
        return Err(f);
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
