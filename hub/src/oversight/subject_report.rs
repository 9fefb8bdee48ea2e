//! The subject access report (`GET /v1/audit/subjects/{id}/report`) (PIPL art. 45, like
//! Estonia's Data Tracker). For one person's record: every department that received which of
//! its fields, at which level, when, for which purpose, under which grants and case — read from
//! the audit ledger, so it is exactly what was recorded before the data left. Disclosures under
//! a confidential case that is still open are held back (counted, not shown) until the case
//! closes. The request for the report is itself audited.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use utoipa::ToSchema;

use super::Oversight;
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::entry::parse_canonical;
use crate::ledger::{Decision, EntryDraft, RecordRef};
use policy::FieldType;

/// Ledger actions that hand data to a department.
const DISCLOSURES: [&str; 2] = ["data.read", "data.lookup"];

#[derive(Serialize, ToSchema)]
pub struct DisclosureLine {
    /// When it was recorded (just before it was sent).
    pub time: String,
    pub department: Option<String>,
    pub client: Option<String>,
    /// The officer the department system said it acted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    pub purpose: Option<String>,
    pub grants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// `pull` or `lookup`.
    pub how: &'static str,
    /// Field → disclosure level (`clear`, `pseudonym`, `masked`, `generalized`).
    pub fields: BTreeMap<String, String>,
    /// The ledger entry: verifiable with an inclusion proof.
    pub ledger_index: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SubjectReport {
    pub record: String,
    pub disclosures: Vec<DisclosureLine>,
    /// Disclosures under confidential cases still open: shown once the case closes.
    pub held_back: usize,
    /// Departments that received something (from this record or a related one), with how
    /// many times.
    pub departments: BTreeMap<String, usize>,
    /// Records about the same person in other categories (same identity number), typically
    /// those departments publish, with what was disclosed of each. Statistics answers never
    /// appear: they disclose no one.
    pub related: Vec<RelatedRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct RelatedRecord {
    pub record: String,
    pub category: String,
    /// The department that publishes the category, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub disclosures: Vec<DisclosureLine>,
    pub held_back: usize,
}

impl Oversight {
    /// The subject access report of record `id` (role permission `audit:read`; audited).
    pub async fn subject_report(
        &self,
        who: &Principal,
        id: String,
    ) -> Result<SubjectReport, Error> {
        self.access
            .authorize(who, "audit", "read", None, "audit.subject_report")
            .await?;
        let mut departments: BTreeMap<String, usize> = BTreeMap::new();
        let mut confidential_open: HashMap<String, bool> = HashMap::new();
        let (disclosures, held_back) = self
            .disclosures_of(&id, &mut departments, &mut confidential_open)
            .await?;
        let mut related = Vec::new();
        for (record, category, owner) in self.same_person(&id).await? {
            let (lines, held) = self
                .disclosures_of(&record, &mut departments, &mut confidential_open)
                .await?;
            related.push(RelatedRecord {
                record,
                category,
                owner,
                disclosures: lines,
                held_back: held,
            });
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "audit.subject_report",
                    Decision::Allow,
                    current_request_id(),
                )
                .records(vec![RecordRef::new(&id, [])])
                .reason(&format!(
                    "{} disclosures reported, {held_back} held back",
                    disclosures.len()
                )),
            )
            .await?;
        Ok(SubjectReport {
            record: id,
            disclosures,
            held_back,
            departments,
            related,
        })
    }

    /// Every disclosure of record `id` in the ledger (lines shown, and how many were held
    /// back), counting the receiving departments into `departments`.
    async fn disclosures_of(
        &self,
        id: &str,
        departments: &mut BTreeMap<String, usize>,
        confidential_open: &mut HashMap<String, bool>,
    ) -> Result<(Vec<DisclosureLine>, usize), Error> {
        let rows = self.store.ledger_entries_for_subject(id, 100_000).await?;
        let mut disclosures = Vec::new();
        let mut held_back = 0;
        for (index, canonical) in rows {
            let entry = parse_canonical(&canonical)
                .map_err(|e| Error::Integrity(format!("ledger entry {index}: {e}")))?;
            if entry.decision != Decision::Allow || !DISCLOSURES.contains(&entry.action.as_str()) {
                continue;
            }
            let Some(record) = entry.records.iter().find(|r| r.id == id) else {
                continue;
            };
            if let Some(case) = &entry.case {
                let hold = match confidential_open.get(case) {
                    Some(hold) => *hold,
                    None => {
                        let hold = self
                            .store
                            .case(case)
                            .await?
                            .is_some_and(|c| c.confidential && c.status.is_open());
                        confidential_open.insert(case.clone(), hold);
                        hold
                    }
                };
                if hold {
                    held_back += 1;
                    continue;
                }
            }
            if let Some(d) = &entry.actor.department {
                *departments.entry(d.clone()).or_default() += 1;
            }
            disclosures.push(DisclosureLine {
                time: entry.time,
                department: entry.actor.department,
                client: entry.actor.client,
                on_behalf_of: entry.actor.on_behalf_of,
                purpose: entry.purpose,
                grants: entry.grants,
                case: entry.case,
                how: if entry.action == "data.lookup" {
                    "lookup"
                } else {
                    "pull"
                },
                fields: (*record.fields).clone(),
                ledger_index: entry.index,
            });
        }
        Ok((disclosures, held_back))
    }

    /// Records about the same person as record `id` in the other categories, found through
    /// the blind index of their identity-number fields: `(record, category, owner)`. The
    /// identity number is opened here, in memory, to compute the other categories' tokens;
    /// it is never returned or logged.
    async fn same_person(&self, id: &str) -> Result<Vec<(String, String, Option<String>)>, Error> {
        let Some(stored) = self.store.record(id).await? else {
            return Ok(Vec::new());
        };
        let catalog = self.decisions.catalog()?;
        let Some(category) = catalog.category(&stored.category) else {
            return Ok(Vec::new());
        };
        let Some(field) = category
            .fields
            .iter()
            .find(|f| f.ty == FieldType::IdNumber && f.indexed)
        else {
            return Ok(Vec::new());
        };
        let opened = crate::records::open_all(&self.vault, category, &stored)?;
        let Some(number) = opened.get(&field.name).and_then(|v| v.as_str()) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for other in catalog.categories() {
            if other.name == category.name {
                continue;
            }
            for f in other
                .fields
                .iter()
                .filter(|f| f.ty == FieldType::IdNumber && f.indexed)
            {
                let token = self.vault.blind_token(&other.name, &f.name, number);
                for record in self
                    .store
                    .records_with_token(&other.name, &f.name, &token)
                    .await?
                {
                    found.push((record, other.name.clone(), other.owner.clone()));
                }
            }
        }
        Ok(found)
    }
}
