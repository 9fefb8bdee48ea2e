//! Role permissions (casbin policy lines) and role assignment, admin only:
//! `GET /v1/admin/roles`, `GET/PUT /v1/admin/roles/{role}`, `PUT /v1/admin/users/{id}/roles`,
//! `PUT /v1/admin/clients/{id}/roles`. Every change is audited before it is stored and takes
//! effect on the next request (the policy version is bumped in the same transaction).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use policy::{FieldProblem, GridCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::problem;
use crate::auth::Principal;
use crate::auth::permissions::{EVERY_GRID, OBJECTS, object_spec, valid_role_name};
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft};
use crate::state::AppState;
use crate::storage::{Inserted, RoleRow};
use crate::time::now_ms;

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
    #[serde(default)]
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

fn role_body(row: RoleRow) -> RoleBody {
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

/// All roles with their permissions, and the objects and actions a permission may name.
#[utoipa::path(get, path = "/v1/admin/roles", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = RoleList), (status = 403)))]
pub async fn list_roles(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<RoleList>, Error> {
    state
        .authorize(&who, "roles", "read", None, "role.read")
        .await?;
    let mut roles = Vec::new();
    for name in state.store.role_names().await? {
        if let Some(row) = state.store.role(&name).await? {
            roles.push(role_body(row));
        }
    }
    let objects = OBJECTS
        .iter()
        .map(|o| (o.name.to_owned(), serde_json::json!(o.actions)))
        .collect::<serde_json::Map<_, _>>();
    Ok(Json(RoleList {
        roles,
        objects: serde_json::Value::Object(objects),
    }))
}

/// One role's permissions.
#[utoipa::path(get, path = "/v1/admin/roles/{role}", tag = "identity", security(("bearer" = [])),
    params(("role" = String, Path)), responses((status = 200, body = RoleBody), (status = 403), (status = 404)))]
pub async fn get_role(
    State(state): State<AppState>,
    who: Principal,
    Path(role): Path<String>,
) -> Result<Json<RoleBody>, Error> {
    state
        .authorize(&who, "roles", "read", None, "role.read")
        .await?;
    let row = state
        .store
        .role(&role)
        .await?
        .ok_or(Error::NotFound("role"))?;
    Ok(Json(role_body(row)))
}

/// Validate a permission list into stored lines (object, action, grids); problems name the
/// field, never echo what was sent.
async fn permission_lines(
    state: &AppState,
    permissions: &[PermissionBody],
) -> Result<Vec<(String, String, String)>, Error> {
    let mut problems: Vec<FieldProblem> = Vec::new();
    let mut lines = Vec::new();
    for (i, p) in permissions.iter().enumerate() {
        let Some(spec) = object_spec(&p.object) else {
            problems.push(problem(
                &format!("permissions[{i}].object"),
                "unknown object",
            ));
            continue;
        };
        if !spec.actions.contains(&p.action.as_str()) {
            problems.push(problem(
                &format!("permissions[{i}].action"),
                &format!(
                    "not an action on `{}`: {}",
                    spec.name,
                    spec.actions.join(", ")
                ),
            ));
            continue;
        }
        if p.grids.is_empty() {
            problems.push(problem(
                &format!("permissions[{i}].grids"),
                "at least one grid code, or `*`",
            ));
        }
        for (j, g) in p.grids.iter().enumerate() {
            let field = format!("permissions[{i}].grids[{j}]");
            if g == EVERY_GRID {
                lines.push((p.object.clone(), p.action.clone(), g.clone()));
                continue;
            }
            if !spec.grid_bound {
                problems.push(problem(
                    &field,
                    &format!("`{}` belongs to no grid: use `*`", spec.name),
                ));
                continue;
            }
            match GridCode::parse(g) {
                Ok(code) if state.store.grid_exists(&code).await? => {
                    lines.push((p.object.clone(), p.action.clone(), code.as_str().to_owned()));
                }
                Ok(_) => problems.push(problem(&field, "unknown grid")),
                Err(_) => problems.push(problem(&field, "not a grid code")),
            }
        }
    }
    if problems.is_empty() {
        lines.sort();
        lines.dedup();
        Ok(lines)
    } else {
        Err(Error::Validation(problems))
    }
}

/// Create a role or replace its permissions. Takes effect on the next request.
#[utoipa::path(put, path = "/v1/admin/roles/{role}", tag = "identity", security(("bearer" = [])),
    params(("role" = String, Path)), request_body = PutRole,
    responses((status = 200, body = RoleBody), (status = 201, body = RoleBody), (status = 403), (status = 422)))]
