//! The audit ledger: an append-only Merkle log (RFC 9162) of every decision and state change.
//! One writer task sequences appends and group-commits them (many entries, one transaction); an
//! append returns only after its transaction is durable, and a failed append reports
//! `LedgerError::Unavailable` so the operation that needed it can fail closed. After a failed
//! append the ledger is degraded (`health`): it refuses appends at once until a probe write
//! commits, and it never writes again before checking its head against what the database holds.
//! Nothing here updates or deletes an entry. A disclosure's daily-quota use is charged in the same commit as
//! its entry (`charges`).

pub mod bundle;
pub mod charges;
pub mod chunked;
pub mod entry;
pub mod health;
pub mod metrics;
pub use tlog::{keychain, merkle, note};
mod repair;
pub mod sources;
pub mod stream;
mod subject_merge;
pub mod verify;
// `gridhub audit verify --witness` (issue 21).
pub mod witnessed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, oneshot};

pub use entry::{
    Actor, Decision, EntryDraft, FieldLevels, RecordRef, RefusalCount, SharedLevels,
    StatisticsCell, StatisticsRecord,
};
pub use health::{FaultKind, Health};
use health::{HealthCell, PROBE_EVERY};
use keychain::KeyChain;
use merkle::{Frontier, Hash, NodeId};
use note::{Checkpoint, NoteSigner};
pub use stream::Stream;
use subject_merge::SubjectMerge;

use crate::storage::{LedgerRow, QuotaCharge, Store, StoredCheckpoint, UsageIncrease};
use crate::time::{now_ms, rfc3339_millis};

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 4096;
/// Appends waiting for the writer; beyond this callers wait (back-pressure).
const QUEUE: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The entry could not be made durable; the caller must not proceed.
    #[error("the audit ledger cannot record this operation")]
    Unavailable,
    #[error("{0}")]
    BadRequest(String),
    #[error("ledger storage error: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("ledger integrity error: {0}")]
    Integrity(String),
    /// `append_charged` only: the charge would take `grant` past its daily quota (it has
    /// `left` records left that day); nothing was appended or counted.
    #[error("the daily quota of grant {grant} has {left} records left")]
    OverQuota { grant: String, left: i64 },
}

/// Where an appended entry landed.
#[derive(Debug, Clone)]
pub struct Appended {
    pub index: u64,
    pub leaf_hash: Hash,
    pub time_ms: i64,
}

/// A signed statement that an entry was integrated (API.md `receipt`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub index: u64,
    pub leaf_hash: String,
    pub integrated_time: String,
    pub key_id: String,
    pub signature: String,
}

struct Head {
    frontier: Frontier,
    /// Time of the newest entry: times never go backwards even if the wall clock does.
    last_time: i64,
}

struct Job {
    draft: EntryDraft,
    charge: Option<QuotaCharge>,
    /// The prober's write: the only kind a degraded ledger attempts.
    probe: bool,
    reply: oneshot::Sender<Result<Appended, LedgerError>>,
}

struct Inner {
    store: Store,
    /// Signs checkpoints and receipts; replaced when the ledger key rotates (`set_signer`).
    signer: RwLock<Arc<NoteSigner>>,
    origin: String,
    head: RwLock<Head>,
    checkpoint_lock: Mutex<()>,
    /// Group-commit statistics: transactions committed and entries in them.
    commits: AtomicU64,
    committed: AtomicU64,
    /// Subject rows in `ledger_subjects_staged`, waiting to be merged.
    staged_subjects: AtomicU64,
    /// What `/metrics` shows of the writer (`metrics`).
    metrics: metrics::LedgerMetrics,
    health: HealthCell,
}

/// Subject rows gathered in `ledger_subjects_staged` (SQLite) before the writer moves them
/// into `ledger_subject_runs` as one sorted run, a slice per commit (`subject_merge`). A lookup
/// by record seeks once per run, so smaller runs make lookups slower; larger ones make the
/// staged scan of every lookup longer.
const MERGE_SUBJECT_ROWS: u64 = 50_000;

/// Handle on the ledger; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
    sender: mpsc::Sender<Job>,
}

