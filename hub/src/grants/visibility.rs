//! Reading grants, with who may read what: DPOs and admins (`grants:read`) every grant, a
//! department its own. Guarantees: a refused read is a `deny` entry and 403 (`Access`);
//! an unknown id is 404 whoever asks.

use policy::GrantStatus;

use super::{Grants, effective_status};
use crate::auth::Principal;
use crate::auth::permissions::NO_GRID;
use crate::error::Error;
use crate::storage::{GrantEvent, GrantRow};
use crate::time::now_ms;

/// A grant as callers see it at one instant.
#[derive(Debug, Clone)]
pub struct GrantView {
    pub grant: GrantRow,
    /// `expired` as soon as the window ends, even before the sweep records it.
    pub status: GrantStatus,
    /// Still `requested` after `answer_due`.
    pub overdue: bool,
    /// Oldest first; empty in lists.
    pub history: Vec<GrantEvent>,
}

impl GrantView {
    fn at(grant: GrantRow, history: Vec<GrantEvent>, now: i64) -> GrantView {
        let status = effective_status(&grant, now);
        GrantView {
            overdue: status == GrantStatus::Requested && now > grant.answer_due,
            status,
            grant,
            history,
        }
    }
}

/// Which grants to list.
#[derive(Debug, Clone, Default)]
pub struct GrantQuery {
    /// A department id; a department may only ask for its own (the default for it).
    pub grantee: Option<String>,
    pub status: Option<GrantStatus>,
}

impl Grants {
    /// Grants, newest first (at most 1 000): every grant for DPOs and admins, a department's
    /// own for the department. Asking for another department's without `grants:read` is 403.
    pub async fn list(&self, who: &Principal, query: GrantQuery) -> Result<Vec<GrantView>, Error> {
        let grantee = if self.reads_all(who).await {
            query.grantee
        } else {
            match (&who.department, &query.grantee) {
                (Some(own), None) => Some(own.clone()),
                (Some(own), Some(asked)) if own == asked => Some(own.clone()),
                _ => {
                    self.access
                        .authorize(who, "grants", "read", None, "grant.read")
                        .await?;
                    query.grantee
                }
            }
        };
        let rows = self.store.grants(grantee.as_deref(), query.status).await?;
        let now = now_ms();
        Ok(rows
            .into_iter()
            .map(|g| GrantView::at(g, Vec::new(), now))
            .collect())
    }

    /// One grant with its history.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<GrantView, Error> {
        let row = self.visible(who, id).await?;
        let history = self.store.grant_events(id).await?;
        Ok(GrantView::at(row, history, now_ms()))
    }

    /// The signed artefact of an approved grant (a compact JWS); 409 before approval.
    pub async fn artefact(&self, who: &Principal, id: &str) -> Result<String, Error> {
        self.visible(who, id)
            .await?
            .artefact
            .ok_or_else(|| Error::Conflict("the grant has not been approved".to_owned()))
    }

    /// Does the caller read every grant (`grants:read`), or only its own department's?
    async fn reads_all(&self, who: &Principal) -> bool {
        self.access.permits(who, NO_GRID, "grants", "read").await
    }

    /// A grant the caller may see: DPOs and admins any, a department its own. Otherwise 403,
    /// audited; unknown ids are 404.
    async fn visible(&self, who: &Principal, id: &str) -> Result<GrantRow, Error> {
        let row = self
            .store
            .grant(id)
            .await?
            .ok_or(Error::NotFound("grant"))?;
        if who.department.as_deref() == Some(row.terms.grantee.as_str()) {
            return Ok(row);
        }
        self.access
            .authorize(who, "grants", "read", None, "grant.read")
            .await?;
        Ok(row)
    }
}
