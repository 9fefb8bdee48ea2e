//! `GET /v1/audit/anomalies[?since=&until=]`: patterns a DPO should look at
//! (`Oversight::anomalies`, which defines them and audits the request).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::ApiQuery;
use crate::oversight::AnomalyReport;
use crate::state::AppState;
use crate::time::parse_rfc3339;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit/anomalies", get(anomalies))
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

/// Anomalies in the ledger within a time window (DPO and admin: `audit:read`).
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
