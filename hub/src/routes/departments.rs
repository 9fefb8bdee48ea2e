//! Departments and their systems (clients):
//! - `POST/GET /v1/admin/departments`: a department and its jurisdiction (grid subtrees);
//! - `POST /v1/admin/clients`: register a client from a CSR (the hub CA signs it; CN and a
//!   `urn:gridhub:client:<id>` name carry the client id) or from a certificate issued by a
//!   configured external CA; `GET /v1/admin/clients/{id}`;
//! - `POST /v1/admin/clients/{id}/revoke`: the certificate and every token issued over it stop
//!   working on the next request;
//! - `GET /v1/clients/me`: a department system checks who it is (certificate-bound token).

use std::str::FromStr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::GridCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::problem;
use crate::auth::{DepartmentCaller, Principal, Role};
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft};
use crate::state::AppState;
use crate::storage::{ClientRow, DepartmentRow, Inserted, NewClient};
use crate::time::now_ms;
use crate::tls::pki;

/// Lifetime of certificates the hub CA issues to clients.
const CLIENT_CERT_DAYS: i64 = 365;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/departments",
            post(create_department).get(list_departments),
        )
        .route("/v1/admin/clients", post(create_client))
        .route("/v1/admin/clients/{id}", get(get_client))
        .route("/v1/admin/clients/{id}/revoke", post(revoke_client))
        .route("/v1/clients/me", get(whoami))
}

