//! Grants over HTTP (API.md "Grants"): the request and response bodies with their OpenAPI
//! schemas, and one call into `crate::grants` per handler. The lifecycle, the role checks, the
//! audit and the creation refusals (422, naming the field) all live in the service.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::Disclosure;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

mod body;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/grants", post(request_grant).get(list_grants))
        .route("/v1/grants/{id}", get(get_grant))
        .route("/v1/grants/{id}/approve", post(approve))
        .route("/v1/grants/{id}/reject", post(reject))
        .route("/v1/grants/{id}/suspend", post(suspend))
        .route("/v1/grants/{id}/resume", post(resume))
        .route("/v1/grants/{id}/revoke", post(revoke))
        .route("/v1/grants/{id}/artefact", get(artefact))
        .route("/v1/grants/{id}/consent", post(consent))
        .route("/v1/grants/{id}/decline", post(decline))
}

/// How a field is disclosed (documentation of `GrantRequest::fields`; parsed by the policy).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum DisclosureLevel {
    Clear,
    Pseudonym,
    Masked,
    Generalized,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grantee": "civil-affairs", "purpose": "elderly-care",
    "category": "person", "fields": {"name": "clear", "phone": "masked", "birth_date": "generalized"},
    "scope": ["330110.001"], "case_bound": false,
    "valid_from": "2027-01-01T00:00:00Z", "valid_until": "2027-06-30T00:00:00Z",
    "daily_quota": 1000}))]
pub struct GrantRequest {
    /// Department id.
    grantee: String,
    purpose: String,
    category: String,
    /// `records` (the default: disclosure of the named fields) or `statistics` (counts per
    /// cell of `group_by`, no record access; `fields` then stays empty).
    #[serde(default)]
    #[schema(pattern = "^(records|statistics)$")]
    kind: Option<String>,
    /// Field name → `clear` | `pseudonym` | `masked` | `generalized` (records grants).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, DisclosureLevel>)]
    fields: BTreeMap<String, String>,
    /// Statistics grants: the dimensions counts may be grouped by (`grid`, `grid.city`,
    /// `grid.district`, `grid.street`, `grid.community`, blind-indexed enum and tag-set fields).
    #[serde(default)]
    group_by: Option<Vec<String>>,
    /// Statistics grants: the smallest count answered (default 10); smaller cells are
    /// suppressed.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    min_cell: Option<u32>,
    /// Statistics grants: discrete Laplace noise on every count and a daily ε budget
    /// (`{epsilon_per_day, epsilon_per_query}`, 0.001–10).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    privacy: Option<policy::statistics::PrivacyBudget>,
    /// Grid codes.
    scope: Vec<String>,
    #[serde(default)]
    row_filter: Option<String>,
    case_bound: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    valid_from: String,
    /// RFC 3339; after `valid_from`.
    #[schema(format = DateTime)]
    valid_until: String,
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    /// 1–10 000 000 records a day.
    #[schema(minimum = 1, maximum = 10_000_000)]
    daily_quota: Option<u32>,
    /// Required when a sensitive field is requested.
    #[serde(default)]
    legal_basis: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantStatusBody {
    id: String,
    status: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantCreated {
    id: String,
    status: String,
    /// When the DPO must have answered (5 working days).
    answer_due: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantEventBody {
    at: String,
    actor: String,
    action: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantBody {
    id: String,
    grantee: String,
    purpose: String,
    category: String,
    #[schema(value_type = BTreeMap<String, String>)]
    fields: BTreeMap<String, Disclosure>,
    scope: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_filter: Option<String>,
    case_bound: bool,
    valid_from: String,
    valid_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_quota: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_basis: Option<String>,
    /// `expired` as soon as the window ends, even before the sweep records it.
    status: String,
    requested_by: String,
    requested_at: String,
    answer_due: String,
    /// Still `requested` after `answer_due`.
    overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Present once in force (approved, and consented to where the category has an owner);
    /// also at `GET /v1/grants/{id}/artefact`.
    has_artefact: bool,
    /// `records` or `statistics`.
    kind: String,
    /// Statistics grants: `{group_by, min_cell, privacy?}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    statistics: Option<policy::StatisticsTerms>,
    /// Grants on a department-owned category: the owner's answer, `{owner, status: pending |
    /// given | declined, by?, at?, reason?}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    consent: Option<ConsentBody>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<GrantEventBody>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentBody {
    owner: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantList {
    grants: Vec<GrantBody>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    grantee: Option<String>,
    /// Grants on this category; the department that publishes it sees them all.
    category: Option<String>,
    #[param(pattern = "^(requested|approved|rejected|suspended|revoked|expired)$")]
    status: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// Required to reject; optional otherwise. One line, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500, pattern = "^[^\\r\\n]*$")]
    reason: Option<String>,
}

/// Request a grant: `status: requested`, answer due in 5 working days (of the configured
/// working calendar).
#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = GrantRequest,
    security(("bearer" = [])),
    responses((status = 201, body = GrantCreated), (status = 403), (status = 422)))]
pub async fn request_grant(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<GrantRequest>,
) -> Result<(StatusCode, Json<GrantCreated>), Error> {
    let row = state.grants.request(&who, req.into()).await?;
    Ok((StatusCode::CREATED, Json(GrantCreated::from(row))))
}

/// Grants, newest first (at most 1 000): every grant for DPOs and admins, a department's own
/// for the department.
#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantFilter),
    security(("bearer" = [])), responses((status = 200, body = GrantList), (status = 403)))]
pub async fn list_grants(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(filter): ApiQuery<GrantFilter>,
) -> Result<Json<GrantList>, Error> {
    let grants = state.grants.list(&who, filter.query()?).await?;
    Ok(Json(GrantList {
        grants: grants.into_iter().map(GrantBody::from).collect(),
    }))
}

/// One grant with its history.
#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = GrantBody), (status = 403), (status = 404)))]
pub async fn get_grant(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<GrantBody>, Error> {
    Ok(Json(GrantBody::from(state.grants.get(&who, &id).await?)))
}

/// The signed grant artefact: a compact JWS (`typ: gridhub-grant+jwt`, EdDSA) verifiable with
/// `/.well-known/jwks.json`.
#[utoipa::path(get, path = "/v1/grants/{id}/artefact", tag = "grants",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, content_type = "application/jose", body = String),
        (status = 403), (status = 404), (status = 409)))]
