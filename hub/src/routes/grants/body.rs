//! Between the wire and the grant service: request bodies into the service's values, its
//! results into response bodies. Every text time is RFC 3339.

use policy::GrantStatus;

use super::{
    ConsentBody, GrantBody, GrantCreated, GrantEventBody, GrantFilter, GrantRequest,
    GrantStatusBody, TransitionBody,
};
use crate::error::Error;
use crate::grants::{GrantDraft, GrantQuery, GrantView};
use crate::storage::{GrantEvent, GrantRow};
use crate::time::rfc3339;

impl From<GrantRequest> for GrantDraft {
    fn from(req: GrantRequest) -> GrantDraft {
        GrantDraft {
            kind: req.kind,
            group_by: req.group_by,
            min_cell: req.min_cell,
            privacy: req.privacy,
            grantee: req.grantee,
            purpose: req.purpose,
            category: req.category,
            fields: req.fields,
            scope: req.scope,
            row_filter: req.row_filter,
            case_bound: req.case_bound,
            valid_from: req.valid_from,
            valid_until: req.valid_until,
            daily_quota: req.daily_quota,
            legal_basis: req.legal_basis,
        }
    }
}

impl GrantFilter {
    /// The query it asks for; an unknown status is 422.
    pub(super) fn query(self) -> Result<GrantQuery, Error> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(
                GrantStatus::parse(s)
                    .ok_or_else(|| Error::validation("status", "unknown status"))?,
            ),
        };
        Ok(GrantQuery {
            grantee: self.grantee,
            status,
            category: self.category,
        })
    }
}

impl TransitionBody {
    /// The body is optional: none (or only whitespace), JSON `null`, or `{"reason": "..."}`.
    pub(super) fn parse(body: &[u8]) -> Result<TransitionBody, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(TransitionBody::default())
        } else {
            crate::extract::parse_json::<Option<TransitionBody>>(body)
                .map(Option::unwrap_or_default)
        }
    }
}

impl GrantStatusBody {
    pub(super) fn new(id: String, status: GrantStatus) -> GrantStatusBody {
        GrantStatusBody {
            id,
            status: status.as_str().to_owned(),
        }
    }
}

impl From<GrantRow> for GrantCreated {
    fn from(row: GrantRow) -> GrantCreated {
        GrantCreated {
            id: row.id,
            status: row.status.as_str().to_owned(),
            answer_due: rfc3339(row.answer_due),
        }
    }
}

impl From<GrantEvent> for GrantEventBody {
    fn from(e: GrantEvent) -> GrantEventBody {
        GrantEventBody {
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            status: e.status,
            reason: e.reason,
        }
    }
}

impl From<GrantView> for GrantBody {
    fn from(view: GrantView) -> GrantBody {
        let GrantView {
            grant: row,
            status,
            overdue,
            history,
            owner,
        } = view;
        let consent = match (row.consent, owner) {
            (Some(c), Some(owner)) => Some(ConsentBody {
                owner,
                status: c.state.as_str().to_owned(),
                by: c.by,
                at: c.at.map(rfc3339),
                reason: c.reason,
            }),
            _ => None,
        };
        GrantBody {
            kind: if row.statistics.is_some() {
                "statistics"
            } else {
                "records"
            }
            .to_owned(),
            statistics: row.statistics,
            consent,
            overdue,
            status: status.as_str().to_owned(),
            has_artefact: row.artefact.is_some(),
            id: row.id,
            grantee: row.terms.grantee,
            purpose: row.terms.purpose,
            category: row.terms.category,
            fields: row.terms.fields,
            scope: row
                .terms
                .scope
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            row_filter: row.terms.row_filter,
            case_bound: row.terms.case_bound,
            valid_from: rfc3339(row.terms.valid_from),
            valid_until: rfc3339(row.terms.valid_until),
            daily_quota: row.terms.daily_quota,
            legal_basis: row.terms.legal_basis,
            requested_by: row.requested_by,
            requested_at: rfc3339(row.requested_at),
            answer_due: rfc3339(row.answer_due),
            decided_by: row.decided_by,
            decided_at: row.decided_at.map(rfc3339),
            reason: row.reason,
            history: history.into_iter().map(GrantEventBody::from).collect(),
        }
    }
}
