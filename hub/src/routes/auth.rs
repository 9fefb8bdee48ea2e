//! `POST /v1/auth/login` (users, throttled per username and per address), `POST
//! /v1/oauth/token` (department clients: client_credentials over mTLS, RFC 8705
//! certificate-bound tokens) and the published token keys.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use axum::Form;
use axum::extract::rejection::FormRejection;

use crate::auth::Connection;
use crate::auth::login::PasswordLogin;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/oauth/token", post(client_token))
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
    connection: Connection,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, Error> {
    let user = PasswordLogin {
        store: &state.store,
        access: &state.access,
        limiter: &state.login_limiter,
    }
    .check(
        &req.username,
        req.password,
        connection.peer.ip(),
        "auth.login",
    )
    .await?;
    let token = state
        .tokens
        .issue_user(&user.id)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_secs(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ClientTokenRequest {
    /// Must be `client_credentials`.
    #[schema(pattern = "^client_credentials$")]
    grant_type: String,
}

/// Exchange the TLS client certificate of a registered client for a short-lived EdDSA token
/// bound to that certificate (`cnf.x5t#S256`, RFC 8705). Form body
/// `grant_type=client_credentials`; no client secret: the certificate is the credential.
#[utoipa::path(post, path = "/v1/oauth/token", tag = "identity",
    request_body(content = ClientTokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400), (status = 401, description = "no, unknown or revoked client certificate")))]
pub async fn client_token(
    State(state): State<AppState>,
    connection: Connection,
    form: Result<Form<ClientTokenRequest>, FormRejection>,
) -> Result<Json<TokenResponse>, Error> {
    let Form(req) = form.map_err(|_| {
        Error::BadRequest(
            "send an application/x-www-form-urlencoded body with `grant_type`".to_owned(),
        )
    })?;
    if req.grant_type != "client_credentials" {
        return Err(Error::BadRequest(
            "`grant_type` must be `client_credentials`".to_owned(),
        ));
    }
    let Some(thumbprint) = connection.client_cert.as_deref() else {
        return Err(state
            .deny(
                Actor::default(),
                "auth.client_token",
                "no client certificate",
                Error::Unauthenticated,
            )
            .await);
    };
    let client = state.store.client_by_thumbprint(thumbprint).await?;
    let client = match client {
        Some(c) if c.active && c.not_after > now_ms() => c,
        other => {
            let reason = match &other {
                None => "certificate of no registered client",
                Some(c) if !c.active => "client revoked",
                Some(_) => "client certificate expired",
            };
            let actor = Actor {
                client: other.map(|c| c.id),
                ..Actor::default()
            };
            return Err(state
                .deny(actor, "auth.client_token", reason, Error::Unauthenticated)
                .await);
        }
    };
    state
        .audit(EntryDraft::new(
            Actor {
                client: Some(client.id.clone()),
                department: Some(client.department.clone()),
                ..Actor::default()
            },
            "auth.client_token",
            Decision::Allow,
            current_request_id(),
        ))
        .await?;
    let token = state
        .tokens
        .issue_client(&client.id, thumbprint)
        .map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(client_id = %client.id, "client token issued");
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