/// Interior nodes are stored only at levels that are multiples of this ("tiles"): about one row
/// per 16 entries instead of one per entry. A node at another level is derived from at most
/// 2^(TILE_LEVELS-1) = 8 stored nodes (or leaves) below it, so proofs stay O(log n) reads.
pub(crate) const TILE_LEVELS: u8 = 4;

/// The hashes of `wanted` perfect nodes, fetching stored ones and deriving the others.
async fn resolve_nodes(
    store: &Store,
    wanted: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, LedgerError> {
    // INVARIANT (tiles): level 0 (leaves, kept with their entries) and every multiple of
    // TILE_LEVELS are stored for every complete subtree; see the writer's filter.
    let base_of = |id: &NodeId| id.level - id.level % TILE_LEVELS;
    let mut need = std::collections::BTreeSet::new();
    for id in wanted {
        let base = base_of(id);
        let span = 1u64 << (id.level - base);
        for k in 0..span {
            need.insert(NodeId {
                level: base,
                index: id.index * span + k,
            });
        }
    }
    let (leaves, interior): (Vec<NodeId>, Vec<NodeId>) =
        need.into_iter().partition(|id| id.level == 0);
    // Leaves are hashed from the entries' texts (the texts are what checkpoints sign and what
    // `audit verify` checks); interior nodes are the stored ones.
    let mut fetched = store.ledger_stored_nodes(&interior).await?;
    let indexes: Vec<u64> = leaves.iter().map(|id| id.index).collect();
    for (index, text) in store.ledger_leaf_texts(&indexes).await? {
        fetched.insert(
            NodeId { level: 0, index },
            merkle::leaf_hash(text.as_bytes()),
        );
    }
    let mut out = HashMap::with_capacity(wanted.len());
    for id in wanted {
        let base = base_of(id);
        let span = 1u64 << (id.level - base);
        let mut layer = (0..span)
            .map(|k| {
                fetched
                    .get(&NodeId {
                        level: base,
                        index: id.index * span + k,
                    })
                    .copied()
            })
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| {
                LedgerError::Integrity(format!(
                    "tree node {id} cannot be derived: stored nodes are missing"
                ))
            })?;
        while layer.len() > 1 {
            layer = layer
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => merkle::node_hash(l, r),
                    [one] => *one,
                    _ => merkle::empty_root(),
                })
                .collect();
        }
        let hash = layer
            .first()
            .copied()
            .ok_or_else(|| LedgerError::Integrity(format!("tree node {id} is empty")))?;
        out.insert(*id, hash);
    }
    Ok(out)
}

async fn load_head(store: &Store) -> Result<Head, LedgerError> {
    let size = store.ledger_size().await?;
    let positions = Frontier::positions(size);
    let nodes = resolve_nodes(store, &positions).await?;
    let hashes = positions
        .iter()
        .map(|p| nodes.get(p).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| LedgerError::Integrity(format!("tree nodes for size {size} are missing")))?;
    let frontier = Frontier::from_parts(size, hashes)
        .ok_or_else(|| LedgerError::Integrity("frontier does not match the size".to_owned()))?;
    Ok(Head {
        frontier,
        last_time: store.ledger_last_time().await?,
    })
}

