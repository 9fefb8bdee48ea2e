//! Departments and their systems (clients), through `crate::identity`, which checks, audits
//! and stores:
//! - `POST/GET /v1/admin/departments`: a department and its jurisdiction (grid subtrees);
//! - `PUT /v1/admin/departments/{id}/jurisdiction`: replace a department's jurisdiction;
//! - `POST /v1/admin/clients`: register a client from a CSR (the hub CA signs it; CN and a
//!   `urn:gridhub:client:<id>` name carry the client id) or from a certificate issued by a
//!   configured external CA; `GET /v1/admin/clients/{id}`; `GET /v1/admin/clients` (all);
//! - `POST /v1/admin/clients/{id}/revoke`: the certificate and every token issued over it stop
//!   working on the next request;
//! - `GET /v1/clients/me`: a department system checks who it is (certificate-bound token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{DepartmentCaller, Principal};
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::{ClientDraft, DepartmentDraft};
use crate::state::AppState;
use crate::storage::{ClientRow, DepartmentRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/departments",
            post(create_department).get(list_departments),
        )
        .route(
            "/v1/admin/departments/{id}/jurisdiction",
            put(put_jurisdiction),
        )
        .route("/v1/admin/clients", post(create_client).get(list_clients))
        .route("/v1/admin/clients/{id}", get(get_client))
        .route("/v1/admin/clients/{id}/revoke", post(revoke_client))
        .route("/v1/clients/me", get(whoami))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "water-bureau", "name": "水务局", "jurisdiction": ["330110"]}))]
pub struct Department {
    /// 2–63 characters of a-z, 0-9 and -, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,62}$")]
    id: String,
    /// One line of 1–100 characters.
    #[schema(max_length = 100, pattern = "^[^\\r\\n]*\\S[^\\r\\n]*$")]
    name: String,
    /// Grid codes; the department's jurisdiction is their subtrees.
    #[schema(min_items = 1)]
    jurisdiction: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DepartmentList {
    departments: Vec<Department>,
}

impl From<DepartmentRow> for Department {
    fn from(d: DepartmentRow) -> Department {
        Department {
            id: d.id,
            name: d.name,
            jurisdiction: d.jurisdiction,
        }
    }
}

/// Create a department with its jurisdiction.
#[utoipa::path(post, path = "/v1/admin/departments", tag = "identity", request_body = Department,
    security(("bearer" = [])),
    responses((status = 201, body = Department), (status = 403), (status = 409), (status = 422)))]
pub async fn create_department(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<Department>,
) -> Result<(StatusCode, Json<Department>), Error> {
    let draft = DepartmentDraft {
        id: req.id,
        name: req.name,
        jurisdiction: req.jurisdiction,
    };
    let row = state.identity.create_department(&who, draft).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// All departments.
#[utoipa::path(get, path = "/v1/admin/departments", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = DepartmentList), (status = 403)))]
pub async fn list_departments(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<DepartmentList>, Error> {
    let rows = state.identity.departments(&who).await?;
    let departments = rows.into_iter().map(Department::from).collect();
    Ok(Json(DepartmentList { departments }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"jurisdiction": ["330110.001", "330110.002.001"]}))]
pub struct Jurisdiction {
    /// Grid codes (at least one); the department's jurisdiction becomes their subtrees.
    #[schema(min_items = 1)]
    jurisdiction: Vec<String>,
}

/// Replace a department's jurisdiction; decisions follow from the next request.
#[utoipa::path(put, path = "/v1/admin/departments/{id}/jurisdiction", tag = "identity",
    request_body = Jurisdiction, security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Department), (status = 403), (status = 404), (status = 422)))]
