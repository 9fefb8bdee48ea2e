//! Users, administered through `crate::identity` (which checks, audits and stores; the
//! console's user pages call the same methods):
//! - `POST /v1/admin/users`: create a user with roles and (for grid workers) grids;
//! - `GET /v1/admin/users`, `GET /v1/admin/users/{id}`: users with their roles, department,
//!   grids and status (never a password hash);
//! - `PUT /v1/admin/users/{id}/grids`: replace a user's grids;
//! - `POST /v1/admin/users/{id}/disable` and `/enable`: a disabled user cannot log in, and its
//!   tokens and console sessions stop working on their next request; nobody disables itself
//!   (409 `cannot_disable_self`).
//!
//! (`PUT /v1/admin/users/{id}/roles` is in `routes/roles.rs`.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::{CreatedUser, UserDraft, UserView};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users", post(create_user).get(list_users))
        .route("/v1/admin/users/{id}", get(get_user))
        .route("/v1/admin/users/{id}/grids", put(put_user_grids))
        .route("/v1/admin/users/{id}/disable", post(disable_user))
        .route("/v1/admin/users/{id}/enable", post(enable_user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "worker2", "password": "correct horse battery",
    "roles": ["grid_worker"], "grids": ["330110.001.001.001"]}))]
pub struct CreateUser {
    /// 3–64 characters of letters, digits and `. _ - @`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{3,64}$")]
    username: String,
    /// 12–256 characters.
    #[schema(min_length = 12, max_length = 256)]
    password: String,
    #[schema(min_items = 1)]
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

/// Create a user (admin only).
#[utoipa::path(post, path = "/v1/admin/users", tag = "identity", request_body = CreateUser,
    security(("bearer" = [])),
    responses((status = 201, body = UserCreated), (status = 403), (status = 409), (status = 422)))]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserCreated>), Error> {
    let draft = UserDraft {
        username: req.username,
        password: SecretString::from(req.password),
        roles: req.roles,
        department: req.department,
        grids: req.grids,
    };
    let user = state.identity.create_user(&principal, draft).await?;
    Ok((StatusCode::CREATED, Json(UserCreated::from(user))))
}

impl From<CreatedUser> for UserCreated {
    fn from(u: CreatedUser) -> UserCreated {
        UserCreated {
            id: u.id,
            username: u.username,
            roles: u.roles,
            grids: u.grids,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "0193…", "username": "worker2", "roles": ["grid_worker"],
    "department": null, "grids": ["330110.001.001"], "status": "active",
    "created_at": "2026-12-06T08:00:00Z"}))]
pub struct UserBody {
    id: String,
    username: String,
    roles: Vec<String>,
    department: Option<String>,
    /// Canonical grid codes.
    grids: Vec<String>,
    /// `active` or `disabled`.
    #[schema(pattern = "^(active|disabled)$")]
    status: &'static str,
    /// RFC 3339 UTC.
    created_at: String,
}

impl From<UserView> for UserBody {
    fn from(u: UserView) -> UserBody {
        UserBody {
            id: u.id,
            username: u.username,
            roles: u.roles,
            department: u.department,
            grids: u.grids,
            status: status(u.disabled),
            created_at: crate::time::rfc3339(u.created_at),
        }
    }
}

fn status(disabled: bool) -> &'static str {
    if disabled { "disabled" } else { "active" }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    /// By username.
    users: Vec<UserBody>,
}

/// Every user, by username (admins: `users:write`).
#[utoipa::path(get, path = "/v1/admin/users", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 403)))]
pub async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<UserList>, Error> {
    let users = state.identity.users(&principal).await?;
    Ok(Json(UserList {
        users: users.into_iter().map(UserBody::from).collect(),
    }))
}

/// One user (admins: `users:write`).
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = UserBody), (status = 403), (status = 404)))]
pub async fn get_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserBody>, Error> {
    Ok(Json(state.identity.user(&principal, &id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grids": ["330110.001.001", "330110.002.001"]}))]
pub struct UserGrids {
    /// Grid codes; a grid worker needs at least one.
    grids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserGridsSet {
    id: String,
    /// Canonical codes, sorted.
    grids: Vec<String>,
}

/// Replace a user's grids (its roles stay); in force from the next request.
#[utoipa::path(put, path = "/v1/admin/users/{id}/grids", tag = "identity",
    request_body = UserGrids, security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserGridsSet), (status = 403), (status = 404), (status = 422)))]
pub async fn put_user_grids(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UserGrids>,
) -> Result<Json<UserGridsSet>, Error> {
    let grids = state
        .identity
        .set_user_grids(&principal, &id, &req.grids)
        .await?;
    Ok(Json(UserGridsSet { id, grids }))
}

#[derive(Serialize, ToSchema)]
pub struct UserStatus {
    id: String,
    /// `active` or `disabled`.
    #[schema(pattern = "^(active|disabled)$")]
    status: &'static str,
}

/// Disable a user: it cannot log in, and its tokens and console sessions stop working on their
/// next request. Refused for the caller's own account (409 `cannot_disable_self`) and for the
/// last active user who may write roles (409 `last_role_admin`); both refusals are audited.
#[utoipa::path(post, path = "/v1/admin/users/{id}/disable", tag = "identity",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserStatus), (status = 403), (status = 404),
        (status = 409, description = "`cannot_disable_self` or `last_role_admin`; nothing changed")))]
pub async fn disable_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserStatus>, Error> {
    state
        .identity
        .set_user_disabled(&principal, &id, true)
        .await?;
    Ok(Json(UserStatus {
        id,
        status: status(true),
    }))
}

/// Enable a disabled user again: it can log in from the next request.
#[utoipa::path(post, path = "/v1/admin/users/{id}/enable", tag = "identity",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserStatus), (status = 403), (status = 404)))]
pub async fn enable_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserStatus>, Error> {
    state
        .identity
        .set_user_disabled(&principal, &id, false)
        .await?;
    Ok(Json(UserStatus {
        id,
        status: status(false),
    }))
}
