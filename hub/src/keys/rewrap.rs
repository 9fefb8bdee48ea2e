//! The rewrap: every data key of a superseded KEK version moved to the active one, a batch per
//! transaction, at most `rate` keys a second, resumable, and then the old version retired
//! (module docs of `crate::keys`). One process at a time runs it: the `keys` lease.

use std::time::{Duration, Instant};

use super::Keys;
use crate::error::Error;
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::storage::{DekTable, KekState, MovedDek, RewrapCursor};
use crate::vault::WrappedDek;

/// Data keys per transaction.
pub const BATCH: usize = 500;
/// The name of the lease in `job_leases`.
const JOB: &str = "keys";
/// How long a claim lasts; renewed before every batch (a batch takes about a second at most:
/// `batch_size`). A process that dies holding it blocks the others for this long at most.
const LEASE_MS: i64 = 30 * 1000;
/// Passes over a version before a run gives up retiring it for now (each pass finds data keys
/// that writes stored under it behind the cursor, before they learnt of the rotation).
const PASSES: u32 = 3;

/// How far a rewrap has come, after each batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub category: String,
    pub from: u32,
    pub to: u32,
    /// Data keys moved off `from` so far (over every run).
    pub moved: i64,
    /// Data keys under `from` when this run came to it.
    pub total: i64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Data keys moved by this run.
    pub moved: u64,
    /// (category, version) retired by this run.
    pub retired: Vec<(String, u32)>,
    /// (category, version) still being rewrapped (left for a later run).
    pub pending: Vec<(String, u32)>,
    /// Rotations this run made (versions past their wrap budget).
    pub rotated: Vec<(String, u32)>,
}

/// The binding of a data key's associated data (`vault::envelope`): a record's or case's id, or
/// a webhook destination's.
fn binding(table: DekTable, key: &str) -> String {
    match table {
        DekTable::Records | DekTable::Cases => key.to_owned(),
        DekTable::WebhookEndpoints => crate::webhooks::binding(key),
    }
}

/// Rotate worn versions and rewrap every `rewrap` version, then retire those left empty.
/// `None` if another process holds the `keys` lease.
pub async fn run(
    keys: &Keys,
    holder: &str,
    rate: u32,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Option<Report>, Error> {
    if !claim(keys, holder).await? {
        return Ok(None);
    }
    let mut report = Report::default();
    let rows = keys.refresh().await?;
    for r in keys.rotate_worn(&rows).await? {
        report.rotated.push((r.category, r.version));
    }
    let rows = keys.refresh().await?;
    let started = Instant::now();
    for row in rows.iter().filter(|r| r.state == KekState::Rewrap) {
        let Ok(to) = keys.vault().active_kek_version(&row.category) else {
            continue;
        };
        let total = keys.store().deks_left(&row.category, row.version).await? + row.rewrapped;
        let mut moved_total = row.rewrapped;
        let mut cursor = row.cursor.as_deref().and_then(RewrapCursor::parse);
        let mut passes = 0;
        loop {
            if !claim(keys, holder).await? {
                return Ok(Some(report));
            }
            let (table, deks) = keys
                .store()
                .deks_under(
                    &row.category,
                    row.version,
                    cursor.as_ref(),
                    batch_size(rate),
                )
                .await?;
            if deks.is_empty() {
                let since = keys.now_ms() - row.state_since_ms;
                let grace = i64::try_from(keys.policy().retire_grace.as_millis()).unwrap_or(0);
                // With a grace of 0 nothing is waited for; otherwise a clock behind the one
                // that stamped the rotation only delays the retirement.
                if grace > 0 && since < grace {
                    report.pending.push((row.category.clone(), row.version));
                    break;
                }
                let left = keys
                    .store()
                    .retire_kek(&row.category, row.version, keys.now_ms())
                    .await?;
                if left == 0 {
                    keys.refresh().await?;
                    retired(keys, &row.category, row.version, to, moved_total).await;
                    report.retired.push((row.category.clone(), row.version));
                    break;
                }
                passes += 1;
                if passes >= PASSES {
                    report.pending.push((row.category.clone(), row.version));
                    break;
                }
                keys.store()
                    .reset_rewrap_cursor(&row.category, row.version)
                    .await?;
                cursor = None;
                continue;
            }
            let mut moved = Vec::with_capacity(deks.len());
            for dek in &deks {
                let old = WrappedDek {
                    kek_version: row.version,
                    bytes: dek.wrapped.clone(),
                };
                let new =
                    keys.vault()
                        .rewrap_to(&row.category, &binding(table, &dek.key), &old, to)?;
                moved.push(MovedDek {
                    key: dek.key.clone(),
                    old: dek.wrapped.clone(),
                    new: new.bytes,
                });
            }
            let done = keys
                .store()
                .store_rewrapped(&row.category, row.version, to, table, &moved)
                .await?;
            report.moved += done;
            moved_total += i64::try_from(done).unwrap_or(i64::MAX);
            cursor = moved.last().map(|m| RewrapCursor {
                table,
                after: m.key.clone(),
            });
            progress(&Progress {
                category: row.category.clone(),
                from: row.version,
                to,
                moved: moved_total,
                total: total.max(moved_total),
            });
            pace(started, report.moved, rate).await;
        }
    }
    keys.store().release_job(JOB, holder).await?;
    Ok(Some(report))
}

/// Data keys per batch: `BATCH`, or a second's worth at `rate`.
fn batch_size(rate: u32) -> usize {
    match usize::try_from(rate) {
        Ok(0) | Err(_) => BATCH,
        Ok(rate) => rate.clamp(1, BATCH),
    }
}

/// Claim (or renew) the `keys` lease for `holder`.
async fn claim(keys: &Keys, holder: &str) -> Result<bool, sqlx::Error> {
    let now = keys.now_ms();
    keys.store()
        .claim_job(JOB, holder, now, now + LEASE_MS)
        .await
}

/// Sleep until `done` keys have taken at least `done / rate` seconds since `started`.
async fn pace(started: Instant, done: u64, rate: u32) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(done as f64 / f64::from(rate));
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

/// The ledger entry of a retirement (after it committed: the version unwraps nothing now).
async fn retired(keys: &Keys, category: &str, version: u32, to: u32, moved: i64) {
    let draft = EntryDraft::new(
        Actor::system(),
        "keys.retire",
        Decision::Allow,
        "-".to_owned(),
    )
    .reason(&format!(
        "KEK of `{category}`: version {version} retired (it unwraps nothing from now on); \
         {moved} data keys were rewrapped to version {to}"
    ));
    if let Err(e) = keys.ledger().append(draft).await {
        tracing::error!(error = %e, category, version, "the retirement could not be audited");
    }
    tracing::info!(category, version, moved, "KEK version retired");
}
