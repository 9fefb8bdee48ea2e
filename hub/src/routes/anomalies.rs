//! `GET /v1/audit/anomalies[?since=&until=]`: patterns a DPO should look at
//! (`Oversight::anomalies`, which defines them and audits the request), each with its stable id
//! and review; `POST /v1/audit/anomalies/{id}/acknowledge|resolve`: the review's steps
//! (`Oversight::review_anomaly`); `GET /v1/audit/activity[?days=14]`: the figures behind the
//! console's charts (`Oversight::activity`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiPath, ApiQuery};
use crate::oversight::{Activity, AnomalyReport, Review, ReviewAction};
use crate::state::AppState;
use crate::time::parse_rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/anomalies", get(anomalies))
        .route("/v1/audit/anomalies/{id}/acknowledge", post(acknowledge))
        .route("/v1/audit/anomalies/{id}/resolve", post(resolve))
        .route("/v1/audit/activity", get(activity))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnomalyQuery {
    /// RFC 3339; default 24 hours before `until`.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    until: Option<String>,
}

/// Anomalies in the ledger within a time window (DPO and admin: `audit:read`), each with its
/// stable `id` and its `review` (`open`, `acknowledged` or `resolved`, with the steps).
#[utoipa::path(get, path = "/v1/audit/anomalies", tag = "audit", params(AnomalyQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AnomalyReport), (status = 403), (status = 422)))]
pub async fn anomalies(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AnomalyQuery>,
) -> Result<Json<AnomalyReport>, Error> {
    state.oversight.admit(&who, "audit.anomalies").await?;
    let time = |field: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| {
                parse_rfc3339(t).ok_or_else(|| Error::validation(field, "not an RFC 3339 time"))
            })
            .transpose()
    };
    let until = time("until", &q.until)?;
    let since = time("since", &q.since)?;
    Ok(Json(state.oversight.anomalies(&who, since, until).await?))
}

/// The body of a review step: `{"note": "..."}`, optional to acknowledge, required to resolve.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// One line, at most 500 characters; required to resolve.
    #[serde(default)]
    #[schema(max_length = 500, pattern = "^[^\\r\\n]*$")]
    note: Option<String>,
}

impl ReviewBody {
    /// The body is optional: none (or only whitespace), JSON `null`, or `{"note": "..."}`.
    fn parse(body: &[u8]) -> Result<ReviewBody, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(ReviewBody::default())
        } else {
            crate::extract::parse_json::<Option<ReviewBody>>(body).map(Option::unwrap_or_default)
        }
    }
}

/// The body of a resolve, as the schema describes it: the note is required and says something.
/// (The handler reads it as a `ReviewBody`; the service refuses a blank note with 422.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// What was found and done: one line of 1–500 characters, not only spaces.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\r\\n]*[^\\s][^\\r\\n]*$"
    )]
    #[expect(
        dead_code,
        reason = "the body's schema for the OpenAPI document; the handler reads a ReviewBody"
    )]
    note: String,
}

/// An anomaly's review after a step.
#[derive(Serialize, ToSchema)]
pub struct ReviewAnswer {
    id: String,
    review: Review,
}

async fn step(
    state: AppState,
    who: Principal,
    id: String,
    body: &[u8],
    action: ReviewAction,
) -> Result<Json<ReviewAnswer>, Error> {
    state.oversight.admit(&who, action.audit_action()).await?;
    let body = ReviewBody::parse(body)?;
    let now = state.clock.now_ms();
    let review = state
        .oversight
        .review_anomaly(&who, &id, action, body.note.as_deref(), now)
        .await?;
    Ok(Json(ReviewAnswer { id, review }))
}

/// Acknowledge an open anomaly (`audit:read`; audited as `audit.anomaly_acknowledge`): 404 for
/// an id that names no anomaly, 409 unless it is open.
#[utoipa::path(post, path = "/v1/audit/anomalies/{id}/acknowledge", tag = "audit",
    request_body = Option<ReviewBody>, params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReviewAnswer), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<ReviewAnswer>, Error> {
    step(state, who, id, &body, ReviewAction::Acknowledge).await
}

/// Resolve an anomaly with a `note` (required: 422 without; audited as
/// `audit.anomaly_resolve`): 404 for an id that names no anomaly, 409 if already resolved.
#[utoipa::path(post, path = "/v1/audit/anomalies/{id}/resolve", tag = "audit",
    request_body = ResolveBody, params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReviewAnswer), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn resolve(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<ReviewAnswer>, Error> {
    step(state, who, id, &body, ReviewAction::Resolve).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// Beijing days up to today, 1–31; default 14.
    #[param(minimum = 1, maximum = 31)]
    days: Option<u32>,
}

/// Disclosures per department per Beijing day, denials per day, the top consumers by records
/// disclosed (over the last `days` days), and open and overdue cases per department now
/// (`audit:read`; audited as `audit.activity`).
#[utoipa::path(get, path = "/v1/audit/activity", tag = "audit", params(ActivityQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Activity), (status = 403), (status = 422)))]
pub async fn activity(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> Result<Json<Activity>, Error> {
    state.oversight.admit(&who, "audit.activity").await?;
    let now = state.clock.now_ms();
    Ok(Json(
        state
            .oversight
            .activity(&who, q.days.unwrap_or(14), now)
            .await?,
    ))
}