impl Ledger {
    /// Load the tree head from the database and start the writer task.
    pub async fn open(
        store: Store,
        signer: NoteSigner,
        origin: String,
    ) -> Result<Ledger, LedgerError> {
        let head = repair::open_head(&store).await?;
        let staged_subjects = store.staged_subject_rows().await?;
        // The first process names its key the ledger's; every later one must hold that key.
        let key_id = crate::hex::encode(&signer.key_hash());
        let named = store.claim_ledger_key(&key_id).await?;
        if named != key_id {
            return Err(LedgerError::Integrity(format!(
                "the ledger is signed by key {named} now, but this keyring's ledger key is \
                 {key_id}: the keyring file is older than the database's ledger (use the \
                 keyring file the hub that rotated the key saved)"
            )));
        }
        let inner = Arc::new(Inner {
            store,
            signer: RwLock::new(Arc::new(signer)),
            origin,
            head: RwLock::new(head),
            checkpoint_lock: Mutex::new(()),
            commits: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            staged_subjects: AtomicU64::new(staged_subjects),
            metrics: metrics::LedgerMetrics::default(),
            health: HealthCell::new(),
        });
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run_writer(inner.clone(), receiver));
        tokio::spawn(run_prober(Arc::downgrade(&inner), sender.downgrade()));
        Ok(Ledger { inner, sender })
    }

    /// Whether appends can be made now (`/readyz`).
    pub fn health(&self) -> Health {
        self.inner.health.get()
    }

    /// Append one entry; returns once it is durable. Fails closed.
    pub async fn append(&self, draft: EntryDraft) -> Result<Appended, LedgerError> {
        self.submit(draft, None).await
    }

    /// Append one entry and count `charge` against daily quotas in the same transaction:
    /// both or neither. `LedgerError::OverQuota` when the charge would pass a quota (nothing
    /// appended, nothing counted).
    pub async fn append_charged(
        &self,
        draft: EntryDraft,
        charge: QuotaCharge,
    ) -> Result<Appended, LedgerError> {
        let charge = (!charge.claims.is_empty()).then_some(charge);
        self.submit(draft, charge).await
    }

    async fn submit(
        &self,
        draft: EntryDraft,
        charge: Option<QuotaCharge>,
    ) -> Result<Appended, LedgerError> {
        submit(&self.sender, draft, charge, false).await
    }

    /// The writer's metrics, for `/metrics` to register.
    pub fn metrics(&self) -> &metrics::LedgerMetrics {
        &self.inner.metrics
    }

    /// (transactions, entries) committed since start: their ratio is the group-commit batch size.
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.inner.commits.load(Ordering::Relaxed),
            self.inner.committed.load(Ordering::Relaxed),
        )
    }

    pub fn size(&self) -> u64 {
        self.inner
            .head
            .read()
            .map(|h| h.frontier.size())
            .unwrap_or(0)
    }

    fn size_and_root(&self) -> (u64, Hash) {
        match self.inner.head.read() {
            Ok(h) => (h.frontier.size(), h.frontier.root()),
            Err(_) => (0, merkle::empty_root()),
        }
    }

    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The key that signs now.
    pub fn signer(&self) -> Arc<NoteSigner> {
        match self.inner.signer.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Sign with `signer` from now on (the ledger key rotated: `keys::ledger_key`).
    pub fn set_signer(&self, signer: NoteSigner) {
        let signer = Arc::new(signer);
        match self.inner.signer.write() {
            Ok(mut s) => *s = signer,
            Err(poisoned) => *poisoned.into_inner() = signer,
        }
    }

    /// The hex key id of the key that signs now (receipts' `key_id`, `ledger_head.key_id`).
    pub fn key_id(&self) -> String {
        crate::hex::encode(&self.signer().key_hash())
    }

    /// The ledger's keys: the one that signs now and every one it succeeded, by the transition
    /// statements stored (tlog `keychain`).
    pub async fn key_chain(&self) -> Result<KeyChain, LedgerError> {
        let transitions = self.inner.store.key_transitions().await?;
        KeyChain::new(self.signer().verifier(), &transitions)
            .map_err(|e| LedgerError::Integrity(format!("the ledger's key transitions: {e}")))
    }

    /// A signed receipt for an appended entry.
    pub fn receipt(&self, a: &Appended) -> Receipt {
        let leaf = B64.encode(a.leaf_hash);
        let time = rfc3339_millis(a.time_ms);
        let message = note::receipt_message(a.index, &a.leaf_hash, &time);
        let signer = self.signer();
        let signature = signer.sign_raw(message.as_bytes());
        Receipt {
            index: a.index,
            leaf_hash: leaf,
            integrated_time: time,
            key_id: crate::hex::encode(&signer.key_hash()),
            signature: B64.encode(signature),
        }
    }

    /// Entry `index` as stored, with its receipt signed again: the same receipt its append
    /// answered with (same index, leaf hash and time). For answers replayed from an idempotency
    /// key, which keep the index and never a response body.
    pub async fn stored_receipt(
        &self,
        index: u64,
    ) -> Result<(entry::CanonicalEntry, Receipt), LedgerError> {
        let at = i64::try_from(index).unwrap_or(i64::MAX);
        let rows = self
            .inner
            .store
            .ledger_entries(&crate::storage::EntryFilter {
                start: at,
                end: at.saturating_add(1),
                actor: None,
                purpose: None,
                case_id: None,
                decision: None,
                action: None,
                since_ms: None,
                until_ms: None,
                limit: 1,
            })
            .await?;
        let Some((_, canonical)) = rows.first() else {
            return Err(LedgerError::Integrity(format!("entry {index} is missing")));
        };
        let entry = entry::parse_canonical(canonical)
            .map_err(|e| LedgerError::Integrity(format!("entry {index}: {e}")))?;
        let time_ms = crate::time::parse_rfc3339(&entry.time)
            .ok_or_else(|| LedgerError::Integrity(format!("entry {index} has a bad time")))?;
        let receipt = self.receipt(&Appended {
            index: entry.index,
            leaf_hash: merkle::leaf_hash(canonical.as_bytes()),
            time_ms,
        });
        Ok((entry, receipt))
    }

    /// Sign and store a checkpoint of the current tree if it grew since the last one; return
    /// the newest checkpoint note. Sizes only ever grow. A note is returned only once it is
    /// stored; while the ledger is degraded the newest stored one is served.
    pub async fn checkpoint(&self) -> Result<String, LedgerError> {
        let _guard = self.inner.checkpoint_lock.lock().await;
        let latest = self.inner.store.latest_checkpoint().await?;
        let (size, root) = if self.inner.health.is_writable() {
            self.caught_up().await?
        } else {
            self.size_and_root()
        };
        let size_i = i64::try_from(size).unwrap_or(i64::MAX);
        match latest {
            Some(c) if c.size >= size_i => Ok(c.note),
            // Degraded: a new checkpoint could not be stored, and one that is served must be
            // (a signed checkpoint is never rolled back): serve the newest stored one.
            Some(c) if !self.inner.health.is_writable() => Ok(c.note),
            _ => {
                let body = Checkpoint {
                    origin: self.inner.origin.clone(),
                    size,
                    root,
                }
                .body();
                let signer = self.signer();
                let note = signer
                    .sign_note(&body)
                    .map_err(|e| LedgerError::Integrity(e.to_string()))?;
                let stored = self
                    .inner
                    .store
                    .insert_checkpoint(
                        &StoredCheckpoint {
                            size: size_i,
                            root: root.to_vec(),
                            note: note.clone(),
                            time_ms: now_ms(),
                        },
                        &crate::hex::encode(&signer.key_hash()),
                    )
                    .await?;
                if stored {
                    return Ok(note);
                }
                // Another process published a larger checkpoint meanwhile, or the ledger key
                // rotated and this one is retired: serve the newest stored (a note is served
                // only once it is stored).
                match self.inner.store.latest_checkpoint().await? {
                    Some(c) => Ok(c.note),
                    None => Err(LedgerError::Integrity(
                        "a checkpoint was refused but none is stored".to_owned(),
                    )),
                }
            }
        }
    }

    /// The size and root of everything committed, by this process or another: the head moved
    /// on over entries others appended (never backwards), so a checkpoint asked of any process
    /// covers every receipt handed out before the question.
    async fn caught_up(&self) -> Result<(u64, Hash), LedgerError> {
        let committed = self.inner.store.ledger_head().await?.size;
        let frontier = match self.inner.head.read() {
            Ok(h) => h.frontier.clone(),
            Err(_) => {
                return Err(LedgerError::Integrity(
                    "the head lock is poisoned".to_owned(),
                ));
            }
        };
        if committed <= frontier.size() {
            return Ok((frontier.size(), frontier.root()));
        }
        let frontier = catch_up(&self.inner.store, frontier, committed)
            .await
            .map_err(|e| match e {
                AppendError::Storage(e) => LedgerError::Storage(e),
                AppendError::Integrity(why) => LedgerError::Integrity(why),
            })?;
        if let Ok(mut head) = self.inner.head.write()
            && head.frontier.size() < frontier.size()
        {
            head.frontier = frontier.clone();
        }
        Ok((frontier.size(), frontier.root()))
    }

    /// Checkpoint every `every` until the process ends.
    pub fn spawn_checkpointer(&self, every: Duration) {
        let ledger = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = ledger.checkpoint().await {
                    tracing::warn!(error = %e, "periodic checkpoint failed");
                }
            }
        });
    }

    /// Proofs may be asked up to any committed size: one this process appended, or one another
    /// process appended and checkpointed (a client may hold its checkpoint).
    async fn check_committed(&self, size: u64) -> Result<(), LedgerError> {
        if size <= self.size() || size <= self.inner.store.ledger_head().await?.size {
            return Ok(());
        }
        Err(LedgerError::BadRequest(format!(
            "the ledger has fewer than {size} entries"
        )))
    }

    async fn range_hashes(
        &self,
        ranges: &[(u64, u64)],
        extra: &[merkle::NodeId],
    ) -> Result<(Vec<Hash>, std::collections::HashMap<merkle::NodeId, Hash>), LedgerError> {
        let mut wanted = merkle::nodes_for(ranges);
        wanted.extend_from_slice(extra);
        let nodes = resolve_nodes(&self.inner.store, &wanted).await?;
        let lookup = |id: merkle::NodeId| nodes.get(&id).copied();
        let hashes = ranges
            .iter()
            .map(|(lo, hi)| merkle::range_hash(*lo, *hi, &lookup))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LedgerError::Integrity(e.to_string()))?;
        Ok((hashes, nodes))
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `size` entries.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Hash, Vec<Hash>), LedgerError> {
        self.check_committed(size).await?;
        let ranges = merkle::inclusion_ranges(index, size)
            .map_err(|e| LedgerError::BadRequest(e.to_string()))?;
        let leaf_id = merkle::NodeId { level: 0, index };
        let (proof, nodes) = self.range_hashes(&ranges, &[leaf_id]).await?;
        let leaf = nodes
            .get(&leaf_id)
            .copied()
            .ok_or_else(|| LedgerError::Integrity(format!("leaf {index} is missing")))?;
        Ok((leaf, proof))
    }

    /// RFC 9162 consistency proof between tree sizes `from` and `to`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_committed(to).await?;
        let ranges = merkle::consistency_ranges(from, to)
            .map_err(|e| LedgerError::BadRequest(e.to_string()))?;
        Ok(self.range_hashes(&ranges, &[]).await?.0)
    }
}

