//! The grant lifecycle (API.md "Grants", DESIGN.md §3): a department requests a grant for
//! itself (an admin for anyone); a DPO other than the requester approves it — which signs the
//! grant artefact — or rejects it with a reason; DPOs and admins suspend, resume and revoke; the
//! expiry sweep records `expired` once the window has ended.
//!
//! Guarantees: every method checks the caller's role itself (`Access::authorize`, so no caller
//! can forget it); every transition is audited before it is stored, stored only if the grant is
//! still in the status it was read in, and applied to the decision index at once, so it counts
//! on the next request. Nothing here knows HTTP: callers pass typed values and a `Principal`.
//!
//! - `terms.rs`: a request as submitted, parsed into `GrantTerms` (the creation refusals).
//! - `artefact.rs`: signing the artefact at approval.
//! - `visibility.rs`: list, get and artefact, with who may read which grant.
//! - `expiry.rs`: the sweep.

mod artefact;
mod expiry;
mod terms;
mod visibility;
// The watchlist and who can see one record (issue 20).
pub mod reach;
pub mod watchlist;

use std::sync::Arc;

use policy::grant::{ANSWER_WORKING_DAYS, answer_due};
use policy::{GrantAction, GrantStatus, WorkingCalendar};

pub use artefact::ARTEFACT_TYPE;
pub use expiry::EXPIRY_SWEEP;
pub use terms::{GrantDraft, checked_terms};
pub use visibility::{GrantQuery, GrantView};

use crate::auth::tokens::TokenIssuer;
use crate::auth::{Access, Principal};
use crate::decisions::Decisions;
use crate::error::{Error, current_request_id};
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::storage::{
    Consent, ConsentAnswer, ConsentState, GrantRow, GrantTransition, Store, Transitioned,
};
use crate::time::now_ms;
use crate::vault::Vault;

/// The grant service. Cheap to share behind an `Arc`.
pub struct Grants {
    access: Access,
    store: Store,
    /// Compiles row filters at request time, as the decision index will.
    vault: Arc<Vault>,
    decisions: Arc<Decisions>,
    tokens: Arc<TokenIssuer>,
    /// Counts the 5 working days a DPO has to answer.
    calendar: WorkingCalendar,
}

