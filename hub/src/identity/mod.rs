//! Identity administration: departments and their jurisdiction (`departments`), department
//! systems registered with a certificate and revoked (`clients`), roles with their permission
//! lines and who holds them (`roles`), and users (`users`); and the reference data they are
//! defined against: the grid hierarchy (`grids`) and registered purposes (`purposes`).
//!
//! Invariants: every administrative method checks the caller's role permission itself
//! (`Access::authorize`, audited on refusal; `calling_client` only reports what the
//! authenticated caller is); every change is a durable `allow` ledger entry before it is stored;
//! a rejected request names the fields at fault (`Error::Validation`) and never echoes what was
//! sent. Nothing here knows HTTP: `routes/departments.rs`, `routes/roles.rs`, `routes/admin.rs`,
//! `routes/grids.rs`, `routes/purposes.rs` and the console's admin pages parse, call one method
//! and respond.

mod clients;
mod departments;
mod grids;
mod purposes;
mod roles;
mod users;
// Department clients' witness keys and their cosignatures (issue 21).
mod witnesses;

use std::sync::Arc;

use policy::{FieldProblem, GridCode};

pub use clients::{CLIENT_CERT_DAYS, CallingClient, ClientDraft};
pub use departments::DepartmentDraft;
pub use grids::GridDraft;
pub use purposes::PurposeDraft;
pub use roles::{Permission, RolePut};
pub use users::{CreatedUser, UserDraft, UserView, valid_username};
pub use witnesses::{AcceptedCosignature, note_text};

use crate::auth::Access;
use crate::error::Error;
use crate::storage::Store;
use crate::vault::Vault;

/// The identity service. Cheap to share (`Arc`).
pub struct Identity {
    access: Access,
    store: Store,
    /// Holds the hub CA key that signs client certificates.
    vault: Arc<Vault>,
}

impl Identity {
    pub fn new(access: Access, store: Store, vault: Arc<Vault>) -> Identity {
        Identity {
            access,
            store,
            vault,
        }
    }

    /// A stored grid's canonical code, or the problem with `text` (filed under `field`).
    async fn known_grid(
        &self,
        field: &str,
        text: &str,
    ) -> Result<Result<GridCode, FieldProblem>, Error> {
        Ok(match GridCode::parse(text) {
            Ok(code) if self.store.grid_exists(&code).await? => Ok(code),
            Ok(_) => Err(problem(field, "unknown grid")),
            Err(_) => Err(problem(field, "not a grid code")),
        })
    }
}

/// Department and client ids: 2–63 of `a-z 0-9 -`, starting with a letter or digit (a DNS
/// label, so it fits certificate names).
fn valid_id(id: &str) -> bool {
    (2..=63).contains(&id.len())
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What `valid_id` requires, as a field problem says it.
const ID_RULE: &str = "2–63 characters of a-z, 0-9 and -, starting with a letter or digit";

fn problem(field: &str, text: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        problem: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_id;

    #[test]
    fn ids_are_dns_labels() {
        assert!(valid_id("health"));
        assert!(valid_id("9-civil"));
        assert!(!valid_id("h"));
        assert!(!valid_id("-health"));
        assert!(!valid_id("Health"));
        assert!(!valid_id(&"a".repeat(64)));
    }
}
