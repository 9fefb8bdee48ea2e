//! Create-or-update by key (`Records::upsert_batch`, `POST /v1/records/batch` with
//! `upsert_by`, and `gridhub import`): a record whose `indexed` key field (the identity number,
//! say) matches a live record of the same category replaces that record's content; the others
//! are created. Validation, sealing and role checks are those of `create_batch`.
//!
//! Invariants: the existing records are found through the blind index in one query per batch
//! (never by decrypting); one ledger entry (`record.import`) names every record of the batch and
//! is durable before anything is written; the creates and replacements commit in one
//! transaction that re-checks, inside it, that no new key was taken meanwhile (`Raced` → 409),
//! so a key never gets two records from upserts; a record in a grid the caller may not write is
//! refused (403, audited), never replaced.

use std::collections::{BTreeMap, HashMap};

use policy::{CategoryDef, FieldProblem};
use serde_json::{Map, Value};

use super::sealing::{self, RecordDraft, prefix_problems};
use super::{MAX_BATCH, RecordInput, Records, entry, prepare, written};
use crate::auth::Principal;
use crate::error::Error;
use crate::ledger::{Receipt, RecordRef};
use crate::storage::{NewRecord, Replacement, UpsertKey, UpsertOutcome};
use crate::time::now_ms;

/// A batch upserted: ids in request order, how many were created and how many updated, and
/// the receipt of the batch's one entry.
pub struct Upserted {
    pub ids: Vec<String>,
    /// Each record's version after the write, in request order.
    pub versions: Vec<i64>,
    pub created: usize,
    pub updated: usize,
    pub receipt: Receipt,
}

/// A batch checked and sealed by `Records::seal_upsert_batch`, not yet looked up or written.
/// Only that method makes one, so a batch reaching `commit_upsert_batch` has passed the role
/// check and validation.
pub struct SealedBatch {
    category: &'static CategoryDef,
    key_field: String,
    ready: Vec<NewRecord>,
    /// Each item's fields as submitted (an update overlays them on the stored record).
    fields: Vec<Map<String, Value>>,
    /// Each item's blind-index token of the key field.
    tokens: Vec<Vec<u8>>,
}

fn problem(field: String, text: &str) -> FieldProblem {
    FieldProblem {
        field,
        problem: text.to_owned(),
    }
}

impl Records {
    /// Create or update 1–`MAX_BATCH` records of one category by `key_field` (an `indexed`
    /// field every item carries, unique within the batch): all of them, or none with every
    /// problem listed.
    pub async fn upsert_batch(
        &self,
        who: &Principal,
        items: Vec<RecordInput>,
        key_field: &str,
    ) -> Result<Upserted, Error> {
        let sealed = self.seal_upsert_batch(who, items, key_field).await?;
        self.commit_upsert_batch(who, sealed).await
    }

    /// The first half of `upsert_batch`: check the batch and seal every item, reading nothing
    /// but the catalog, grids and purposes. An importer seals the next batch with this while
    /// the previous one commits.
    pub async fn seal_upsert_batch(
        &self,
        who: &Principal,
        items: Vec<RecordInput>,
        key_field: &str,
    ) -> Result<SealedBatch, Error> {
        self.permit(who, "write", "record.create").await?;
        let category = self.upsert_category(&items, key_field)?;
        let fields: Vec<Map<String, Value>> = items.iter().map(|i| i.fields.clone()).collect();
        let ready = prepare::batch(self, who, items).await?;
        let tokens = key_tokens(&ready, key_field)?;
        Ok(SealedBatch {
            category,
            key_field: key_field.to_owned(),
            ready,
            fields,
            tokens,
        })
    }

