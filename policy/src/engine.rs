//! The decision (DESIGN.md §3, rules 3–5): approved grants and open responsibilities compiled
//! into an in-memory index, and the disclosure plan for a request and a record.
//!
//! A decision is two steps, so a page of records costs one index lookup:
//! 1. `DecisionIndex::candidates` (rule 3): the approved grants of the department for the purpose
//!    and category that are valid now, plus the department's jurisdiction and its
//!    responsibility for the named case. None → `Refusal::NoGrant`.
//! 2. `Candidates::plan` (rules 4–5) for each record: which candidates reach it, and each field
//!    at the most revealing level among them; share class `none` is never disclosed.
//!
//! Invariants: the index holds only grants whose status was `approved` when last upserted (the
//! caller upserts every status change); validity windows are checked at decision time, so an
//! expired grant stops counting without any update. `Candidates` owns what it needs (`Arc`s),
//! so it can outlive a lock on the index while records are fetched.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::case::Responsibility;
use crate::catalog::{Catalog, CategoryDef, ShareClass};
use crate::disclosure::{Disclosure, FieldPlan, Unreached, Withheld};
use crate::grant::{GrantStatus, GrantTerms};
use crate::grid::GridCode;
use crate::row_filter::{RowFilter, RowView};

/// An approved grant as the index takes it.
#[derive(Debug, Clone)]
pub struct LiveGrant {
    pub id: String,
    pub terms: GrantTerms,
    /// The row filter with its literals as `RowView` compares them (the hub maps indexed
    /// fields' literals to blind-index tokens).
    pub filter: Option<RowFilter<String>>,
}

/// A grant compiled against its category.
#[derive(Debug)]
pub struct CompiledGrant {
    pub id: Box<str>,
    valid_from: i64,
    valid_until: i64,
    scope: Box<[GridCode]>,
    filter: Option<RowFilter<String>>,
    case_bound: bool,
    /// One entry per category field, in catalog order; `None` when the grant does not name the
    /// field or the field is never shared.
    levels: Box<[Option<Disclosure>]>,
    daily_quota: Option<u32>,
}

impl CompiledGrant {
    pub fn case_bound(&self) -> bool {
        self.case_bound
    }

    /// The grid subtrees the grant covers.
    pub fn scope(&self) -> &[GridCode] {
        &self.scope
    }

    pub fn daily_quota(&self) -> Option<u32> {
        self.daily_quota
    }
}

/// One decision request (the department is already authenticated and its role checked).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub department: &'a str,
    pub category: &'a str,
    pub purpose: &'a str,
    pub case: Option<&'a str>,
    /// Unix milliseconds.
    pub now: i64,
}

/// A record as the decision sees it: id, grid and its filterable fields.
pub struct Record<'a, R: RowView<String>> {
    pub id: &'a str,
    pub grid: &'a GridCode,
    pub row: &'a R,
}

/// Why a request gets no plan at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownCategory,
    /// Rule 3: no approved grant valid now for this department, purpose and category.
    NoGrant,
}

/// Why a grant does not apply to a grant upsert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("grant {grant}: unknown category")]
    UnknownCategory { grant: String },
}

#[derive(Debug)]
struct CaseEntry {
    open: bool,
    assignees: Box<[Box<str>]>,
    records: Arc<HashSet<Box<str>>>,
}

type ByCategory = HashMap<Box<str>, Vec<Arc<CompiledGrant>>>;

/// What every plan of one category shares: its field names and which are never shared.
#[derive(Debug, Clone)]
struct Shape {
    field_names: Arc<[String]>,
    never_shared: Arc<[bool]>,
}

