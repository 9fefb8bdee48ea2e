//! The resource catalog over HTTP: `GET /v1/catalog` (categories, fields, sensitivity, share
//! class, encryption, masking, owner), `PUT /v1/catalog/{category}` (admins create or evolve a
//! category, optionally published by a department) and `GET /v1/catalog/{category}/audit` (the
//! publishing department's slice of the ledger). The rules live in `crate::catalog`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use policy::CategoryDef;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::catalog::Put;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::audit::{AuditEntry, to_entries};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/catalog", get(catalog))
        .route("/v1/catalog/{category}", axum::routing::put(put_category))
        .route("/v1/catalog/{category}/audit", get(category_audit))
}

/// The catalog in force.
#[utoipa::path(get, path = "/v1/catalog", tag = "reference", security(("bearer" = [])),
    responses((status = 200, description = "`{categories: [{name, description, owner?, fields: [...]}]}`"), (status = 401), (status = 403)))]
pub async fn catalog(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<serde_json::Value>, Error> {
    let catalog = state.catalog.current(&who).await?;
    Ok(Json(
        serde_json::json!({ "categories": catalog.categories() }),
    ))
}

/// A category as an admin writes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"category": "home_care", "owner": "health",
    "description": "Home-care status of residents, published by health",
    "fields": [{"name": "id_number", "type": "id_number", "sensitivity": "sensitive",
        "share": "conditional", "encrypted": true, "indexed": true, "required": true,
        "mask": {"type": "keep_ends", "first": 6, "last": 4}},
        {"name": "care_level", "type": "enum", "values": ["none", "light", "full"],
        "sensitivity": "sensitive", "share": "conditional", "encrypted": true, "indexed": true}]}))]
pub struct CategoryBody {
    /// The category's name: the one in the path.
    #[schema(pattern = "^[a-z][a-z0-9_]*$")]
    category: String,
    #[serde(default)]
    description: String,
    /// The publishing department: its clients write the category's records (in its
    /// jurisdiction) and every grant on it needs its consent. Absent: the grid side.
    #[serde(default)]
    owner: Option<String>,
    /// `{name, type, (type's parameters), sensitivity, share, encrypted, indexed, required?,
    /// mask?, generalize?, description?}`, as `GET /v1/catalog` shows them.
    #[schema(value_type = Vec<Object>)]
    fields: Vec<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryPutAnswer {
    /// `created`, `changed` or `unchanged`.
    outcome: &'static str,
    /// Fields this change added.
    added_fields: Vec<String>,
    /// The category as now in force.
    #[schema(value_type = Object)]
    category: CategoryDef,
}

/// Create or evolve a category (admins). Adding fields and widening types is allowed; removing,
/// narrowing or re-encrypting a field of a category that holds records, or changing its owner,
/// is 409. A new category gets its own key-encryption key.
#[utoipa::path(put, path = "/v1/catalog/{category}", tag = "reference",
    params(("category" = String, Path, pattern = "^[a-z][a-z0-9_]*$")), request_body = CategoryBody,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryPutAnswer), (status = 200, body = CategoryPutAnswer),
        (status = 403), (status = 409), (status = 422)))]
pub async fn put_category(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<(StatusCode, Json<CategoryPutAnswer>), Error> {
    // The role first: a caller who may not change the catalog is refused (and recorded)
    // whatever its fields say.
    state.catalog.admit_write(&who).await?;
    let fields = crate::catalog::parse_fields(
        body.fields
            .into_iter()
            .enumerate()
            .map(|(i, field)| (format!("fields[{i}]"), field)),
    )?;
    let definition = CategoryDef {
        name: body.category,
        description: body.description,
        owner: body.owner,
        fields,
    };
    let outcome = state.catalog.put(&who, &name, definition.clone()).await?;
    let (status, outcome, added) = match outcome {
        Put::Created => (
            StatusCode::CREATED,
            "created",
            definition.fields.iter().map(|f| f.name.clone()).collect(),
        ),
        Put::Changed { added } => (StatusCode::OK, "changed", added),
        Put::Unchanged => (StatusCode::OK, "unchanged", Vec::new()),
    };
    Ok((
        status,
        Json(CategoryPutAnswer {
            outcome,
            added_fields: added,
            category: definition,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SliceQuery {
    /// First ledger index to scan (default 0).
    #[param(minimum = 0)]
    start: Option<i64>,
    /// Most entries returned, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SlicePage {
    entries: Vec<AuditEntry>,
    /// Pass as `start` to continue; absent once the scan reached the end of the ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_start: Option<i64>,
}

/// The ledger entries naming a category: the publishing department sees who reads its data
/// (and auditors see it too). Each page scans at most 10 000 entries.
#[utoipa::path(get, path = "/v1/catalog/{category}/audit", tag = "reference",
    params(("category" = String, Path, pattern = "^[a-z][a-z0-9_]*$"), SliceQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SlicePage), (status = 403), (status = 404), (status = 422)))]
pub async fn category_audit(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<SliceQuery>,
) -> Result<Json<SlicePage>, Error> {
    let start = q.start.unwrap_or(0);
    if start < 0 {
        return Err(Error::validation("start", "a ledger index: 0 or more"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::validation("limit", "1 to 1000"));
    }
    let slice = state.catalog.audit_slice(&who, &name, start, limit).await?;
    Ok(Json(SlicePage {
        entries: to_entries(slice.entries),
        next_start: slice.next_start,
    }))
}
