//! The grant watchlist and who can see one record (API.md "Grants"; the console's watchlist
//! and "who can see this" pages are their twins): one call into `Grants` per handler, which
//! checks the caller's role and records what it must. "Now" is the hub's clock.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::ApiPath;
use crate::grants::reach::RecordVisibility;
use crate::grants::watchlist::Watchlist;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/grants/watchlist", get(watchlist))
        .route("/v1/records/{id}/visibility", get(record_visibility))
}

/// Approved grants to look at again: ending within 14 days, case-bound with no open case
/// assigned to the grantee, or unused for 30 days (nothing disclosed or counted under them).
/// DPO and admin (`grants:read`).
#[utoipa::path(get, path = "/v1/grants/watchlist", tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = Watchlist), (status = 403)))]
pub async fn watchlist(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Watchlist>, Error> {
    let now = state.clock.now_ms();
    Ok(Json(state.grants.watchlist(&who, now).await?))
}

/// Which departments could see this record now: per department and purpose (and open case,
/// for case-bound grants), each field disclosed with its level, the grant behind it and until
/// when, as the decision index decides a pull. Field names and levels only. Audited as
/// `decision.visibility`. DPO and admin (`grants:read`; not departments).
#[utoipa::path(get, path = "/v1/records/{id}/visibility", tag = "decisions",
    params(("id" = String, Path, description = "record id")), security(("bearer" = [])),
    responses((status = 200, body = RecordVisibility), (status = 403), (status = 404)))]
pub async fn record_visibility(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RecordVisibility>, Error> {
    let now = state.clock.now_ms();
    Ok(Json(state.grants.record_visibility(&who, &id, now).await?))
}
