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
//!
//! Speed: a database hands out pages of texts joined in pieces (`Page::Joined`), checked and
//! hashed on two threads at once together with the roots of their 16-leaf tiles, while the next
//! pages are read; this task only folds tile roots into the tree. A joined page that does not
//! line up is never trusted: it is read again entry by entry to name the first bad entry.

use std::collections::HashMap;

use std::time::Instant;

use super::TILE_LEVELS;
use super::keychain::{KeyChain, Transition};
use super::merkle::{self, Frontier, Hash, NodeId};
use super::note::Checkpoint;

/// One entry as read back: index, canonical text and (from a database) its stored leaf hash.
pub struct SourceEntry {
    pub index: i64,
    pub canonical: String,
    pub leaf_hash: Option<Vec<u8>>,
}

/// Canonical texts read in pieces: each piece is whole entries joined by `\n`, the pieces in
/// index order (a database read, lent as bytes: no per-entry copies).
pub trait JoinedTexts: Send {
    fn pieces(&self) -> Vec<&[u8]>;
}

/// A page of entries as a source hands it out.
pub enum Page {
    Entries(Vec<SourceEntry>),
    /// Joined texts, the first at index `first`; see `Page::joined`.
    Joined(JoinedPage),
}

/// The texts of consecutive entries, in pieces. Trusted for nothing: `verify` takes a joined
/// page only if its texts claim `first`, `first + 1`, … in order, and otherwise reads the same
/// range again entry by entry (`LedgerSource::stored_leaves`) to name the first bad one.
pub struct JoinedPage {
    first: i64,
    /// Entries in each piece, as its newlines say (a text with a raw newline counts twice and
    /// then fails its index check).
    counts: Vec<usize>,
    texts: Box<dyn JoinedTexts>,
}

impl JoinedPage {
    pub fn first(&self) -> i64 {
        self.first
    }
}

