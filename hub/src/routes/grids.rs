//! `GET/POST /v1/grids`: the grid hierarchy. A grid's parent is implied by its code and must
//! exist first; logical grids (`L.…`) model a department's own network.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use policy::{FieldProblem, GridCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft};
use crate::state::AppState;
use crate::storage::GridRow;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/grids", get(list_grids).post(create_grid))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "330110.001.001.009", "name": "第九网格", "kind": "physical"}))]
pub struct Grid {
    /// 1–6 dot-separated segments of 1–32 ASCII letters, digits or `-`; logical grids start
    /// with `L.`.
    #[schema(pattern = "^(?!L$)[A-Za-z0-9-]{1,32}(\\.[A-Za-z0-9-]{1,32}){0,5}$")]
    code: String,
    /// 1–100 characters.
    #[schema(max_length = 100, pattern = "\\S")]
    name: String,
    /// `physical` or `logical` (codes starting with `L.`).
    #[schema(pattern = "^(physical|logical)$")]
    kind: String,
}

#[derive(Serialize, ToSchema)]
pub struct GridList {
    grids: Vec<Grid>,
}

/// All grids, parents before children.
#[utoipa::path(get, path = "/v1/grids", tag = "reference", security(("bearer" = [])),
    responses((status = 200, body = GridList), (status = 401)))]
pub async fn list_grids(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<GridList>, Error> {
    state
        .authorize(&who, "grids", "read", None, "grid.read")
        .await?;
    let grids = state
        .store
        .grids()
        .await?
        .into_iter()
        .map(|g| Grid {
            code: g.code,
            name: g.name,
            kind: g.kind,
        })
        .collect();
    Ok(Json(GridList { grids }))
}

/// Add a grid (admin only).
#[utoipa::path(post, path = "/v1/grids", tag = "reference", request_body = Grid,
    security(("bearer" = [])),
    responses((status = 201, body = Grid), (status = 403), (status = 409), (status = 422)))]
pub async fn create_grid(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<Grid>,
) -> Result<(StatusCode, Json<Grid>), Error> {
    state
        .authorize(&who, "grids", "write", None, "grid.create")
        .await?;
    let code = GridCode::parse(&req.code).map_err(|e| Error::validation("code", e.to_string()))?;
    let mut problems = Vec::new();
    let name_chars = req.name.trim().chars().count();
    if name_chars == 0 || name_chars > 100 {
        problems.push(FieldProblem {
            field: "name".into(),
            problem: "1–100 characters".into(),
        });
    }
    match (req.kind.as_str(), code.is_logical()) {
        ("physical", false) | ("logical", true) => {}
        ("physical" | "logical", _) => problems.push(FieldProblem {
            field: "kind".into(),
            problem: "logical grids have codes starting with `L.`, physical ones do not".into(),
        }),
        _ => problems.push(FieldProblem {
            field: "kind".into(),
            problem: "not one of: physical, logical".into(),
        }),
    }
    if let Some(parent) = code.parent()
        && !state.store.grid_exists(&parent).await?
    {
        problems.push(FieldProblem {
            field: "code".into(),
            problem: "parent grid does not exist".into(),
        });
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let row = GridRow {
        code: code.as_str().to_owned(),
        name: req.name.trim().to_owned(),
        kind: req.kind,
    };
    let mut entry = EntryDraft::new(
        who.actor(),
        "grid.create",
        Decision::Allow,
        current_request_id(),
    );
    entry.reason = Some(format!("grid {}", row.code));
    state.audit(entry).await?;
    if !state
        .store
        .insert_grids(std::slice::from_ref(&row), now_ms())
        .await?
    {
        return Err(Error::Conflict("a grid with this code exists".to_owned()));
    }
    Ok((
        StatusCode::CREATED,
        Json(Grid {
            code: row.code,
            name: row.name,
            kind: row.kind,
        }),
    ))
}
