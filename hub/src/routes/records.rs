//! Records API (grid side): create, batch create (all or nothing), read in clear, patch and
//! crypto-shred. Handlers read parse → decide → act → respond; values are validated against the
//! catalog and never echoed back in errors. Creates with an `idempotency-key` happen once per
//! key (`idempotency`).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::{FieldProblem, GridCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::error::current_request_id;
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft, Receipt, RecordRef};
use crate::records::{self, RecordDraft, prefix_problems};
use crate::state::AppState;
use crate::storage::{NewRecord, StoredRecord, UpdateOutcome};
use crate::time::now_ms;

mod idempotency;

use idempotency::{Attempt, Begun, KeyedWrite, Written};

/// Header carrying the ledger index of an erasure (204 has no body for a receipt).
pub const AUDIT_INDEX_HEADER: &str = "gridhub-audit-index";

/// Largest batch accepted by `POST /v1/records/batch`.
pub const MAX_BATCH: usize = 5000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records", post(create_record))
        .route("/v1/records/batch", post(create_batch))
        .route(
            "/v1/records/{id}",
            get(read_record).patch(patch_record).delete(erase_record),
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecord {
    category: String,
    grid: String,
    /// Field name → value, validated against the catalog.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    purpose: String,
    #[serde(default)]
    legal_basis: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    records: Vec<CreateRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordCreated {
    id: String,
    version: i64,
    /// Signed receipt of the ledger entry that recorded this write.
    receipt: Receipt,
}

#[derive(Serialize, ToSchema)]
pub struct RecordWritten {
    id: String,
    version: i64,
}

#[derive(Serialize, ToSchema)]
pub struct BatchCreated {
    records: Vec<RecordWritten>,
    /// Signed receipt of the one ledger entry that recorded the whole batch.
    receipt: Receipt,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRecord {
    /// Fields to set; `null` removes an optional field.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// If given, the update applies only if the record is still at this version (else 409).
    #[serde(default)]
    expected_version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    id: String,
    category: String,
    grid: String,
    version: i64,
    purpose: String,
    legal_basis: Option<String>,
    collector: String,
    created_at: String,
    updated_at: String,
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

/// Does the caller's role permit `action` on records anywhere (before the grid is known)?
async fn records_permit(
    state: &AppState,
    who: &Principal,
    action: &str,
    audit_action: &str,
) -> Result<(), Error> {
    state
        .authorize(who, "records", action, None, audit_action)
        .await
}

/// The ledger entry of a write: which records, which fields, never their values.
fn write_entry(
    who: &Principal,
    action: &str,
    records: Vec<RecordRef>,
    category: &str,
) -> EntryDraft {
    EntryDraft::new(who.actor(), action, Decision::Allow, current_request_id())
        .category(category)
        .records(records)
}

fn written(record: &NewRecord) -> RecordRef {
    let mut fields: Vec<(String, &'static str)> = record
        .sealed
        .iter()
        .map(|f| (f.field.clone(), "written"))
        .collect();
    if let Ok(serde_json::Value::Object(plain)) =
        serde_json::from_str::<Value>(&record.plain_fields)
    {
        fields.extend(plain.keys().map(|k| (k.clone(), "written")));
    }
    RecordRef::new(&record.id, fields)
}

/// After the ledger recorded a write that then failed, say so in the ledger too (best effort).
async fn record_failure(state: &AppState, who: &Principal, action: &str, ids: Vec<RecordRef>) {
    let draft = EntryDraft::new(who.actor(), action, Decision::Deny, current_request_id())
        .reason("storage failed after the entry was recorded; nothing was written")
        .records(ids);
    if let Err(e) = state.audit(draft).await {
        tracing::error!(error = %e, "cannot record a failed write in the ledger");
    }
}

fn problem(field: String, text: &str) -> FieldProblem {
    FieldProblem {
        field,
        problem: text.to_owned(),
    }
}

/// Existence checks of grids and purposes, and the caller's write permission per grid,
/// remembered for the length of one request so that a batch of thousands asks the database and
/// the enforcer once per distinct value.
#[derive(Default)]
struct Lookups {
    grids: HashMap<String, bool>,
    purposes: HashMap<String, bool>,
    writable: HashMap<String, bool>,
}

impl Lookups {
    async fn grid_exists(&mut self, state: &AppState, code: &GridCode) -> Result<bool, Error> {
        if let Some(known) = self.grids.get(code.as_str()) {
            return Ok(*known);
        }
        let exists = state.store.grid_exists(code).await?;
        self.grids.insert(code.as_str().to_owned(), exists);
        Ok(exists)
    }

    async fn may_write(&mut self, state: &AppState, who: &Principal, grid: &GridCode) -> bool {
        if let Some(known) = self.writable.get(grid.as_str()) {
            return *known;
        }
        let allowed = state.permits(who, grid.as_str(), "records", "write").await;
        self.writable.insert(grid.as_str().to_owned(), allowed);
        allowed
    }

    async fn purpose_exists(&mut self, state: &AppState, id: &str) -> Result<bool, Error> {
        if let Some(known) = self.purposes.get(id) {
            return Ok(*known);
        }
        let exists = state.store.purpose_exists(id).await?;
        self.purposes.insert(id.to_owned(), exists);
        Ok(exists)
    }
}

/// Check one create request and seal it. Validation problems are collected (prefixed for batch
/// items); a grid the caller may not write in is a 403 for the whole request.
async fn prepare(
    state: &AppState,
    who: &Principal,
    lookups: &mut Lookups,
    req: CreateRecord,
    prefix: &str,
) -> Result<Result<NewRecord, Vec<FieldProblem>>, Error> {
    let mut problems = Vec::new();
    let category = state.catalog.category(&req.category);
    if category.is_none() {
        problems.push(problem(format!("{prefix}category"), "unknown category"));
    }
    let grid = match GridCode::parse(&req.grid) {
        Ok(code) if !lookups.grid_exists(state, &code).await? => {
            problems.push(problem(format!("{prefix}grid"), "unknown grid"));
            None
        }
        Ok(code) => Some(code),
        Err(_) => {
            problems.push(problem(format!("{prefix}grid"), "not a grid code"));
            None
        }
    };
    if let Some(grid) = &grid
        && !lookups.may_write(state, who, grid).await
    {
        let error = Error::Forbidden("the grid is outside your grids".to_owned());
        return Err(state
            .deny(
                who.actor(),
                "record.create",
                "grid outside the caller's grids",
                error,
            )
            .await);
    }
    if !lookups.purpose_exists(state, &req.purpose).await? {
        problems.push(problem(format!("{prefix}purpose"), "unknown purpose"));
    }
    if req
        .legal_basis
        .as_ref()
        .is_some_and(|b| b.trim().is_empty() || b.chars().count() > 500)
    {
        problems.push(problem(format!("{prefix}legal_basis"), "1–500 characters"));
    }
    let values = match category.map(|c| c.parse_fields(&req.fields)) {
        Some(Ok(values)) => Some(values),
        Some(Err(field_problems)) => {
            problems.extend(prefix_problems(prefix, field_problems));
            None
        }
        None => None,
    };
    match (category, grid, values) {
        (Some(category), Some(grid), Some(values)) if problems.is_empty() => {
            let draft = RecordDraft {
                category,
                grid,
                purpose: req.purpose,
                legal_basis: req.legal_basis,
                collector: who.id().to_owned(),
                values,
            };
            Ok(Ok(records::seal(&state.vault, draft)?))
        }
        _ => Ok(Err(problems)),
    }
}

/// Audit, then insert (under the request's idempotency key, if any): the write of a create or
/// of a whole batch. Shared by both routes.
async fn write_records(
    state: &AppState,
    who: &Principal,
    ready: Vec<NewRecord>,
    attempt: Option<&Attempt>,
) -> Result<Written, Error> {
    let category = ready
        .first()
        .map(|r| r.category.clone())
        .unwrap_or_default();
    let refs = ready.iter().map(written).collect();
    // Audit first: if the ledger cannot record the write, nothing is written.
    let receipt = state
        .audit_with_receipt(write_entry(who, "record.create", refs, &category))
        .await?;
    if let Err(e) = idempotency::insert(state, &ready, attempt, receipt.index).await {
        let ids = ready.iter().map(|r| RecordRef::new(&r.id, [])).collect();
        record_failure(state, who, "record.create", ids).await;
        return Err(e);
    }
    tracing::info!(count = ready.len(), category = %category, "records created");
    let ids = ready.into_iter().map(|r| r.id).collect();
    Ok(Written { ids, receipt })
}

/// Create one record.
#[utoipa::path(post, path = "/v1/records", tag = "records", request_body = CreateRecord,
    params(("idempotency-key" = Option<String>, Header,
        description = "1–64 of `A-Za-z0-9._:-`, remembered 24 h per user or client: a retry with the same key and body gets the first answer (same id, same receipt) and writes nothing; the same key with another body is 422, a retry while the first is still answered 409")),
    security(("bearer" = [])),
    responses((status = 201, body = RecordCreated), (status = 400), (status = 401), (status = 403),
              (status = 409, description = "the first request with this idempotency key is still being answered"),
              (status = 413), (status = 422), (status = 503)))]
pub async fn create_record(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateRecord>,
) -> Result<(StatusCode, Json<RecordCreated>), Error> {
    records_permit(&state, &who, "write", "record.create").await?;
    let keyed = KeyedWrite::from_request(&headers, &who, "record", std::slice::from_ref(&req))?;
    let attempt = match idempotency::begin(&state, keyed).await? {
        Begun::Replay(first) => return created_one(first),
        Begun::Write(attempt) => attempt,
    };
    let outcome = async {
        let record = prepare(&state, &who, &mut Lookups::default(), req, "")
            .await?
            .map_err(Error::Validation)?;
        write_records(&state, &who, vec![record], attempt.as_ref()).await
    }
    .await;
    created_one(idempotency::settle(attempt, outcome).await?)
}

fn created_one(w: Written) -> Result<(StatusCode, Json<RecordCreated>), Error> {
    let id = w
        .ids
        .into_iter()
        .next()
        .ok_or_else(|| Error::Integrity("a record write without its record".to_owned()))?;
    Ok((
        StatusCode::CREATED,
        Json(RecordCreated {
            id,
            version: 1,
            receipt: w.receipt,
        }),
    ))
}

/// Create many records: all of them, or none with every problem listed.
#[utoipa::path(post, path = "/v1/records/batch", tag = "records", request_body = CreateBatch,
    params(("idempotency-key" = Option<String>, Header,
        description = "as on `POST /v1/records`: a retry with the same key and body gets the first answer (same ids, same receipt) and writes nothing")),
    security(("bearer" = [])),
    responses((status = 201, body = BatchCreated), (status = 400), (status = 401), (status = 403),
              (status = 409, description = "the first request with this idempotency key is still being answered"),
              (status = 413), (status = 422), (status = 503)))]
pub async fn create_batch(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateBatch>,
) -> Result<(StatusCode, Json<BatchCreated>), Error> {
    records_permit(&state, &who, "write", "record.create").await?;
    if req.records.is_empty() || req.records.len() > MAX_BATCH {
        return Err(Error::validation(
            "records",
            format!("between 1 and {MAX_BATCH} records"),
        ));
    }
    let keyed = KeyedWrite::from_request(&headers, &who, "batch", &req.records)?;
    let attempt = match idempotency::begin(&state, keyed).await? {
        Begun::Replay(first) => return Ok(created_batch(first)),
        Begun::Write(attempt) => attempt,
    };
    let outcome = async {
        let ready = prepare_batch(&state, &who, req.records).await?;
        write_records(&state, &who, ready, attempt.as_ref()).await
    }
    .await;
    Ok(created_batch(idempotency::settle(attempt, outcome).await?))
}

/// Check and seal every item of a batch; all problems are listed (422) if any item has one.
async fn prepare_batch(
    state: &AppState,
    who: &Principal,
    items: Vec<CreateRecord>,
) -> Result<Vec<NewRecord>, Error> {
    let mut ready = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    let mut lookups = Lookups::default();
    for (i, item) in items.into_iter().enumerate() {
        match prepare(state, who, &mut lookups, item, &format!("records[{i}].")).await? {
            Ok(record) => ready.push(record),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(ready)
    } else {
        Err(Error::Validation(problems))
    }
}

fn created_batch(w: Written) -> (StatusCode, Json<BatchCreated>) {
    let records = w
        .ids
        .into_iter()
        .map(|id| RecordWritten { id, version: 1 })
        .collect();
    (
        StatusCode::CREATED,
        Json(BatchCreated {
            records,
            receipt: w.receipt,
        }),
    )
}

/// Load a live record the caller may see; records outside the caller's grids are "not found",
/// so their existence is not revealed.
async fn visible_record(
    state: &AppState,
    who: &Principal,
    id: &str,
    action: &str,
) -> Result<StoredRecord, Error> {
    let stored = state
        .store
        .record(id)
        .await?
        .ok_or(Error::NotFound("record"))?;
    let grid = GridCode::parse(&stored.grid)
        .map_err(|_| Error::Integrity(format!("record `{id}` has a malformed grid")))?;
    if state.permits(who, grid.as_str(), "records", action).await {
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
        state.audit(denied).await?;
        Err(Error::NotFound("record"))
    }
}

/// Read a record in clear (grid workers in their grids, admins).
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "record id")),
    responses((status = 200, body = RecordView), (status = 401), (status = 403), (status = 404),
              (status = 500, description = "stored data failed its integrity check")))]
