//! Cases API (API.md "Cases"): report, assign (a new round replaces the current assignees),
//! reply, close with a satisfaction rating, and read with history and texts. HTTP in and out
//! only: each handler makes one call to the case service (`crate::cases`), which checks roles
//! and responsibilities, audits, seals and stores; the bodies are in `body`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub(crate) mod body;

use body::{AssignCase, CaseBody, CaseStatusBody, CloseCase, ReplyCase, ReportCase};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cases", post(report))
        .route("/v1/cases/{id}", get(get_case))
        .route("/v1/cases/{id}/assign", post(assign))
        .route("/v1/cases/{id}/reply", post(reply))
        .route("/v1/cases/{id}/close", post(close))
}

/// Open a case: the grid worker's report, with the records of the people concerned.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = ReportCase,
    security(("bearer" = [])),
    responses((status = 201, body = CaseStatusBody), (status = 403), (status = 422)))]
pub async fn report(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<ReportCase>,
) -> Result<(StatusCode, Json<CaseStatusBody>), Error> {
    let case = state.cases.report(&who, req.into_draft()?).await?;
    Ok((StatusCode::CREATED, Json(case.into())))
}

/// Dispatch (or reassign) the case to departments with a deadline; replaces the current
/// assignees, whose access through this case ends on their next request.
#[utoipa::path(post, path = "/v1/cases/{id}/assign", tag = "cases", request_body = AssignCase,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseStatusBody), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn assign(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AssignCase>,
) -> Result<Json<CaseStatusBody>, Error> {
    let case = state.cases.assign(&who, &id, req.into()).await?;
    Ok(Json(case.into()))
}

/// An assignee department replies; the case is `replied` once every current assignee has.
#[utoipa::path(post, path = "/v1/cases/{id}/reply", tag = "cases", request_body = ReplyCase,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseStatusBody), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn reply(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReplyCase>,
) -> Result<Json<CaseStatusBody>, Error> {
    let case = state.cases.reply(&who, &id, &req.note).await?;
    Ok(Json(case.into()))
}

/// Close the case with a resolution and an optional satisfaction rating (1–5); every
/// responsibility for it ends.
#[utoipa::path(post, path = "/v1/cases/{id}/close", tag = "cases", request_body = CloseCase,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseStatusBody), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn close(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CloseCase>,
) -> Result<Json<CaseStatusBody>, Error> {
    let case = state.cases.close(&who, &id, req.into()).await?;
    Ok(Json(case.into()))
}

/// The case with its history and texts: for those whose role may read cases in its grid, and
/// for its current assignees. Reading is audited (the texts may name people).
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CaseBody), (status = 403), (status = 404)))]
pub async fn get_case(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CaseBody>, Error> {
    let case = state.cases.read(&who, &id).await?;
    Ok(Json(case.into()))
}
