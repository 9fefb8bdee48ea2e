//! Who can see one record now (`GET /v1/records/{id}/visibility`, the console's "who can see
//! this" for a record): every department that a request would disclose fields of it to, per
//! purpose — without a case through its grants that need none, and for each open case the
//! record is linked to, through the case-bound grants of the departments assigned to it — with
//! each field's level, the grant behind it and until when. Computed by the decision index
//! itself (`Candidates::plan`, rules 3–5 of DESIGN.md §3), exactly as a pull would be, never by
//! a second reading of the policy. Field names and levels only, no value; audited as
//! `decision.visibility` (it tells whether the record passes grants' row filters).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use policy::{FieldPlan, GridCode, Record, Request};
use serde::Serialize;
use utoipa::ToSchema;

use super::Grants;
use crate::auth::Principal;
use crate::decisions::StoredRow;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft, RecordRef};
use crate::time::rfc3339;

/// One field a department would get, and the grant that gives it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldReach {
    pub field: String,
    /// `clear`, `pseudonym`, `masked` or `generalized`.
    pub level: String,
    pub grant: String,
}

/// A grant through which a department reaches the record.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ReachingGrant {
    pub id: String,
    pub case_bound: bool,
    /// RFC 3339: the grant's window ends then.
    pub valid_until: String,
}

/// A department that could see the record now, for one purpose (and one case).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentReach {
    pub department: String,
    pub purpose: String,
    /// The open case assigned to the department through which it reaches the record; absent
    /// when it needs none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The fields disclosed, in catalog order.
    pub fields: Vec<FieldReach>,
    /// The grants behind those fields.
    pub grants: Vec<ReachingGrant>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordVisibility {
    pub record: String,
    pub category: String,
    pub grid: String,
    /// By department, purpose and case.
    pub departments: Vec<DepartmentReach>,
}

impl Grants {
    /// Who could see record `id` at `now` (`grants:read`: oversight of every department's
    /// grants, which a department's `decisions:explain` is not — it would learn other
    /// departments' grants and the record's cases; refusals audited as `decision.visibility`;
    /// an unknown or erased record is 404).
    pub async fn record_visibility(
        &self,
        who: &Principal,
        id: &str,
        now: i64,
    ) -> Result<RecordVisibility, Error> {
        self.access
            .authorize(who, "grants", "read", None, "decision.visibility")
            .await?;
        let stored = self
            .store
            .record(id)
            .await?
            .ok_or(Error::NotFound("record"))?;
        let grid = GridCode::parse(&stored.grid)
            .map_err(|_| Error::Internal("a stored record has a bad grid".to_owned()))?;
        let tokens = self.store.record_tokens(id).await?;
        let row = StoredRow::new(
            &tokens,
            crate::records::public_fields(&stored.id, &stored.plain_fields)?,
        );
        // The (department, purpose) pairs holding a records grant on the category, and the
        // windows of those grants; the index decides what each pair gets.
        let mut grants: HashMap<String, i64> = HashMap::new();
        let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
        for g in self.store.approved_grants().await? {
            if g.in_record_index() && g.terms.category == stored.category {
                pairs.insert((g.terms.grantee.clone(), g.terms.purpose.clone()));
                grants.insert(g.id, g.terms.valid_until);
            }
        }
        // Open cases the record is linked to, and who is assigned to each.
        let mut cases: Vec<(String, Vec<String>)> = Vec::new();
        for case in self.store.open_cases_of_record(id).await? {
            if let Some(r) = self.store.responsibility(&case).await? {
                cases.push((case, r.assignees));
            }
        }
        self.decisions.refresh_to(who.versions.decision).await?;
        let subject = Record {
            id: &stored.id,
            grid: &grid,
            row: &row,
        };
        let departments = self.decisions.with_index(|index| {
            let mut out = Vec::new();
            let mut ask = |department: &str, purpose: &str, case: Option<&str>| {
                let request = Request {
                    department,
                    category: &stored.category,
                    purpose,
                    case,
                    now,
                };
                let Ok(candidates) = index.candidates(&request) else {
                    return;
                };
                let plan = candidates.plan(&subject);
                let mut fields = Vec::new();
                let mut credited: BTreeMap<String, ReachingGrant> = BTreeMap::new();
                for (name, field) in candidates.field_names().iter().zip(plan.fields()) {
                    let FieldPlan::Disclosed { level, grant } = field else {
                        continue;
                    };
                    let Some(g) = candidates.grants().get(*grant as usize) else {
                        continue;
                    };
                    let gid = g.id.to_string();
                    let valid_until = grants.get(&gid).copied().unwrap_or(0);
                    credited.entry(gid.clone()).or_insert(ReachingGrant {
                        id: gid.clone(),
                        case_bound: g.case_bound(),
                        valid_until: rfc3339(valid_until),
                    });
                    fields.push(FieldReach {
                        field: name.clone(),
                        level: level.as_str().to_owned(),
                        grant: gid,
                    });
                }
                // Through a case: listed only where a case-bound grant is what reaches it
                // (otherwise the case adds nothing to the row without one).
                let through_case = credited.values().any(|g| g.case_bound);
                if fields.is_empty() || (case.is_some() && !through_case) {
                    return;
                }
                out.push(DepartmentReach {
                    department: department.to_owned(),
                    purpose: purpose.to_owned(),
                    case: case.map(str::to_owned),
                    fields,
                    grants: credited.into_values().collect(),
                });
            };
            for (department, purpose) in &pairs {
                ask(department, purpose, None);
            }
            for (case, assignees) in &cases {
                for (department, purpose) in pairs.iter().filter(|(d, _)| assignees.contains(d)) {
                    ask(department, purpose, Some(case));
                }
            }
            out
        })?;
        let seen: BTreeSet<&str> = departments.iter().map(|d| d.department.as_str()).collect();
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "decision.visibility",
                    Decision::Allow,
                    current_request_id(),
                )
                .category(&stored.category)
                .records(vec![RecordRef::new(id, [])])
                .reason(&format!(
                    "who can see the record: {} department(s)",
                    seen.len()
                )),
            )
            .await?;
        Ok(RecordVisibility {
            record: stored.id.clone(),
            category: stored.category.clone(),
            grid: stored.grid.clone(),
            departments,
        })
    }
}