pub async fn read_record(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<RecordView>, Error> {
    records_permit(&state, &who, "read", "record.read").await?;
    let stored = visible_record(&state, &who, &id, "read").await?;
    let category = state
        .catalog
        .category(&stored.category)
        .ok_or_else(|| Error::Integrity(format!("record `{id}` has an unknown category")))?;
    let fields = records::open_all(&state.vault, category, &stored)?;
    // Audit before release: the clear view leaves only once the ledger holds the read.
    let read = RecordRef::new(&stored.id, fields.keys().map(|k| (k.clone(), "clear")));
    state
        .audit(write_entry(
            &who,
            "record.read",
            vec![read],
            &stored.category,
        ))
        .await?;
    Ok(Json(RecordView {
        id: stored.id,
        category: stored.category,
        grid: stored.grid,
        version: stored.version,
        purpose: stored.purpose,
        legal_basis: stored.legal_basis,
        collector: stored.collector,
        created_at: crate::time::rfc3339(stored.created_at),
        updated_at: crate::time::rfc3339(stored.updated_at),
        fields,
    }))
}

/// Change some fields of a record; the merged record is validated as a whole.
#[utoipa::path(patch, path = "/v1/records/{id}", tag = "records", request_body = PatchRecord,
    security(("bearer" = [])), params(("id" = String, Path, description = "record id")),
    responses((status = 200, body = RecordCreated), (status = 404), (status = 409), (status = 422)))]