/// Grants by department → purpose → category, jurisdictions, and open responsibilities.
#[derive(Debug)]
pub struct DecisionIndex {
    catalog: Catalog,
    shapes: HashMap<Box<str>, Shape>,
    grants: HashMap<Box<str>, HashMap<Box<str>, ByCategory>>,
    /// Grant id → (department, purpose, category), to find it again on an update.
    keys: HashMap<Box<str>, [Box<str>; 3]>,
    jurisdictions: HashMap<Box<str>, Arc<[GridCode]>>,
    cases: HashMap<Box<str>, CaseEntry>,
}

impl DecisionIndex {
    pub fn new(catalog: Catalog) -> DecisionIndex {
        let shapes = catalog
            .categories()
            .iter()
            .map(|c| {
                let shape = Shape {
                    field_names: c.fields.iter().map(|f| f.name.clone()).collect(),
                    never_shared: c
                        .fields
                        .iter()
                        .map(|f| f.share == ShareClass::None)
                        .collect(),
                };
                (c.name.as_str().into(), shape)
            })
            .collect();
        DecisionIndex {
            catalog,
            shapes,
            grants: HashMap::new(),
            keys: HashMap::new(),
            jurisdictions: HashMap::new(),
            cases: HashMap::new(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Number of approved grants compiled in.
    pub fn grant_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of cases known (open or closed).
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }

    /// Set a department's jurisdiction (its grid subtrees).
    pub fn set_jurisdiction(&mut self, department: &str, grids: Vec<GridCode>) {
        self.jurisdictions.insert(department.into(), grids.into());
    }

    /// Record a grant's current status: approved grants are (re)compiled in, any other status
    /// takes the grant out.
    pub fn upsert_grant(
        &mut self,
        grant: &LiveGrant,
        status: GrantStatus,
    ) -> Result<(), IndexError> {
        self.remove_grant(&grant.id);
        if status != GrantStatus::Approved {
            return Ok(());
        }
        let terms = &grant.terms;
        let category =
            self.catalog
                .category(&terms.category)
                .ok_or_else(|| IndexError::UnknownCategory {
                    grant: grant.id.clone(),
                })?;
        let levels = category
            .fields
            .iter()
            .map(|f| match f.share {
                ShareClass::None => None,
                _ => terms.fields.get(&f.name).copied(),
            })
            .collect();
        let compiled = Arc::new(CompiledGrant {
            id: grant.id.as_str().into(),
            valid_from: terms.valid_from,
            valid_until: terms.valid_until,
            scope: terms.scope.clone().into(),
            filter: grant.filter.clone(),
            case_bound: terms.case_bound,
            levels,
            daily_quota: terms.daily_quota,
        });
        let list = self
            .grants
            .entry(terms.grantee.as_str().into())
            .or_default()
            .entry(terms.purpose.as_str().into())
            .or_default()
            .entry(terms.category.as_str().into())
            .or_default();
        list.push(compiled);
        list.sort_by(|a, b| a.id.cmp(&b.id));
        self.keys.insert(
            grant.id.as_str().into(),
            [
                terms.grantee.as_str().into(),
                terms.purpose.as_str().into(),
                terms.category.as_str().into(),
            ],
        );
        Ok(())
    }

    /// Take a grant out (revoked, suspended, expired, rejected, deleted). Unknown ids are fine.
    pub fn remove_grant(&mut self, id: &str) {
        let Some([department, purpose, category]) = self.keys.remove(id) else {
            return;
        };
        let Some(by_purpose) = self.grants.get_mut(&department) else {
            return;
        };
        if let Some(by_category) = by_purpose.get_mut(&purpose) {
            if let Some(list) = by_category.get_mut(&category) {
                list.retain(|g| &*g.id != id);
                if list.is_empty() {
                    by_category.remove(&category);
                }
            }
            if by_category.is_empty() {
                by_purpose.remove(&purpose);
            }
        }
        if by_purpose.is_empty() {
            self.grants.remove(&department);
        }
    }

    /// Record a case's current state (status, assignees, linked records).
    pub fn set_case(&mut self, case: &Responsibility) {
        self.cases.insert(
            case.case.as_str().into(),
            CaseEntry {
                open: case.open,
                assignees: case.assignees.iter().map(|d| d.as_str().into()).collect(),
                records: Arc::new(case.records.iter().map(|r| r.as_str().into()).collect()),
            },
        );
    }

    pub fn remove_case(&mut self, case: &str) {
        self.cases.remove(case);
    }

    /// Rule 3: the grants that may apply to `request`.
    pub fn candidates(&self, request: &Request<'_>) -> Result<Candidates, Refusal> {
        let shape = self
            .shapes
            .get(request.category)
            .ok_or(Refusal::UnknownCategory)?;
        let grants: Vec<Arc<CompiledGrant>> = self
            .grants
            .get(request.department)
            .and_then(|p| p.get(request.purpose))
            .and_then(|c| c.get(request.category))
            .map(|list| {
                list.iter()
                    .filter(|g| g.valid_from <= request.now && request.now < g.valid_until)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if grants.is_empty() {
            return Err(Refusal::NoGrant);
        }
        let case = match request.case {
            None => CaseAccess::NotGiven,
            Some(id) => match self.cases.get(id) {
                None => CaseAccess::Refused(Unreached::UnknownCase),
                Some(c) if !c.open => CaseAccess::Refused(Unreached::CaseClosed),
                Some(c) if !c.assignees.iter().any(|d| &**d == request.department) => {
                    CaseAccess::Refused(Unreached::CaseNotAssigned)
                }
                Some(c) => CaseAccess::Responsible(Arc::clone(&c.records)),
            },
        };
        Ok(Candidates {
            never_shared: Arc::clone(&shape.never_shared),
            field_names: Arc::clone(&shape.field_names),
            grants,
            jurisdiction: self
                .jurisdictions
                .get(request.department)
                .cloned()
                .unwrap_or_else(|| Arc::from(Vec::new())),
            case,
        })
    }

    /// Both steps for one record: `Err` when no grant applies at all.
    pub fn plan<R: RowView<String>>(
        &self,
        request: &Request<'_>,
        record: &Record<'_, R>,
    ) -> Result<RecordPlan, Refusal> {
        Ok(self.candidates(request)?.plan(record))
    }

    /// The category definition a request names.
    pub fn category(&self, name: &str) -> Option<&CategoryDef> {
        self.catalog.category(name)
    }
}

#[derive(Debug, Clone)]
enum CaseAccess {
    NotGiven,
    Refused(Unreached),
    /// The case is open and assigned to the department: these are its records.
    Responsible(Arc<HashSet<Box<str>>>),
}

/// The grants that may apply to one request, with what rule 4 needs to check them.
#[derive(Debug, Clone)]
pub struct Candidates {
    grants: Vec<Arc<CompiledGrant>>,
    jurisdiction: Arc<[GridCode]>,
    case: CaseAccess,
    field_names: Arc<[String]>,
    never_shared: Arc<[bool]>,
}

/// Rule 5: raise each field to `grant`'s level where that reveals more, crediting the grant (at
/// candidate `position`); a tie keeps the earlier grant.
fn raise(fields: &mut [FieldPlan], grant: &CompiledGrant, position: usize) {
    let position = u32::try_from(position).unwrap_or(u32::MAX);
    for (plan, level) in fields.iter_mut().zip(grant.levels.iter()) {
        if let Some(level) = *level
            && plan.level().is_none_or(|current| level > current)
        {
            *plan = FieldPlan::Disclosed {
                level,
                grant: position,
            };
        }
    }
}

/// The plan for one record: one entry per category field, in catalog order.
///
/// A capability: only `Candidates::plan` builds one (the fields are private and there is no
/// other constructor), so code that discloses a record's fields only when handed its plan
/// cannot disclose anything the decision did not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPlan {
    /// Invariant: one entry per field of the category, in catalog order.
    fields: Vec<FieldPlan>,
    /// Did any grant reach the record?
    reached: bool,
}

impl RecordPlan {
    /// Each field's plan, in catalog order.
    pub fn fields(&self) -> &[FieldPlan] {
        &self.fields
    }

    /// Did any candidate grant reach the record?
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// Is at least one field disclosed?
    pub fn discloses(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f, FieldPlan::Disclosed { .. }))
    }
}

impl Candidates {
    /// The candidate grants, in the order `FieldPlan::Disclosed::grant` indexes.
    pub fn grants(&self) -> &[Arc<CompiledGrant>] {
        &self.grants
    }