pub async fn artefact(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, Error> {
    let jws = state.grants.artefact(&who, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/jose")], jws))
}

/// A transition handler: the optional body, then the service method of the same name.
macro_rules! transition_route {
    ($name:ident, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "grants", request_body = Option<TransitionBody>,
            params(("id" = String, Path)), security(("bearer" = [])),
            responses((status = 200, body = GrantStatusBody), (status = 403), (status = 404),
                (status = 409), (status = 422)))]
        pub async fn $name(
            State(state): State<AppState>,
            who: Principal,
            ApiPath(id): ApiPath<String>,
            body: axum::body::Bytes,
        ) -> Result<Json<GrantStatusBody>, Error> {
            let body = TransitionBody::parse(&body)?;
            let status = state.grants.$name(&who, &id, body.reason.as_deref()).await?;
            Ok(Json(GrantStatusBody::new(id, status)))
        }
    };
}

transition_route!(
    approve,
    "/v1/grants/{id}/approve",
    "Approve a requested grant (a DPO other than the requester); issues the signed artefact."
);
transition_route!(
    consent,
    "/v1/grants/{id}/consent",
    "The owning department consents to a grant on its category (a department-owned category \
     discloses only with both this and a DPO's approval, in either order)."
);
transition_route!(
    decline,
    "/v1/grants/{id}/decline",
    "The owning department declines a grant on its category; `reason` is required and the \
     grant is rejected."
);
transition_route!(
    reject,
    "/v1/grants/{id}/reject",
    "Reject a requested grant; `reason` is required."
);
transition_route!(
    suspend,
    "/v1/grants/{id}/suspend",
    "Suspend an approved grant (no data flows until resumed)."
);
transition_route!(
    resume,
    "/v1/grants/{id}/resume",
    "Resume a suspended grant."
);
transition_route!(
    revoke,
    "/v1/grants/{id}/revoke",
    "Revoke a grant for good; effective for the next request."
);
