//! `POST /v1/auth/login` and the published token keys.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::password;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/.well-known/jwks.json", get(jwks))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// Exchange a username and password for a short-lived EdDSA access token.
#[utoipa::path(post, path = "/v1/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "wrong credentials")))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, Error> {
    let user = state.store.user_by_username(&req.username).await?;
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map(|u| u.password_hash.clone());
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, hash.as_deref()))
        .await
        .map_err(|e| Error::Internal(format!("password check task failed: {e}")))?;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        (_, known) => {
            tracing::info!(outcome = "failure", "login");
            // Name the account only if it exists: a mistyped username may be anything.
            let actor = known.map(|u| Actor::user(&u.id)).unwrap_or_default();
            return Err(state
                .deny(
                    actor,
                    "auth.login",
                    "wrong username or password",
                    Error::Unauthenticated,
                )
                .await);
        }
    };
    state
        .audit(EntryDraft::new(
            Actor::user(&user.id),
            "auth.login",
            Decision::Allow,
            current_request_id(),
        ))
        .await?;
    let token = state
        .tokens
        .issue(&user.id, "user")
        .map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(outcome = "success", user_id = %user.id, "login");
    Ok(Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_secs(),
    }))
}

/// The hub's token verification keys (JWK Set).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity",
    responses((status = 200, description = "JWK Set")))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.jwks().clone())
}
