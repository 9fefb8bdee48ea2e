//! Grid-side records: create one, create a batch (all or nothing), read in clear, patch and
//! erase (crypto-shredding). The service owns the role checks, the ledger entries, the checks
//! against the catalog, grids and purposes, and the idempotency of writes; it knows nothing of
//! HTTP. Plaintext meets the vault only in `sealing`.
//!
//! Invariants: every method first checks that the caller's role permits the action on records
//! at all (`Access::authorize`, audited); a write, an erasure or a read in clear is appended to
//! the ledger and durable before it acts (insert, update, erase) or before the clear view is
//! returned, and a write that fails after its entry is followed by a `deny` entry saying so;
//! records outside the caller's grids are "not found" (audited as `record.access`), so their
//! existence is not revealed; values are never echoed back in problems; a write with an
//! idempotency key happens once per key (`idempotency`).

mod idempotency;
mod prepare;
mod sealing;
mod upsert;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use policy::{CategoryDef, FieldValue, GridCode};
use serde_json::{Map, Value};

pub use sealing::{
    DiscloseInput, RecordDraft, Release, disclose, open_all, prefix_problems, public_fields,
    releases, seal,
};
pub use upsert::{SealedBatch, Upserted};

use crate::auth::{Access, Principal};
use crate::error::{Error, current_request_id};
use crate::idempotency::IdempotencyKey;
use crate::ledger::{Decision, EntryDraft, Receipt, RecordRef};
use crate::storage::{NewRecord, RecordUpdate, Store, StoredRecord, UpdateOutcome};
use crate::time::now_ms;
use crate::vault::Vault;
use idempotency::{Attempt, Begun, KeyedWrite};

/// Largest batch `create_batch` accepts.
pub const MAX_BATCH: usize = 5000;

/// The record service. Cheap to share (`Arc`).
pub struct Records {
    access: Access,
    store: Store,
    vault: Arc<Vault>,
    /// The catalog in force, kept current with the decision version.
    decisions: Arc<crate::decisions::Decisions>,
    /// The whole-request timeout: a claim of an idempotency key older than this (plus a margin)
    /// belongs to a request that is gone.
    request_timeout: Duration,
}

/// What a caller submitted for one record: its parts as sent, not yet checked against the
/// catalog, the grids or the purposes (the write checks them all and lists every problem).
pub struct RecordInput {
    pub category: String,
    pub grid: String,
    /// Field name → value.
    pub fields: Map<String, Value>,
    pub purpose: String,
    pub legal_basis: Option<String>,
    /// RFC 3339, as sent; checked by the write.
    pub retention_until: Option<String>,
}

/// A change to some fields of a record.
pub struct Change {
    /// Fields to set; `null` removes an optional field.
    pub fields: Map<String, Value>,
    /// If given, the change applies only if the record is still at this version.
    pub expected_version: Option<i64>,
}

/// The request's `idempotency-key` as the caller's boundary parsed it. A malformed key is
/// answered only after the role check (as it always was): a caller without the role gets 403
/// and a `deny` entry whatever the key says.
pub type KeyHeader = Result<Option<IdempotencyKey>, Error>;

/// One record written: its id, its version after the write and the receipt of the entry that
/// recorded the write.
pub struct Written {
    pub id: String,
    pub version: i64,
    pub receipt: Receipt,
}

/// A batch written: the record ids in request order (each at version 1) and the receipt of the
/// one entry that recorded the whole batch.
pub struct BatchWritten {
    pub ids: Vec<String>,
    pub receipt: Receipt,
}

/// A record in clear, as its grid worker sees it. Times are Unix milliseconds.
pub struct ClearRecord {
    pub id: String,
    pub category: String,
    pub grid: String,
    pub version: i64,
    pub purpose: String,
    pub legal_basis: Option<String>,
    pub collector: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Unix ms; the retention job erases the record then.
    pub retention_until: Option<i64>,
    pub fields: Map<String, Value>,
}

