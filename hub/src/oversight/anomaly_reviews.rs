//! Reviews of anomalies (`POST /v1/audit/anomalies/{id}/acknowledge|resolve`, and the console's
//! anomalies page): a DPO acknowledges an open anomaly, then resolves it with a note.
//!
//! Guarantees: the caller needs `audit:read` (the permission that shows anomalies; refused:
//! 403, audited); an id that names no anomaly is 404; a step the review's state does not allow
//! (acknowledging twice, anything after resolving) is 409; a resolve without a note is 422.
//! Each step is recorded in the ledger (`audit.anomaly_acknowledge`, `audit.anomaly_resolve`,
//! admin stream) before its row is stored, as every admin change of the hub is: nothing is
//! reviewed unless its entry is durable. Of two racing identical steps one row is stored; the
//! other caller gets 409 (its entry records the attempt).

use super::Oversight;
use super::anomalies::{Review, ReviewStep};
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::AnomalyReviewRow;
use crate::time::rfc3339;

/// A step of a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    Acknowledge,
    Resolve,
}

impl ReviewAction {
    /// The ledger action that records it.
    pub fn audit_action(self) -> &'static str {
        match self {
            ReviewAction::Acknowledge => "audit.anomaly_acknowledge",
            ReviewAction::Resolve => "audit.anomaly_resolve",
        }
    }

    /// The state it leads to.
    fn state(self) -> &'static str {
        match self {
            ReviewAction::Acknowledge => "acknowledged",
            ReviewAction::Resolve => "resolved",
        }
    }

    /// May it follow a review in `state`? Open → acknowledged → resolved; an open anomaly may
    /// also be resolved at once.
    fn follows(self, state: &str) -> bool {
        match self {
            ReviewAction::Acknowledge => state == "open",
            ReviewAction::Resolve => state != "resolved",
        }
    }
}

/// The review the stored steps of one anomaly make (steps oldest first).
pub(super) fn review_of<'a>(rows: impl Iterator<Item = &'a AnomalyReviewRow>) -> Review {
    let steps: Vec<ReviewStep> = rows
        .map(|r| ReviewStep {
            state: r.state.clone(),
            by: r.by.clone(),
            at: rfc3339(r.at_ms),
            at_ms: r.at_ms,
            note: r.note.clone(),
            entry: u64::try_from(r.ledger_index).unwrap_or(0),
        })
        .collect();
    let state = if steps.iter().any(|s| s.state == "resolved") {
        "resolved"
    } else if steps.iter().any(|s| s.state == "acknowledged") {
        "acknowledged"
    } else {
        "open"
    };
    Review { state, steps }
}

/// A note as given: trimmed, one line of at most 500 characters; required to resolve.
fn check_note(note: Option<&str>, required: bool) -> Result<Option<String>, Error> {
    match note.map(str::trim).filter(|n| !n.is_empty()) {
        None if required => Err(Error::validation(
            "note",
            "resolving an anomaly needs a note saying what was found",
        )),
        Some(n) if n.chars().count() > 500 || n.contains(['\n', '\r']) => Err(Error::validation(
            "note",
            "one line of at most 500 characters",
        )),
        n => Ok(n.map(str::to_owned)),
    }
}

impl Oversight {
    /// Take `action` on anomaly `id` for `who` at `now_ms` (the hub's clock); the review as it
    /// stands after it. See the module's guarantees.
    pub async fn review_anomaly(
        &self,
        who: &Principal,
        id: &str,
        action: ReviewAction,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Review, Error> {
        let audit_action = action.audit_action();
        self.access
            .authorize(who, "audit", "read", None, audit_action)
            .await?;
        let note = check_note(note, action == ReviewAction::Resolve)?;
        let anomaly = self.anomaly(id).await?.ok_or(Error::NotFound("anomaly"))?;
        let current = anomaly.review.state;
        if !action.follows(current) {
            return Err(Error::Conflict(format!("the anomaly is already {current}")));
        }
        let next = action.state();
        let reason = match &note {
            Some(n) => format!("anomaly {id} ({}): {current} → {next}: {n}", anomaly.kind),
            None => format!("anomaly {id} ({}): {current} → {next}", anomaly.kind),
        };
        let appended = self
            .access
            .record(
                EntryDraft::new(
                    who.actor(),
                    audit_action,
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&reason),
            )
            .await?;
        let row = AnomalyReviewRow {
            anomaly_id: anomaly.id.clone(),
            state: next.to_owned(),
            kind: anomaly.kind.to_owned(),
            actor_key: anomaly.actor_key.clone(),
            first_entry: i64::try_from(anomaly.entries.first().copied().unwrap_or(0))
                .unwrap_or(i64::MAX),
            by: who.subject(),
            at_ms: now_ms,
            note,
            ledger_index: i64::try_from(appended.index).unwrap_or(i64::MAX),
        };
        if !self.store.insert_anomaly_review(&row).await? {
            return Err(Error::Conflict(format!("the anomaly is already {next}")));
        }
        let rows = self.store.anomaly_reviews(&[anomaly.id]).await?;
        Ok(review_of(rows.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, at: i64) -> AnomalyReviewRow {
        AnomalyReviewRow {
            anomaly_id: "1-0123456789abcdef".to_owned(),
            state: state.to_owned(),
            kind: "off_hours".to_owned(),
            actor_key: "client:c".to_owned(),
            first_entry: 1,
            by: "user:u".to_owned(),
            at_ms: at,
            note: None,
            ledger_index: at,
        }
    }

    #[test]
    fn a_review_goes_from_open_to_acknowledged_to_resolved_and_no_further() {
        assert_eq!(review_of([].iter()).state, "open");
        let ack = [row("acknowledged", 1)];
        assert_eq!(review_of(ack.iter()).state, "acknowledged");
        let done = [row("acknowledged", 1), row("resolved", 2)];
        assert_eq!(review_of(done.iter()).state, "resolved");
        assert!(ReviewAction::Acknowledge.follows("open"));
        assert!(!ReviewAction::Acknowledge.follows("acknowledged"));
        assert!(ReviewAction::Resolve.follows("acknowledged"));
        assert!(ReviewAction::Resolve.follows("open"));
        assert!(!ReviewAction::Resolve.follows("resolved"));
        assert!(!ReviewAction::Acknowledge.follows("resolved"));
    }

    #[test]
    fn a_resolve_needs_a_note_of_one_line() {
        assert!(check_note(None, true).is_err());
        assert!(check_note(Some("   "), true).is_err());
        assert!(check_note(Some("a\nb"), false).is_err());
        assert!(check_note(Some(&"x".repeat(501)), false).is_err());
        assert_eq!(check_note(None, false).unwrap(), None);
        assert_eq!(
            check_note(Some(" checked with the department "), true).unwrap(),
            Some("checked with the department".to_owned())
        );
    }
}
