//! The authenticated caller. Built only by the extractors below, from a verified token, the
//! connection it arrived on and the caller's current row (so a disabled user, a revoked client
//! or a changed role takes effect on the next request). Every refusal is audited.
//!
//! - `Principal`: a user (console/API token, any connection) or a department client (token
//!   bound to the TLS client certificate of this very connection, RFC 8705).
//! - `DepartmentCaller`: a `Principal` that is a client; department routes take this, so a
//!   user token or a token without `cnf` never reaches them.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::Connection;
use super::permissions::{client_subject, user_subject};
use super::tokens::{KIND_CLIENT, KIND_USER};
use crate::error::Error;
use crate::ledger::Actor;
use crate::state::AppState;
use crate::storage::Versions;

/// The header a department system uses to name the officer it acts for (recorded in the audit
/// entry, never trusted for permissions).
pub const ON_BEHALF_OF: &str = "gridhub-on-behalf-of";

/// The shipped roles (API.md). Admins may define more through the roles API; code that needs
/// to know one of the shipped ones by name uses these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Dpo,
    GridWorker,
    Department,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dpo => "dpo",
            Role::GridWorker => "grid_worker",
            Role::Department => "department",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User { id: String, username: String },
    Client { id: String, thumbprint: String },
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub caller: Caller,
    pub department: Option<String>,
    pub roles: Vec<String>,
    /// `gridhub-on-behalf-of` of a client request.
    pub on_behalf_of: Option<String>,
    /// The state versions read once for this request: its role check and decisions use them.
    pub versions: Versions,
}

impl Principal {
    /// The user or client id.
    pub fn id(&self) -> &str {
        match &self.caller {
            Caller::User { id, .. } | Caller::Client { id, .. } => id,
        }
    }

    /// The casbin subject (`user:<id>` or `client:<id>`).
    pub fn subject(&self) -> String {
        match &self.caller {
            Caller::User { id, .. } => user_subject(id),
            Caller::Client { id, .. } => client_subject(id),
        }
    }

    /// Who this is in an audit entry.
    pub fn actor(&self) -> Actor {
        match &self.caller {
            Caller::User { id, .. } => Actor {
                department: self.department.clone(),
                ..Actor::user(id)
            },
            Caller::Client { id, .. } => Actor {
                client: Some(id.clone()),
                department: self.department.clone(),
                on_behalf_of: self.on_behalf_of.clone(),
                user: None,
            },
        }
    }

    pub fn is_client(&self) -> bool {
        matches!(self.caller, Caller::Client { .. })
    }
}

/// Why a token was refused: the audit reason. Never includes the token or its claims.
async fn refuse(state: &AppState, actor: Actor, reason: &str) -> Error {
    tracing::info!(reason, "token refused");
    state
        .deny(actor, "auth.token", reason, Error::Unauthenticated)
        .await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// `gridhub-on-behalf-of`: an officer id of 1–64 characters of `A-Z a-z 0-9 . _ - @ :`.
fn on_behalf_of(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(ON_BEHALF_OF) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|t| {
            (1..=64).contains(&t.len())
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_@:".contains(c))
        })
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "`{ON_BEHALF_OF}` must be 1–64 characters of letters, digits and . _ - @ :"
            ))
        })?;
    Ok(Some(text.to_owned()))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(refuse(state, Actor::default(), "no bearer token").await);
        };
        let claims = match state.tokens.verify(token) {
            Ok(c) => c,
            Err(_) => {
                return Err(refuse(state, Actor::default(), "invalid token").await);
            }
        };
        let versions = state.store.versions().await?;
        match claims.kind.as_str() {
            KIND_USER => {
                if claims.cnf.is_some() {
                    return Err(refuse(state, Actor::default(), "user token with cnf").await);
                }
                let Some(user) = state
                    .store
                    .user_by_id(&claims.sub)
                    .await?
                    .filter(|u| !u.disabled)
                else {
                    return Err(refuse(
                        state,
                        Actor::user(&claims.sub),
                        "unknown or disabled user",
                    )
                    .await);
                };
                Ok(Principal {
                    caller: Caller::User {
                        id: user.id,
                        username: user.username,
                    },
                    department: user.department,
                    roles: user.roles,
                    on_behalf_of: None,
                    versions,
                })
            }
            KIND_CLIENT => {
                let actor = Actor {
                    client: Some(claims.sub.clone()),
                    ..Actor::default()
                };
                let Some(bound) = claims.cnf.as_ref().map(|c| c.x5t_s256.as_str()) else {
                    return Err(refuse(state, actor, "client token without cnf").await);
                };
                let connection = parts.extensions.get::<Connection>();
                let Some(presented) = connection.and_then(|c| c.client_cert.as_deref()) else {
                    return Err(
                        refuse(state, actor, "client token without a client certificate").await,
                    );
                };
                if bound != presented {
                    return Err(refuse(state, actor, "token bound to another certificate").await);
                }
                let known = state.known_clients.get(presented, versions.policy);
                let client = match known {
                    Some(client) => client,
                    None => {
                        let Some(client) = state.store.client_by_thumbprint(presented).await?
                        else {
                            return Err(refuse(
                                state,
                                actor,
                                "certificate of no registered client",
                            )
                            .await);
                        };
                        // Read after the versions, so the row is at least that version's.
                        state
                            .known_clients
                            .insert(presented, versions.policy, &client);
                        client
                    }
                };
                if client.id != claims.sub {
                    return Err(refuse(state, actor, "token of another client").await);
                }
                if !client.active {
                    return Err(refuse(state, actor, "client revoked").await);
                }
                Ok(Principal {
                    caller: Caller::Client {
                        id: client.id,
                        thumbprint: client.thumbprint,
                    },
                    department: Some(client.department),
                    roles: client.roles,
                    on_behalf_of: on_behalf_of(&parts.headers)?,
                    versions,
                })
            }
            _ => Err(refuse(state, Actor::default(), "unknown token kind").await),
        }
    }
}

/// A department client: certificate-bound token on its own certificate. User tokens are
/// refused here with 401, audited.
#[derive(Debug, Clone)]
pub struct DepartmentCaller(pub Principal);

impl FromRequestParts<AppState> for DepartmentCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.is_client() {
            Ok(DepartmentCaller(principal))
        } else {
            Err(refuse(
                state,
                principal.actor(),
                "department route needs a certificate-bound client token",
            )
            .await)
        }
    }
}
