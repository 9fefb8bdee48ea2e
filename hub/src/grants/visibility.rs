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
    /// The department that publishes the grant's category, if one does.
    pub owner: Option<String>,
}

impl GrantView {
    fn at(grant: GrantRow, history: Vec<GrantEvent>, now: i64, owner: Option<String>) -> GrantView {
        let status = effective_status(&grant, now);
        GrantView {
            overdue: status == GrantStatus::Requested && now > grant.answer_due,
            status,
            grant,
            history,
            owner,
        }
    }
}

/// Which grants to list.
#[derive(Debug, Clone, Default)]
pub struct GrantQuery {
    /// A department id; a department may only ask for its own (the default for it).
    pub grantee: Option<String>,
    pub status: Option<GrantStatus>,
    /// Grants on this category only. The department that publishes it sees every grant on it
    /// (who can see its data).
    pub category: Option<String>,
}

impl Grants {
    /// Grants, newest first (at most 1 000): every grant for DPOs and admins, a department's
    /// own for the department. Asking for another department's without `grants:read` is 403.
    pub async fn list(&self, who: &Principal, query: GrantQuery) -> Result<Vec<GrantView>, Error> {
        let catalog = self.decisions.catalog_at(who.versions.decision).await?;
        let owner_of = |category: &str| catalog.category(category).and_then(|c| c.owner.clone());
        let owns_category = query
            .category
            .as_deref()
            .and_then(owner_of)
            .is_some_and(|o| who.department.as_deref() == Some(o.as_str()));
        let grantee = if owns_category || self.reads_all(who).await {
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
        let rows = self
            .store
            .grants(grantee.as_deref(), query.status, query.category.as_deref())
            .await?;
        let now = now_ms();
        Ok(rows
            .into_iter()
            .map(|g| {
                let owner = owner_of(&g.terms.category);
                GrantView::at(g, Vec::new(), now, owner)
            })
            .collect())
    }

    /// One grant with its history.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<GrantView, Error> {
        let row = self.visible(who, id).await?;
        let history = self.store.grant_events(id).await?;
        let owner = self.owner_of(who, &row.terms.category).await?;
        Ok(GrantView::at(row, history, now_ms(), owner))
    }

    /// The department that publishes `category`, if one does.
    pub(super) async fn owner_of(
        &self,
        who: &Principal,
        category: &str,
    ) -> Result<Option<String>, Error> {
        Ok(self
            .decisions
            .catalog_at(who.versions.decision)
            .await?
            .category(category)
            .and_then(|c| c.owner.clone()))
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

    /// A grant the caller may see: DPOs and admins any, a department its own and those on
    /// the categories it publishes. Otherwise 403, audited; unknown ids are 404.
    async fn visible(&self, who: &Principal, id: &str) -> Result<GrantRow, Error> {
        let row = self
            .store
            .grant(id)
            .await?
            .ok_or(Error::NotFound("grant"))?;
        if who.department.as_deref() == Some(row.terms.grantee.as_str()) {
            return Ok(row);
        }
        if who.department.is_some()
            && self.owner_of(who, &row.terms.category).await? == who.department
        {
            return Ok(row);
        }
        self.access
            .authorize(who, "grants", "read", None, "grant.read")
            .await?;
        Ok(row)
    }
}
