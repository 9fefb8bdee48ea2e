//! `GET /v1/catalog`: the resource catalog (categories, fields, sensitivity, share class,
//! encryption, masking) every validation and, later, every disclosure follows.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Principal;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/catalog", get(catalog))
}

/// The catalog in force.
#[utoipa::path(get, path = "/v1/catalog", tag = "reference", security(("bearer" = [])),
    responses((status = 200, description = "`{categories: [{name, description, fields: [...]}]}`"), (status = 401), (status = 403)))]
pub async fn catalog(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<serde_json::Value>, crate::error::Error> {
    state
        .authorize(&who, "catalog", "read", None, "catalog.read")
        .await?;
    Ok(Json(
        serde_json::json!({ "categories": state.catalog.categories() }),
    ))
}