pub async fn put_jurisdiction(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Jurisdiction>,
) -> Result<Json<Department>, Error> {
    let row = state
        .identity
        .set_jurisdiction(&who, &id, &req.jurisdiction)
        .await?;
    Ok(Json(row.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// 2–63 characters of a-z, 0-9 and -, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,62}$")]
    id: String,
    department: String,
    /// PKCS#10 request (PEM); the hub CA signs it. Give this or `certificate_pem`.
    #[serde(default)]
    csr_pem: Option<String>,
    /// A certificate of a configured external CA (PEM), registered as is.
    #[serde(default)]
    certificate_pem: Option<String>,
    /// age X25519 recipient (`age1…`) for sealed delivery.
    #[serde(default)]
    age_recipient: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientBody {
    id: String,
    department: String,
    certificate_pem: String,
    /// RFC 8705 `x5t#S256` of the certificate.
    thumbprint: String,
    /// `hub` or `external`.
    issuer: String,
    not_after: String,
    age_recipient: Option<String>,
    status: &'static str,
    roles: Vec<String>,
}

impl From<ClientRow> for ClientBody {
    fn from(c: ClientRow) -> ClientBody {
        ClientBody {
            id: c.id,
            department: c.department,
            certificate_pem: c.certificate_pem,
            thumbprint: c.thumbprint,
            issuer: c.issuer,
            not_after: crate::time::rfc3339(c.not_after),
            age_recipient: c.age_recipient,
            status: if c.active { "active" } else { "revoked" },
            roles: c.roles,
        }
    }
}

/// Register a department system. With `csr_pem` the hub CA issues its certificate (returned in
/// `certificate_pem`); with `certificate_pem` an externally issued certificate is registered.
/// The client gets the `department` role.
#[utoipa::path(post, path = "/v1/admin/clients", tag = "identity", request_body = CreateClient,
    security(("bearer" = [])),
    responses((status = 201, body = ClientBody), (status = 403), (status = 409), (status = 422)))]
pub async fn create_client(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<CreateClient>,
) -> Result<(StatusCode, Json<ClientBody>), Error> {
    let draft = ClientDraft {
        id: req.id,
        department: req.department,
        csr_pem: req.csr_pem,
        certificate_pem: req.certificate_pem,
        age_recipient: req.age_recipient,
    };
    let row = state.identity.create_client(&who, draft).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    /// Every client, by id.
    clients: Vec<ClientBody>,
}

/// Every department system, by id: department, certificate (thumbprint, issuer, expiry),
/// status and roles.
#[utoipa::path(get, path = "/v1/admin/clients", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = ClientList), (status = 403)))]
pub async fn list_clients(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<ClientList>, Error> {
    let rows = state.identity.clients(&who).await?;
    let clients = rows.into_iter().map(ClientBody::from).collect();
    Ok(Json(ClientList { clients }))
}

/// One client.
#[utoipa::path(get, path = "/v1/admin/clients/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ClientBody), (status = 403), (status = 404)))]
pub async fn get_client(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientBody>, Error> {
    Ok(Json(state.identity.client(&who, &id).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    id: String,
    status: &'static str,
}

/// Revoke a client: its certificate and tokens stop working on the next request.
#[utoipa::path(post, path = "/v1/admin/clients/{id}/revoke", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Revoked), (status = 403), (status = 404)))]
pub async fn revoke_client(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Revoked>, Error> {
    state.identity.revoke_client(&who, &id).await?;
    Ok(Json(Revoked {
        id,
        status: "revoked",
    }))
}

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    client: String,
    department: String,
    jurisdiction: Vec<String>,
    roles: Vec<String>,
    /// The certificate this token is bound to (`cnf.x5t#S256`).
    thumbprint: String,
}

/// The calling department system: client, department, jurisdiction, roles.
#[utoipa::path(get, path = "/v1/clients/me", tag = "identity",
    security(("client_token" = [])),
    responses((status = 200, body = WhoAmI), (status = 401)))]
pub async fn whoami(
    State(state): State<AppState>,
    DepartmentCaller(who): DepartmentCaller,
) -> Result<Json<WhoAmI>, Error> {
    let me = state.identity.calling_client(&who).await?;
    Ok(Json(WhoAmI {
        client: me.client,
        department: me.department,
        jurisdiction: me.jurisdiction,
        roles: me.roles,
        thumbprint: me.thumbprint,
    }))
}
