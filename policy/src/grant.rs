//! Grants (授权): what a department may receive, for which purpose, where, and for how long
//! (DESIGN.md §2), their life cycle, and the checks a grant request must pass at creation.
//!
//! Invariant: a `GrantTerms` that passed `check_terms` names only known, shareable fields at a
//! level their catalog entry supports, has a non-empty scope inside the grantee's jurisdiction
//! (unless case-bound), a parseable row filter and a non-empty validity window.

use std::collections::BTreeMap;
use std::fmt;

use crate::calendar::WorkingCalendar;
use crate::catalog::{Catalog, CategoryDef, FieldDef, FieldType, Sensitivity, ShareClass};
use crate::disclosure::Disclosure;
use crate::grid::GridCode;
use crate::row_filter::RowFilter;
use crate::value::FieldProblem;
use serde::{Deserialize, Serialize};

/// Working days a DPO has to answer a grant request.
pub const ANSWER_WORKING_DAYS: u32 = 5;
/// Longest accepted grant window: two years.
pub const MAX_VALIDITY_MS: i64 = 2 * 366 * 24 * 3600 * 1000;
/// Largest daily record quota a grant may set.
pub const MAX_DAILY_QUOTA: u32 = 10_000_000;
/// Most scope entries in one grant.
pub const MAX_SCOPE: usize = 64;

/// Where a grant stands (`requested → approved → (suspended) → revoked | expired`, or
/// `requested → rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Requested,
    Approved,
    Rejected,
    Suspended,
    Revoked,
    Expired,
}

/// A change of a grant's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantAction {
    Approve,
    Reject,
    Suspend,
    Resume,
    Revoke,
    Expire,
}

impl GrantStatus {
    pub const ALL: [GrantStatus; 6] = [
        GrantStatus::Requested,
        GrantStatus::Approved,
        GrantStatus::Rejected,
        GrantStatus::Suspended,
        GrantStatus::Revoked,
        GrantStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Requested => "requested",
            GrantStatus::Approved => "approved",
            GrantStatus::Rejected => "rejected",
            GrantStatus::Suspended => "suspended",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<GrantStatus> {
        GrantStatus::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The status after `action`, or `None` when the action does not apply to this status.
    pub fn after(self, action: GrantAction) -> Option<GrantStatus> {
        use GrantAction as A;
        use GrantStatus as S;
        match (self, action) {
            (S::Requested, A::Approve) => Some(S::Approved),
            (S::Requested, A::Reject) => Some(S::Rejected),
            (S::Approved, A::Suspend) => Some(S::Suspended),
            (S::Suspended, A::Resume) => Some(S::Approved),
            (S::Requested | S::Approved | S::Suspended, A::Revoke) => Some(S::Revoked),
            (S::Approved | S::Suspended, A::Expire) => Some(S::Expired),
            _ => None,
        }
    }

    /// True once nothing can change it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            GrantStatus::Rejected | GrantStatus::Revoked | GrantStatus::Expired
        )
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl GrantAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantAction::Approve => "approve",
            GrantAction::Reject => "reject",
            GrantAction::Suspend => "suspend",
            GrantAction::Resume => "resume",
            GrantAction::Revoke => "revoke",
            GrantAction::Expire => "expire",
        }
    }
}

/// What a grant says, independent of its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTerms {
    /// Department id.
    pub grantee: String,
    pub purpose: String,
    pub category: String,
    pub fields: BTreeMap<String, Disclosure>,
    pub scope: Vec<GridCode>,
    /// The filter text as the requester wrote it.
    pub row_filter: Option<String>,
    pub case_bound: bool,
    /// Unix milliseconds; the grant is valid in `[valid_from, valid_until)`.
    pub valid_from: i64,
    pub valid_until: i64,
    /// Most records disclosed per day under this grant.
    pub daily_quota: Option<u32>,
    pub legal_basis: Option<String>,
}

impl GrantTerms {
    /// Is `now` (Unix ms) inside the validity window?
    pub fn valid_at(&self, now: i64) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// Can `field` be disclosed at `level`? `Err` says why not.
pub fn level_supported(field: &FieldDef, level: Disclosure) -> Result<(), &'static str> {
    if field.share == ShareClass::None {
        return Err("has share class `none` and is never disclosed");
    }
    match level {
        Disclosure::Clear | Disclosure::Pseudonym => Ok(()),
        Disclosure::Masked if field.mask.is_some() => Ok(()),
        Disclosure::Masked => Err("has no mask rule, so it cannot be `masked`"),
        Disclosure::Generalized if field.generalize.is_some() => Ok(()),
        Disclosure::Generalized => Err("has no generalize rule, so it cannot be `generalized`"),
    }
}