pub async fn put_role(
    State(state): State<AppState>,
    who: Principal,
    Path(role): Path<String>,
    ApiJson(req): ApiJson<PutRole>,
) -> Result<(StatusCode, Json<RoleBody>), Error> {
    state
        .authorize(&who, "roles", "write", None, "role.update")
        .await?;
    if !valid_role_name(&role) {
        return Err(Error::validation(
            "role",
            "1–64 characters of a-z, 0-9, _ and -, starting with a letter",
        ));
    }
    let description = match req.description.as_deref().map(str::trim) {
        Some(d) if d.chars().count() > 200 || d.contains(['\n', '\r']) => {
            return Err(Error::validation(
                "description",
                "one line of at most 200 characters",
            ));
        }
        Some(d) => Some(d.to_owned()),
        None => None,
    };
    let lines = permission_lines(&state, &req.permissions).await?;
    let description = match description {
        Some(d) => d,
        None => state
            .store
            .role(&role)
            .await?
            .map(|r| r.description)
            .unwrap_or_default(),
    };
    let summary = lines
        .iter()
        .map(|(o, a, g)| format!("{o}:{a}@{g}"))
        .collect::<Vec<_>>()
        .join(" ");
    state
        .audit(
            EntryDraft::new(
                who.actor(),
                "role.update",
                Decision::Allow,
                current_request_id(),
            )
            .reason(&format!("role {role}: {summary}")),
        )
        .await?;
    let outcome = state
        .store
        .put_role(&role, &description, &lines, now_ms())
        .await?;
    tracing::info!(role, by = %who.id(), "role permissions replaced");
    let row = state
        .store
        .role(&role)
        .await?
        .ok_or(Error::NotFound("role"))?;
    let status = match outcome {
        Inserted::Created => StatusCode::CREATED,
        Inserted::AlreadyExists => StatusCode::OK,
    };
    Ok((status, Json(role_body(row))))
}

async fn checked_roles(state: &AppState, roles: &[String]) -> Result<Vec<String>, Error> {
    let known = state.store.role_names().await?;
    let mut problems = Vec::new();
    for (i, r) in roles.iter().enumerate() {
        if !known.contains(r) {
            problems.push(problem(&format!("roles[{i}]"), "unknown role"));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// Whose roles an assignment replaces.
#[derive(Clone, Copy)]
enum Holder {
    User,
    Client,
}

impl Holder {
    /// (permission object, audit action, not-found name)
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Holder::User => ("users", "user.roles", "user"),
            Holder::Client => ("clients", "client.roles", "client"),
        }
    }
}

/// Check, audit and store a role assignment.
async fn assign(
    state: &AppState,
    who: &Principal,
    holder: Holder,
    id: String,
    roles: &[String],
) -> Result<Json<Assignment>, Error> {
    let (object, action, what) = holder.names();
    state.authorize(who, object, "write", None, action).await?;
    let roles = checked_roles(state, roles).await?;
    let exists = match holder {
        Holder::User => state.store.user_by_id(&id).await?.is_some(),
        Holder::Client => state.store.client(&id).await?.is_some(),
    };
    if !exists {
        return Err(Error::NotFound(what));
    }
    state
        .audit(
            EntryDraft::new(who.actor(), action, Decision::Allow, current_request_id())
                .reason(&format!("{what} {id}: roles {}", roles.join(","))),
        )
        .await?;
    let stored = match holder {
        Holder::User => state.store.set_user_roles(&id, &roles).await?,
        Holder::Client => state.store.set_client_roles(&id, &roles).await?,
    };
    if !stored {
        return Err(Error::NotFound(what));
    }
    Ok(Json(Assignment { id, roles }))
}

/// Replace a user's roles (its grids stay as they are).
#[utoipa::path(put, path = "/v1/admin/users/{id}/roles", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PutAssignment,
    responses((status = 200, body = Assignment), (status = 403), (status = 404), (status = 422)))]
pub async fn put_user_roles(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PutAssignment>,
) -> Result<Json<Assignment>, Error> {
    assign(&state, &who, Holder::User, id, &req.roles).await
}

/// Replace a client's roles.
#[utoipa::path(put, path = "/v1/admin/clients/{id}/roles", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PutAssignment,
    responses((status = 200, body = Assignment), (status = 403), (status = 404), (status = 422)))]
pub async fn put_client_roles(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PutAssignment>,
) -> Result<Json<Assignment>, Error> {
    assign(&state, &who, Holder::Client, id, &req.roles).await
}
