//! Shared application state handed to every handler.

use std::sync::Arc;

use policy::Catalog;

use crate::auth::tokens::TokenIssuer;
use crate::config::Settings;
use crate::error::{Error, current_request_id};
use crate::ledger::{Actor, Appended, Decision, EntryDraft, Ledger, Receipt};
use crate::storage::Store;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub tokens: Arc<TokenIssuer>,
    pub catalog: &'static Catalog,
    pub ledger: Ledger,
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