/// Checks a grant request against the catalog and the grantee's jurisdiction. Returns the
/// parsed row filter; every problem is reported (paths `fields.<name>`, `scope[i]`,
/// `row_filter`, `valid_until`, `legal_basis`, …), none quotes a submitted value.
pub fn check_terms(
    terms: &GrantTerms,
    catalog: &Catalog,
    jurisdiction: &[GridCode],
    now: i64,
) -> Result<Option<RowFilter>, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut problem = |field: String, text: &str| {
        problems.push(FieldProblem {
            field,
            problem: text.to_owned(),
        })
    };
    let Some(category) = catalog.category(&terms.category) else {
        problem("category".to_owned(), "unknown category");
        return Err(problems);
    };
    if terms.fields.is_empty() {
        problem("fields".to_owned(), "name at least one field");
    }
    let mut sensitive = false;
    for (name, level) in &terms.fields {
        match category.field(name) {
            None => problem(format!("fields.{name}"), "not a field of this category"),
            Some(def) => {
                sensitive |= def.sensitivity == Sensitivity::Sensitive;
                if let Err(why) = level_supported(def, *level) {
                    problem(format!("fields.{name}"), why);
                }
            }
        }
    }
    if terms.scope.is_empty() {
        problem("scope".to_owned(), "name at least one grid");
    }
    if terms.scope.len() > MAX_SCOPE {
        problem("scope".to_owned(), "too many grids");
    }
    if !terms.case_bound {
        for (i, grid) in terms.scope.iter().enumerate() {
            if !jurisdiction.iter().any(|j| j.contains(grid)) {
                problem(
                    format!("scope[{i}]"),
                    "outside the grantee's jurisdiction (only case-bound grants may reach beyond it)",
                );
            }
        }
    }
    let filter = match &terms.row_filter {
        None => None,
        Some(text) => match RowFilter::parse(text, category) {
            Ok(f) => Some(f),
            Err(e) => {
                problem("row_filter".to_owned(), &e.to_string());
                None
            }
        },
    };
    if terms.valid_until <= terms.valid_from {
        problem("valid_until".to_owned(), "must be after valid_from");
    } else if terms.valid_until <= now {
        problem("valid_until".to_owned(), "is in the past");
    } else if terms.valid_until - terms.valid_from > MAX_VALIDITY_MS {
        problem(
            "valid_until".to_owned(),
            "a grant may last at most two years",
        );
    }
    if terms
        .daily_quota
        .is_some_and(|q| !(1..=MAX_DAILY_QUOTA).contains(&q))
    {
        problem("daily_quota".to_owned(), "1 to 10 000 000 records a day");
    }
    let basis = terms.legal_basis.as_deref().map(str::trim).unwrap_or("");
    if sensitive && basis.is_empty() {
        problem(
            "legal_basis".to_owned(),
            "required when a sensitive field is requested (PIPL art. 28–29)",
        );
    }
    if basis.chars().count() > 500 || basis.contains(['\n', '\r']) {
        problem(
            "legal_basis".to_owned(),
            "one line of at most 500 characters",
        );
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

/// The fields of `category` a filter over it may read: unencrypted, or blind-indexed.
pub fn filterable(field: &FieldDef) -> bool {
    !field.encrypted || field.indexed
}

/// Does this category field hold a set (so a filter uses `has`)?
pub fn is_set(category: &CategoryDef, field: &str) -> bool {
    matches!(
        category.field(field).map(|f| &f.ty),
        Some(FieldType::TagSet { .. })
    )
}

/// When a grant request made at `requested` (Unix ms) must be answered: `working_days` working
/// days of `calendar` later, at the same China Standard Time of day. `None` only outside years
/// 1–9999.
pub fn answer_due(calendar: &WorkingCalendar, requested: i64, working_days: u32) -> Option<i64> {
    calendar.after_working_days(requested, working_days)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-11-24T02:00:00Z, a Tuesday (10:00 in Beijing).
    const TUESDAY: i64 = 1_795_485_600_000;

    fn terms() -> GrantTerms {
        GrantTerms {
            grantee: "civil-affairs".into(),
            purpose: "elderly-care".into(),
            category: "person".into(),
            fields: [
                ("name".to_owned(), Disclosure::Clear),
                ("phone".to_owned(), Disclosure::Masked),
            ]
            .into(),
            scope: vec![GridCode::parse("330110.001").unwrap()],
            row_filter: Some(r#"tags has "elderly_alone""#.into()),
            case_bound: false,
            valid_from: TUESDAY,
            valid_until: TUESDAY + 30 * DAY,
            daily_quota: Some(1000),
            legal_basis: None,
        }
    }

    fn jurisdiction() -> Vec<GridCode> {
        vec![GridCode::parse("330110.001").unwrap()]
    }

    fn problems(t: &GrantTerms) -> Vec<String> {
        check_terms(t, Catalog::default_catalog(), &jurisdiction(), TUESDAY)
            .unwrap_err()
            .into_iter()
            .map(|p| format!("{}: {}", p.field, p.problem))
            .collect()
    }

    #[test]
    fn a_good_request_passes_with_its_filter_parsed() {
        let filter = check_terms(
            &terms(),
            Catalog::default_catalog(),
            &jurisdiction(),
            TUESDAY,
        )
        .unwrap()
        .unwrap();
        assert_eq!(filter.fields(), ["tags"]);
    }

    #[test]
    fn unknown_and_never_shared_fields_are_refused_by_name() {
        let mut t = terms();
        t.fields.insert("worker_notes".into(), Disclosure::Clear);
        t.fields.insert("shoe_size".into(), Disclosure::Clear);
        t.legal_basis = Some("PIPL art. 13(3)".into());
        let p = problems(&t);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("fields.shoe_size: not a field"));
        assert!(p[1].starts_with("fields.worker_notes: has share class `none`"));
    }

    #[test]
    fn levels_need_the_rule_they_apply() {
        let mut t = terms();
        t.fields.insert("gender".into(), Disclosure::Masked);
        t.fields.insert("name".into(), Disclosure::Generalized);
        t.fields
            .insert("birth_date".into(), Disclosure::Generalized);
        t.fields.insert("address".into(), Disclosure::Pseudonym);
        let p = problems(&t);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("fields.gender: has no mask rule"));
        assert!(p[1].starts_with("fields.name: has no generalize rule"));
    }

    #[test]
    fn scope_outside_the_jurisdiction_is_refused_unless_case_bound() {
        let mut t = terms();
        t.scope.push(GridCode::parse("330110.002.001").unwrap());
        t.scope.push(GridCode::parse("330110.001.007").unwrap());
        assert_eq!(
            problems(&t),
            [
                "scope[1]: outside the grantee's jurisdiction (only case-bound grants may reach beyond it)"
            ]
        );
        t.case_bound = true;
        assert!(check_terms(&t, Catalog::default_catalog(), &jurisdiction(), TUESDAY).is_ok());
    }

    #[test]
    fn windows_filters_quotas_and_legal_basis_are_checked() {
        let mut t = terms();
        t.valid_until = t.valid_from;
        t.daily_quota = Some(0);
        t.row_filter = Some(r#"tags has "elderly_alone" and"#.into());
        t.fields.insert("id_number".into(), Disclosure::Masked);
        let p = problems(&t);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("row_filter: at position 28: expected"));
        assert_eq!(p[1], "valid_until: must be after valid_from");
        assert_eq!(p[2], "daily_quota: 1 to 10 000 000 records a day");
        assert!(p[3].starts_with("legal_basis: required when a sensitive field"));
        t.daily_quota = Some(MAX_DAILY_QUOTA + 1);
        assert!(problems(&t).iter().any(|p| p.starts_with("daily_quota: ")));
        t.daily_quota = Some(MAX_DAILY_QUOTA);
        assert!(!problems(&t).iter().any(|p| p.starts_with("daily_quota: ")));
        t.valid_until = TUESDAY - 1;
        t.valid_from = TUESDAY - DAY;
        assert!(problems(&t).contains(&"valid_until: is in the past".to_owned()));
    }

    #[test]
    fn transitions_follow_the_life_cycle() {
        use GrantAction as A;
        use GrantStatus as S;
        assert_eq!(S::Requested.after(A::Approve), Some(S::Approved));
        assert_eq!(S::Requested.after(A::Reject), Some(S::Rejected));
        assert_eq!(S::Approved.after(A::Suspend), Some(S::Suspended));
        assert_eq!(S::Suspended.after(A::Resume), Some(S::Approved));
        assert_eq!(S::Suspended.after(A::Revoke), Some(S::Revoked));
        assert_eq!(S::Approved.after(A::Expire), Some(S::Expired));
        assert_eq!(S::Approved.after(A::Approve), None);
        assert_eq!(S::Approved.after(A::Reject), None);
        assert_eq!(S::Requested.after(A::Suspend), None);
        for s in [S::Rejected, S::Revoked, S::Expired] {
            assert!(s.is_final());
            for a in [
                A::Approve,
                A::Reject,
                A::Suspend,
                A::Resume,
                A::Revoke,
                A::Expire,
            ] {
                assert_eq!(s.after(a), None, "{s} then {}", a.as_str());
            }
        }
    }

    #[test]
    fn the_answer_deadline_counts_working_days_of_the_calendar() {
        let plain = WorkingCalendar::weekdays();
        // Tuesday + 5 working days = next Tuesday.
        assert_eq!(answer_due(&plain, TUESDAY, 5), Some(TUESDAY + 7 * DAY));
        // Friday (Beijing) + 1 working day = Monday.
        let friday = TUESDAY + 3 * DAY;
        assert_eq!(answer_due(&plain, friday, 1), Some(friday + 3 * DAY));
        // Saturday + 1 = Monday.
        assert_eq!(answer_due(&plain, friday + DAY, 1), Some(friday + 3 * DAY));
        assert_eq!(answer_due(&plain, TUESDAY, 0), Some(TUESDAY));
        // With that Wednesday a holiday and the Saturday worked: Thursday, Friday, Saturday.
        let calendar =
            WorkingCalendar::parse("holidays = [\"2026-11-25\"]\nworkdays = [\"2026-11-28\"]")
                .unwrap();
        assert_eq!(answer_due(&calendar, TUESDAY, 3), Some(TUESDAY + 4 * DAY));
    }
}
