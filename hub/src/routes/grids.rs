//! `GET/POST /v1/grids`: the grid hierarchy. A grid's parent is implied by its code and must
//! exist first; logical grids (`L.…`) model a department's own network. `Identity::grids` and
//! `Identity::create_grid` check, audit and store (the console's grid page calls them too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::ApiJson;
use crate::identity::GridDraft;
use crate::state::AppState;
use crate::storage::GridRow;

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
    let grids = state
        .identity
        .grids(&who)
        .await?
        .into_iter()
        .map(Grid::from)
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
    let draft = GridDraft {
        code: req.code,
        name: req.name,
        kind: req.kind,
    };
    let row = state.identity.create_grid(&who, draft).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

impl From<GridRow> for Grid {
    fn from(g: GridRow) -> Grid {
        Grid {
            code: g.code,
            name: g.name,
            kind: g.kind,
        }
    }
}
