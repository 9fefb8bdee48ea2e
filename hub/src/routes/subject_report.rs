//! `GET /v1/audit/subjects/{id}/report`: the subject access report (PIPL art. 45), built by
//! `Oversight::subject_report` from the audit ledger.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::ApiPath;
use crate::oversight::SubjectReport;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit/subjects/{id}/report", get(report))
}

/// The subject access report of one record (DPO and admin: `audit:read`).
#[utoipa::path(get, path = "/v1/audit/subjects/{id}/report", tag = "audit",
    params(("id" = String, Path, description = "record id")), security(("bearer" = [])),
    responses((status = 200, body = SubjectReport), (status = 403)))]
pub async fn report(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SubjectReport>, Error> {
    Ok(Json(state.oversight.subject_report(&who, id).await?))
}