async fn submit(
    sender: &mpsc::Sender<Job>,
    draft: EntryDraft,
    charge: Option<QuotaCharge>,
    probe: bool,
) -> Result<Appended, LedgerError> {
    let (reply, answer) = oneshot::channel();
    sender
        .send(Job {
            draft,
            charge,
            probe,
            reply,
        })
        .await
        .map_err(|_| LedgerError::Unavailable)?;
    answer.await.map_err(|_| LedgerError::Unavailable)?
}

/// While the ledger is degraded, append a `ledger.storage_recovered` entry every `PROBE_EVERY`;
/// the first that commits makes it writable again. Ends with the ledger.
async fn run_prober(inner: std::sync::Weak<Inner>, sender: mpsc::WeakSender<Job>) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(inner), Some(sender)) = (inner.upgrade(), sender.upgrade()) else {
            return;
        };
        let Health::Degraded {
            since_ms,
            fault,
            refused,
            ..
        } = inner.health.get()
        else {
            continue;
        };
        drop(inner);
        let draft = EntryDraft::new(
            Actor::system(),
            "ledger.storage_recovered",
            Decision::Allow,
            "-".to_owned(),
        )
        .reason(&format!(
            "storage writes failed from {} ({}); operations refused meanwhile: {refused}",
            rfc3339_millis(since_ms),
            fault.as_str()
        ));
        if let Ok(a) = submit(&sender, draft, None, true).await {
            tracing::warn!(
                index = a.index,
                fault = fault.as_str(),
                refused,
                down_ms = a.time_ms.saturating_sub(since_ms),
                "ledger storage recovered; writes and disclosures are served again"
            );
        }
    }
}