    /// The category's field names, in the order of `RecordPlan::fields`.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    /// Rule 4 for one grant: does `grant` reach `record`?
    pub fn reaches<R: RowView<String>>(
        &self,
        grant: &CompiledGrant,
        record: &Record<'_, R>,
    ) -> Result<(), Unreached> {
        self.reaches_with(grant, record, &mut None)
    }

    fn reaches_with<R: RowView<String>>(
        &self,
        grant: &CompiledGrant,
        record: &Record<'_, R>,
        in_jurisdiction: &mut Option<bool>,
    ) -> Result<(), Unreached> {
        if !grant.scope.iter().any(|s| s.contains(record.grid)) {
            return Err(Unreached::OutOfScope);
        }
        if let Some(filter) = &grant.filter
            && !filter.matches(record.row)
        {
            return Err(Unreached::RowFilter);
        }
        if !grant.case_bound {
            let inside = *in_jurisdiction
                .get_or_insert_with(|| self.jurisdiction.iter().any(|j| j.contains(record.grid)));
            return if inside {
                Ok(())
            } else {
                Err(Unreached::OutsideJurisdiction)
            };
        }
        match &self.case {
            CaseAccess::NotGiven => Err(Unreached::CaseRequired),
            CaseAccess::Refused(why) => Err(*why),
            CaseAccess::Responsible(records) if records.contains(record.id) => Ok(()),
            CaseAccess::Responsible(_) => Err(Unreached::NotLinkedToCase),
        }
    }

