//! The ledger's state, its verification in ranges and the key versions (API.md "Audit (DPO)";
//! the console's ledger-and-keys page is their twin): one call into `Oversight` per handler,
//! which checks `audit:read` and records what it must.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::keys::Rotation;
use crate::keys::ledger_key::LedgerKeyRotation;
use crate::oversight::ledger_keys::{KeyReport, LedgerStatus};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/status", get(status))
        .route("/v1/audit/verify", post(verify))
        .route("/v1/admin/keys", get(keys))
        .route("/v1/admin/keys/{category}/rotate", post(rotate))
        .route("/v1/admin/ledger-key/rotate", post(rotate_ledger_key))
}

/// The ledger's size, its newest signed checkpoint (size, root, when signed and how many
/// minutes ago on the hub's clock) and the ledger key's name and id.
#[utoipa::path(get, path = "/v1/audit/status", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = LedgerStatus), (status = 403)))]
pub async fn status(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<LedgerStatus>, Error> {
    let now = state.clock.now_ms();
    Ok(Json(state.oversight.ledger_status(&who, now).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": 0, "to": 50000}))]
pub struct VerifyRequest {
    /// The first entry of the range: 0, then each answer's `to`.
    from: u64,
    /// One past the last entry (at most 1 000 000 after `from`); a `to` at or past the
    /// ledger's size takes the range to the end of what is stored.
    to: u64,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyFailureBody {
    /// The first entry that is wrong, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    problem: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyRange {
    from: u64,
    /// Entries `from..to` were checked; the next range starts here.
    to: u64,
    /// The ledger's size when asked.
    size: u64,
    /// Signed checkpoints in the range, each equal to the rebuilt tree's root.
    checkpoints: usize,
    /// `true` when nothing was wrong; then `done` says whether the end was reached.
    ok: bool,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<VerifyFailureBody>,
}

/// Verify the entries `from..to` with the code of `gridhub audit verify`: each stored text
/// re-hashed into its leaf, the stored tree nodes the range completes and every signed
/// checkpoint whose size lies in the range checked against the tree rebuilt from the texts,
/// continuing the stored tree at `from`. Called from 0 with each answer's `to` until `done`,
/// the ranges check what one `audit verify` does, with progress in between. The range that
/// reaches the end or fails is recorded as `audit.verify`. DPO and admin (`audit:read`).
#[utoipa::path(post, path = "/v1/audit/verify", tag = "audit", request_body = VerifyRequest,
    security(("bearer" = [])),
    responses((status = 200, body = VerifyRange), (status = 400), (status = 403), (status = 422)))]
pub async fn verify(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyRange>, Error> {
    let check = state.oversight.verify_range(&who, req.from, req.to).await?;
    Ok(Json(VerifyRange {
        from: check.from,
        to: check.to,
        size: check.size,
        checkpoints: check.checkpoints,
        ok: check.failure.is_none(),
        done: check.failure.is_some() || check.to >= check.size,
        failure: check.failure.map(|f| VerifyFailureBody {
            index: f.index,
            problem: f.problem,
        }),
    }))
}

/// Every key category's KEK versions (the current one marked), the data keys each wraps now
/// and the wraps performed under it. Names and counts only. DPO and admin (`audit:read`).
#[utoipa::path(get, path = "/v1/admin/keys", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = KeyReport), (status = 403)))]
pub async fn keys(State(state): State<AppState>, who: Principal) -> Result<Json<KeyReport>, Error> {
    Ok(Json(state.oversight.key_versions(&who).await?))
}

/// Rotate a key category's KEK (a catalog category, or `case-texts`): a new version wraps new
/// data keys at once; the hub then rewraps every data key of the old version in the background
/// (progress in `GET /v1/admin/keys`) and retires it when nothing uses it. Recorded as
/// `keys.rotate`. Administrators (`catalog:write`).
#[utoipa::path(post, path = "/v1/admin/keys/{category}/rotate", tag = "audit",
    params(("category" = String, Path, description = "key category")), security(("bearer" = [])),
    responses((status = 202, body = Rotation), (status = 403), (status = 404)))]
pub async fn rotate(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(category): ApiPath<String>,
) -> Result<(axum::http::StatusCode, Json<Rotation>), Error> {
    let rotation = rotate_as(&state, &who, &category).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(rotation)))
}

/// Rotate `category`'s KEK for `who` (`catalog:write`; a refusal is audited as
/// `keys.rotate`): the API's and the console's one path.
pub async fn rotate_as(
    state: &AppState,
    who: &Principal,
    category: &str,
) -> Result<Rotation, Error> {
    state
        .authorize(who, "catalog", "write", None, "keys.rotate")
        .await?;
    state
        .keys
        .rotate(
            who.actor(),
            crate::error::current_request_id(),
            category,
            "asked by an administrator",
        )
        .await
}

/// Rotate the ledger's signing key: the old key and a new one sign a transition statement
/// (published at `GET /v1/audit/public-key` → `transitions`) naming both and the size of the
/// old key's last checkpoint; the new key signs every checkpoint and receipt after, and the old
/// one can publish nothing more. Recorded as `keys.rotate_ledger`. Administrators
/// (`catalog:write`); 409 `conflict` while another rotation is being saved.
#[utoipa::path(post, path = "/v1/admin/ledger-key/rotate", tag = "audit",
    security(("bearer" = [])),
    responses((status = 200, body = LedgerKeyRotation), (status = 403), (status = 409)))]
pub async fn rotate_ledger_key(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<LedgerKeyRotation>, Error> {
    state
        .authorize(&who, "catalog", "write", None, "keys.rotate_ledger")
        .await?;
    Ok(Json(
        state
            .keys
            .rotate_ledger_key(
                who.actor(),
                crate::error::current_request_id(),
                "asked by an administrator",
            )
            .await?,
    ))
}
