//! `POST /v1/admin/users`: admins create users with roles and (for grid workers) grids.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use policy::{FieldProblem, GridCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Principal, password};
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft};
use crate::state::AppState;
use crate::storage::NewUser;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/users", post(create_user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    password: String,
    roles: Vec<String>,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    grids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    id: String,
    username: String,
    roles: Vec<String>,
    grids: Vec<String>,
}

fn valid_username(u: &str) -> bool {
    (3..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

/// Create a user (admin only).
#[utoipa::path(post, path = "/v1/admin/users", tag = "identity", request_body = CreateUser,
    security(("bearer" = [])),
    responses((status = 201, body = UserCreated), (status = 403), (status = 409), (status = 422)))]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserCreated>), Error> {
    state
        .authorize(&principal, "users", "write", None, "user.create")
        .await?;
    let mut problems = Vec::new();
    if !valid_username(&req.username) {
        problems.push(problem(
            "username",
            "3–64 characters of letters, digits and . _ - @",
        ));
    }
    if req.roles.is_empty() {
        problems.push(problem("roles", "at least one role is required"));
    }
    let known_roles = state.store.role_names().await?;
    for (i, role) in req.roles.iter().enumerate() {
        if !known_roles.contains(role) {
            problems.push(problem(&format!("roles[{i}]"), "unknown role"));
        }
    }
    if let Some(d) = &req.department
        && state.store.department(d).await?.is_none()
    {
        problems.push(problem("department", "unknown department"));
    }
    let mut grids = Vec::new();
    for (i, g) in req.grids.iter().enumerate() {
        match GridCode::parse(g) {
            Ok(code) if state.store.grid_exists(&code).await? => grids.push(code),
            Ok(_) => problems.push(problem(&format!("grids[{i}]"), "unknown grid")),
            Err(_) => problems.push(problem(&format!("grids[{i}]"), "not a grid code")),
        }
    }
    if req.roles.iter().any(|r| r == "grid_worker") && grids.is_empty() {
        problems.push(problem("grids", "a grid worker needs at least one grid"));
    }
    let chars = req.password.chars().count();
    if !(12..=256).contains(&chars) {
        problems.push(problem("password", "must be between 12 and 256 characters"));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let pw = req.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| Error::Internal(format!("hash task failed: {e}")))?
        .map_err(|e| Error::validation("password", e.to_string()))?;
    let user = NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        username: req.username,
        password_hash: hash,
        department: req.department,
        roles: req.roles,
        grids: grids.iter().map(|g| g.as_str().to_owned()).collect(),
    };
    let mut entry = EntryDraft::new(
        principal.actor(),
        "user.create",
        Decision::Allow,
        current_request_id(),
    );
    entry.reason = Some(format!(
        "user {} with roles {}",
        user.id,
        user.roles.join(",")
    ));
    state.audit(entry).await?;
    if !state.store.insert_user(&user, now_ms()).await? {
        return Err(Error::Conflict("username is taken".to_owned()));
    }
    tracing::info!(admin = %principal.id(), user_id = %user.id, "user created");
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            id: user.id,
            username: user.username,
            roles: user.roles,
            grids: user.grids,
        }),
    ))
}

pub(super) fn problem(field: &str, text: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        problem: text.to_owned(),
    }
}