impl Grants {
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        decisions: Arc<Decisions>,
        tokens: Arc<TokenIssuer>,
        calendar: WorkingCalendar,
    ) -> Grants {
        Grants {
            access,
            store,
            vault,
            decisions,
            tokens,
            calendar,
        }
    }

    /// Request a grant: stored as `requested`, answer due in 5 working days of the working
    /// calendar. A department requests for itself (`grants:request`), others need
    /// `grants:request_any`; refused terms are 422 naming every problem.
    pub async fn request(&self, who: &Principal, draft: GrantDraft) -> Result<GrantRow, Error> {
        let own = who.department.as_deref() == Some(draft.grantee.as_str());
        let action = if own { "request" } else { "request_any" };
        self.access
            .authorize(who, "grants", action, None, "grant.request")
            .await?;
        let now = now_ms();
        let catalog = self.decisions.catalog_at(who.versions.decision).await?;
        let context = terms::TermsContext {
            store: &self.store,
            vault: &self.vault,
            catalog,
            now,
        };
        let (terms, statistics) = draft.parse(&context).await?;
        let owned = catalog
            .category(&terms.category)
            .is_some_and(|c| c.owner.is_some());
        let consent = owned.then_some(Consent {
            state: ConsentState::Pending,
            by: None,
            at: None,
            reason: None,
        });
        let row = GrantRow {
            id: uuid::Uuid::now_v7().to_string(),
            status: GrantStatus::Requested,
            requested_by: who.subject(),
            requested_at: now,
            answer_due: answer_due(&self.calendar, now, ANSWER_WORKING_DAYS)
                .ok_or_else(|| Error::Internal("the answer deadline is out of range".to_owned()))?,
            decided_by: None,
            decided_at: None,
            reason: None,
            artefact: None,
            updated_at: now,
            terms,
            statistics,
            consent,
        };
        self.access
            .record(
                grant_entry(who.actor(), "grant.request", Decision::Allow, &row)
                    .reason("grant requested"),
            )
            .await?;
        self.store.insert_grant(&row).await?;
        Ok(row)
    }

    /// Approve a requested grant (a DPO other than the requester); signs the artefact.
    pub async fn approve(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.transition(who, id, GrantAction::Approve, reason).await
    }

    /// Reject a requested grant (a DPO other than the requester); `reason` is required.
    pub async fn reject(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.transition(who, id, GrantAction::Reject, reason).await
    }

    /// Suspend an approved grant: no data flows until it is resumed.
    pub async fn suspend(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.transition(who, id, GrantAction::Suspend, reason).await
    }

    /// Resume a suspended grant.
    pub async fn resume(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.transition(who, id, GrantAction::Resume, reason).await
    }

    /// Revoke a grant for good.
    pub async fn revoke(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.transition(who, id, GrantAction::Revoke, reason).await
    }

    /// Apply `action` to grant `id` for `who`; the status it moved to. 403 without the
    /// permission (or for the requester deciding on its own grant), 404 for an unknown id, 409
    /// when the status does not allow it or changed meanwhile, 422 for a bad reason.
    async fn transition(
        &self,
        who: &Principal,
        id: &str,
        action: GrantAction,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        let audit_action = format!("grant.{}", action.as_str());
        self.access
            .authorize(who, "grants", permission(action), None, &audit_action)
            .await?;
        let reason = check_reason(reason, action == GrantAction::Reject)?;
        let row = self
            .store
            .grant(id)
            .await?
            .ok_or(Error::NotFound("grant"))?;
        let now = now_ms();
        if matches!(action, GrantAction::Approve | GrantAction::Reject)
            && row.requested_by == who.subject()
        {
            let why = "the requester of a grant cannot decide on it";
            let error = Error::Forbidden(why.to_owned());
            return Err(self
                .access
                .deny(who.actor(), &audit_action, why, error)
                .await);
        }
        let current = effective_status(&row, now);
        let Some(next) = current.after(action) else {
            return Err(Error::Conflict(format!(
                "cannot {} a grant that is {current}",
                action.as_str()
            )));
        };
        if action == GrantAction::Approve && now >= row.terms.valid_until {
            return Err(Error::Conflict(
                "the grant's window has already ended".to_owned(),
            ));
        }
        // A grant on a department-owned category is signed when the second of the DPO's
        // approval and the owner's consent arrives: the artefact names both.
        let artefact = match (action, &row.consent) {
            (GrantAction::Approve, None) => {
                Some(artefact::sign(&self.tokens, &row, &who.subject(), now)?)
            }
            (GrantAction::Approve, Some(c)) if c.state == ConsentState::Given => {
                let owner = self
                    .owner_of(who, &row.terms.category)
                    .await?
                    .ok_or_else(|| {
                        Error::Internal("a consented grant without an owner".to_owned())
                    })?;
                Some(artefact::sign_with_consent(
                    &self.tokens,
                    &row,
                    &who.subject(),
                    &owner,
                    now,
                )?)
            }
            _ => None,
        };
        let entry =
            grant_entry(who.actor(), &audit_action, Decision::Allow, &row).reason(&match &reason {
                Some(r) => format!("{current} → {next}: {r}"),
                None => format!("{current} → {next}"),
            });
        self.access.record(entry).await?;
        let outcome = self
            .store
            .transition_grant(&GrantTransition {
                id,
                from: row.status,
                to: next,
                actor: &who.subject(),
                action: action.as_str(),
                reason: reason.as_deref(),
                artefact: artefact.as_deref(),
                now,
            })
            .await?;
        let Transitioned::Done { version } = outcome else {
            return Err(Error::Conflict(
                "the grant changed meanwhile; read it again".to_owned(),
            ));
        };
        let mut after = row;
        after.status = next;
        self.apply_to_index(version, &after)?;
        Ok(next)
    }

    /// The owning department consents to grant `id` (`grants:request`, the department's own
    /// permission, and the caller's department publishes the grant's category). With the DPO's
    /// approval already given, the grant is now in force and its artefact is signed.
    pub async fn consent(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.answer_consent(who, id, ConsentState::Given, reason)
            .await
    }

    /// The owning department declines grant `id` with a reason: the grant is rejected.
    pub async fn decline(
        &self,
        who: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        self.answer_consent(who, id, ConsentState::Declined, reason)
            .await
    }

    async fn answer_consent(
        &self,
        who: &Principal,
        id: &str,
        answer: ConsentState,
        reason: Option<&str>,
    ) -> Result<GrantStatus, Error> {
        let audit_action = match answer {
            ConsentState::Declined => "grant.decline",
            _ => "grant.consent",
        };
        self.access
            .authorize(who, "grants", "request", None, audit_action)
            .await?;
        let reason = check_reason(reason, answer == ConsentState::Declined)?;
        let row = self
            .store
            .grant(id)
            .await?
            .ok_or(Error::NotFound("grant"))?;
        let owner = self.owner_of(who, &row.terms.category).await?;
        let Some(owner) = owner.filter(|o| who.department.as_deref() == Some(o.as_str())) else {
            let why = "only the department that publishes the category answers for it";
            let error = Error::Forbidden(why.to_owned());
            return Err(self
                .access
                .deny(who.actor(), audit_action, why, error)
                .await);
        };
        let now = now_ms();
        let current = effective_status(&row, now);
        let pending = row
            .consent
            .as_ref()
            .is_some_and(|c| c.state == ConsentState::Pending);
        if !pending || !matches!(current, GrantStatus::Requested | GrantStatus::Approved) {
            return Err(Error::Conflict(format!(
                "the grant is {current} and its owner's answer is {}; nothing to answer",
                row.consent
                    .as_ref()
                    .map_or("not needed", |c| c.state.as_str())
            )));
        }
        let next = match answer {
            ConsentState::Declined => GrantStatus::Rejected,
            _ => current,
        };
        let artefact = match (answer, &row.decided_by) {
            (ConsentState::Given, Some(approver)) if current == GrantStatus::Approved => {
                let mut consented = row.clone();
                consented.consent = Some(Consent {
                    state: ConsentState::Given,
                    by: Some(who.subject()),
                    at: Some(now),
                    reason: reason.clone(),
                });
                Some(artefact::sign_with_consent(
                    &self.tokens,
                    &consented,
                    approver,
                    &owner,
                    now,
                )?)
            }
            _ => None,
        };
        let entry = grant_entry(who.actor(), audit_action, Decision::Allow, &row).reason(&match (
            &reason, answer,
        ) {
            (Some(r), ConsentState::Declined) => format!("declined by the owner {owner}: {r}"),
            (Some(r), _) => format!("consented by the owner {owner}: {r}"),
            (None, _) => format!("consented by the owner {owner}"),
        });
        self.access.record(entry).await?;
        let outcome = self
            .store
            .answer_consent(&ConsentAnswer {
                id,
                status: row.status,
                to: answer,
                next_status: next,
                actor: &who.subject(),
                reason: reason.as_deref(),
                artefact: artefact.as_deref(),
                now,
            })
            .await?;
        let Transitioned::Done { version } = outcome else {
            return Err(Error::Conflict(
                "the grant changed meanwhile; read it again".to_owned(),
            ));
        };
        let mut after = row;
        after.status = next;
        if let Some(c) = after.consent.as_mut() {
            c.state = answer;
        }
        self.apply_to_index(version, &after)?;
        Ok(next)
    }

    /// Put a grant as it now stands into the decision index (in force: in; otherwise out).
    fn apply_to_index(&self, version: i64, after: &GrantRow) -> Result<(), Error> {
        if after.statistics.is_some() {
            // Statistics grants never enter the record index; still take the version.
            return self.decisions.apply(version, |_| {});
        }
        let live = self.decisions.live_grant(after)?;
        let status = if after.in_force() {
            GrantStatus::Approved
        } else if after.status == GrantStatus::Approved {
            // Approved by the DPO, waiting for the owner: not in force yet.
            GrantStatus::Requested
        } else {
            after.status
        };
        self.decisions.apply(version, move |index| {
            // Only an unknown category fails, and stored grants name known ones.
            let _ = index.upsert_grant(&live, status);
        })
    }
}