    /// Rules 4–5: each field at the most revealing level among the grants that reach `record`.
    pub fn plan<R: RowView<String>>(&self, record: &Record<'_, R>) -> RecordPlan {
        let mut fields: Vec<FieldPlan> = self
            .never_shared
            .iter()
            .map(|never| {
                FieldPlan::Withheld(if *never {
                    Withheld::NeverShared
                } else {
                    Withheld::RecordNotReached
                })
            })
            .collect();
        let mut reached = false;
        let mut in_jurisdiction = None;
        for (position, grant) in self.grants.iter().enumerate() {
            // A grant that cannot raise any field is not worth checking.
            let raises = grant.levels.iter().zip(&fields).any(|(level, plan)| {
                level.is_some_and(|l| plan.level().is_none_or(|current| l > current))
            });
            if reached && !raises {
                continue;
            }
            if self
                .reaches_with(grant, record, &mut in_jurisdiction)
                .is_err()
            {
                continue;
            }
            if !reached {
                reached = true;
                for (plan, never) in fields.iter_mut().zip(self.never_shared.iter()) {
                    if !never {
                        *plan = FieldPlan::Withheld(Withheld::NotGranted);
                    }
                }
            }
            raise(&mut fields, grant, position);
        }
        RecordPlan { fields, reached }
    }

    /// Without a record: the most any record could get under these grants (each field at the
    /// most revealing level any candidate names). What `explain` shows when no record is given.
    pub fn ceiling(&self) -> Vec<FieldPlan> {
        let mut fields: Vec<FieldPlan> = self
            .never_shared
            .iter()
            .map(|never| {
                FieldPlan::Withheld(if *never {
                    Withheld::NeverShared
                } else {
                    Withheld::NotGranted
                })
            })
            .collect();
        for (position, grant) in self.grants.iter().enumerate() {
            raise(&mut fields, grant, position);
        }
        fields
    }

