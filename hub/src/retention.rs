//! Retention (issue 22): each record may carry a retention date (`retention_until`, set by the
//! write that creates or replaces it). A sweep crypto-shreds the records whose date has passed,
//! a batch at a time: one `record.expire` ledger entry per batch names the batch's records (ids
//! only), appended *before* their keys are destroyed, so a sweep that cannot audit erases
//! nothing; if a record of the batch was not erased after all (given a later date meanwhile, or
//! erased by hand), a `deny` entry says how many. `gridhub retention run --dry-run` lists what
//! would go, changing nothing.
//!
//! The hub runs the sweep every `retention_sweep_secs` on its injected clock; with several
//! replicas one at a time runs it (a lease in `job_leases`, claimed by compare-and-swap).

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::ledger::{Actor, Decision, EntryDraft, Ledger, RecordRef};
use crate::storage::{DueRecord, Store};
use crate::time::Clock;

/// Records erased per transaction (and named per ledger entry).
pub const BATCH: usize = 500;
/// The name of the sweep's lease.
const JOB: &str = "retention";
/// How long a claim of the sweep lasts; a sweep renews it before every batch.
const LEASE_MS: i64 = 10 * 60 * 1000;

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Records crypto-shredded.
    pub erased: usize,
    /// Ledger indexes of the `record.expire` entries, one per batch.
    pub entries: Vec<u64>,
    /// Records an entry named that were not erased (a later date or an erasure meanwhile).
    pub skipped: usize,
}

/// The records due at `now`, at most `limit`: what a sweep at `now` would erase first.
pub async fn due(store: &Store, now: i64, limit: usize) -> Result<Vec<DueRecord>, Error> {
    Ok(store
        .records_due(now, i64::try_from(limit).unwrap_or(i64::MAX))
        .await?)
}

/// Erase every record due at `now`, `batch` at a time (module docs). `holder` names this
/// sweep in the lease; `None` when another process holds the sweep (nothing was done).
pub async fn sweep(
    store: &Store,
    ledger: &Ledger,
    holder: &str,
    now: impl Fn() -> i64,
    batch: usize,
) -> Result<Option<Swept>, Error> {
    let mut swept = Swept::default();
    let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    loop {
        let at = now();
        if !store.claim_job(JOB, holder, at, at + LEASE_MS).await? {
            // Another process holds the sweep (or took it over from this one).
            return Ok((!swept.entries.is_empty()).then_some(swept));
        }
        let due = store.records_due(at, limit).await?;
        if due.is_empty() {
            store.release_job(JOB, holder).await?;
            return Ok(Some(swept));
        }
        let ids: Vec<String> = due.into_iter().map(|r| r.id).collect();
        let draft = EntryDraft::new(
            Actor::system(),
            "record.expire",
            Decision::Allow,
            "-".to_owned(),
        )
        .reason("retention date passed; data keys destroyed (crypto-shredded)")
        .records(ids.iter().map(|id| RecordRef::new(id, [])).collect());
        let appended = ledger.append(draft).await.map_err(Error::from)?;
        let erased = match store.expire_records(&ids, at).await {
            Ok(erased) => erased,
            Err(e) => {
                failed(
                    ledger,
                    &ids,
                    "the erasure failed; nothing of this batch was erased",
                )
                .await;
                return Err(e.into());
            }
        };
        let skipped = ids.len() - erased.len();
        if skipped > 0 {
            failed(
                ledger,
                &ids.iter()
                    .filter(|id| !erased.contains(id))
                    .cloned()
                    .collect::<Vec<_>>(),
                "not erased: given a later retention date or erased meanwhile",
            )
            .await;
        }
        swept.erased += erased.len();
        swept.skipped += skipped;
        swept.entries.push(appended.index);
        tracing::info!(
            erased = erased.len(),
            skipped,
            ledger_index = appended.index,
            "retention: records past their retention date erased"
        );
    }
}

/// A `deny` entry naming `ids` of a `record.expire` entry that were not erased.
async fn failed(ledger: &Ledger, ids: &[String], reason: &str) {
    let draft = EntryDraft::new(
        Actor::system(),
        "record.expire",
        Decision::Deny,
        "-".to_owned(),
    )
    .reason(reason)
    .records(ids.iter().map(|id| RecordRef::new(id, [])).collect());
    if let Err(e) = ledger.append(draft).await {
        tracing::error!(error = %e, "retention: the follow-up entry could not be written");
    }
}

/// Sweep every `every` on `clock` until the process ends (a hub's own schedule).
pub fn spawn_sweeper(store: Store, ledger: Ledger, clock: Arc<dyn Clock>, every: Duration) {
    let holder = format!("hub-{}", uuid::Uuid::now_v7());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = || clock.now_ms();
            match sweep(&store, &ledger, &holder, now, BATCH).await {
                Ok(Some(s)) if s.erased > 0 => {
                    tracing::info!(
                        erased = s.erased,
                        batches = s.entries.len(),
                        "retention sweep done"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; it runs again later"),
            }
            if let Err(e) = store.checkpoint_wal().await {
                tracing::debug!(error = %e, "WAL checkpoint after the retention sweep failed");
            }
        }
    });
}
