//! `GET/POST /v1/purposes`: registered purposes of processing with their legal basis.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use policy::FieldProblem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft};
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
    state
        .authorize(&who, "purposes", "read", None, "purpose.read")
        .await?;
    let purposes = state
        .store
        .purposes()
        .await?
        .into_iter()
        .map(|p| Purpose {
            id: p.id,
            description: p.description,
            legal_basis: p.legal_basis,
        })
        .collect();
    Ok(Json(PurposeList { purposes }))
}

fn valid_id(id: &str) -> bool {
    (2..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
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
    state
        .authorize(&who, "purposes", "write", None, "purpose.create")
        .await?;
    let mut problems = Vec::new();
    if !valid_id(&req.id) {
        problems.push(FieldProblem {
            field: "id".into(),
            problem: "2–64 characters of a-z, 0-9 and -, starting with a letter".into(),
        });
    }
    if req.description.trim().is_empty() || req.description.chars().count() > 500 {
        problems.push(FieldProblem {
            field: "description".into(),
            problem: "1–500 characters".into(),
        });
    }
    if req.legal_basis.trim().is_empty() || req.legal_basis.chars().count() > 500 {
        problems.push(FieldProblem {
            field: "legal_basis".into(),
            problem: "1–500 characters; a purpose needs its legal basis".into(),
        });
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let row = PurposeRow {
        id: req.id,
        description: req.description,
        legal_basis: req.legal_basis,
    };
    let mut entry = EntryDraft::new(
        who.actor(),
        "purpose.create",
        Decision::Allow,
        current_request_id(),
    );
    entry.reason = Some(format!("purpose {}", row.id));
    state.audit(entry).await?;
    if !state.store.insert_purpose(&row).await? {
        return Err(Error::Conflict("a purpose with this id exists".to_owned()));
    }
    Ok((
        StatusCode::CREATED,
        Json(Purpose {
            id: row.id,
            description: row.description,
            legal_basis: row.legal_basis,
        }),
    ))
}
