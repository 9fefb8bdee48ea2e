//! The authenticated caller. Built only by the extractors below, from a verified token, the
//! connection it arrived on and the caller's current row (so a disabled user, a revoked client
//! or a changed role takes effect on the next request). Every refusal is audited.
//!
//! The HTTP extractors (`crate::extract`) call `Authenticator`; nothing here knows the
//! application self.
//!
//! - `Principal`: a user (console/API token, any connection) or a department client (token
//!   bound to the TLS client certificate of this very connection, RFC 8705).
//! - `DepartmentCaller`: a `Principal` that is a client; department routes take this, so a
//!   user token or a token without `cnf` never reaches them.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::known_clients::KnownClients;
use super::permissions::{client_subject, user_subject};
use super::tokens::{KIND_CLIENT, KIND_USER, TokenIssuer};
use super::{Access, Connection};
use crate::error::Error;
use crate::ledger::Actor;
use crate::storage::{ClientRow, Store, UserRow, Versions};

/// The id the operator principal acts under (the ledger's `system` actor).
const OPERATOR_ID: &str = "system";

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
    User {
        id: String,
        username: String,
    },
    Client {
        id: String,
        thumbprint: String,
    },
    /// The operator of a CLI command that works on the data directory directly (it holds the
    /// keyring already); audited as the `system` actor, as `gridhub admin recover` is.
    Operator,
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
    /// User `user` as its request is seen, at the state `versions` it read. Only for a user row
    /// that was checked (an authenticated token, or the demo acting as its own users).
    pub fn of_user(user: UserRow, versions: Versions) -> Principal {
        Principal {
            caller: Caller::User {
                id: user.id,
                username: user.username,
            },
            department: user.department,
            roles: user.roles,
            on_behalf_of: None,
            versions,
        }
    }

    /// Client `client` (acting for `on_behalf_of`), as `of_user`.
    pub fn of_client(
        client: ClientRow,
        on_behalf_of: Option<String>,
        versions: Versions,
    ) -> Principal {
        Principal {
            caller: Caller::Client {
                id: client.id,
                thumbprint: client.thumbprint,
            },
            department: Some(client.department),
            roles: client.roles,
            on_behalf_of,
            versions,
        }
    }

    /// The operator of a data directory (`gridhub import --data-dir`), holding the `admin`
    /// role's permissions. Built only by CLI commands that opened the keyring themselves: whoever
    /// runs them can read and write every record anyway.
    pub fn operator(versions: Versions) -> Principal {
        Principal {
            caller: Caller::Operator,
            department: None,
            roles: vec![Role::Admin.as_str().to_owned()],
            on_behalf_of: None,
            versions,
        }
    }

    /// The user or client id (`system` for the operator).
    pub fn id(&self) -> &str {
        match &self.caller {
            Caller::User { id, .. } | Caller::Client { id, .. } => id,
            Caller::Operator => OPERATOR_ID,
        }
    }

    /// The casbin subject (`user:<id>` or `client:<id>`). The operator's subject is the role
    /// `admin` itself: casbin's role manager counts every name as holding itself, so the
    /// operator gets exactly the admin role's permissions, and no user id can collide with it
    /// (user subjects are prefixed).
    pub fn subject(&self) -> String {
        match &self.caller {
            Caller::User { id, .. } => user_subject(id),
            Caller::Client { id, .. } => client_subject(id),
            Caller::Operator => Role::Admin.as_str().to_owned(),
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
            Caller::Operator => Actor::system(),
        }
    }

    pub fn is_client(&self) -> bool {
        matches!(self.caller, Caller::Client { .. })
    }
}

/// Why a token was refused: the audit reason. Never includes the token or its claims. A refusal
/// with an anonymous actor (the token is absent or did not verify) may be counted into its
/// address's per-minute summary instead of an entry of its own (`Access::deny`).
async fn refuse(auth: &Authenticator<'_>, actor: Actor, reason: &str) -> Error {
    tracing::info!(reason, "token refused");
    auth.access
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

/// What authenticating a request needs: the token keys, the stored users and clients (with the
/// clients remembered by certificate), and the audited gate for refusals.
pub struct Authenticator<'a> {
    pub tokens: &'a TokenIssuer,
    pub store: &'a Store,
    pub known_clients: &'a KnownClients,
    pub access: &'a Access,
}

impl Authenticator<'_> {
    /// The caller of a request with `headers`, arriving on `connection`; every refusal is a
    /// `deny` entry (`auth.token`) and 401.
    pub async fn principal(
        &self,
        headers: &HeaderMap,
        connection: Option<&Connection>,
    ) -> Result<Principal, Error> {
        let Some(token) = bearer(headers) else {
            return Err(refuse(self, Actor::default(), "no bearer token").await);
        };
        let claims = match self.tokens.verify(token) {
            Ok(c) => c,
            Err(_) => {
                return Err(refuse(self, Actor::default(), "invalid token").await);
            }
        };
        let versions = self.store.versions().await?;
        match claims.kind.as_str() {
            KIND_USER => {
                if claims.cnf.is_some() {
                    return Err(refuse(self, Actor::default(), "user token with cnf").await);
                }
                let Some(user) = self
                    .store
                    .user_by_id(&claims.sub)
                    .await?
                    .filter(|u| !u.disabled)
                else {
                    return Err(
                        refuse(self, Actor::user(&claims.sub), "unknown or disabled user").await,
                    );
                };
                Ok(Principal::of_user(user, versions))
            }
            KIND_CLIENT => {
                let actor = Actor {
                    client: Some(claims.sub.clone()),
                    ..Actor::default()
                };
                let Some(bound) = claims.cnf.as_ref().map(|c| c.x5t_s256.as_str()) else {
                    return Err(refuse(self, actor, "client token without cnf").await);
                };
                let Some(presented) = connection.and_then(|c| c.client_cert.as_deref()) else {
                    return Err(
                        refuse(self, actor, "client token without a client certificate").await,
                    );
                };
                if bound != presented {
                    return Err(refuse(self, actor, "token bound to another certificate").await);
                }
                let known = self.known_clients.get(presented, versions.policy);
                let client = match known {
                    Some(client) => client,
                    None => {
                        let Some(client) = self.store.client_by_thumbprint(presented).await? else {
                            return Err(
                                refuse(self, actor, "certificate of no registered client").await
                            );
                        };
                        // Read after the versions, so the row is at least that version's.
                        self.known_clients
                            .insert(presented, versions.policy, &client);
                        client
                    }
                };
                if client.id != claims.sub {
                    return Err(refuse(self, actor, "token of another client").await);
                }
                if !client.active {
                    return Err(refuse(self, actor, "client revoked").await);
                }
                let on_behalf_of = on_behalf_of(headers)?;
                Ok(Principal::of_client(client, on_behalf_of, versions))
            }
            _ => Err(refuse(self, Actor::default(), "unknown token kind").await),
        }
    }
}

/// A department client: certificate-bound token on its own certificate. User tokens are
/// refused here with 401, audited.
#[derive(Debug, Clone)]
pub struct DepartmentCaller(pub Principal);

impl Authenticator<'_> {
    /// As `principal`, for department routes: a user token is refused (401, audited).
    pub async fn department_caller(
        &self,
        headers: &HeaderMap,
        connection: Option<&Connection>,
    ) -> Result<DepartmentCaller, Error> {
        let principal = self.principal(headers, connection).await?;
        if principal.is_client() {
            Ok(DepartmentCaller(principal))
        } else {
            Err(refuse(
                self,
                principal.actor(),
                "department route needs a certificate-bound client token",
            )
            .await)
        }
    }
}