/// Department and client ids: 2–63 of `a-z 0-9 -`, starting with a letter or digit (a DNS
/// label, so it fits certificate names).
pub fn valid_id(id: &str) -> bool {
    (2..=63).contains(&id.len())
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Department {
    id: String,
    name: String,
    /// Grid codes; the department's jurisdiction is their subtrees.
    jurisdiction: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DepartmentList {
    departments: Vec<Department>,
}

fn department_body(d: DepartmentRow) -> Department {
    Department {
        id: d.id,
        name: d.name,
        jurisdiction: d.jurisdiction,
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
    state
        .authorize(&who, "departments", "write", None, "department.create")
        .await?;
    let mut problems = Vec::new();
    if !valid_id(&req.id) {
        problems.push(problem(
            "id",
            "2–63 characters of a-z, 0-9 and -, starting with a letter or digit",
        ));
    }
    let name_chars = req.name.trim().chars().count();
    if name_chars == 0 || name_chars > 100 || req.name.contains(['\n', '\r']) {
        problems.push(problem("name", "one line of 1–100 characters"));
    }
    if req.jurisdiction.is_empty() {
        problems.push(problem("jurisdiction", "at least one grid code"));
    }
    let mut jurisdiction = Vec::new();
    for (i, g) in req.jurisdiction.iter().enumerate() {
        match GridCode::parse(g) {
            Ok(code) if state.store.grid_exists(&code).await? => {
                jurisdiction.push(code.as_str().to_owned());
            }
            Ok(_) => problems.push(problem(&format!("jurisdiction[{i}]"), "unknown grid")),
            Err(_) => problems.push(problem(&format!("jurisdiction[{i}]"), "not a grid code")),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    jurisdiction.sort();
    jurisdiction.dedup();
    let row = DepartmentRow {
        id: req.id,
        name: req.name.trim().to_owned(),
        jurisdiction,
    };
    if state.store.department(&row.id).await?.is_some() {
        return Err(Error::Conflict(
            "a department with this id exists".to_owned(),
        ));
    }
    state
        .audit(
            EntryDraft::new(
                who.actor(),
                "department.create",
                Decision::Allow,
                current_request_id(),
            )
            .reason(&format!(
                "department {} with jurisdiction {}",
                row.id,
                row.jurisdiction.join(",")
            )),
        )
        .await?;
    match state.store.insert_department(&row, now_ms()).await? {
        Inserted::Created => Ok((StatusCode::CREATED, Json(department_body(row)))),
        Inserted::AlreadyExists => Err(Error::Conflict(
            "a department with this id exists".to_owned(),
        )),
    }
}

/// All departments.
#[utoipa::path(get, path = "/v1/admin/departments", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = DepartmentList), (status = 403)))]
pub async fn list_departments(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<DepartmentList>, Error> {
    state
        .authorize(&who, "departments", "read", None, "department.read")
        .await?;
    let departments = state
        .store
        .departments()
        .await?
        .into_iter()
        .map(department_body)
        .collect();
    Ok(Json(DepartmentList { departments }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
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

fn client_body(c: ClientRow) -> ClientBody {
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
    state
        .authorize(&who, "clients", "write", None, "client.create")
        .await?;
    let mut problems = Vec::new();
    if !valid_id(&req.id) {
        problems.push(problem(
            "id",
            "2–63 characters of a-z, 0-9 and -, starting with a letter or digit",
        ));
    }
    if state.store.department(&req.department).await?.is_none() {
        problems.push(problem("department", "unknown department"));
    }
    if let Some(r) = &req.age_recipient
        && age::x25519::Recipient::from_str(r).is_err()
    {
        problems.push(problem(
            "age_recipient",
            "not an age X25519 recipient (age1…)",
        ));
    }
    let certificate = match (&req.csr_pem, &req.certificate_pem) {
        (Some(_), Some(_)) | (None, None) => {
            problems.push(problem(
                "csr_pem",
                "give exactly one of `csr_pem` and `certificate_pem`",
            ));
            None
        }
        (Some(csr), None) if problems.is_empty() => {
            match pki::issue_client_certificate(
                state.vault.client_ca(),
                csr,
                &req.id,
                CLIENT_CERT_DAYS,
            ) {
                Ok(c) => Some((c, "hub")),
                Err(pki::CertificateRequestError::Ca(why)) => {
                    return Err(Error::Internal(format!("client CA: {why}")));
                }
                Err(e) => {
                    problems.push(problem("csr_pem", &e.to_string()));
                    None
                }
            }
        }
        (None, Some(pem)) => match pki::inspect_client_certificate(pem) {
            Ok(c) => Some((c, "external")),
            Err(e) => {
                problems.push(problem("certificate_pem", &e.to_string()));
                None
            }
        },
        (Some(_), None) => None,
    };
    let Some((certificate, issuer)) = certificate.filter(|_| problems.is_empty()) else {
        return Err(Error::Validation(problems));
    };
    let client = NewClient {
        id: req.id,
        department: req.department,
        thumbprint: certificate.thumbprint,
        certificate_pem: certificate.pem,
        issuer,
        not_after: certificate.not_after.unix_timestamp() * 1000,
        age_recipient: req.age_recipient,
        roles: vec![Role::Department.as_str().to_owned()],
    };
    if state.store.client(&client.id).await?.is_some() {
        return Err(Error::Conflict("a client with this id exists".to_owned()));
    }
    state
        .audit(
            EntryDraft::new(
                who.actor(),
                "client.create",
                Decision::Allow,
                current_request_id(),
            )
            .reason(&format!(
                "client {} of department {} ({issuer} certificate {})",
                client.id, client.department, client.thumbprint
            )),
        )
        .await?;
    match state.store.insert_client(&client, now_ms()).await? {
        Inserted::Created => {}
        Inserted::AlreadyExists => {
            return Err(Error::Conflict(
                "a client with this id or certificate exists".to_owned(),
            ));
        }
    }
    tracing::info!(client_id = %client.id, department = %client.department, "client registered");
    let row = state
        .store
        .client(&client.id)
        .await?
        .ok_or(Error::NotFound("client"))?;
    Ok((StatusCode::CREATED, Json(client_body(row))))
}

/// One client.
#[utoipa::path(get, path = "/v1/admin/clients/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ClientBody), (status = 403), (status = 404)))]
pub async fn get_client(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ClientBody>, Error> {
    state
        .authorize(&who, "clients", "read", None, "client.read")
        .await?;
    let row = state
        .store
        .client(&id)
        .await?
        .ok_or(Error::NotFound("client"))?;
    Ok(Json(client_body(row)))
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
    Path(id): Path<String>,
) -> Result<Json<Revoked>, Error> {
    state
        .authorize(&who, "clients", "write", None, "client.revoke")
        .await?;
    if state.store.client(&id).await?.is_none() {
        return Err(Error::NotFound("client"));
    }
    state
        .audit(
            EntryDraft::new(
                who.actor(),
                "client.revoke",
                Decision::Allow,
                current_request_id(),
            )
            .reason(&format!("client {id}")),
        )
        .await?;
    if !state.store.revoke_client(&id, now_ms()).await? {
        return Err(Error::NotFound("client"));
    }
    tracing::info!(client_id = %id, by = %who.id(), "client revoked");
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
    let crate::auth::Caller::Client { id, thumbprint } = &who.caller else {
        return Err(Error::Unauthenticated);
    };
    let department = who.department.clone().unwrap_or_default();
    let jurisdiction = state
        .store
        .department(&department)
        .await?
        .map(|d| d.jurisdiction)
        .unwrap_or_default();
    Ok(Json(WhoAmI {
        client: id.clone(),
        department,
        jurisdiction,
        roles: who.roles.clone(),
        thumbprint: thumbprint.clone(),
    }))
}