pub async fn patch_record(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchRecord>,
) -> Result<Json<RecordCreated>, Error> {
    records_permit(&state, &who, "write", "record.update").await?;
    if req.fields.is_empty() {
        return Err(Error::validation("fields", "no field to change"));
    }
    let stored = visible_record(&state, &who, &id, "write").await?;
    if req.expected_version.is_some_and(|v| v != stored.version) {
        return Err(Error::Conflict(
            "the record has changed since that version".to_owned(),
        ));
    }
    let category = state
        .catalog
        .category(&stored.category)
        .ok_or_else(|| Error::Integrity(format!("record `{id}` has an unknown category")))?;
    let changes = category
        .parse_patch(&req.fields)
        .map_err(Error::Validation)?;
    // Validate the record as it will be: required fields present, cross-field rules hold.
    let mut merged = records::open_all(&state.vault, category, &stored)?;
    for (name, value) in &req.fields {
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
    let update = records::patch(&state.vault, category, &stored, &changes)?;
    let touched = RecordRef::new(
        &id,
        changes
            .iter()
            .map(|(k, v)| (k.clone(), if v.is_some() { "written" } else { "removed" })),
    );
    let receipt = state
        .audit_with_receipt(write_entry(
            &who,
            "record.update",
            vec![touched],
            &stored.category,
        ))
        .await?;
    let outcome = match state.store.update_record(&update, now_ms()).await {
        Ok(outcome) => outcome,
        Err(e) => {
            record_failure(&state, &who, "record.update", vec![RecordRef::new(&id, [])]).await;
            return Err(e.into());
        }
    };
    if outcome != UpdateOutcome::Updated(stored.version + 1) {
        record_failure(&state, &who, "record.update", vec![RecordRef::new(&id, [])]).await;
    }
    match outcome {
        UpdateOutcome::Updated(version) => {
            tracing::info!(record_id = %id, fields = ?changes.keys().collect::<Vec<_>>(), "record updated");
            Ok(Json(RecordCreated {
                id,
                version,
                receipt,
            }))
        }
        UpdateOutcome::NotFound => Err(Error::NotFound("record")),
        UpdateOutcome::VersionMismatch => Err(Error::Conflict(
            "the record changed concurrently; read it and retry".to_owned(),
        )),
    }
}

/// Erase a record by destroying its data key (crypto-shredding). Admins and DPOs only.
#[utoipa::path(delete, path = "/v1/records/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "record id")),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn erase_record(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<impl axum::response::IntoResponse, Error> {
    records_permit(&state, &who, "erase", "record.erase").await?;
    let Some(stored) = state.store.record(&id).await? else {
        return Err(Error::NotFound("record"));
    };
    let grid = GridCode::parse(&stored.grid)
        .map_err(|_| Error::Integrity(format!("record `{id}` has a malformed grid")))?;
    state
        .authorize(&who, "records", "erase", Some(&grid), "record.erase")
        .await?;
    let appended = state
        .audit(write_entry(
            &who,
            "record.erase",
            vec![RecordRef::new(&id, [])],
            &stored.category,
        ))
        .await?;
    let erased = match state.store.erase_record(&id, now_ms()).await {
        Ok(erased) => erased,
        Err(e) => {
            record_failure(&state, &who, "record.erase", vec![RecordRef::new(&id, [])]).await;
            return Err(e.into());
        }
    };
    if !erased {
        record_failure(&state, &who, "record.erase", vec![RecordRef::new(&id, [])]).await;
        return Err(Error::NotFound("record"));
    }
    // Best effort: push the overwritten pages out of the SQLite WAL too.
    if let Err(e) = state.store.checkpoint_wal().await {
        tracing::warn!(error = %e, "WAL checkpoint after erasure failed; it will happen later");
    }
    tracing::info!(record_id = %id, by = %who.id(), "record erased (crypto-shredded)");
    let index = axum::http::HeaderValue::from(appended.index);
    Ok((StatusCode::NO_CONTENT, [(AUDIT_INDEX_HEADER, index)]))
}
