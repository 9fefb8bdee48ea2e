//! Cases (事件) and the responsibilities they create: the closed loop reported → assigned →
//! replied → closed, with reassignment and joint dispatch. An open case's current assignees are
//! responsible for it, and that responsibility is what lets a case-bound grant reach the case's
//! records — only while it lasts (DESIGN.md §2).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Opened by a grid worker; nobody is responsible yet.
    Reported,
    /// Dispatched to one or several departments, each with a deadline.
    Assigned,
    /// Every current assignee has replied; waiting for the grid center to close.
    Replied,
    /// Closed with a resolution (and optionally a satisfaction rating); no responsibility left.
    Closed,
}

/// A step of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStep {
    /// Assign (or reassign) to departments; replaces the current assignees.
    Assign,
    /// One assignee replies. `all_replied`: every current assignee has now replied.
    Reply {
        all_replied: bool,
    },
    Close,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 4] = [
        CaseStatus::Reported,
        CaseStatus::Assigned,
        CaseStatus::Replied,
        CaseStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Reported => "reported",
            CaseStatus::Assigned => "assigned",
            CaseStatus::Replied => "replied",
            CaseStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        self != CaseStatus::Closed
    }

    /// The status after `step`, or `None` when the step does not apply.
    pub fn after(self, step: CaseStep) -> Option<CaseStatus> {
        use CaseStatus as S;
        match (self, step) {
            (S::Closed, _) => None,
            (_, CaseStep::Assign) => Some(S::Assigned),
            (S::Assigned, CaseStep::Reply { all_replied: true }) => Some(S::Replied),
            (S::Assigned, CaseStep::Reply { all_replied: false }) => Some(S::Assigned),
            (S::Replied, CaseStep::Reply { .. }) => Some(S::Replied),
            (S::Reported, CaseStep::Reply { .. }) => None,
            (_, CaseStep::Close) => Some(S::Closed),
        }
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decision engine needs to know of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responsibility {
    pub case: String,
    pub open: bool,
    /// Departments currently assigned.
    pub assignees: Vec<String>,
    /// Record ids of the case's subjects.
    pub records: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_closes_once() {
        use CaseStatus as S;
        assert_eq!(S::Reported.after(CaseStep::Assign), Some(S::Assigned));
        assert_eq!(
            S::Reported.after(CaseStep::Reply { all_replied: true }),
            None
        );
        assert_eq!(
            S::Assigned.after(CaseStep::Reply { all_replied: false }),
            Some(S::Assigned)
        );
        assert_eq!(
            S::Assigned.after(CaseStep::Reply { all_replied: true }),
            Some(S::Replied)
        );
        assert_eq!(S::Replied.after(CaseStep::Assign), Some(S::Assigned));
        assert_eq!(S::Replied.after(CaseStep::Close), Some(S::Closed));
        assert_eq!(S::Reported.after(CaseStep::Close), Some(S::Closed));
        for step in [
            CaseStep::Assign,
            CaseStep::Close,
            CaseStep::Reply { all_replied: true },
        ] {
            assert_eq!(S::Closed.after(step), None);
        }
        assert!(!S::Closed.is_open());
        assert!(S::Replied.is_open());
    }
}
