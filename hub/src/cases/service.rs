//! The case service: every step of a case's life, for any caller (API, demo). Each step checks
//! the caller's role (and the responsibility rules that are code, not casbin lines), validates,
//! seals texts through `texts`, records the ledger entry, and only then stores; a step that
//! changes responsibilities reaches the decision index before it returns.

use std::sync::Arc;

use policy::{CaseStatus, GridCode, Responsibility, WorkingCalendar};

use super::input::{
    self, AssignmentDraft, CaseKind, CaseText, ClosingDraft, ReportDraft, Satisfaction, collect,
    problem,
};
use super::texts::{self, OpenText, TextName};
use crate::auth::{Access, Principal};
use crate::decisions::Decisions;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft, RecordRef};
use crate::storage::{AssignmentRow, CaseChange, CaseRow, NewCase, Store};
use crate::time::{now_ms, rfc3339};
use crate::vault::Vault;

/// Cases: report, assign (a new round replaces the current assignees, so this is also
/// reassignment), reply, close (with the satisfaction rating that evaluates the handling) and
/// read. Cheap to share behind an `Arc`.
pub struct Cases {
    access: Access,
    store: Store,
    vault: Arc<Vault>,
    decisions: Arc<Decisions>,
    /// Deadlines given in working days are counted in this calendar.
    calendar: WorkingCalendar,
}

/// Where a case stands after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub id: String,
    pub status: CaseStatus,
}

/// A case as a reader may see it: the stored case, its assignments with their overdue flags
/// and its opened texts.
pub struct CaseView {
    /// The stored case; its `assignments` are in `assignments` and its texts in `texts`.
    pub case: CaseRow,
    pub assignments: Vec<AssignmentView>,
    pub texts: Vec<OpenText>,
}

pub struct AssignmentView {
    pub assignment: AssignmentRow,
    /// Current, not replied, past its deadline, case open.
    pub overdue: bool,
}

impl CaseView {
    /// Some current assignment is past its deadline without a reply.
    pub fn overdue(&self) -> bool {
        self.assignments.iter().any(|a| a.overdue)
    }
}

