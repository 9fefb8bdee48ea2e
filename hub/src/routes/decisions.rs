//! `POST /v1/decisions/explain`: why a department gets what it gets (`Disclosures::explain`,
//! which runs the same index and code as a disclosure and audits every explanation).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::disclosure::{ExplainAsk, Explanation};
use crate::error::Error;
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/decisions/explain", post(explain))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"category": "person", "purpose": "elderly-care", "department": "civil-affairs"}))]
pub struct ExplainRequest {
    category: String,
    purpose: String,
    #[serde(default)]
    case: Option<String>,
    /// A record id; without one, the plan is the most any record could get.
    #[serde(default)]
    record: Option<String>,
    /// Whose access to explain. A department system explains its own (and may omit it); a DPO
    /// or admin names the department.
    #[serde(default)]
    department: Option<String>,
}

/// Explain the decision for a request.
#[utoipa::path(post, path = "/v1/decisions/explain", tag = "decisions",
    request_body = ExplainRequest, security(("bearer" = [])),
    responses((status = 200, body = Explanation), (status = 403), (status = 404),
        (status = 422)))]
pub async fn explain(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<ExplainRequest>,
) -> Result<Json<Explanation>, Error> {
    let ask = ExplainAsk {
        category: req.category,
        purpose: req.purpose,
        case: req.case,
        record: req.record,
        department: req.department,
    };
    Ok(Json(state.disclosures.explain(&who, ask).await?))
}