/// Before a degraded ledger writes again: the committed size must equal the head's. Larger: an
/// append reported as failed did commit (its callers were refused; the head is reloaded). Smaller:
/// entries this process committed are gone, and the ledger stays degraded.
async fn settle(inner: &Inner) -> Result<(), FaultKind> {
    let durable = inner
        .store
        .ledger_size_durable()
        .await
        .map_err(|e| FaultKind::of(&e))?;
    let size = inner
        .head
        .read()
        .map_err(|_| FaultKind::Other)?
        .frontier
        .size();
    match durable.cmp(&size) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => {
            tracing::warn!(
                committed = durable,
                expected = size,
                "an append reported as failed was committed; its callers were refused"
            );
            let head = load_head(&inner.store).await.map_err(|e| match e {
                LedgerError::Storage(e) => FaultKind::of(&e),
                _ => FaultKind::Inconsistent,
            })?;
            let mut h = inner.head.write().map_err(|_| FaultKind::Other)?;
            *h = head;
            Ok(())
        }
        std::cmp::Ordering::Less => {
            tracing::error!(
                committed = durable,
                expected = size,
                "the database holds fewer ledger entries than this process committed"
            );
            Err(FaultKind::Inconsistent)
        }
    }
}

/// The writer: drain whatever is queued (up to `MAX_BATCH`), number and hash it, commit it in one
/// transaction, then answer every caller. While one batch commits, the next one queues up.
async fn run_writer(inner: Arc<Inner>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut last_batch = 1usize;
    let mut merge = SubjectMerge::new(MERGE_SUBJECT_ROWS);
    while receiver.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // Group commit: callers of the previous batch are just now being answered and will
        // append again at once. If that batch was bigger than what is queued, yield a few times
        // (no timer: tokio's sleeps are millisecond-grained) so their entries join this commit.
        let mut idle = 0;
        while jobs.len() < last_batch && idle < 4 {
            tokio::task::yield_now().await;
            let before = jobs.len();
            while jobs.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            idle = if jobs.len() == before { idle + 1 } else { 0 };
        }
        last_batch = jobs.len();
        let batch = std::mem::take(&mut jobs);
        commit_batch(&inner, batch).await;
        if inner.store.stages_subjects() && inner.health.is_writable() {
            let staged = inner.staged_subjects.load(Ordering::Relaxed);
            let size = inner.head.read().map_or(0, |h| h.frontier.size());
            let last_index = i64::try_from(size).unwrap_or(i64::MAX) - 1;
            let moved = merge.step(&inner.store, staged, last_index).await;
            inner
                .staged_subjects
                .fetch_sub(moved.min(staged), Ordering::Relaxed);
        }
    }
}