/// The status shown to callers: an approved or suspended grant past its window is expired.
fn effective_status(row: &GrantRow, now: i64) -> GrantStatus {
    match row.status {
        GrantStatus::Approved | GrantStatus::Suspended if now >= row.terms.valid_until => {
            GrantStatus::Expired
        }
        other => other,
    }
}

/// The ledger entry of an action on grant `row`.
fn grant_entry(actor: Actor, action: &str, decision: Decision, row: &GrantRow) -> EntryDraft {
    EntryDraft::new(actor, action, decision, current_request_id())
        .category(&row.terms.category)
        .purpose(&row.terms.purpose)
        .grants(vec![row.id.clone()])
}

/// A transition's reason: one line of at most 500 characters, required to reject.
fn check_reason(reason: Option<&str>, required: bool) -> Result<Option<String>, Error> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        None if required => Err(Error::validation(
            "reason",
            "a rejection must give its reason",
        )),
        Some(r) if r.chars().count() > 500 || r.contains(['\n', '\r']) => Err(Error::validation(
            "reason",
            "one line of at most 500 characters",
        )),
        r => Ok(r.map(str::to_owned)),
    }
}

/// The permission each action needs: approving and rejecting is the DPO's; suspending,
/// resuming and revoking is `manage`.
fn permission(action: GrantAction) -> &'static str {
    match action {
        GrantAction::Approve | GrantAction::Reject => "approve",
        _ => "manage",
    }
}
