//! What callers hand the case service, and the checks that turn it into typed values. Each
//! check returns one `FieldProblem` naming a field, never a value; the service collects them in
//! the order API.md's examples show (the checks that need storage are the service's).
//!
//! Invariant: a `CaseKind`, `CaseText` or `Satisfaction` exists only if it passed its check here.

use policy::{FieldProblem, GridCode, WorkingCalendar};
use zeroize::Zeroizing;

use crate::time::parse_rfc3339;

/// Longest case text, in characters.
const MAX_TEXT_CHARS: usize = 2000;
/// Most subjects of one case and departments of one dispatch.
const MAX_SUBJECTS: usize = 50;
const MAX_ASSIGNEES: usize = 10;
/// Longest reply deadline given in working days (about three months).
const MAX_REPLY_WORKING_DAYS: u32 = 60;

/// A grid worker's report as asked for: the grid parsed, everything else still to be checked
/// (after the role check, so a caller without the role learns nothing from validation).
pub struct ReportDraft {
    pub grid: GridCode,
    pub kind: String,
    pub summary: String,
    /// Record ids of the people concerned, as given (duplicates allowed).
    pub subjects: Vec<String>,
    pub confidential: bool,
}

/// A dispatch (or reassignment) as asked for: departments, and a deadline given either as an
/// RFC 3339 time or as a number of working days.
pub struct AssignmentDraft {
    pub departments: Vec<String>,
    pub deadline: Option<String>,
    pub working_days: Option<u32>,
}

/// A closing as asked for: the resolution and the reporter's satisfaction rating (1–5).
pub struct ClosingDraft {
    pub resolution: String,
    pub satisfaction: Option<i64>,
}

pub(super) fn problem(field: &str, text: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        problem: text.to_owned(),
    }
}

/// Keep a checked value, or note its problem.
pub(super) fn collect<T>(
    checked: Result<T, FieldProblem>,
    problems: &mut Vec<FieldProblem>,
) -> Option<T> {
    checked.map_err(|p| problems.push(p)).ok()
}

/// What kind of case: 1–40 of `a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseKind(String);