/// Times a batch is decided again when another replica used a quota between the read of the
/// use and the commit.
const CHARGE_ATTEMPTS: usize = 3;

/// Decide the batch's quota charges, then append the accepted entries (and their quota use) in
/// one transaction, answering every caller.
async fn commit_batch(inner: &Inner, mut batch: Vec<Job>) {
    if !inner.health.is_writable() {
        // Degraded: refuse at once; only a probe tries the storage, after settling the head.
        let (probes, refused): (Vec<Job>, Vec<Job>) = batch.into_iter().partition(|j| j.probe);
        inner.health.count_refused(refused.len() as u64);
        fail_all(refused);
        if probes.is_empty() {
            return;
        }
        if settle(inner).await.is_err() {
            inner.health.count_failed_probe();
            fail_all(probes);
            return;
        }
        batch = probes;
    }
    for _ in 0..CHARGE_ATTEMPTS {
        let mut increases = Vec::new();
        if batch.iter().any(|j| j.charge.is_some()) {
            let keys = charges::usage_keys(batch.iter().filter_map(|j| j.charge.as_ref()));
            let used = match inner.store.quota_usage(&keys).await {
                Ok(used) => used,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read quota use; operations refused");
                    inner.health.fail(FaultKind::of(&e), now_ms());
                    fail_all(batch);
                    return;
                }
            };
            let charges: Vec<Option<&QuotaCharge>> =
                batch.iter().map(|j| j.charge.as_ref()).collect();
            let (outcomes, sums) = charges::decide(&charges, used);
            increases = sums;
            // Use only grows within a day, so a refusal stands whatever happens next.
            let mut accepted = Vec::with_capacity(batch.len());
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                match outcome {
                    Ok(()) => accepted.push(job),
                    Err(over) => {
                        let _ = job.reply.send(Err(LedgerError::OverQuota {
                            grant: over.grant,
                            left: over.left,
                        }));
                    }
                }
            }
            batch = accepted;
        }
        if batch.is_empty() {
            return;
        }
        match append_batch(inner, &batch, &increases).await {
            Ok(Some(appended)) => {
                if batch.iter().any(|j| j.probe) {
                    inner.health.recover();
                }
                for (job, a) in batch.into_iter().zip(appended) {
                    let _ = job.reply.send(Ok(a));
                }
                return;
            }
            // Another replica used a quota meanwhile: nothing was written; decide again.
            Ok(None) => continue,
            Err(()) => {
                if batch.iter().any(|j| j.probe) {
                    inner.health.count_failed_probe();
                }
                fail_all(batch);
                return;
            }
        }
    }
    tracing::error!("quota use kept changing under the ledger writer; operations refused");
    fail_all(batch);
}

