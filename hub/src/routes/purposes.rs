//! `GET/POST /v1/purposes`: registered purposes of processing with their legal basis.
//! `Identity::purposes` and `Identity::create_purpose` check, audit and store (the console's
//! purpose page calls them too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::ApiJson;
use crate::identity::PurposeDraft;
use crate::state::AppState;
use crate::storage::PurposeRow;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/purposes", get(list_purposes).post(create_purpose))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "flood-relief", "description": "Flood relief: who needs help first",
    "legal_basis": "PIPL art. 13(1)(4)"}))]
pub struct Purpose {
    /// 2–64 characters of a-z, 0-9 and -, starting with a letter.
    #[schema(pattern = "^[a-z][a-z0-9-]{1,63}$")]
    id: String,
    /// 1–500 characters.
    #[schema(max_length = 500, pattern = "\\S")]
    description: String,
    /// 1–500 characters.
    #[schema(max_length = 500, pattern = "\\S")]
    legal_basis: String,
}

#[derive(Serialize, ToSchema)]
pub struct PurposeList {
    purposes: Vec<Purpose>,
}

/// Registered purposes.
#[utoipa::path(get, path = "/v1/purposes", tag = "reference", security(("bearer" = [])),
    responses((status = 200, body = PurposeList), (status = 401)))]
pub async fn list_purposes(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<PurposeList>, Error> {
    let purposes = state
        .identity
        .purposes(&who)
        .await?
        .into_iter()
        .map(Purpose::from)
        .collect();
    Ok(Json(PurposeList { purposes }))
}

/// Register a purpose (admin only).
#[utoipa::path(post, path = "/v1/purposes", tag = "reference", request_body = Purpose,
    security(("bearer" = [])),
    responses((status = 201, body = Purpose), (status = 403), (status = 409), (status = 422)))]
pub async fn create_purpose(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<Purpose>,
) -> Result<(StatusCode, Json<Purpose>), Error> {
    let draft = PurposeDraft {
        id: req.id,
        description: req.description,
        legal_basis: req.legal_basis,
    };
    let row = state.identity.create_purpose(&who, draft).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

impl From<PurposeRow> for Purpose {
    fn from(p: PurposeRow) -> Purpose {
        Purpose {
            id: p.id,
            description: p.description,
            legal_basis: p.legal_basis,
        }
    }
}
