//! Records API (grid side): create, batch create (all or nothing), read in clear, patch and
//! crypto-shred. Each handler extracts the request, makes one call to `crate::records::Records`
//! (which owns the role checks, the ledger entries, the checks against the catalog and the
//! idempotency of writes) and maps the answer to a response. The bodies are in `body`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::routes::data::idempotency_key;
use crate::state::AppState;

pub(crate) mod body;

use body::{BatchCreated, CreateBatch, CreateRecord, PatchRecord, RecordCreated, RecordView};

/// Header carrying the ledger index of an erasure (204 has no body for a receipt).
pub const AUDIT_INDEX_HEADER: &str = "gridhub-audit-index";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records", post(create_record))
        .route("/v1/records/batch", post(create_batch))
        .route(
            "/v1/records/{id}",
            get(read_record).patch(patch_record).delete(erase_record),
        )
}

/// Create one record.
#[utoipa::path(post, path = "/v1/records", tag = "records", request_body = CreateRecord,
    params(("idempotency-key" = Option<String>, Header, pattern = "^[A-Za-z0-9._:-]{1,64}$", 
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
    let key = idempotency_key(&headers);
    let written = state.records.create(&who, req.into(), key).await?;
    Ok((StatusCode::CREATED, Json(written.into())))
}

/// Create many records: all of them, or none with every problem listed. With `upsert_by`, a
/// record whose key matches a live record updates it instead (answer adds `ids`, `created`,
/// `updated`; one ledger entry `record.import` for the batch).
#[utoipa::path(post, path = "/v1/records/batch", tag = "records", request_body = CreateBatch,
    params(("idempotency-key" = Option<String>, Header, pattern = "^[A-Za-z0-9._:-]{1,64}$", 
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
    let key = idempotency_key(&headers);
    let (upsert_by, items) = req.into_parts();
    let Some(upsert_by) = upsert_by else {
        let written = state.records.create_batch(&who, items, key).await?;
        return Ok((StatusCode::CREATED, Json(written.into())));
    };
    if !matches!(key, Ok(None)) {
        // An upsert is repeatable as it is; a key would promise a replay it does not keep.
        return Err(Error::validation(
            "idempotency-key",
            "not taken with `upsert_by` (an upsert can be repeated as is)",
        ));
    }
    let upserted = state.records.upsert_batch(&who, items, &upsert_by).await?;
    Ok((StatusCode::CREATED, Json(upserted.into())))
}

/// Read a record in clear (grid workers in their grids, admins).
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "record id")),
    responses((status = 200, body = RecordView), (status = 401), (status = 403), (status = 404),
              (status = 500, description = "stored data failed its integrity check")))]
pub async fn read_record(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RecordView>, Error> {
    Ok(Json(state.records.read(&who, &id).await?.into()))
}

/// Change some fields of a record; the merged record is validated as a whole.
#[utoipa::path(patch, path = "/v1/records/{id}", tag = "records", request_body = PatchRecord,
    security(("bearer" = [])), params(("id" = String, Path, description = "record id")),
    responses((status = 200, body = RecordCreated), (status = 404), (status = 409), (status = 422)))]
pub async fn patch_record(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PatchRecord>,
) -> Result<Json<RecordCreated>, Error> {
    Ok(Json(
        state.records.patch(&who, &id, req.into()).await?.into(),
    ))
}

/// Erase a record by destroying its data key (crypto-shredding). Admins and DPOs only.
#[utoipa::path(delete, path = "/v1/records/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "record id")),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn erase_record(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<impl axum::response::IntoResponse, Error> {
    let erased = state.records.erase(&who, &id).await?;
    let index = HeaderValue::from(erased.ledger_index);
    Ok((StatusCode::NO_CONTENT, [(AUDIT_INDEX_HEADER, index)]))
}
