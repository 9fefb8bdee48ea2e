//! `POST /v1/admin/users`: admins create users with roles and (for grid workers) grids
//! (`Identity::create_user`, which checks, audits and stores).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::ApiJson;
use crate::identity::{CreatedUser, UserDraft};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/users", post(create_user))
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