    /// The second half of `upsert_batch`: find the records the keys match (as they are now),
    /// build their replacements, audit and write. Batches must be committed in the order
    /// their rows came for a later row to update an earlier one.
    pub async fn commit_upsert_batch(
        &self,
        who: &Principal,
        batch: SealedBatch,
    ) -> Result<Upserted, Error> {
        let SealedBatch {
            category,
            key_field,
            ready,
            fields,
            tokens,
        } = batch;
        let key_field = key_field.as_str();
        let found = self
            .store
            .records_by_tokens(&category.name, key_field, &tokens)
            .await?;
        let existing = existing_by_item(&tokens, found, key_field)?;
        let mut created = Vec::new();
        let mut replaced = Vec::new();
        let mut ids = Vec::with_capacity(ready.len());
        let mut versions = Vec::with_capacity(ready.len());
        let items = ready.into_iter().zip(fields).zip(existing).enumerate();
        for (i, ((record, input), existing)) in items {
            match existing {
                Some(id) => {
                    ids.push(id.clone());
                    let replacement = self
                        .replacement(who, category, record, &input, id)
                        .await
                        .map_err(|e| match e {
                            Error::Validation(p) => {
                                Error::Validation(prefix_problems(&format!("records[{i}]."), p))
                            }
                            other => other,
                        })?;
                    versions.push(replacement.expected_version + 1);
                    replaced.push(replacement);
                }
                None => {
                    ids.push(record.id.clone());
                    versions.push(1);
                    created.push(record);
                }
            }
        }
        let receipt = self
            .commit_upsert(who, category, key_field, &created, &replaced)
            .await?;
        Ok(Upserted {
            ids,
            versions,
            created: created.len(),
            updated: replaced.len(),
            receipt,
        })
    }

    /// The field names of `category` in the catalog in force (the importer's header mapping).
    pub fn category_fields(&self, category: &str) -> Option<Vec<String>> {
        let catalog = self.decisions.catalog().ok()?;
        let def = catalog.category(category)?;
        Some(def.fields.iter().map(|f| f.name.clone()).collect())
    }

    /// Check a batch as `create_batch` would (every problem listed), writing nothing: the
    /// importer's `--dry-run`.
    pub async fn check_batch(&self, who: &Principal, items: Vec<RecordInput>) -> Result<(), Error> {
        self.permit(who, "write", "record.create").await?;
        prepare::batch(self, who, items).await.map(|_| ())
    }