impl Cases {
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        decisions: Arc<Decisions>,
        calendar: WorkingCalendar,
    ) -> Cases {
        Cases {
            access,
            store,
            vault,
            decisions,
            calendar,
        }
    }

    /// Open a case: a grid worker's report, with the records of the people concerned.
    pub async fn report(&self, who: &Principal, draft: ReportDraft) -> Result<CaseState, Error> {
        let grid = &draft.grid;
        self.access
            .authorize(who, "cases", "report", Some(grid), "case.report")
            .await?;
        let (kind, summary, subjects) = self.check_report(&draft).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let (wrapped, summary) = texts::seal_summary(&self.vault, &id, &summary)?;
        let records = subjects
            .iter()
            .map(|s| RecordRef::new(s, std::iter::empty()))
            .collect();
        let entry = entry(who, "case.report", &id)
            .records(records)
            .reason(&format!(
                "case of kind {} reported in {grid}",
                kind.as_str()
            ));
        self.access.record(entry).await?;
        let version = self
            .store
            .insert_case(&NewCase {
                id: id.clone(),
                grid: grid.as_str().to_owned(),
                kind: kind.as_str().to_owned(),
                reported_by: who.subject(),
                subjects: subjects.clone(),
                confidential: draft.confidential,
                wrapped,
                summary,
                now: now_ms(),
            })
            .await?;
        let responsibility = Responsibility {
            case: id.clone(),
            open: true,
            assignees: Vec::new(),
            records: subjects,
        };
        self.decisions.set_case(version, &responsibility)?;
        Ok(CaseState {
            id,
            status: CaseStatus::Reported,
        })
    }

    /// Dispatch (or reassign) case `id` to departments with a deadline; replaces the current
    /// assignees, whose access through this case ends on their next request.
    pub async fn assign(
        &self,
        who: &Principal,
        id: &str,
        draft: AssignmentDraft,
    ) -> Result<CaseState, Error> {
        let row = self.load(id).await?;
        self.authorize(who, &row, "assign").await?;
        let now = now_ms();
        let (departments, deadline) = self.check_assignment(&draft, now).await?;
        if !row.status.is_open() {
            return Err(Error::Conflict("the case is closed".to_owned()));
        }
        let entry = entry(who, "case.assign", id).reason(&format!(
            "assigned to {} until {}",
            departments.join(","),
            rfc3339(deadline)
        ));
        self.access.record(entry).await?;
        let outcome = self
            .store
            .assign_case(id, &departments, deadline, &who.subject(), now)
            .await?;
        self.applied(id, outcome, "assigned").await
    }

    /// A department currently assigned to case `id` replies; the case is `replied` once every
    /// current assignee has.
    pub async fn reply(&self, who: &Principal, id: &str, note: &str) -> Result<CaseState, Error> {
        let row = self.load(id).await?;
        self.authorize(who, &row, "reply").await?;
        let note = CaseText::parse("note", note).map_err(|p| Error::Validation(vec![p]))?;
        let Some(assignment) = current_assignment(&row, who) else {
            let why = "only a department currently assigned to the case may reply";
            let error = Error::Forbidden(why.to_owned());
            return Err(self
                .access
                .deny(who.actor(), "case.reply", why, error)
                .await);
        };
        if assignment.replied_at.is_some() || row.status != CaseStatus::Assigned {
            return Err(Error::Conflict(
                "this department has already replied, or the case is not awaiting replies"
                    .to_owned(),
            ));
        }
        let name = TextName::Reply {
            round: assignment.round,
            department: &assignment.department,
        };
        let sealed = texts::seal(&self.vault, &row, &name, &note)?;
        let entry = entry(who, "case.reply", id).reason("reply recorded");
        self.access.record(entry).await?;
        let outcome = self
            .store
            .reply_case(
                id,
                &assignment.department,
                &sealed,
                &who.subject(),
                now_ms(),
            )
            .await?;
        let (status, _) = changed(outcome, "replied to")?;
        Ok(CaseState {
            id: id.to_owned(),
            status,
        })
    }

    /// Close case `id` with a resolution and an optional satisfaction rating (1–5); every
    /// responsibility for it ends.
    pub async fn close(
        &self,
        who: &Principal,
        id: &str,
        draft: ClosingDraft,
    ) -> Result<CaseState, Error> {
        let row = self.load(id).await?;
        self.authorize(who, &row, "close").await?;
        let mut problems = Vec::new();
        let resolution = collect(
            CaseText::parse("resolution", &draft.resolution),
            &mut problems,
        );
        let satisfaction = collect(Satisfaction::parse(draft.satisfaction), &mut problems);
        let (Some(resolution), Some(satisfaction), true) =
            (resolution, satisfaction, problems.is_empty())
        else {
            return Err(Error::Validation(problems));
        };
        if !row.status.is_open() {
            return Err(Error::Conflict("the case is already closed".to_owned()));
        }
        let sealed = texts::seal(&self.vault, &row, &TextName::Resolution, &resolution)?;
        let reason = match satisfaction {
            Some(s) => format!("closed, satisfaction {}", s.get()),
            None => "closed".to_owned(),
        };
        self.access
            .record(entry(who, "case.close", id).reason(&reason))
            .await?;
        let rating = satisfaction.map(Satisfaction::get);
        let outcome = self
            .store
            .close_case(id, &sealed, rating, &who.subject(), now_ms())
            .await?;
        self.applied(id, outcome, "closed").await
    }

    /// Case `id` with its history and opened texts: for those whose role may read cases in its
    /// grid, and for its current assignees while it is open. Reading is audited (the texts may
    /// name people).
    pub async fn read(&self, who: &Principal, id: &str) -> Result<CaseView, Error> {
        let mut row = self.load(id).await?;
        let assignee = row.status.is_open() && current_assignment(&row, who).is_some();
        if !assignee {
            self.authorize(who, &row, "read").await?;
        }
        let texts = texts::open_all(&self.vault, &row)?;
        self.access.record(entry(who, "case.read", id)).await?;
        let now = now_ms();
        let open = row.status.is_open();
        let assignments = std::mem::take(&mut row.assignments)
            .into_iter()
            .map(|a| AssignmentView {
                overdue: open && a.current && a.replied_at.is_none() && now > a.deadline,
                assignment: a,
            })
            .collect();
        row.texts.clear();
        Ok(CaseView {
            case: row,
            assignments,
            texts,
        })
    }

    /// Case `id`'s assignments, every round, for those whose role may read cases in its grid
    /// (refusals audited as `case.read`). No text is opened, so the read itself is not an
    /// entry: this is the console's lineage, which assignment made a department responsible
    /// when a case-bound disclosure happened.
    pub async fn assignments(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Vec<AssignmentRow>, Error> {
        let row = self.load(id).await?;
        self.authorize(who, &row, "read").await?;
        Ok(row.assignments)
    }

    /// A report's kind, summary and subjects (sorted, deduplicated), or every problem with it:
    /// an unknown grid, a bad kind or summary, too many or unknown subjects, in that order.
    async fn check_report(
        &self,
        draft: &ReportDraft,
    ) -> Result<(CaseKind, CaseText, Vec<String>), Error> {
        let mut problems = Vec::new();
        if !self.store.grid_exists(&draft.grid).await? {
            problems.push(problem("grid", "unknown grid"));
        }
        let kind = collect(CaseKind::parse(&draft.kind), &mut problems);
        let summary = collect(CaseText::parse("summary", &draft.summary), &mut problems);
        let subjects = collect(input::subjects(&draft.subjects), &mut problems);
        if let Some(subjects) = &subjects {
            let live = self.store.live_record_ids(subjects).await?;
            problems.extend(input::unknown_subjects(&draft.subjects, &live));
        }
        match (kind, summary, subjects, problems.is_empty()) {
            (Some(kind), Some(summary), Some(subjects), true) => Ok((kind, summary, subjects)),
            _ => Err(Error::Validation(problems)),
        }
    }

    /// An assignment's departments (sorted, deduplicated) and deadline, or every problem with
    /// it: a bad count, unknown departments, a bad deadline, in that order.
    async fn check_assignment(
        &self,
        draft: &AssignmentDraft,
        now: i64,
    ) -> Result<(Vec<String>, i64), Error> {
        let mut problems = Vec::new();
        let departments = collect(input::departments(&draft.departments), &mut problems);
        for (i, d) in draft.departments.iter().enumerate() {
            if self.store.department(d).await?.is_none() {
                problems.push(problem(&format!("departments[{i}]"), "unknown department"));
            }
        }
        let deadline = collect(input::deadline(&self.calendar, draft, now), &mut problems);
        match (departments, deadline, problems.is_empty()) {
            (Some(departments), Some(deadline), true) => Ok((departments, deadline)),
            _ => Err(Error::Validation(problems)),
        }
    }

    async fn load(&self, id: &str) -> Result<CaseRow, Error> {
        self.store.case(id).await?.ok_or(Error::NotFound("case"))
    }

    /// Does the caller's role permit `action` on cases in the case's grid? Audited as
    /// `case.<action>` when not.
    async fn authorize(&self, who: &Principal, row: &CaseRow, action: &str) -> Result<(), Error> {
        let grid = GridCode::parse(&row.grid)
            .map_err(|_| Error::Internal("a stored case has a bad grid".into()))?;
        let audit_action = format!("case.{action}");
        self.access
            .authorize(who, "cases", action, Some(&grid), &audit_action)
            .await
    }

    /// The case state after a step that may change responsibilities; brings the decision index
    /// up to date with the change when it did.
    async fn applied(&self, id: &str, outcome: CaseChange, what: &str) -> Result<CaseState, Error> {
        let (status, version) = changed(outcome, what)?;
        if let Some(version) = version
            && let Some(responsibility) = self.store.responsibility(id).await?
        {
            self.decisions.set_case(version, &responsibility)?;
        }
        Ok(CaseState {
            id: id.to_owned(),
            status,
        })
    }
}

/// The caller's department's assignment in the current round of `row`, if any.
fn current_assignment<'a>(row: &'a CaseRow, who: &Principal) -> Option<&'a AssignmentRow> {
    row.assignments
        .iter()
        .find(|a| a.current && Some(&a.department) == who.department.as_ref())
}

/// An `allow` entry of `action` on case `id` by the caller.
fn entry(who: &Principal, action: &str, id: &str) -> EntryDraft {
    EntryDraft::new(who.actor(), action, Decision::Allow, current_request_id()).case(id)
}

fn changed(outcome: CaseChange, what: &str) -> Result<(CaseStatus, Option<i64>), Error> {
    match outcome {
        CaseChange::Done { status, version } => Ok((status, version)),
        CaseChange::NotFound => Err(Error::NotFound("case")),
        CaseChange::NotApplicable => Err(Error::Conflict(format!(
            "the case cannot be {what} in its current state"
        ))),
    }
}
