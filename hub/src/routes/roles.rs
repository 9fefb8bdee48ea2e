//! Role permissions (casbin policy lines) and role assignment, admin only:
//! `GET /v1/admin/roles`, `GET/PUT /v1/admin/roles/{role}`, `PUT /v1/admin/users/{id}/roles`,
//! `PUT /v1/admin/clients/{id}/roles`. `crate::identity` checks every change, audits it before
//! it is stored, and it takes effect on the next request (the policy version is bumped in the
//! same transaction). A change that would leave no active user able to write roles is 409
//! `last_role_admin`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::auth::permissions::{EVERY_GRID, OBJECTS};
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::{Permission, RolePut};
use crate::state::AppState;
use crate::storage::{Inserted, RoleRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/roles", get(list_roles))
        .route("/v1/admin/roles/{role}", get(get_role).put(put_role))
        .route("/v1/admin/users/{id}/roles", put(put_user_roles))
        .route("/v1/admin/clients/{id}/roles", put(put_client_roles))
}

#[derive(Serialize, Deserialize, ToSchema, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct PermissionBody {
    /// One of the API objects (`records`, `grids`, `catalog`, …).
    action: String,
    object: String,
    /// Grid subtrees the permission holds in; `["*"]` (the default) means everywhere.
    #[serde(default = "every_grid")]
    grids: Vec<String>,
}

fn every_grid() -> Vec<String> {
    vec![EVERY_GRID.to_owned()]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRole {
    /// One line of at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200, pattern = "^[^\\r\\n]*$")]
    description: Option<String>,
    permissions: Vec<PermissionBody>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleBody {
    role: String,
    description: String,
    permissions: Vec<PermissionBody>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    roles: Vec<RoleBody>,
    /// The vocabulary `PUT` accepts: object → actions.
    #[schema(value_type = Object)]
    objects: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAssignment {
    roles: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Assignment {
    id: String,
    roles: Vec<String>,
}

impl From<PutRole> for RolePut {
    fn from(req: PutRole) -> RolePut {
        RolePut {
            description: req.description,
            permissions: req
                .permissions
                .into_iter()
                .map(|p| Permission {
                    object: p.object,
                    action: p.action,
                    grids: p.grids,
                })
                .collect(),
        }
    }
}

impl From<RoleRow> for RoleBody {
    fn from(row: RoleRow) -> RoleBody {
        // Stored one line per grid; shown one permission per (object, action) with its grids.
        let mut permissions: Vec<PermissionBody> = Vec::new();
        for (object, action, grids) in row.permissions {
            match permissions
                .iter_mut()
                .find(|p| p.object == object && p.action == action)
            {
                Some(p) => p.grids.push(grids),
                None => permissions.push(PermissionBody {
                    action,
                    object,
                    grids: vec![grids],
                }),
            }
        }
        RoleBody {
            role: row.name,
            description: row.description,
            permissions,
        }
    }
}

/// All roles with their permissions, and the objects and actions a permission may name.
#[utoipa::path(get, path = "/v1/admin/roles", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = RoleList), (status = 403)))]
pub async fn list_roles(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<RoleList>, Error> {
    let rows = state.identity.roles(&who).await?;
    let objects = OBJECTS
        .iter()
        .map(|o| (o.name.to_owned(), serde_json::json!(o.actions)))
        .collect::<serde_json::Map<_, _>>();
    Ok(Json(RoleList {
        roles: rows.into_iter().map(RoleBody::from).collect(),
        objects: serde_json::Value::Object(objects),
    }))
}

/// One role's permissions.
#[utoipa::path(get, path = "/v1/admin/roles/{role}", tag = "identity", security(("bearer" = [])),
    params(("role" = String, Path)), responses((status = 200, body = RoleBody), (status = 403), (status = 404)))]
pub async fn get_role(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(role): ApiPath<String>,
) -> Result<Json<RoleBody>, Error> {
    Ok(Json(state.identity.role(&who, &role).await?.into()))
}

/// Create a role or replace its permissions. Takes effect on the next request. Refused with 409
/// `last_role_admin` (audited) if afterwards no active user could write roles.
#[utoipa::path(put, path = "/v1/admin/roles/{role}", tag = "identity", security(("bearer" = [])),
    params(("role" = String, Path)), request_body = PutRole,
    responses((status = 200, body = RoleBody), (status = 201, body = RoleBody), (status = 403),
        (status = 409, description = "`last_role_admin`: no active user could write roles afterwards; nothing changed"),
        (status = 422)))]
pub async fn put_role(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(role): ApiPath<String>,
    ApiJson(req): ApiJson<PutRole>,
) -> Result<(StatusCode, Json<RoleBody>), Error> {
    let (outcome, row) = state
        .identity
        .put_role(&who, &role, RolePut::from(req))
        .await?;
    let status = match outcome {
        Inserted::Created => StatusCode::CREATED,
        Inserted::AlreadyExists => StatusCode::OK,
    };
    Ok((status, Json(row.into())))
}

/// Replace a user's roles (its grids stay as they are). Refused with 409 `last_role_admin`
/// (audited) if afterwards no active user could write roles.
#[utoipa::path(put, path = "/v1/admin/users/{id}/roles", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PutAssignment,
    responses((status = 200, body = Assignment), (status = 403), (status = 404),
        (status = 409, description = "`last_role_admin`: no active user could write roles afterwards; nothing changed"),
        (status = 422)))]
pub async fn put_user_roles(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PutAssignment>,
) -> Result<Json<Assignment>, Error> {
    let roles = state
        .identity
        .assign_user_roles(&who, &id, &req.roles)
        .await?;
    Ok(Json(Assignment { id, roles }))
}

/// Replace a client's roles.
#[utoipa::path(put, path = "/v1/admin/clients/{id}/roles", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PutAssignment,
    responses((status = 200, body = Assignment), (status = 403), (status = 404), (status = 422)))]
pub async fn put_client_roles(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PutAssignment>,
) -> Result<Json<Assignment>, Error> {
    let roles = state
        .identity
        .assign_client_roles(&who, &id, &req.roles)
        .await?;
    Ok(Json(Assignment { id, roles }))
}