/// Attempts at one batch's transaction when the database asks for a retry (a serialization
/// failure or a deadlock, SQLSTATE 40001/40P01), with `storage::retry_pause` between them.
const APPEND_ATTEMPTS: u32 = 8;

/// Number, hash and store `batch` with `increases` in one transaction. `Ok(None)`: an increase
/// would pass its quota, nothing written. `Err`: the append failed (logged; the ledger is
/// degraded and its head left as it was, to be settled against the database before the next
/// write).
async fn append_batch(
    inner: &Inner,
    batch: &[Job],
    increases: &[UsageIncrease],
) -> Result<Option<Vec<Appended>>, ()> {
    let mut attempt = 1;
    loop {
        let error = match try_append(inner, batch, increases).await {
            Ok(outcome) => return Ok(outcome),
            Err(AppendError::Storage(e))
                if attempt < APPEND_ATTEMPTS && crate::storage::retryable(&e) =>
            {
                tracing::info!(error = %e, attempt, "ledger append asked to retry by the database");
                crate::storage::retry_pause(attempt).await;
                attempt += 1;
                continue;
            }
            Err(e) => e,
        };
        let kind = match &error {
            AppendError::Storage(e) => FaultKind::of(e),
            AppendError::Integrity(_) => FaultKind::Inconsistent,
        };
        tracing::error!(error = %error, entries = batch.len(), "ledger append failed; operations refused");
        // The commit may or may not have happened. The head stays at what is known to be
        // committed; `settle` compares it with the database before anything is written.
        inner.health.fail(kind, now_ms());
        return Err(());
    }
}

