//! Shared application state handed to every handler.

use std::sync::Arc;

use policy::Catalog;

use crate::auth::Principal;
use crate::auth::known_clients::KnownClients;
use crate::auth::login_limiter::LoginLimiter;
use crate::auth::permissions::{NO_GRID, Permissions};
use crate::auth::tokens::TokenIssuer;
use crate::config::Settings;
use crate::decisions::Decisions;
use crate::error::{Error, current_request_id};
use crate::ledger::{Actor, Appended, Decision, EntryDraft, Ledger, Receipt};
use crate::storage::Store;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub decisions: Arc<Decisions>,
    pub tokens: Arc<TokenIssuer>,
    pub catalog: &'static Catalog,
    pub ledger: Ledger,
    pub permissions: Arc<Permissions>,
    pub login_limiter: Arc<LoginLimiter>,
    /// Department clients by certificate, as read at a policy version.
    pub known_clients: Arc<KnownClients>,
}

impl AppState {
    /// Record an entry in the ledger and wait until it is durable. Callers act only after this
    /// returns Ok (fail closed: `audit_unavailable`).
    pub async fn audit(&self, draft: EntryDraft) -> Result<Appended, Error> {
        Ok(self.ledger.append(draft).await?)
    }

    /// As `audit`, returning the signed receipt.
    pub async fn audit_with_receipt(&self, draft: EntryDraft) -> Result<Receipt, Error> {
        let appended = self.audit(draft).await?;
        Ok(self.ledger.receipt(&appended))
    }

    /// Does the caller's role permit `action` on `object` (in `grid`, for grid-bound objects)?
    /// If not: audited as `audit_action` and answered 403 `forbidden`.
    pub async fn authorize(
        &self,
        who: &Principal,
        object: &str,
        action: &str,
        grid: Option<&policy::GridCode>,
        audit_action: &str,
    ) -> Result<(), Error> {
        let domain = grid.map_or(NO_GRID, |g| g.as_str());
        if self.permits(who, domain, object, action).await {
            return Ok(());
        }
        let reason = match grid {
            Some(_) => format!("no role permits `{action}` on `{object}` in this grid"),
            None => format!("no role permits `{action}` on `{object}`"),
        };
        Err(self
            .deny(
                who.actor(),
                audit_action,
                &reason,
                Error::Forbidden(reason.clone()),
            )
            .await)
    }

    /// Does the caller's role permit `action` on `object` in `domain` (a grid code or
    /// `NO_GRID`), at the policy version its request read? Not audited: `authorize` is the
    /// audited form.
    pub async fn permits(&self, who: &Principal, domain: &str, object: &str, action: &str) -> bool {
        self.permissions
            .allows_at(who.versions.policy, &who.subject(), domain, object, action)
            .await
    }

    /// Record a denied access and return the error to answer with. If even the denial cannot
    /// be recorded, the answer is `audit_unavailable`.
    pub async fn deny(&self, actor: Actor, action: &str, reason: &str, error: Error) -> Error {
        let draft =
            EntryDraft::new(actor, action, Decision::Deny, current_request_id()).reason(reason);
        match self.audit(draft).await {
            Ok(_) => error,
            Err(e) => e,
        }
    }
}
