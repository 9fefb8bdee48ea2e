//! `Disclosures::explain`: the disclosure plan DESIGN.md §3 gives for a request, with the
//! grant behind every disclosed field and the reason for every withheld one, so a DPO or a
//! department can see why. It runs the same index and the same code as a disclosure; it shows
//! no field values. Every explanation is audited (it tells whether a record passes the grants'
//! row filters).

use std::collections::BTreeMap;

use policy::{FieldPlan, GrantStatus, GridCode, Record, Refusal, Request, Withheld};
use serde::Serialize;
use utoipa::ToSchema;

use super::Disclosures;
use crate::auth::Principal;
use crate::decisions::StoredRow;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft, RecordRef};
use crate::records;
use crate::time::now_ms;

/// What to explain.
pub struct ExplainAsk {
    pub category: String,
    pub purpose: String,
    pub case: Option<String>,
    /// A record id; without one, the plan is the most any record could get.
    pub record: Option<String>,
    /// Whose access: a department explains its own (and may omit it); a DPO or admin names it.
    pub department: Option<String>,
}

/// One field of the plan: disclosed at a level because of a grant, or withheld with a reason.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FieldExplanation {
    Disclosed { disclosure: String, grant: String },
    Withheld { withheld: String },
}

#[derive(Serialize, ToSchema)]
pub struct GrantExplanation {
    id: String,
    case_bound: bool,
    /// With a record: does this grant reach it?
    #[serde(skip_serializing_if = "Option::is_none")]
    reaches: Option<bool>,
    /// With a record, when it does not: why (`out_of_scope`, `row_filter`,
    /// `outside_jurisdiction`, `case_required`, `unknown_case`, `case_closed`,
    /// `case_not_assigned`, `not_linked_to_case`).
    #[serde(skip_serializing_if = "Option::is_none")]
    unreached: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Explanation {
    /// Would at least one field be disclosed?
    allowed: bool,
    /// When nothing would be: `no_grant` (no approved grant valid now for this department,
    /// purpose and category) or `record_not_reached`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    department: String,
    category: String,
    purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    /// The candidate grants (approved, valid now, this department, purpose and category).
    grants: Vec<GrantExplanation>,
    fields: BTreeMap<String, FieldExplanation>,
    /// Records grants of this department, purpose and category that a DPO approved or may
    /// approve but whose category's owner has not consented yet: they disclose nothing until
    /// it does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    awaiting_consent: Vec<PendingConsent>,
    /// Statistics grants in force for this department, purpose and category: counts per cell
    /// (`POST /v1/data/{category}/statistics`), never records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    statistics: Vec<StatisticsExplanation>,
}

#[derive(Serialize, ToSchema)]
pub struct PendingConsent {
    id: String,
    /// The department whose consent is missing.
    owner: String,
    /// `requested` (the DPO has not answered either) or `approved`.
    status: String,
}

#[derive(Serialize, ToSchema)]
pub struct StatisticsExplanation {
    id: String,
    group_by: Vec<String>,
    min_cell: u32,
    /// With noise: `{epsilon_per_day, epsilon_per_query}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    privacy: Option<policy::statistics::PrivacyBudget>,
}

impl Disclosures {
    /// Explain the decision for `ask`, as `who` may see it (role permission `decisions:explain`;
    /// a department only its own access). Audited as `decision.explain`.
    pub async fn explain(&self, who: &Principal, ask: ExplainAsk) -> Result<Explanation, Error> {
        self.access
            .authorize(who, "decisions", "explain", None, "decision.explain")
            .await?;
        let department = match (&who.department, ask.department) {
            (Some(own), None) => own.clone(),
            (Some(own), Some(asked)) if *own == asked => asked,
            (Some(_), Some(_)) => {
                let why = "a department may explain only its own access";
                let error = Error::Forbidden(why.to_owned());
                return Err(self
                    .access
                    .deny(who.actor(), "decision.explain", why, error)
                    .await);
            }
            (None, Some(asked)) => {
                if self.store.department(&asked).await?.is_none() {
                    return Err(Error::validation("department", "unknown department"));
                }
                asked
            }
            (None, None) => {
                return Err(Error::validation(
                    "department",
                    "name the department whose access to explain",
                ));
            }
        };
        let catalog = self.decisions.catalog_at(who.versions.decision).await?;
        let Some(category) = catalog.category(&ask.category) else {
            return Err(Error::validation("category", "unknown category"));
        };
        let record = match &ask.record {
            None => None,
            Some(id) => {
                let stored = self
                    .store
                    .record(id)
                    .await?
                    .ok_or(Error::NotFound("record"))?;
                if stored.category != category.name {
                    return Err(Error::validation(
                        "record",
                        "the record is not of this category",
                    ));
                }
                let grid = GridCode::parse(&stored.grid)
                    .map_err(|_| Error::Internal("a stored record has a bad grid".to_owned()))?;
                let tokens = self.store.record_tokens(id).await?;
                Some((
                    stored.id.clone(),
                    grid,
                    StoredRow::new(
                        &tokens,
                        records::public_fields(&stored.id, &stored.plain_fields)?,
                    ),
                ))
            }
        };
        self.decisions.refresh_to(who.versions.decision).await?;
        let request = Request {
            department: &department,
            category: &category.name,
            purpose: &ask.purpose,
            case: ask.case.as_deref(),
            now: now_ms(),
        };
        let explanation = self.decisions.with_index(|index| {
            let candidates = match index.candidates(&request) {
                Ok(c) => c,
                Err(Refusal::NoGrant | Refusal::UnknownCategory) => {
                    let fields = category
                        .fields
                        .iter()
                        .map(|f| {
                            (
                                f.name.clone(),
                                FieldExplanation::Withheld {
                                    withheld: Withheld::NoGrant.as_str().to_owned(),
                                },
                            )
                        })
                        .collect();
                    return (
                        false,
                        Some(Withheld::NoGrant.as_str()),
                        Vec::new(),
                        fields,
                        None,
                    );
                }
            };
            let (plan, grants) = match &record {
                None => (
                    candidates.ceiling(),
                    candidates
                        .grants()
                        .iter()
                        .map(|g| GrantExplanation {
                            id: g.id.to_string(),
                            case_bound: g.case_bound(),
                            reaches: None,
                            unreached: None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Some((id, grid, row)) => {
                    let subject = Record { id, grid, row };
                    let grants = candidates
                        .grants()
                        .iter()
                        .map(|g| {
                            let outcome = candidates.reaches(g, &subject);
                            GrantExplanation {
                                id: g.id.to_string(),
                                case_bound: g.case_bound(),
                                reaches: Some(outcome.is_ok()),
                                unreached: outcome.err().map(|u| u.as_str().to_owned()),
                            }
                        })
                        .collect();
                    (candidates.plan(&subject).fields().to_vec(), grants)
                }
            };
            let mut disclosed = Vec::new();
            let fields = candidates
                .field_names()
                .iter()
                .zip(&plan)
                .map(|(name, field)| {
                    let explained = match field {
                        FieldPlan::Disclosed { level, grant } => {
                            disclosed.push((name.clone(), level.as_str()));
                            FieldExplanation::Disclosed {
                                disclosure: level.as_str().to_owned(),
                                grant: candidates
                                    .grants()
                                    .get(*grant as usize)
                                    .map(|g| g.id.to_string())
                                    .unwrap_or_default(),
                            }
                        }
                        FieldPlan::Withheld(why) => FieldExplanation::Withheld {
                            withheld: why.as_str().to_owned(),
                        },
                    };
                    (name.clone(), explained)
                })
                .collect();
            let allowed = !disclosed.is_empty();
            let reason = (!allowed).then_some(Withheld::RecordNotReached.as_str());
            (allowed, reason, grants, fields, Some(disclosed))
        })?;
        let (allowed, reason, grants, fields, disclosed) = explanation;
        let mut entry = EntryDraft::new(
            who.actor(),
            "decision.explain",
            Decision::Allow,
            current_request_id(),
        )
        .category(&category.name)
        .purpose(&ask.purpose)
        .grants(grants.iter().map(|g| g.id.clone()).collect())
        .reason(&format!(
            "explained for {department}: {}",
            if allowed {
                "some fields disclosed"
            } else {
                reason.unwrap_or("nothing disclosed")
            }
        ));
        if let Some(case) = &ask.case {
            entry = entry.case(case);
        }
        if let (Some((id, _, _)), Some(disclosed)) = (&record, disclosed) {
            entry = entry.records(vec![RecordRef::new(id, disclosed)]);
        }
        self.access.record(entry).await?;
        let now = now_ms();
        let mut awaiting_consent = Vec::new();
        let mut statistics = Vec::new();
        for g in self
            .store
            .grants(Some(&department), None, Some(&category.name))
            .await?
        {
            if g.terms.purpose != ask.purpose || !g.terms.valid_at(now) {
                continue;
            }
            if let Some(terms) = &g.statistics {
                if g.in_force() {
                    statistics.push(StatisticsExplanation {
                        id: g.id.clone(),
                        group_by: terms.group_by.clone(),
                        min_cell: terms.min_cell,
                        privacy: terms.privacy,
                    });
                }
            } else if !g.consent_satisfied()
                && matches!(g.status, GrantStatus::Requested | GrantStatus::Approved)
                && let Some(owner) = &category.owner
            {
                awaiting_consent.push(PendingConsent {
                    id: g.id.clone(),
                    owner: owner.clone(),
                    status: g.status.as_str().to_owned(),
                });
            }
        }
        Ok(Explanation {
            awaiting_consent,
            statistics,
            allowed,
            reason: reason.map(str::to_owned),
            department,
            category: category.name.clone(),
            purpose: ask.purpose,
            case: ask.case,
            record: ask.record,
            grants,
            fields,
        })
    }
}