impl Page {
    /// A page of joined texts whose first entry should be `first`.
    pub fn joined(first: i64, texts: Box<dyn JoinedTexts>) -> Page {
        let counts = texts
            .pieces()
            .iter()
            .map(|piece| count_byte(piece, b'\n') + 1)
            .collect();
        Page::Joined(JoinedPage {
            first,
            counts,
            texts,
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Page::Entries(e) => e.len(),
            Page::Joined(j) => j.counts.iter().sum(),
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
    /// The ledger key's transition statements, oldest first (none: the key never rotated).
    async fn key_transitions(&mut self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
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

/// Entries per page: what one query reads, and what the hashing threads take at a time.
const PAGE: i64 = 16_384;

/// A joined page of more entries than this is hashed in two halves on two threads.
const SPLIT_ABOVE: usize = 256;

/// The first `byte` in `hay`. Written so the compiler turns the test of each 32-byte block into
/// a few vector instructions (on this workload about twice as fast as a scalar search).
fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    let (blocks, tail) = hay.as_chunks::<32>();
    for (i, block) in blocks.iter().enumerate() {
        if block.iter().fold(false, |found, b| found | (*b == byte)) {
            let at = block.iter().position(|b| *b == byte)?;
            return Some(i * 32 + at);
        }
    }
    let at = tail.iter().position(|b| *b == byte)?;
    Some(blocks.len() * 32 + at)
}

/// How many times `byte` occurs in `hay`: counted in runs of 255 bytes with a byte-wide
/// counter, which the compiler vectorises.
fn count_byte(hay: &[u8], byte: u8) -> usize {
    hay.chunks(255)
        .map(|run| usize::from(run.iter().fold(0u8, |n, b| n + u8::from(*b == byte))))
        .sum()
}

/// The top-level `index` of a canonical entry, without parsing the whole entry. In canonical
/// JSON a quote inside a string is escaped, so the unescaped `,"index":` followed by a digit can
/// only be the entry's own key (a catalog field called `index` maps to a string, not a number).
/// The leaf hash binds the bytes; this only catches entries moved between positions.
pub(crate) fn claimed_index(canonical: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b",\"index\":";
    // Every occurrence of KEY has its `x` 6 bytes in, and `x` is rare in entries: look at each
    // `x` in turn, so the first KEY found is the first in the text.
    let mut from = 0;
    let start = loop {
        let x = from + find_byte(canonical.get(from..)?, b'x')?;
        if let Some(start) = x.checked_sub(6)
            && canonical.get(start..start + KEY.len()) == Some(KEY)
        {
            break start + KEY.len();
        }
        from = x + 1;
    };
    let digits = canonical.get(start..)?;
    let mut index = None::<u64>;
    for d in digits.iter().take_while(|b| b.is_ascii_digit()) {
        let so_far = index.unwrap_or(0);
        index = Some(so_far.checked_mul(10)?.checked_add(u64::from(d - b'0'))?);
    }
    index
}

/// Check one page of separate entries — contiguous indexes from `first`, each entry at the
/// index it claims, each stored leaf hash equal to the recomputed one — and return the
/// recomputed leaf hashes. Failures name the first bad index.
fn leaves_of(entries: Vec<SourceEntry>, first: u64) -> Result<Vec<Hash>, VerifyFailure> {
    let mut leaves = Vec::with_capacity(entries.len());
    for (expected, e) in (first..).zip(entries) {
        if e.index != i64::try_from(expected).unwrap_or(-1) {
            return Err(fail(
                Some(expected),
                format!("entry is missing (the next stored entry is {})", e.index),
            ));
        }
        let claimed = claimed_index(e.canonical.as_bytes())
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

/// Hash `pieces` of joined texts into `leaves`, one leaf per slot; `None` unless the texts
/// claim `start`, `start + 1`, … in order and fill every slot exactly.
fn fill_leaves(pieces: &[&[u8]], start: u64, leaves: &mut [Hash]) -> Option<()> {
    let mut slots = leaves.iter_mut();
    let mut expected = start;
    for piece in pieces {
        let mut rest = *piece;
        loop {
            let end = find_byte(rest, b'\n');
            let text = rest.get(..end.unwrap_or(rest.len()))?;
            if claimed_index(text)? != expected {
                return None;
            }
            *slots.next()? = merkle::leaf_hash(text);
            expected += 1;
            match end {
                Some(end) => rest = rest.get(end + 1..)?,
                None => break,
            }
        }
    }
    slots.next().is_none().then_some(())
}

/// Leaves per tile: a stored level-4 node covers one.
const TILE: usize = 1 << TILE_LEVELS;

/// The root of a perfect subtree over `leaves` (a power of two of them).
fn perfect_root(leaves: &[Hash]) -> Option<Hash> {
    match leaves {
        [] => None,
        [leaf] => Some(*leaf),
        _ => {
            let (left, right) = leaves.split_at_checked(leaves.len() / 2)?;
            Some(merkle::node_hash(
                &perfect_root(left)?,
                &perfect_root(right)?,
            ))
        }
    }
}

/// The roots of the complete tiles of `leaves`, which start at a tile boundary.
fn tile_roots(leaves: &[Hash]) -> Vec<Hash> {
    let (tiles, _) = leaves.as_chunks::<TILE>();
    tiles.iter().filter_map(|tile| perfect_root(tile)).collect()
}

/// What the hashing threads make of a page: its leaf hashes and, when the page starts at a
/// tile boundary, the roots of its complete tiles (so the sequential fold does a sixteenth of
/// the interior hashing).
struct Hashed {
    leaves: Vec<Hash>,
    /// Invariant: empty, or the roots of `leaves` taken 16 at a time, the page's first leaf
    /// starting a tile.
    tiles: Vec<Hash>,
}

impl Hashed {
    fn new(leaves: Vec<Hash>, first: u64) -> Hashed {
        let tiles = if first.is_multiple_of(TILE as u64) {
            tile_roots(&leaves)
        } else {
            Vec::new()
        };
        Hashed { leaves, tiles }
    }
}

/// The leaf hashes of a joined page whose first entry should be `first`, with its tile roots;
/// `None` if its texts do not claim `first`, `first + 1`, … in order. A long page is hashed in
/// two halves on two threads, split between pieces; the second half must claim the indexes
/// right after the first half's, as counted by the pieces' newlines, so the halves are checked
/// as one run.
fn joined_leaves(page: &JoinedPage, first: u64) -> Option<Hashed> {
    if page.first != i64::try_from(first).ok()? {
        return None;
    }
    let pieces = page.texts.pieces();
    if pieces.len() != page.counts.len() {
        return None;
    }
    let total: usize = page.counts.iter().sum();
    // The first piece boundary at or past the middle.
    let (mut cut, mut before) = (0usize, 0usize);
    for count in &page.counts {
        if before >= total / 2 {
            break;
        }
        before += count;
        cut += 1;
    }
    let middle = first + before as u64;
    let aligned = first.is_multiple_of(TILE as u64) && middle.is_multiple_of(TILE as u64);
    let mut leaves = vec![[0u8; 32]; total];
    match (
        pieces.split_at_checked(cut),
        leaves.split_at_mut_checked(before),
    ) {
        (Some((left, right)), Some((into_left, into_right)))
            if total > SPLIT_ABOVE && !right.is_empty() && aligned =>
        {
            let half = |pieces: &[&[u8]], start: u64, into: &mut [Hash]| {
                fill_leaves(pieces, start, into).map(|()| tile_roots(into))
            };
            let (left, right) = std::thread::scope(|s| {
                let right = s.spawn(|| half(right, middle, into_right));
                let left = half(left, first, into_left);
                (left, right.join().ok().flatten())
            });
            let (mut tiles, right) = (left?, right?);
            tiles.extend(right);
            Some(Hashed { leaves, tiles })
        }
        _ => {
            fill_leaves(&pieces, first, &mut leaves)?;
            Some(Hashed::new(leaves, first))
        }
    }
}

/// Why a page's leaves could not be taken.
enum Rejected {
    /// Something is wrong at this index.
    Failed(VerifyFailure),
    /// A joined page that does not line up: read it again entry by entry to name the entry.
    Misaligned,
}

/// The checked leaf hashes of a page whose first entry should be `first`.
fn hash_page(page: Page, first: u64) -> Result<Hashed, Rejected> {
    match page {
        Page::Entries(entries) => leaves_of(entries, first)
            .map(|leaves| Hashed::new(leaves, first))
            .map_err(Rejected::Failed),
        Page::Joined(joined) => joined_leaves(&joined, first).ok_or(Rejected::Misaligned),
    }
}

/// The leaves `first..first + count` when their joined page did not line up: the same range
/// entry by entry, with real indexes and stored leaf hashes, so the failure names the first bad
/// entry (a deleted one as missing). Accepted only if it now holds exactly `count` good entries.
async fn reread(
    source: &mut impl LedgerSource,
    first: u64,
    count: u64,
) -> Result<Vec<Hash>, VerifyFailure> {
    let misaligned = |at: u64| {
        fail(
            Some(at),
            "a page of entries does not split into its entries (altered)",
        )
    };
    let Some(entries) = source
        .stored_leaves(first, first + count)
        .await
        .map_err(|e| fail(None, e))?
    else {
        return Err(misaligned(first));
    };
    let leaves = leaves_of(entries, first)?;
    if leaves.len() as u64 != count {
        return Err(misaligned(first + leaves.len() as u64));
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

/// The tree being rebuilt, and the checkpoints (by size) it has still to meet.
struct Rebuild {
    frontier: Frontier,
    checkpoints: Vec<Checkpoint>,
    next_cp: usize,
    /// Where the range began: entries before it were checked by the ranges before.
    start: u64,
}

impl Rebuild {
    /// Fold a page's leaves into the tree — a whole tile at once where its root is known and no
    /// checkpoint falls inside it, else leaf by leaf — checking every stored node (levels 4, 8,
    /// …) they complete and every checkpoint they reach, in leaf order.
    async fn fold(
        &mut self,
        source: &mut impl LedgerSource,
        hashed: Hashed,
        stored: Option<&HashMap<NodeId, Hash>>,
    ) -> Result<(), VerifyFailure> {
        let mut at = 0usize;
        while let Some(&leaf) = hashed.leaves.get(at) {
            let size = self.frontier.size();
            let cp_inside = self
                .checkpoints
                .get(self.next_cp)
                .is_some_and(|c| c.size < size + TILE as u64);
            // INVARIANT (Hashed::tiles): tile `at / TILE` starts at leaf `at` when `at` is a
            // multiple of TILE, and then the tree's size is one too.
            let tile = hashed
                .tiles
                .get(at / TILE)
                .filter(|_| at.is_multiple_of(TILE) && size.is_multiple_of(TILE as u64));
            let completed = match tile {
                Some(root) if !cp_inside => {
                    at += TILE;
                    self.frontier.push_subtree(TILE_LEVELS, *root)
                }
                _ => {
                    at += 1;
                    self.frontier.push(leaf)
                }
            };
            if completed.is_empty() {
                return Err(fail(Some(size), "the tree cannot grow any further"));
            }
            if let Some(stored) = stored {
                for (id, hash) in completed
                    .iter()
                    .filter(|(id, _)| id.level > 0 && id.level % TILE_LEVELS == 0)
                {
                    check_node(source, stored, *id, hash).await?;
                }
            }
            self.check_checkpoints(source).await?;
        }
        Ok(())
    }

    /// Compare the root with every checkpoint of the tree's current size.
    async fn check_checkpoints(
        &mut self,
        source: &mut impl LedgerSource,
    ) -> Result<(), VerifyFailure> {
        while let Some(cp) = self
            .checkpoints
            .get(self.next_cp)
            .filter(|c| c.size == self.frontier.size())
        {
            if cp.root != self.frontier.root() {
                let first = self
                    .next_cp
                    .checked_sub(1)
                    .and_then(|i| self.checkpoints.get(i))
                    .map_or(0, |c| c.size)
                    .max(self.start);
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
            self.next_cp += 1;
        }
        Ok(())
    }
}

/// Compare a recomputed node with its stored copy; on a difference, name the first entry under
/// it whose text no longer matches its stored leaf hash, or else the node.
async fn check_node(
    source: &mut impl LedgerSource,
    stored: &HashMap<NodeId, Hash>,
    id: NodeId,
    hash: &Hash,
) -> Result<(), VerifyFailure> {
    let found = stored.get(&id);
    if found == Some(hash) {
        return Ok(());
    }
    let span = 1u64 << id.level;
    let start = id.index * span;
    if let Some(f) = pinpoint(source, start, start + span).await? {
        return Err(f);
    }
    Err(fail(
        Some(start),
        match found {
            Some(_) => format!(
                "entries {start}..{} do not match the stored tree node {id} \
                 (text and leaf hash altered together, or the node itself)",
                start + span
            ),
            None => format!("the stored tree node {id} is missing"),
        },
    ))
}

/// Verify everything `source` holds. `progress(done)` is called after every page.
pub async fn verify(
    source: &mut impl LedgerSource,
    keys: &KeyChain,
    origin: &str,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyFailure> {
    verify_range(source, keys, origin, Frontier::new(), None, progress).await
}

/// `verify` over the entries `start.size()..end` only (to the end of the source without
/// `end`), continuing the tree `start` — the tree of the entries before, as an earlier range
/// recomputed it or as the stored tree holds it. The same checks, on that range: every text
/// re-hashed, every stored node the range completes, every signed checkpoint whose size lies in
/// `start.size()..=end` against the rebuilt root. Checkpoints of smaller sizes were met by the
/// ranges before; larger ones are left to the ranges after, and a range that ends where the
/// source ends also reports a checkpoint beyond it (the log was truncated). Successive ranges
/// from 0, each started from the stored tree at its first index, check what one `verify` does
/// (`chunked_ranges_check_what_one_pass_checks`), in pieces a console can show progress of.
pub async fn verify_range(
    source: &mut impl LedgerSource,
    keys: &KeyChain,
    origin: &str,
    start: Frontier,
    end: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyFailure> {
    let started = Instant::now();
    let mut checkpoints = Vec::new();
    for note in source.checkpoints().await.map_err(|e| fail(None, e))? {
        let (cp, _) = keys.verify_checkpoint(&note).map_err(|e| {
            fail(
                None,
                format!("a checkpoint's signature does not verify: {e}"),
            )
        })?;
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
    // Each key transition names the size and root of the tree at the change: the rebuilt tree
    // must meet them as it meets a checkpoint.
    for note in keys.transitions() {
        let t = Transition::verify(note)
            .map_err(|e| fail(None, format!("a key transition does not verify: {e}")))?;
        checkpoints.push(Checkpoint {
            origin: t.origin,
            size: t.size,
            root: t.root,
        });
    }
    checkpoints.sort_by_key(|c| c.size);
    let mut next_cp = 0usize;
    let frontier = start;
    // Checkpoints before the range were met by the ranges before it.
    while checkpoints
        .get(next_cp)
        .is_some_and(|c| c.size < frontier.size())
    {
        next_cp += 1;
    }
    let first_cp = next_cp;
    // A checkpoint of the start's size covers the tree the range continues (of size 0: the
    // empty tree).
    while let Some(cp) = checkpoints
        .get(next_cp)
        .filter(|c| c.size == frontier.size())
    {
        if cp.root != frontier.root() {
            return Err(if frontier.size() == 0 {
                fail(
                    None,
                    "the checkpoint of size 0 does not sign the empty tree",
                )
            } else {
                fail(
                    Some(frontier.size()),
                    format!(
                        "the tree before entry {} does not match its signed checkpoint",
                        frontier.size()
                    ),
                )
            });
        }
        next_cp += 1;
    }
    // Pipeline: while the leaves of page k are hashed on blocking threads (two halves at once,
    // tile roots included), pages k+1.. are being read with their stored nodes and page k-1 is
    // folded into the tree here. Pages are folded strictly in order, so the first failure
    // reported is still the first bad index.
    let mut tree = Rebuild {
        start: frontier.size(),
        frontier,
        checkpoints,
        next_cp,
    };
    let mut next_from = tree.frontier.size();
    type Hashing = (u64, u64, tokio::task::JoinHandle<Result<Hashed, Rejected>>);
    let mut hashing: Option<Hashing> = None;
    loop {
        let from = i64::try_from(next_from).unwrap_or(i64::MAX);
        let limit = match end {
            None => PAGE,
            Some(end) => i64::try_from(end.saturating_sub(next_from))
                .unwrap_or(PAGE)
                .min(PAGE),
        };
        let page = if limit > 0 {
            source.page(from, limit).await.map_err(|e| fail(None, e))?
        } else {
            Page::Entries(Vec::new())
        };
        let job = (!page.is_empty()).then(|| {
            let first = next_from;
            let count = page.len() as u64;
            next_from += count;
            (
                first,
                count,
                tokio::task::spawn_blocking(move || hash_page(page, first)),
            )
        });
        if let Some((first, count, previous)) = hashing.take() {
            let hashed = previous
                .await
                .map_err(|e| fail(None, format!("hashing task failed: {e}")))?;
            let hashed = match hashed {
                Ok(hashed) => hashed,
                Err(Rejected::Failed(f)) => return Err(f),
                Err(Rejected::Misaligned) => Hashed {
                    leaves: reread(source, first, count).await?,
                    tiles: Vec::new(),
                },
            };
            let stored = source
                .stored_nodes(first, first + count)
                .await
                .map_err(|e| fail(None, e))?;
            tree.fold(source, hashed, stored.as_ref()).await?;
            progress(tree.frontier.size());
        }
        match job {
            Some(job) => hashing = Some(job),
            None => break,
        }
    }
    let Rebuild {
        frontier,
        checkpoints,
        next_cp,
        ..
    } = tree;
    // The last, incomplete tile is in no stored node: compare its stored leaf hashes.
    let size = frontier.size();
    let tail = size - size % (1u64 << TILE_LEVELS);
    if let Some(f) = pinpoint(source, tail, size).await? {
        return Err(f);
    }
    // A range that stopped at its `end` leaves the checkpoints beyond to the next range.
    let source_ended = end.is_none_or(|end| size < end);
    if let Some(cp) = checkpoints.get(next_cp).filter(|_| source_ended) {
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
        checkpoints: next_cp - first_cp,
        root: frontier.root(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ledger::note::Checkpoint;
    use proptest::prelude::*;

    struct Pieces(Vec<Vec<u8>>);

    impl JoinedTexts for Pieces {
        fn pieces(&self) -> Vec<&[u8]> {
            self.0.iter().map(Vec::as_slice).collect()
        }
    }

    fn entry(index: u64) -> String {
        format!(
            "{{\"action\":\"record.create\",\"grants\":[\"x{index}\"],\"index\":{index},\"note\":\"{}\"}}",
            "y".repeat((index % 7) as usize)
        )
    }

    /// `texts` joined by newlines, cut into pieces of `per_piece` entries.
    fn joined(first: u64, texts: &[String], per_piece: usize) -> Page {
        let pieces = texts
            .chunks(per_piece)
            .map(|c| c.join("\n").into_bytes())
            .collect();
        Page::joined(i64::try_from(first).unwrap(), Box::new(Pieces(pieces)))
    }

    /// The page's leaves, after checking its tile roots against a tree built leaf by leaf.
    fn leaves(page: Page, first: u64) -> Option<Vec<Hash>> {
        let hashed = hash_page(page, first).ok()?;
        if first.is_multiple_of(TILE as u64) {
            assert_eq!(hashed.tiles.len(), hashed.leaves.len() / TILE);
            for (tile, root) in hashed.leaves.chunks_exact(TILE).zip(&hashed.tiles) {
                let mut f = Frontier::new();
                tile.iter().for_each(|l| {
                    f.push(*l);
                });
                assert_eq!(&f.root(), root);
            }
        } else {
            assert!(hashed.tiles.is_empty());
        }
        Some(hashed.leaves)
    }

    /// A ledger in memory: joined pages in pieces of 100 texts, every stored node of levels
    /// 4, 8, … and every stored leaf hash.
    struct MemSource {
        texts: Vec<String>,
        notes: Vec<String>,
        nodes: HashMap<NodeId, Hash>,
    }

    impl MemSource {
        /// `n` entries, signed checkpoints at `sizes` (with `wrong` roots at those sizes).
        fn new(n: u64, sizes: &[u64], wrong: &[u64]) -> (MemSource, KeyChain) {
            let texts: Vec<String> = (0..n).map(entry).collect();
            let pkcs8 =
                ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .unwrap();
            let signer =
                crate::ledger::note::NoteSigner::from_pkcs8("test", pkcs8.as_ref()).unwrap();
            let (mut frontier, mut nodes, mut notes) =
                (Frontier::new(), HashMap::new(), Vec::new());
            for size in 0..=n {
                if sizes.contains(&size) {
                    let mut root = frontier.root();
                    if wrong.contains(&size) {
                        root[0] ^= 1;
                    }
                    let body = Checkpoint {
                        origin: "test".into(),
                        size,
                        root,
                    }
                    .body();
                    notes.push(signer.sign_note(&body).unwrap());
                }
                if let Some(text) = texts.get(size as usize) {
                    for (id, hash) in frontier.push(merkle::leaf_hash(text.as_bytes())) {
                        if id.level > 0 && id.level % TILE_LEVELS == 0 {
                            nodes.insert(id, hash);
                        }
                    }
                }
            }
            (
                MemSource {
                    texts,
                    notes,
                    nodes,
                },
                KeyChain::single(signer.verifier()),
            )
        }
    }

    impl LedgerSource for MemSource {
        async fn checkpoints(&mut self) -> Result<Vec<String>, String> {
            Ok(self.notes.clone())
        }

        async fn page(&mut self, from: i64, limit: i64) -> Result<Page, String> {
            let (from, limit) = (from as usize, limit as usize);
            let texts =
                &self.texts[from.min(self.texts.len())..(from + limit).min(self.texts.len())];
            if texts.is_empty() {
                return Ok(Page::Entries(Vec::new()));
            }
            let pieces = texts
                .chunks(100)
                .map(|c| c.join("\n").into_bytes())
                .collect();
            Ok(Page::joined(from as i64, Box::new(Pieces(pieces))))
        }

        async fn stored_nodes(
            &mut self,
            _from: u64,
            _to: u64,
        ) -> Result<Option<HashMap<NodeId, Hash>>, String> {
            Ok(Some(self.nodes.clone()))
        }

        async fn stored_leaves(
            &mut self,
            from: u64,
            to: u64,
        ) -> Result<Option<Vec<SourceEntry>>, String> {
            Ok(Some(
                (from..to.min(self.texts.len() as u64))
                    .map(|i| SourceEntry {
                        index: i as i64,
                        canonical: self.texts[i as usize].clone(),
                        leaf_hash: Some(
                            merkle::leaf_hash(self.texts[i as usize].as_bytes()).to_vec(),
                        ),
                    })
                    .collect(),
            ))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiles_and_leaves_fold_into_the_same_tree_and_meet_every_checkpoint() {
        let n = 2 * PAGE as u64 + 37;
        let sizes = [
            0,
            1,
            15,
            16,
            17,
            100,
            4096,
            PAGE as u64,
            PAGE as u64 + 5,
            n - 1,
            n,
        ];
        let (mut source, verifier) = MemSource::new(n, &sizes, &[]);
        let mut expected = Frontier::new();
        for t in &source.texts {
            expected.push(merkle::leaf_hash(t.as_bytes()));
        }
        let report = verify(&mut source, &verifier, "test", |_| {})
            .await
            .unwrap();
        assert_eq!((report.entries, report.checkpoints), (n, sizes.len()));
        assert_eq!(report.root, expected.root());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_checkpoint_or_stored_node_is_named_where_it_starts() {
        let n = PAGE as u64 + 200;
        let (mut source, verifier) = MemSource::new(n, &[17, 40, 4096, n], &[40]);
        let err = verify(&mut source, &verifier, "test", |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(17), "{err}");
        assert!(
            err.problem.contains("signed checkpoint of size 40"),
            "{err}"
        );

        let (mut source, verifier) = MemSource::new(n, &[n], &[]);
        source.nodes.insert(
            NodeId {
                level: 4,
                index: 1000,
            },
            [0; 32],
        );
        let err = verify(&mut source, &verifier, "test", |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(16_000), "{err}");
        assert!(
            err.problem
                .contains("stored tree node (level 4, index 1000)"),
            "{err}"
        );

        let (mut source, verifier) = MemSource::new(n, &[n], &[]);
        source.nodes.remove(&NodeId { level: 8, index: 3 });
        let err = verify(&mut source, &verifier, "test", |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(768), "{err}");
        assert!(err.problem.contains("is missing"), "{err}");

        // A text altered with its stored leaf hash (this source hashes its stored leaves from
        // the texts it holds): the tile's stored node names the tile.
        let (mut source, verifier) = MemSource::new(n, &[n], &[]);
        source.texts[9000] = source.texts[9000].replace("record.create", "record.delete");
        let err = verify(&mut source, &verifier, "test", |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(8992), "{err}");
        assert!(err.problem.contains("(level 4, index 562)"), "{err}");

        // Swapped entries are refused by the joined check and named by the re-read.
        let (mut source, verifier) = MemSource::new(n, &[n], &[]);
        source.texts.swap(5000, 5001);
        let err = verify(&mut source, &verifier, "test", |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(5000), "{err}");
        assert!(err.problem.contains("claims index 5001"), "{err}");
    }

    /// The tree of the first `size` texts, as a range that starts there continues it.
    fn tree_of(texts: &[String], size: u64) -> Frontier {
        let mut f = Frontier::new();
        for t in &texts[..size as usize] {
            f.push(merkle::leaf_hash(t.as_bytes()));
        }
        f
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunked_ranges_check_what_one_pass_checks() {
        let n = PAGE as u64 + 300;
        let sizes = [0, 16, 17, 1000, 4096, 9000, n];
        for chunk in [1000u64, 4099, n + 5] {
            let (mut source, verifier) = MemSource::new(n, &sizes, &[]);
            let (mut from, mut entries, mut met) = (0u64, 0u64, 0usize);
            while from < n {
                let start = tree_of(&source.texts, from);
                let to = (from + chunk).min(n);
                let report = verify_range(&mut source, &verifier, "test", start, Some(to), |_| {})
                    .await
                    .unwrap();
                assert_eq!(report.entries, to, "{chunk}");
                entries = report.entries;
                met += report.checkpoints;
                from = to;
            }
            assert_eq!(entries, n);
            // Each checkpoint is met once; those at a chunk's first index twice (they close
            // one range and open the next).
            let boundaries = sizes
                .iter()
                .filter(|s| **s > 0 && **s < n && **s % chunk == 0)
                .count();
            assert_eq!(met, sizes.len() + boundaries, "{chunk}");
        }

        // An altered text fails the chunk that holds it at the index one pass names, and the
        // chunks before it pass; a wrong checkpoint inside a chunk fails that chunk.
        let (mut source, verifier) = MemSource::new(n, &[n], &[]);
        source.texts[9000] = source.texts[9000].replace("record.create", "record.delete");
        for (from, to) in [(0, 8000), (8000, 12_000)] {
            let start = tree_of(&source.texts, from);
            let outcome =
                verify_range(&mut source, &verifier, "test", start, Some(to), |_| {}).await;
            match from {
                0 => assert_eq!(outcome.unwrap().entries, 8000),
                _ => assert_eq!(outcome.unwrap_err().index, Some(8992)),
            }
        }
        let (mut source, verifier) = MemSource::new(n, &[40, n], &[40]);
        let start = tree_of(&source.texts, 32);
        let err = verify_range(&mut source, &verifier, "test", start, Some(64), |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(32), "{err}");
        // A range that ends where the source ends reports a checkpoint beyond it.
        let (mut source, verifier) = MemSource::new(n + 10, &[n + 10], &[]);
        source.texts.truncate(n as usize);
        let start = tree_of(&source.texts, 16_000);
        let err = verify_range(&mut source, &verifier, "test", start, Some(n + 50), |_| {})
            .await
            .unwrap_err();
        assert!(err.problem.contains("log truncated"), "{err}");
    }

    fn signer() -> crate::ledger::note::NoteSigner {
        let pkcs8 =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap();
        crate::ledger::note::NoteSigner::from_pkcs8("test", pkcs8.as_ref()).unwrap()
    }

    fn signed(by: &crate::ledger::note::NoteSigner, texts: &[String], size: u64) -> String {
        let body = Checkpoint {
            origin: "test".into(),
            size,
            root: tree_of(texts, size).root(),
        }
        .body();
        by.sign_note(&body).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_on_both_sides_of_a_key_rotation_verify_each_under_its_key() {
        use crate::ledger::keychain::Transition;
        let n = 300;
        let (mut source, _) = MemSource::new(n, &[], &[]);
        let (a, b) = (signer(), signer());
        let texts = source.texts.clone();
        let at = 120;
        let transition = Transition::sign(&a, &b, at, tree_of(&texts, at).root()).unwrap();
        source.notes = vec![
            signed(&a, &texts, 50),
            signed(&a, &texts, at),
            signed(&b, &texts, 200),
            signed(&b, &texts, n),
        ];
        // Pinned to the old key or to the new one: all four checkpoints and the transition's
        // own size and root are met.
        for pinned in [&a, &b] {
            let keys = KeyChain::new(pinned.verifier(), std::slice::from_ref(&transition)).unwrap();
            let report = verify(&mut source, &keys, "test", |_| {}).await.unwrap();
            assert_eq!((report.entries, report.checkpoints), (n, 5));
        }
        let keys = KeyChain::new(a.verifier(), std::slice::from_ref(&transition)).unwrap();
        // Without the transition, the old key's pin cannot verify the new key's checkpoints.
        let err = verify(&mut source, &KeyChain::single(a.verifier()), "test", |_| {})
            .await
            .unwrap_err();
        assert!(err.problem.contains("signature"), "{err}");
        // The old key signing past its change (stolen after the rotation) is refused.
        source.notes.push(signed(&a, &texts, 250));
        let err = verify(&mut source, &keys, "test", |_| {})
            .await
            .unwrap_err();
        assert!(err.problem.contains("retired"), "{err}");
        source.notes.pop();
        // A transition that names a root the entries do not rebuild fails where it points.
        let lying = Transition::sign(&a, &b, at, [9; 32]).unwrap();
        let keys = KeyChain::new(a.verifier(), &[lying]).unwrap();
        let err = verify(&mut source, &keys, "test", |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(at), "{err}");
    }

    #[test]
    fn claimed_index_reads_the_first_index_key() {
        let claims = |text: &str| claimed_index(text.as_bytes());
        assert_eq!(claims(&entry(42)), Some(42));
        assert_eq!(claims("{\"a\":\"xx\",\"index\":7,\"index\":8}"), Some(7));
        assert_eq!(claims("{\"a\":1,\"index\":\"7\",\"index\":8}"), None);
        assert_eq!(claims("{\"a\":1,\"idx\":7}"), None);
        assert_eq!(claims(",\"index\":"), None);
        assert_eq!(claims(",\"index\":18446744073709551615}"), Some(u64::MAX));
        assert_eq!(claims(",\"index\":18446744073709551616}"), None);
        assert_eq!(claims(""), None);
    }

    #[test]
    fn joined_pages_hash_like_separate_entries_in_one_or_two_halves() {
        for (first, n, per_piece) in [
            (0u64, 1usize, 64usize),
            (64, 40, 64),
            (1000, 3000, 64),
            (5, 700, 1000),
            (0, 300, 1),
        ] {
            let texts: Vec<String> = (first..first + n as u64).map(entry).collect();
            let expected: Vec<Hash> = texts
                .iter()
                .map(|t| merkle::leaf_hash(t.as_bytes()))
                .collect();
            let page = joined(first, &texts, per_piece);
            assert_eq!(page.len(), n);
            assert_eq!(
                leaves(page, first),
                Some(expected),
                "{first} {n} {per_piece}"
            );
        }
    }

    #[test]
    fn joined_pages_that_do_not_line_up_are_refused() {
        let texts: Vec<String> = (0..600).map(entry).collect();
        // Asked from elsewhere.
        assert!(leaves(joined(0, &texts, 64), 1).is_none());
        // Two entries swapped, in either half.
        for (a, b) in [(3, 4), (450, 451), (299, 300)] {
            let mut swapped = texts.clone();
            swapped.swap(a, b);
            assert!(leaves(joined(0, &swapped, 64), 0).is_none(), "{a} {b}");
        }
        // One missing, in either half, or between pieces.
        for gone in [0, 10, 63, 64, 320, 598] {
            let mut missing = texts.clone();
            missing.remove(gone);
            assert!(leaves(joined(0, &missing, 64), 0).is_none(), "{gone}");
        }
        // A raw newline inside a text, an empty text, a text that is not UTF-8.
        let mut broken = texts.clone();
        broken[500].insert(1, '\n');
        assert!(leaves(joined(0, &broken, 64), 0).is_none());
        let mut empty = texts.clone();
        empty.insert(100, String::new());
        assert!(leaves(joined(0, &empty, 64), 0).is_none());
        let mut bytes = texts
            .iter()
            .map(|t| t.clone().into_bytes())
            .collect::<Vec<_>>();
        bytes[7].push(0xff);
        let pieces = bytes.chunks(64).map(|c| c.join(&b'\n')).collect();
        let page = Page::joined(0, Box::new(Pieces(pieces)));
        let hashed = leaves(page, 0).unwrap();
        assert_ne!(hashed[7], merkle::leaf_hash(texts[7].as_bytes()));
    }

    proptest! {
        #[test]
        fn byte_search_and_count_agree_with_a_plain_scan(
            hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), any::<u8>()], 0..200),
            byte in prop_oneof![Just(b'\n'), Just(b'x'), Just(0u8), Just(0x80u8), any::<u8>()],
        ) {
            prop_assert_eq!(find_byte(&hay, byte), hay.iter().position(|b| *b == byte));
            prop_assert_eq!(count_byte(&hay, byte), hay.iter().filter(|b| **b == byte).count());
        }

        #[test]
        fn claimed_index_agrees_with_a_plain_search(
            text in proptest::collection::vec(prop_oneof![
                Just(",\"index\":".to_owned()), Just("x".to_owned()), Just("1".to_owned()),
                Just("\"".to_owned()), "[a-z0-9,:\"]{0,4}"
            ], 0..12).prop_map(|parts| parts.concat()),
        ) {
            let plain = text.find(",\"index\":").and_then(|at| {
                let digits: String = text[at + 9..].chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u64>().ok()
            });
            prop_assert_eq!(claimed_index(text.as_bytes()), plain);
        }
    }
}
