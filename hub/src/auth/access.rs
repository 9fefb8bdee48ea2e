//! The audited gate every service passes through: role permissions (casbin) checked at the
//! policy version the request read, and the ledger entries of what was decided.
//!
//! Invariant: a refusal answered from here has a `deny` entry in the ledger first, naming the
//! address the request came from; if even that entry cannot be written the answer is
//! `audit_unavailable`, never the refusal alone. The one exception is bounded and still
//! counted: a refusal of a caller that named no user or client, from an address whose refusal
//! of the same action is already in the ledger this minute, is counted for that window's
//! summary entry instead (`super::refusals`).

use std::sync::Arc;

use policy::GridCode;

use super::Principal;
use super::permissions::{NO_GRID, Permissions};
use super::refusals::{Admission, Refusals};
use super::source::current_source;
use crate::error::{Error, current_request_id};
use crate::ledger::{Actor, Appended, Decision, EntryDraft, Ledger, Receipt};

/// Role permissions and the ledger, as services use them. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    ledger: Ledger,
    permissions: Arc<Permissions>,
    refusals: Arc<Refusals>,
}

impl Access {
    pub fn new(ledger: Ledger, permissions: Arc<Permissions>, refusals: Arc<Refusals>) -> Access {
        Access {
            ledger,
            permissions,
            refusals,
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The counter of anonymous refusals (its flusher and shutdown flush).
    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.refusals
    }

    /// Record an entry in the ledger and wait until it is durable. Callers act only after this
    /// returns Ok (fail closed: `audit_unavailable`).
    pub async fn record(&self, draft: EntryDraft) -> Result<Appended, Error> {
        Ok(self.ledger.append(draft).await?)
    }

    /// As `record`, returning the signed receipt.
    pub async fn record_with_receipt(&self, draft: EntryDraft) -> Result<Receipt, Error> {
        let appended = self.record(draft).await?;
        Ok(self.ledger.receipt(&appended))
    }

    /// Does the caller's role permit `action` on `object` (in `grid`, for grid-bound objects)?
    /// If not: audited as `audit_action` and answered 403 `forbidden`.
    pub async fn authorize(
        &self,
        who: &Principal,
        object: &str,
        action: &str,
        grid: Option<&GridCode>,
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

    /// Record a denied access (with the request's source address) and return the error to
    /// answer with. If even the denial cannot be recorded, the answer is `audit_unavailable`.
    /// A caller that named no user or client may be counted instead (module docs).
    pub async fn deny(&self, actor: Actor, action: &str, reason: &str, error: Error) -> Error {
        let request_id = current_request_id();
        let source = current_source();
        let anchor = match source {
            Some(address) if actor.is_anonymous() => {
                match self.refusals.admit(action, address, reason, &request_id) {
                    Admission::Counted => return error,
                    Admission::Record(key) => Some(key),
                }
            }
            _ => None,
        };
        let draft = EntryDraft::new(actor, action, Decision::Deny, request_id)
            .reason(reason)
            .source(source.map(|ip| ip.to_string()));
        match self.record(draft).await {
            Ok(_) => {
                if let Some(key) = anchor {
                    self.refusals.anchor(key);
                }
                error
            }
            Err(e) => e,
        }
    }
}
