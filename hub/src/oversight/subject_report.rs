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

/// Ledger actions that hand data to a department.
const DISCLOSURES: [&str; 2] = ["data.read", "data.lookup"];

#[derive(Serialize, ToSchema)]
pub struct DisclosureLine {
    /// When it was recorded (just before it was sent).
    time: String,
    department: Option<String>,
    client: Option<String>,
    /// The officer the department system said it acted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_behalf_of: Option<String>,
    purpose: Option<String>,
    grants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<String>,
    /// `pull` or `lookup`.
    how: &'static str,
    /// Field → disclosure level (`clear`, `pseudonym`, `masked`, `generalized`).
    fields: BTreeMap<String, String>,
    /// The ledger entry: verifiable with an inclusion proof.
    ledger_index: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SubjectReport {
    record: String,
    disclosures: Vec<DisclosureLine>,
    /// Disclosures under confidential cases still open: shown once the case closes.
    held_back: usize,
    /// Departments that received something, with how many times.
    departments: BTreeMap<String, usize>,
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
        let rows = self.store.ledger_entries_for_subject(&id, 100_000).await?;
        let mut disclosures = Vec::new();
        let mut held_back = 0;
        let mut departments: BTreeMap<String, usize> = BTreeMap::new();
        // Case id → held back (confidential and still open)?
        let mut confidential_open: HashMap<String, bool> = HashMap::new();
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
        })
    }
}