impl CaseKind {
    pub fn parse(kind: &str) -> Result<CaseKind, FieldProblem> {
        let valid = (1..=40).contains(&kind.len())
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(CaseKind(kind.to_owned()))
        } else {
            Err(problem("kind", "1–40 characters of a-z, 0-9, _ and -"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A case text (summary, reply note, resolution): trimmed, 1–2000 characters, no control
/// characters but newlines. May name people, so its buffer is zeroized on drop.
pub struct CaseText(Zeroizing<String>);

impl CaseText {
    /// Check the text given for `field`.
    pub fn parse(field: &str, text: &str) -> Result<CaseText, FieldProblem> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_TEXT_CHARS {
            Err(problem(field, "1–2000 characters"))
        } else if text.chars().any(|c| c.is_control() && c != '\n') {
            Err(problem(field, "contains control characters"))
        } else {
            Ok(CaseText(Zeroizing::new(text.to_owned())))
        }
    }

    /// The plaintext, for sealing only (`texts`).
    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// A satisfaction rating, 1–5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Satisfaction(i64);

impl Satisfaction {
    pub fn parse(rating: Option<i64>) -> Result<Option<Satisfaction>, FieldProblem> {
        match rating {
            None => Ok(None),
            Some(s) if (1..=5).contains(&s) => Ok(Some(Satisfaction(s))),
            Some(_) => Err(problem("satisfaction", "1 to 5")),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The subjects of a report, sorted and without duplicates; at most 50.
pub(crate) fn subjects(given: &[String]) -> Result<Vec<String>, FieldProblem> {
    let mut subjects = given.to_vec();
    subjects.sort();
    subjects.dedup();
    if subjects.len() > MAX_SUBJECTS {
        Err(problem("subjects", "at most 50 records"))
    } else {
        Ok(subjects)
    }
}

/// One problem per given subject (by its position) that is not among the `live` records.
pub(super) fn unknown_subjects(given: &[String], live: &[String]) -> Vec<FieldProblem> {
    given
        .iter()
        .enumerate()
        .filter(|(_, s)| !live.contains(s))
        .map(|(i, _)| problem(&format!("subjects[{i}]"), "no such record"))
        .collect()
}

/// The departments of a dispatch, sorted and without duplicates; 1–10.
pub(crate) fn departments(given: &[String]) -> Result<Vec<String>, FieldProblem> {
    let mut departments = given.to_vec();
    departments.sort();
    departments.dedup();
    if departments.is_empty() || departments.len() > MAX_ASSIGNEES {
        Err(problem("departments", "1–10 departments"))
    } else {
        Ok(departments)
    }
}

/// The deadline an assignment asks for: an RFC 3339 time in the future, or a number of working
/// days of `calendar` from `now`.
pub(crate) fn deadline(
    calendar: &WorkingCalendar,
    draft: &AssignmentDraft,
    now: i64,
) -> Result<i64, FieldProblem> {
    match (&draft.deadline, draft.working_days) {
        (Some(_), Some(_)) => Err(problem(
            "working_days",
            "give either deadline or working_days, not both",
        )),
        (None, None) => Err(problem(
            "deadline",
            "give a deadline (RFC 3339) or working_days",
        )),
        (Some(text), None) => match parse_rfc3339(text) {
            None => Err(problem("deadline", "not an RFC 3339 time")),
            Some(d) if d <= now => Err(problem("deadline", "must be in the future")),
            Some(d) => Ok(d),
        },
        (None, Some(days)) if !(1..=MAX_REPLY_WORKING_DAYS).contains(&days) => Err(problem(
            "working_days",
            &format!("1 to {MAX_REPLY_WORKING_DAYS}"),
        )),
        (None, Some(days)) => calendar
            .after_working_days(now, days)
            .ok_or_else(|| problem("working_days", "the deadline is out of range")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn case_text_is_trimmed_and_bounded() {
        assert_eq!(
            CaseText::parse("note", "  hello\nworld ")
                .unwrap()
                .as_bytes(),
            b"hello\nworld"
        );
        assert_eq!(
            CaseText::parse("note", "   ").err().unwrap().problem,
            "1–2000 characters"
        );
        assert!(CaseText::parse("note", &"字".repeat(2000)).is_ok());
        assert!(CaseText::parse("note", &"字".repeat(2001)).is_err());
        let tab = CaseText::parse("summary", "a\tb").err().unwrap();
        assert_eq!(
            (tab.field.as_str(), tab.problem.as_str()),
            ("summary", "contains control characters")
        );
    }

    #[test]
    fn case_kind_is_lowercase_words() {
        assert!(CaseKind::parse("safety_hazard").is_ok());
        assert!(CaseKind::parse("dispute-2").is_ok());
        assert!(CaseKind::parse("").is_err());
        assert!(CaseKind::parse("Dispute").is_err());
        assert!(CaseKind::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn satisfaction_is_one_to_five_or_absent() {
        assert_eq!(Satisfaction::parse(None).unwrap(), None);
        assert_eq!(
            Satisfaction::parse(Some(5)).unwrap().map(Satisfaction::get),
            Some(5)
        );
        assert!(Satisfaction::parse(Some(0)).is_err());
        assert!(Satisfaction::parse(Some(6)).is_err());
    }

    #[test]
    fn unknown_subjects_are_named_by_position() {
        let given = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(subjects(&given).unwrap(), ["a", "b"]);
        let problems = unknown_subjects(&given, &["b".to_owned()]);
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["subjects[0]", "subjects[2]"]);
    }

    #[test]
    fn a_dispatch_names_one_to_ten_departments() {
        assert!(departments(&[]).is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("d{i}")).collect();
        assert!(departments(&eleven).is_err());
        let twice = vec!["x".to_owned(), "x".to_owned()];
        assert_eq!(departments(&twice).unwrap(), ["x"]);
    }

    #[test]
    fn a_deadline_is_a_future_time_or_working_days_not_both() {
        let calendar = WorkingCalendar::weekdays();
        let draft = |deadline: Option<&str>, working_days| AssignmentDraft {
            departments: Vec::new(),
            deadline: deadline.map(str::to_owned),
            working_days,
        };
        let now = parse_rfc3339("2026-03-02T09:00:00+08:00").unwrap();
        let field = |d: &AssignmentDraft| deadline(&calendar, d, now).err().unwrap().field;
        assert_eq!(field(&draft(None, None)), "deadline");
        assert_eq!(
            field(&draft(Some("2030-01-01T00:00:00Z"), Some(3))),
            "working_days"
        );
        assert_eq!(
            field(&draft(Some("2020-01-01T00:00:00Z"), None)),
            "deadline"
        );
        assert_eq!(field(&draft(None, Some(61))), "working_days");
        assert!(deadline(&calendar, &draft(None, Some(5)), now).unwrap() > now);
    }
}