#[derive(Debug, thiserror::Error)]
enum AppendError {
    #[error("{0}")]
    Storage(#[from] sqlx::Error),
    #[error("{0}")]
    Integrity(String),
}

/// One attempt: take the coordination row, catch up with entries other processes appended
/// since this one last wrote, number the batch after them, and commit.
async fn try_append(
    inner: &Inner,
    batch: &[Job],
    increases: &[UsageIncrease],
) -> Result<Option<Vec<Appended>>, AppendError> {
    let started = std::time::Instant::now();
    let append = inner.store.lock_ledger_head().await?;
    let locked = append.head();
    let (mut frontier, mut last_time) = match inner.head.read() {
        Ok(h) => (h.frontier.clone(), h.last_time),
        Err(_) => {
            return Err(AppendError::Integrity(
                "the head lock is poisoned".to_owned(),
            ));
        }
    };
    if locked.size != frontier.size() {
        // Another process appended (or this one's "failed" append committed after all): take
        // the tree as committed, read while the row is held so it cannot move meanwhile.
        frontier = catch_up(&inner.store, frontier, locked.size).await?;
        last_time = last_time.max(locked.last_time_ms);
        inner.metrics.catch_ups.inc();
        if let Ok(mut head) = inner.head.write() {
            head.frontier = frontier.clone();
            head.last_time = last_time;
        }
    }
    // INVARIANT (monotonic time): entries are never dated before an earlier entry, whichever
    // process wrote it.
    let time_ms = now_ms().max(last_time).max(locked.last_time_ms);
    let (rows, nodes, appended) =
        stored_form(&mut frontier, batch.iter().map(|j| (&j.draft, time_ms)));
    if !append.write(&rows, &nodes, increases).await? {
        return Ok(None);
    }
    inner.metrics.committed(
        batch.iter().map(|j| &j.draft),
        started.elapsed().as_secs_f64(),
    );
    inner.commits.fetch_add(1, Ordering::Relaxed);
    inner
        .committed
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    if inner.store.stages_subjects() {
        let subjects: usize = rows.iter().map(|r| r.subjects.len()).sum();
        inner
            .staged_subjects
            .fetch_add(subjects as u64, Ordering::Relaxed);
    }
    if let Ok(mut head) = inner.head.write() {
        head.frontier = frontier;
        head.last_time = time_ms;
    }
    Ok(Some(appended))
}

/// Most entries read one by one to catch up with other processes; beyond it the frontier is
/// loaded afresh from the stored tree nodes.
const CATCH_UP_BY_LEAVES: u64 = 4 * MAX_BATCH as u64;

/// `frontier` moved on to the committed size `size`: the leaves in between pushed onto it when
/// they are few, else the frontier of `size` loaded from the stored nodes. A committed size
/// below this process's head means entries it committed are gone: an integrity error.
async fn catch_up(store: &Store, frontier: Frontier, size: u64) -> Result<Frontier, AppendError> {
    let held = frontier.size();
    if size < held {
        return Err(AppendError::Integrity(format!(
            "the ledger head says {size} entries but this process committed {held}"
        )));
    }
    if size - held > CATCH_UP_BY_LEAVES {
        let head = load_head(store).await.map_err(|e| match e {
            LedgerError::Storage(e) => AppendError::Storage(e),
            other => AppendError::Integrity(other.to_string()),
        })?;
        if head.frontier.size() != size {
            return Err(AppendError::Integrity(format!(
                "the ledger head says {size} entries but {} are stored",
                head.frontier.size()
            )));
        }
        return Ok(head.frontier);
    }
    let mut frontier = frontier;
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    // The stored leaf hashes, not the texts: a disclosure's text is ~12 kB, its hash 32 bytes,
    // and both come from the same rows another process of this hub wrote in this database
    // (`audit verify` and the start-up check hash the texts).
    for (index, leaf) in store
        .ledger_leaf_hashes(as_i64(held), as_i64(size - held))
        .await?
    {
        let expected = frontier.size();
        if u64::try_from(index).ok() != Some(expected) {
            return Err(AppendError::Integrity(format!(
                "entry {expected} is missing"
            )));
        }
        frontier.push(leaf);
    }
    if frontier.size() != size {
        return Err(AppendError::Integrity(format!(
            "entry {} is missing",
            frontier.size()
        )));
    }
    Ok(frontier)
}

/// Rows and new interior tree nodes (tiles only) of `drafts` appended after `frontier`, each at
/// its time, with where each landed: exactly what the writer stores for a batch. The writer
/// dates a whole batch at once; a tool that builds a ledger offline (the audit search bench)
/// passes its own times, which must never go back (see `append_batch`), and stores the result
/// with `Store::append_ledger`.
pub fn stored_form<'a>(
    frontier: &mut Frontier,
    drafts: impl ExactSizeIterator<Item = (&'a EntryDraft, i64)>,
) -> (Vec<LedgerRow>, Vec<(NodeId, Hash)>, Vec<Appended>) {
    let mut rows = Vec::with_capacity(drafts.len());
    let mut nodes = Vec::with_capacity(drafts.len() * 2);
    let mut appended = Vec::with_capacity(drafts.len());
    let mut time: Option<(i64, String)> = None;
    for (draft, time_ms) in drafts {
        // One text per distinct time (a batch shares one).
        if time.as_ref().is_none_or(|(at, _)| *at != time_ms) {
            time = Some((time_ms, rfc3339_millis(time_ms)));
        }
        let text = time.as_ref().map_or("", |(_, text)| text.as_str());
        let index = frontier.size();
        let canonical = draft.canonical_at(index, text);
        let leaf = merkle::leaf_hash(canonical.as_bytes());
        // Leaves are stored with their entries; only interior nodes go to `ledger_nodes`.
        nodes.extend(
            frontier
                .push(leaf)
                .into_iter()
                .filter(|(id, _)| id.level > 0 && id.level % TILE_LEVELS == 0),
        );
        rows.push(draft.row(index, time_ms, canonical, leaf));
        appended.push(Appended {
            index,
            leaf_hash: leaf,
            time_ms,
        });
    }
    (rows, nodes, appended)
}

/// The tree of the ledger as stored: its frontier and the time of its newest entry, for
/// `stored_form` (the writer keeps its own in memory).
pub async fn stored_head(store: &Store) -> Result<(Frontier, i64), LedgerError> {
    let head = load_head(store).await?;
    Ok((head.frontier, head.last_time))
}

fn fail_all(batch: Vec<Job>) {
    for job in batch {
        let _ = job.reply.send(Err(LedgerError::Unavailable));
    }
}
