//! The authenticated caller. Built only by the extractor below, from a verified token and the
//! user's current row (so a disabled user or a changed role takes effect on the next request).

use std::collections::BTreeSet;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use policy::GridCode;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::state::AppState;

/// The shipped roles (API.md). Role permissions become admin-defined (casbin) in the identity
/// issue; until then each route checks the roles it needs here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Dpo,
    GridWorker,
    Department,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "dpo" => Some(Role::Dpo),
            "grid_worker" => Some(Role::GridWorker),
            "department" => Some(Role::Department),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dpo => "dpo",
            Role::GridWorker => "grid_worker",
            Role::Department => "department",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub department: Option<String>,
    pub roles: BTreeSet<Role>,
    /// Grids a grid worker may write in (subtrees).
    pub grids: Vec<GridCode>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Ok if the caller holds any of `roles`, else 403.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this action needs one of the roles: {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Admins write anywhere; grid workers only inside their own grids.
    pub fn may_write_in(&self, grid: &GridCode) -> bool {
        self.has(Role::Admin)
            || (self.has(Role::GridWorker) && self.grids.iter().any(|g| g.contains(grid)))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Error::Unauthenticated)?;
        let claims = state
            .tokens
            .verify(token.trim())
            .map_err(|_| Error::Unauthenticated)?;
        if claims.kind != "user" {
            return Err(Error::Unauthenticated);
        }
        let user = state
            .store
            .user_by_id(&claims.sub)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(Error::Unauthenticated)?;
        let roles = user.roles.iter().filter_map(|r| Role::parse(r)).collect();
        let grids = user
            .grids
            .iter()
            .filter_map(|g| GridCode::parse(g).ok())
            .collect();
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            department: user.department,
            roles,
            grids,
        })
    }
}