    /// The fields any candidate's row filter reads (each once): what a record must carry for
    /// `plan` to judge it. Empty when no candidate has a filter.
    pub fn filter_fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for grant in &self.grants {
            for field in grant.filter.iter().flat_map(|f| f.fields()) {
                if !out.contains(&field) {
                    out.push(field);
                }
            }
        }
        out
    }

    /// When every candidate is case-bound and the department is responsible for the named case:
    /// the case's records, the only ones any candidate can reach.
    pub fn only_case_records(&self) -> Option<Vec<String>> {
        if self.grants.iter().any(|g| !g.case_bound) {
            return None;
        }
        match &self.case {
            CaseAccess::Responsible(records) => {
                let mut ids: Vec<String> = records.iter().map(|r| r.to_string()).collect();
                ids.sort();
                Some(ids)
            }
            CaseAccess::NotGiven | CaseAccess::Refused(_) => Some(Vec::new()),
        }
    }

    /// Does every candidate need a case the request does not give or is not responsible for?
    /// Then no record can be reached, whatever it is.
    pub fn case_refusal(&self) -> Option<Unreached> {
        if self.grants.iter().any(|g| !g.case_bound) {
            return None;
        }
        match &self.case {
            CaseAccess::NotGiven => Some(Unreached::CaseRequired),
            CaseAccess::Refused(why) => Some(*why),
            CaseAccess::Responsible(_) => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const NOW: i64 = 1_795_485_600_000;
    const DAY: i64 = 86_400_000;

    /// A person record: grid, tags, residence (plain strings stand in for blind-index tokens).
    struct Row {
        tags: BTreeSet<&'static str>,
        residence: &'static str,
    }

    impl RowView<String> for Row {
        fn has(&self, field: &str, value: &String) -> bool {
            field == "tags" && self.tags.contains(value.as_str())
        }
        fn equals(&self, field: &str, value: &String) -> bool {
            field == "residence" && self.residence == value
        }
    }

    fn grid(code: &str) -> GridCode {
        GridCode::parse(code).unwrap()
    }

    fn grant(id: &str, dept: &str, fields: &[(&str, Disclosure)], scope: &str) -> LiveGrant {
        LiveGrant {
            id: id.into(),
            terms: GrantTerms {
                grantee: dept.into(),
                purpose: "elderly-care".into(),
                category: "person".into(),
                fields: fields
                    .iter()
                    .map(|(f, d)| ((*f).to_owned(), *d))
                    .collect::<BTreeMap<_, _>>(),
                scope: vec![grid(scope)],
                row_filter: None,
                case_bound: false,
                valid_from: NOW - DAY,
                valid_until: NOW + DAY,
                daily_quota: None,
                legal_basis: None,
            },
            filter: None,
        }
    }

    fn index() -> DecisionIndex {
        let mut index = DecisionIndex::new(Catalog::default_catalog().clone());
        index.set_jurisdiction("civil", vec![grid("330110.001")]);
        index.set_jurisdiction("police", vec![grid("330110")]);
        index
    }

    fn request<'a>(dept: &'a str, case: Option<&'a str>) -> Request<'a> {
        Request {
            department: dept,
            category: "person",
            purpose: "elderly-care",
            case,
            now: NOW,
        }
    }

    fn level_of(index: &DecisionIndex, plan: &RecordPlan, field: &str) -> Option<Disclosure> {
        let position = index
            .category("person")
            .unwrap()
            .fields
            .iter()
            .position(|f| f.name == field)
            .unwrap();
        plan.fields[position].level()
    }

    fn row(tags: &[&'static str]) -> Row {
        Row {
            tags: tags.iter().copied().collect(),
            residence: "registered",
        }
    }

    #[test]
    fn no_grant_means_no_plan() {
        let index = index();
        assert_eq!(
            index.candidates(&request("civil", None)).unwrap_err(),
            Refusal::NoGrant
        );
        let mut r = request("civil", None);
        r.category = "spaceship";
        assert_eq!(index.candidates(&r).unwrap_err(), Refusal::UnknownCategory);
    }

    #[test]
    fn expired_suspended_and_revoked_grants_stop_counting() {
        let mut index = index();
        let mut g = grant("g1", "civil", &[("name", Disclosure::Clear)], "330110.001");
        index.upsert_grant(&g, GrantStatus::Approved).unwrap();
        assert!(index.candidates(&request("civil", None)).is_ok());
        for status in [GrantStatus::Suspended, GrantStatus::Revoked] {
            index.upsert_grant(&g, status).unwrap();
            assert_eq!(
                index.candidates(&request("civil", None)).unwrap_err(),
                Refusal::NoGrant
            );
            index.upsert_grant(&g, GrantStatus::Approved).unwrap();
        }
        g.terms.valid_until = NOW;
        index.upsert_grant(&g, GrantStatus::Approved).unwrap();
        assert_eq!(
            index.candidates(&request("civil", None)).unwrap_err(),
            Refusal::NoGrant
        );
        assert_eq!(index.grant_count(), 1);
        index.remove_grant("g1");
        assert_eq!(index.grant_count(), 0);
    }

    #[test]
    fn jurisdiction_scope_and_row_filter_bound_the_records() {
        let mut index = index();
        let mut g = grant(
            "g1",
            "civil",
            &[
                ("name", Disclosure::Clear),
                ("worker_notes", Disclosure::Clear),
            ],
            "330110",
        );
        g.filter = Some(
            RowFilter::parse(
                r#"tags has "elderly_alone""#,
                index.category("person").unwrap(),
            )
            .unwrap(),
        );
        index.upsert_grant(&g, GrantStatus::Approved).unwrap();
        let c = index.candidates(&request("civil", None)).unwrap();
        assert_eq!(c.filter_fields(), ["tags"]);
        let alone = row(&["elderly_alone"]);
        let inside = grid("330110.001.002");
        let outside = grid("330110.002.001");
        let record = |grid, row| Record {
            id: "r1",
            grid,
            row,
        };

        let plan = c.plan(&record(&inside, &alone));
        assert!(plan.reached);
        assert_eq!(level_of(&index, &plan, "name"), Some(Disclosure::Clear));
        // Named by the grant, but share class `none`: never disclosed.
        assert_eq!(level_of(&index, &plan, "worker_notes"), None);
        assert_eq!(level_of(&index, &plan, "phone"), None);

        assert!(!c.plan(&record(&outside, &alone)).reached);
        assert_eq!(
            c.reaches(&c.grants()[0], &record(&outside, &alone)),
            Err(Unreached::OutsideJurisdiction)
        );
        let other = row(&["disabled"]);
        assert!(!c.plan(&record(&inside, &other)).reached);
        assert_eq!(
            c.reaches(&c.grants()[0], &record(&inside, &other)),
            Err(Unreached::RowFilter)
        );
    }

    #[test]
    fn the_most_revealing_level_wins_per_field() {
        let mut index = index();
        index
            .upsert_grant(
                &grant(
                    "a",
                    "civil",
                    &[("name", Disclosure::Masked), ("phone", Disclosure::Clear)],
                    "330110.001",
                ),
                GrantStatus::Approved,
            )
            .unwrap();
        index
            .upsert_grant(
                &grant(
                    "b",
                    "civil",
                    &[
                        ("name", Disclosure::Pseudonym),
                        ("phone", Disclosure::Masked),
                    ],
                    "330110.001",
                ),
                GrantStatus::Approved,
            )
            .unwrap();
        let c = index.candidates(&request("civil", None)).unwrap();
        let r = row(&[]);
        let g = grid("330110.001.001");
        let plan = c.plan(&Record {
            id: "r",
            grid: &g,
            row: &r,
        });
        assert_eq!(level_of(&index, &plan, "name"), Some(Disclosure::Pseudonym));
        assert_eq!(level_of(&index, &plan, "phone"), Some(Disclosure::Clear));
        let credited: Vec<&str> = plan
            .fields
            .iter()
            .filter_map(|f| match f {
                FieldPlan::Disclosed { grant, .. } => Some(&*c.grants()[*grant as usize].id),
                FieldPlan::Withheld(_) => None,
            })
            .collect();
        assert_eq!(credited, ["b", "a"]);
    }

    #[test]
    fn case_bound_access_follows_the_assignment() {
        let mut index = index();
        let mut g = grant("g", "police", &[("name", Disclosure::Clear)], "330110");
        g.terms.case_bound = true;
        index.upsert_grant(&g, GrantStatus::Approved).unwrap();
        let r = row(&[]);
        let home = grid("330110.003.001");
        let suspect = Record {
            id: "suspect",
            grid: &home,
            row: &r,
        };
        let bystander = Record {
            id: "bystander",
            grid: &home,
            row: &r,
        };
        let outcome = |index: &DecisionIndex, dept, case| {
            let c = index.candidates(&request(dept, case)).unwrap();
            c.reaches(&c.grants()[0], &suspect)
        };
        assert_eq!(
            outcome(&index, "police", None),
            Err(Unreached::CaseRequired)
        );
        assert_eq!(
            outcome(&index, "police", Some("c1")),
            Err(Unreached::UnknownCase)
        );
        let mut case = Responsibility {
            case: "c1".into(),
            open: true,
            assignees: vec![],
            records: vec!["suspect".into()],
        };
        index.set_case(&case);
        assert_eq!(
            outcome(&index, "police", Some("c1")),
            Err(Unreached::CaseNotAssigned)
        );
        case.assignees = vec!["police".into(), "civil".into()];
        index.set_case(&case);
        assert_eq!(outcome(&index, "police", Some("c1")), Ok(()));
        let c = index.candidates(&request("police", Some("c1"))).unwrap();
        assert_eq!(
            c.reaches(&c.grants()[0], &bystander),
            Err(Unreached::NotLinkedToCase)
        );
        case.assignees = vec!["civil".into()];
        index.set_case(&case);
        assert_eq!(
            outcome(&index, "police", Some("c1")),
            Err(Unreached::CaseNotAssigned)
        );
        case.assignees = vec!["police".into()];
        case.open = false;
        index.set_case(&case);
        assert_eq!(
            outcome(&index, "police", Some("c1")),
            Err(Unreached::CaseClosed)
        );
        let c = index.candidates(&request("police", Some("c1"))).unwrap();
        assert_eq!(c.case_refusal(), Some(Unreached::CaseClosed));
    }

    #[test]
    fn the_ceiling_is_the_best_of_every_candidate() {
        let mut index = index();
        index
            .upsert_grant(
                &grant("a", "civil", &[("name", Disclosure::Masked)], "330110.001"),
                GrantStatus::Approved,
            )
            .unwrap();
        index
            .upsert_grant(
                &grant(
                    "b",
                    "civil",
                    &[("birth_date", Disclosure::Generalized)],
                    "330110.001",
                ),
                GrantStatus::Approved,
            )
            .unwrap();
        let c = index.candidates(&request("civil", None)).unwrap();
        assert!(c.filter_fields().is_empty());
        let ceiling = c.ceiling();
        let named: Vec<(&str, Disclosure)> = c
            .field_names()
            .iter()
            .zip(&ceiling)
            .filter_map(|(n, p)| p.level().map(|l| (n.as_str(), l)))
            .collect();
        assert_eq!(
            named,
            [
                ("name", Disclosure::Masked),
                ("birth_date", Disclosure::Generalized)
            ]
        );
    }
}
