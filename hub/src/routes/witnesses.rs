//! Departments as witnesses (issue 21), administered and checked by `crate::identity`:
//! - `PUT /v1/admin/clients/{id}/witness`, `DELETE …`: an admin registers or removes a
//!   client's C2SP tlog-cosignature/v1 (Ed25519) witness key;
//! - `GET /v1/audit/witnesses`: the registered witness keys (any authenticated caller);
//! - `POST /v1/audit/cosignatures`: a witness client hands in its cosignature of a checkpoint
//!   the hub signed. `GET /v1/audit/checkpoint` serves the cosignatures (`routes/audit.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::storage::WitnessKeyRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/clients/{id}/witness",
            put(put_witness).delete(delete_witness),
        )
        .route("/v1/audit/witnesses", get(list_witnesses))
        .route("/v1/audit/cosignatures", post(post_cosignature))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"vkey": "civil-affairs.example/witness+2a8b1c3d+BHs0…"}))]
pub struct WitnessKeyPut {
    /// C2SP verifier key of a tlog-cosignature/v1 Ed25519 key:
    /// `<name>+<hex key hash>+<base64(0x04 ‖ 32-byte public key)>`.
    #[schema(max_length = 512)]
    vkey: String,
}

#[derive(Serialize, ToSchema)]
pub struct WitnessKeySet {
    client: String,
    key_name: String,
    /// The canonical form of the registered vkey.
    vkey: String,
}

/// Register or replace a client's witness key (admins: `clients:write`; audited as
/// `client.witness.set`). The client's cosignatures then count for it.
#[utoipa::path(put, path = "/v1/admin/clients/{id}/witness", tag = "identity",
    request_body = WitnessKeyPut, security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WitnessKeySet), (status = 403), (status = 404),
        (status = 409, description = "another client holds this key"),
        (status = 422, description = "`vkey` is not a cosignature/v1 Ed25519 verifier key")))]
pub async fn put_witness(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<WitnessKeyPut>,
) -> Result<Json<WitnessKeySet>, Error> {
    let key = state.identity.set_witness_key(&who, &id, &req.vkey).await?;
    Ok(Json(WitnessKeySet {
        client: key.client,
        key_name: key.key_name,
        vkey: key.vkey,
    }))
}

/// Remove a client's witness key (admins: `clients:write`; audited as
/// `client.witness.remove`). Cosignatures already collected stay served.
#[utoipa::path(delete, path = "/v1/admin/clients/{id}/witness", tag = "identity",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403),
        (status = 404, description = "no such client, or it has no witness key")))]
pub async fn delete_witness(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, Error> {
    state.identity.remove_witness_key(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Witness {
    client: String,
    department: String,
    key_name: String,
    vkey: String,
}

#[derive(Serialize, ToSchema)]
pub struct WitnessList {
    /// Current keys of active clients, by client id.
    witnesses: Vec<Witness>,
}

impl From<WitnessKeyRow> for Witness {
    fn from(k: WitnessKeyRow) -> Witness {
        Witness {
            client: k.client,
            department: k.department,
            key_name: k.key_name,
            vkey: k.vkey,
        }
    }
}

/// The registered witness keys (any authenticated caller): what `gridhub audit verify
/// --witness` and the SDK can require k of.
#[utoipa::path(get, path = "/v1/audit/witnesses", tag = "audit",
    security(("bearer" = []), ("client_token" = [])),
    responses((status = 200, body = WitnessList), (status = 401)))]
pub async fn list_witnesses(
    State(state): State<AppState>,
    _who: Principal,
) -> Result<Json<WitnessList>, Error> {
    let keys = state.identity.witnesses().await?;
    Ok(Json(WitnessList {
        witnesses: keys.into_iter().map(Witness::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"checkpoint": "gridhub/hub.example\n42\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
    "cosignature": "— civil-affairs.example/witness KosbPQAAAABnVFvL…"}))]
pub struct CosignaturePost {
    /// The checkpoint text the hub signed (origin, size, base64 root, each ending in "\n";
    /// no signature lines).
    #[schema(max_length = 4096)]
    checkpoint: String,
    /// One C2SP tlog-cosignature/v1 signature line, without newline:
    /// `— <key name> <base64(key hash ‖ 8-byte timestamp ‖ Ed25519 signature)>`.
    #[schema(max_length = 1024)]
    cosignature: String,
}

#[derive(Serialize, ToSchema)]
pub struct CosignatureAccepted {
    /// The size of the cosigned checkpoint.
    size: u64,
    key_name: String,
    /// The cosignature's timestamp (POSIX seconds).
    timestamp: u64,
}

/// Hand in a cosignature of a checkpoint the hub signed (a department client whose client has
/// a witness key, by its own key). Audited as `audit.cosign`, refusals too. The same (size,
/// key) again answers 200 with what is stored.
#[utoipa::path(post, path = "/v1/audit/cosignatures", tag = "audit",
    request_body = CosignaturePost, security(("client_token" = [])),
    responses((status = 201, body = CosignatureAccepted),
        (status = 200, body = CosignatureAccepted, description = "already stored for this size and key"),
        (status = 403, description = "the caller is not a client with a witness key"),
        (status = 404, description = "the hub signed no such checkpoint"),
        (status = 422, description = "`checkpoint` malformed, or `cosignature` malformed or not valid under the client's key")))]
pub async fn post_cosignature(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<CosignaturePost>,
) -> Result<(StatusCode, Json<CosignatureAccepted>), Error> {
    let accepted = state
        .identity
        .accept_cosignature(&who, &req.checkpoint, &req.cosignature)
        .await?;
    let status = if accepted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(CosignatureAccepted {
            size: accepted.size,
            key_name: accepted.key_name,
            timestamp: accepted.timestamp,
        }),
    ))
}
