//! Shared application state handed to every handler.

use std::sync::Arc;

use crate::auth::Access;
use crate::auth::Principal;
use crate::auth::known_clients::KnownClients;
use crate::auth::login_limiter::LoginLimiter;
use crate::auth::permissions::Permissions;
use crate::auth::tokens::TokenIssuer;
use crate::cases::Cases;
use crate::config::Settings;
use crate::decisions::Decisions;
use crate::disclosure::Disclosures;
use crate::error::Error;
use crate::grants::Grants;
use crate::identity::Identity;
use crate::ledger::{Actor, Appended, EntryDraft, Ledger, Receipt};
use crate::oversight::Oversight;
use crate::storage::Store;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub decisions: Arc<Decisions>,
    pub tokens: Arc<TokenIssuer>,
    /// The catalog and its changes (`crate::catalog`).
    pub catalog: Arc<crate::catalog::CatalogService>,
    /// Statistics answers (`crate::statistics`).
    pub statistics: Arc<crate::statistics::Statistics>,
    pub ledger: Ledger,
    /// What `GET /metrics` serves (`crate::metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    pub permissions: Arc<Permissions>,
    pub login_limiter: Arc<LoginLimiter>,
    /// Department clients by certificate, as read at a policy version.
    pub known_clients: Arc<KnownClients>,
    /// Role permissions and the ledger, as the services use them.
    pub access: Access,
    /// Pulls and lookups (`crate::disclosure`).
    pub disclosures: Arc<Disclosures>,
    /// Anomalies and subject access reports (`crate::oversight`).
    pub oversight: Arc<Oversight>,
    /// The grant lifecycle.
    pub grants: Arc<Grants>,
    /// The case service (report, assign, reply, close, read).
    pub cases: Arc<Cases>,
    /// Grid-side record writes and reads (`crate::records`).
    pub records: Arc<crate::records::Records>,
    /// Departments, clients, roles and users (`crate::identity`).
    pub identity: Arc<Identity>,
    /// Where console sessions read the time (tests move it: `crate::time::Clock`).
    pub clock: Arc<dyn crate::time::Clock>,
    /// Webhook endpoints, the outbox sweep and delivery, NATS (`crate::webhooks`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// KEK rotation and the rewrap (`crate::keys`).
    pub keys: Arc<crate::keys::Keys>,
}

impl AppState {
    /// See `Access::record`.
    pub async fn audit(&self, draft: EntryDraft) -> Result<Appended, Error> {
        self.access.record(draft).await
    }

    /// See `Access::record_with_receipt`.
    pub async fn audit_with_receipt(&self, draft: EntryDraft) -> Result<Receipt, Error> {
        self.access.record_with_receipt(draft).await
    }

    /// See `Access::authorize`.
    pub async fn authorize(
        &self,
        who: &Principal,
        object: &str,
        action: &str,
        grid: Option<&policy::GridCode>,
        audit_action: &str,
    ) -> Result<(), Error> {
        self.access
            .authorize(who, object, action, grid, audit_action)
            .await
    }

    /// See `Access::permits`.
    pub async fn permits(&self, who: &Principal, domain: &str, object: &str, action: &str) -> bool {
        self.access.permits(who, domain, object, action).await
    }

    /// See `Access::deny`.
    pub async fn deny(&self, actor: Actor, action: &str, reason: &str, error: Error) -> Error {
        self.access.deny(actor, action, reason, error).await
    }
}