/// An erasure: the ledger index of the entry that recorded it.
pub struct Erased {
    pub ledger_index: u64,
}

impl Records {
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        decisions: Arc<crate::decisions::Decisions>,
        request_timeout: Duration,
    ) -> Records {
        Records {
            access,
            store,
            vault,
            decisions,
            request_timeout,
        }
    }

    /// Create one record (once per idempotency key, if `key` holds one).
    pub async fn create(
        &self,
        who: &Principal,
        input: RecordInput,
        key: KeyHeader,
    ) -> Result<Written, Error> {
        self.permit(who, "write", "record.create").await?;
        let keyed = KeyedWrite::new(key?, who, "record", std::slice::from_ref(&input));
        let attempt = match idempotency::begin(self, keyed).await? {
            Begun::Replay(first) => return first.one(),
            Begun::Write(attempt) => attempt,
        };
        let outcome = async {
            let mut lookups = prepare::Lookups::default();
            let record = prepare::one(self, who, &mut lookups, input, "")
                .await?
                .map_err(Error::Validation)?;
            self.write(who, vec![record], attempt.as_ref()).await
        }
        .await;
        idempotency::settle(attempt, outcome).await?.one()
    }

    /// Create 1–`MAX_BATCH` records: all of them, or none with every problem listed.
    pub async fn create_batch(
        &self,
        who: &Principal,
        items: Vec<RecordInput>,
        key: KeyHeader,
    ) -> Result<BatchWritten, Error> {
        self.permit(who, "write", "record.create").await?;
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(Error::validation(
                "records",
                format!("between 1 and {MAX_BATCH} records"),
            ));
        }
        let keyed = KeyedWrite::new(key?, who, "batch", &items);
        let attempt = match idempotency::begin(self, keyed).await? {
            Begun::Replay(first) => return Ok(first.batch()),
            Begun::Write(attempt) => attempt,
        };
        let outcome = async {
            let ready = prepare::batch(self, who, items).await?;
            self.write(who, ready, attempt.as_ref()).await
        }
        .await;
        Ok(idempotency::settle(attempt, outcome).await?.batch())
    }

    /// A record in clear (grid workers in their grids, admins). The read is in the ledger before
    /// the clear view is returned.
    pub async fn read(&self, who: &Principal, id: &str) -> Result<ClearRecord, Error> {
        self.permit(who, "read", "record.read").await?;
        let stored = self.visible(who, id, "read").await?;
        let category = self.category_of(&stored)?;
        let fields = sealing::open_all(&self.vault, category, &stored)?;
        // Audit before release: the clear view leaves only once the ledger holds the read.
        let read = RecordRef::new(&stored.id, fields.keys().map(|k| (k.clone(), "clear")));
        self.access
            .record(entry(who, "record.read", vec![read], &stored.category))
            .await?;
        Ok(ClearRecord {
            id: stored.id,
            category: stored.category,
            grid: stored.grid,
            version: stored.version,
            purpose: stored.purpose,
            legal_basis: stored.legal_basis,
            retention_until: stored.retention_until,
            collector: stored.collector,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            fields,
        })
    }

    /// Change some fields of a record; the merged record is validated as a whole.
    pub async fn patch(&self, who: &Principal, id: &str, change: Change) -> Result<Written, Error> {
        self.permit(who, "write", "record.update").await?;
        if change.fields.is_empty() {
            return Err(Error::validation("fields", "no field to change"));
        }
        let stored = self.visible(who, id, "write").await?;
        if change.expected_version.is_some_and(|v| v != stored.version) {
            return Err(Error::Conflict(
                "the record has changed since that version".to_owned(),
            ));
        }
        let (changes, update) = self.checked_update(&stored, &change.fields)?;
        let touched = RecordRef::new(
            id,
            changes
                .iter()
                .map(|(k, v)| (k.clone(), if v.is_some() { "written" } else { "removed" })),
        );
        let receipt = self
            .access
            .record_with_receipt(entry(who, "record.update", vec![touched], &stored.category))
            .await?;
        let outcome = match self.store.update_record(&update, now_ms()).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.record_failure(who, "record.update", vec![RecordRef::new(id, [])])
                    .await;
                return Err(e.into());
            }
        };
        if outcome != UpdateOutcome::Updated(stored.version + 1) {
            self.record_failure(who, "record.update", vec![RecordRef::new(id, [])])
                .await;
        }
        match outcome {
            UpdateOutcome::Updated(version) => {
                tracing::info!(record_id = %id, fields = ?changes.keys().collect::<Vec<_>>(), "record updated");
                Ok(Written {
                    id: id.to_owned(),
                    version,
                    receipt,
                })
            }
            UpdateOutcome::NotFound => Err(Error::NotFound("record")),
            UpdateOutcome::VersionMismatch => Err(Error::Conflict(
                "the record changed concurrently; read it and retry".to_owned(),
            )),
        }
    }

    /// Erase a record by destroying its data key (crypto-shredding). Admins and DPOs only.
    pub async fn erase(&self, who: &Principal, id: &str) -> Result<Erased, Error> {
        self.permit(who, "erase", "record.erase").await?;
        let Some(stored) = self.store.record(id).await? else {
            return Err(Error::NotFound("record"));
        };
        let grid = GridCode::parse(&stored.grid)
            .map_err(|_| Error::Integrity(format!("record `{id}` has a malformed grid")))?;
        self.access
            .authorize(who, "records", "erase", Some(&grid), "record.erase")
            .await?;
        let appended = self
            .access
            .record(entry(
                who,
                "record.erase",
                vec![RecordRef::new(id, [])],
                &stored.category,
            ))
            .await?;
        let erased = match self.store.erase_record(id, now_ms()).await {
            Ok(erased) => erased,
            Err(e) => {
                self.record_failure(who, "record.erase", vec![RecordRef::new(id, [])])
                    .await;
                return Err(e.into());
            }
        };
        if !erased {
            self.record_failure(who, "record.erase", vec![RecordRef::new(id, [])])
                .await;
            return Err(Error::NotFound("record"));
        }
        // Best effort: push the overwritten pages out of the SQLite WAL too.
        if let Err(e) = self.store.checkpoint_wal().await {
            tracing::warn!(error = %e, "WAL checkpoint after erasure failed; it will happen later");
        }
        tracing::info!(record_id = %id, by = %who.id(), "record erased (crypto-shredded)");
        Ok(Erased {
            ledger_index: appended.index,
        })
    }

    /// Does the caller's role permit `action` on records anywhere (before the grid is known)?
    /// A write is also permitted to a department that publishes categories (`records:publish`);
    /// which categories and grids it may write is checked per record (`prepare`). The catalog
    /// is brought up to the caller's decision version first.
    async fn permit(&self, who: &Principal, action: &str, audit_action: &str) -> Result<(), Error> {
        self.decisions.refresh_to(who.versions.decision).await?;
        if action == "write"
            && self
                .access
                .permits(who, crate::auth::permissions::NO_GRID, "records", "publish")
                .await
        {
            return Ok(());
        }
        self.access
            .authorize(who, "records", action, None, audit_action)
            .await
    }

    /// Audit, then insert (under the request's idempotency key, if any): the write of a create
    /// or of a whole batch.
    async fn write(
        &self,
        who: &Principal,
        ready: Vec<NewRecord>,
        attempt: Option<&Attempt>,
    ) -> Result<idempotency::Answer, Error> {
        let category = ready
            .first()
            .map(|r| r.category.clone())
            .unwrap_or_default();
        let refs = ready.iter().map(written).collect();
        // Audit first: if the ledger cannot record the write, nothing is written.
        let receipt = self
            .access
            .record_with_receipt(entry(who, "record.create", refs, &category))
            .await?;
        if let Err(e) = idempotency::insert(&self.store, &ready, attempt, receipt.index).await {
            let ids = ready.iter().map(|r| RecordRef::new(&r.id, [])).collect();
            self.record_failure(who, "record.create", ids).await;
            return Err(e);
        }
        tracing::info!(count = ready.len(), category = %category, "records created");
        let ids = ready.into_iter().map(|r| r.id).collect();
        Ok(idempotency::Answer { ids, receipt })
    }

    /// Load a live record the caller may see; records outside the caller's grids are "not
    /// found", so their existence is not revealed.
    async fn visible(
        &self,
        who: &Principal,
        id: &str,
        action: &str,
    ) -> Result<StoredRecord, Error> {
        let stored = self
            .store
            .record(id)
            .await?
            .ok_or(Error::NotFound("record"))?;
        let grid = GridCode::parse(&stored.grid)
            .map_err(|_| Error::Integrity(format!("record `{id}` has a malformed grid")))?;
        if self
            .access
            .permits(who, grid.as_str(), "records", action)
            .await
        {
            Ok(stored)
        } else {
            let denied = EntryDraft::new(
                who.actor(),
                "record.access",
                Decision::Deny,
                current_request_id(),
            )
            .reason("record outside the caller's grids")
            .records(vec![RecordRef::new(id, [])]);
            self.access.record(denied).await?;
            Err(Error::NotFound("record"))
        }
    }

    /// The parsed changes and the sealed update of a patch, after validating the record as it
    /// will be: required fields present, cross-field rules hold.
    fn checked_update(
        &self,
        stored: &StoredRecord,
        fields: &Map<String, Value>,
    ) -> Result<(BTreeMap<String, Option<FieldValue>>, RecordUpdate), Error> {
        let category = self.category_of(stored)?;
        let changes = category.parse_patch(fields).map_err(Error::Validation)?;
        let mut merged = sealing::open_all(&self.vault, category, stored)?;
        for (name, value) in fields {
            if value.is_null() {
                merged.remove(name);
            } else {
                merged.insert(name.clone(), value.clone());
            }
        }
        let merged_values = category.parse_fields(&merged).map_err(Error::Validation)?;
        let cross = category.cross_check(&merged_values);
        if !cross.is_empty() {
            return Err(Error::Validation(cross));
        }
        let update = sealing::patch(&self.vault, category, stored, &changes)?;
        Ok((changes, update))
    }

    fn category_of(&self, stored: &StoredRecord) -> Result<&'static CategoryDef, Error> {
        self.decisions
            .catalog()?
            .category(&stored.category)
            .ok_or_else(|| {
                Error::Integrity(format!("record `{}` has an unknown category", stored.id))
            })
    }

    /// After the ledger recorded a write that then failed, say so in the ledger too (best
    /// effort).
    async fn record_failure(&self, who: &Principal, action: &str, ids: Vec<RecordRef>) {
        let draft = EntryDraft::new(who.actor(), action, Decision::Deny, current_request_id())
            .reason("storage failed after the entry was recorded; nothing was written")
            .records(ids);
        if let Err(e) = self.access.record(draft).await {
            tracing::error!(error = %e, "cannot record a failed write in the ledger");
        }
    }
}

/// The ledger entry of a write or read: which records, which fields, never their values.
fn entry(who: &Principal, action: &str, records: Vec<RecordRef>, category: &str) -> EntryDraft {
    EntryDraft::new(who.actor(), action, Decision::Allow, current_request_id())
        .category(category)
        .records(records)
}

/// A new record as its write's entry names it: every field, sealed or public, as `written`.
fn written(record: &NewRecord) -> RecordRef {
    let mut fields: Vec<(String, &'static str)> = record
        .sealed
        .iter()
        .map(|f| (f.field.clone(), "written"))
        .collect();
    if let Ok(Value::Object(plain)) = serde_json::from_str::<Value>(&record.plain_fields) {
        fields.extend(plain.keys().map(|k| (k.clone(), "written")));
    }
    RecordRef::new(&record.id, fields)
}