    /// The one category of an upsert batch, whose `key_field` is `indexed`.
    fn upsert_category(
        &self,
        items: &[RecordInput],
        key_field: &str,
    ) -> Result<&'static CategoryDef, Error> {
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(Error::validation(
                "records",
                format!("between 1 and {MAX_BATCH} records"),
            ));
        }
        let name = items.first().map(|i| i.category.as_str()).unwrap_or("");
        if items.iter().any(|i| i.category != name) {
            return Err(Error::validation(
                "records",
                "an upsert batch holds one category",
            ));
        }
        let category = self
            .decisions
            .catalog()?
            .category(name)
            .ok_or_else(|| Error::validation("records[0].category", "unknown category"))?;
        if !category.field(key_field).is_some_and(|f| f.indexed) {
            return Err(Error::validation(
                "upsert_by",
                "not an indexed field of the category",
            ));
        }
        Ok(category)
    }

    /// The new content of existing record `id`: its fields in clear, overlaid with the input's
    /// (`null` removes), validated as a whole and sealed under a fresh key.
    async fn replacement(
        &self,
        who: &Principal,
        category: &'static CategoryDef,
        record: NewRecord,
        input: &Map<String, Value>,
        id: String,
    ) -> Result<Replacement, Error> {
        let stored = self.visible_for_upsert(who, &id).await?;
        let mut merged = sealing::open_all(&self.vault, category, &stored)?;
        for (name, value) in input {
            if value.is_null() {
                merged.remove(name);
            } else {
                merged.insert(name.clone(), value.clone());
            }
        }
        let values = category.parse_fields(&merged).map_err(Error::Validation)?;
        let cross = category.cross_check(&values);
        if !cross.is_empty() {
            return Err(Error::Validation(cross));
        }
        let grid = policy::GridCode::parse(&record.grid)
            .map_err(|_| Error::Internal("a sealed record has a malformed grid".to_owned()))?;
        let draft = RecordDraft {
            category,
            grid,
            purpose: record.purpose,
            legal_basis: record.legal_basis,
            // A write that names no retention date keeps the record's.
            retention_until: record.retention_until.or(stored.retention_until),
            collector: stored.collector,
            values,
        };
        Ok(Replacement {
            record: sealing::seal_as(&self.vault, draft, id)?,
            expected_version: stored.version,
        })
    }

    /// The live record `id` if the caller may write in its grid; otherwise the refusal is
    /// audited and the whole batch is refused.
    async fn visible_for_upsert(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<crate::storage::StoredRecord, Error> {
        let stored = self.store.record(id).await?.ok_or_else(|| {
            Error::Conflict("a matching record changed concurrently; retry".to_owned())
        })?;
        let writable = match policy::GridCode::parse(&stored.grid) {
            Ok(grid) => {
                self.access
                    .permits(who, grid.as_str(), "records", "write")
                    .await
            }
            Err(_) => false,
        };
        if writable {
            return Ok(stored);
        }
        let error = Error::Forbidden("a record with that key is outside your grids".to_owned());
        Err(self
            .access
            .deny(
                who.actor(),
                "record.import",
                "upsert key matches a record outside the caller's grids",
                error,
            )
            .await)
    }

    /// Audit the batch (one entry), then write it in one transaction.
    async fn commit_upsert(
        &self,
        who: &Principal,
        category: &CategoryDef,
        key_field: &str,
        created: &[NewRecord],
        replaced: &[Replacement],
    ) -> Result<Receipt, Error> {
        let refs: Vec<RecordRef> = created
            .iter()
            .chain(replaced.iter().map(|r| &r.record))
            .map(written)
            .collect();
        // Audit first: if the ledger cannot record the write, nothing is written.
        let receipt = self
            .access
            .record_with_receipt(entry(who, "record.import", refs, &category.name))
            .await?;
        let key = UpsertKey {
            category: &category.name,
            field: key_field,
        };
        let outcome = self
            .store
            .upsert_records(created, replaced, key, now_ms())
            .await;
        if !matches!(outcome, Ok(UpsertOutcome::Written)) {
            let ids = created
                .iter()
                .chain(replaced.iter().map(|r| &r.record))
                .map(|r| RecordRef::new(&r.id, []))
                .collect();
            self.record_failure(who, "record.import", ids).await;
        }
        match outcome? {
            UpsertOutcome::Written => {
                tracing::info!(
                    created = created.len(),
                    updated = replaced.len(),
                    category = %category.name,
                    "records upserted"
                );
                Ok(receipt)
            }
            UpsertOutcome::Raced => Err(Error::Conflict(
                "records with these keys changed concurrently; retry the batch".to_owned(),
            )),
        }
    }
}

/// Each record's one blind-index token of `key_field`; every problem listed (missing key,
/// duplicate key within the batch).
fn key_tokens(ready: &[NewRecord], key_field: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut problems = Vec::new();
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    let mut tokens = Vec::with_capacity(ready.len());
    for (i, record) in ready.iter().enumerate() {
        let mut mine = record.index.iter().filter(|e| e.field == key_field);
        match (mine.next(), mine.next()) {
            (Some(e), None) => {
                if seen.insert(e.token.as_slice(), i).is_some() {
                    problems.push(problem(
                        format!("records[{i}].{key_field}"),
                        "the same key appears twice in the batch",
                    ));
                }
                tokens.push(e.token.clone());
            }
            _ => problems.push(problem(
                format!("records[{i}].{key_field}"),
                "an upsert key needs exactly one value",
            )),
        }
    }
    if problems.is_empty() {
        Ok(tokens)
    } else {
        Err(Error::Validation(problems))
    }
}

/// For each item, the id of the live record its key matches, if any; a key matching several
/// records (written before upserts existed) is a problem of that item.
fn existing_by_item(
    tokens: &[Vec<u8>],
    found: Vec<(Vec<u8>, String)>,
    key_field: &str,
) -> Result<Vec<Option<String>>, Error> {
    let mut by_token: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for (token, id) in found {
        by_token.entry(token).or_default().push(id);
    }
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        match by_token.get(token).map(Vec::as_slice) {
            None | Some([]) => out.push(None),
            Some([id]) => out.push(Some(id.clone())),
            Some(_) => {
                problems.push(problem(
                    format!("records[{i}].{key_field}"),
                    "the key matches more than one record",
                ));
                out.push(None);
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Validation(problems))
    }
}
