//! Cases (事件): their subjects, assignment rounds, history and sealed texts. Reporting,
//! assigning and closing bump the decision version in the same transaction (an open assignment is a
//! responsibility, and responsibilities decide case-bound access). This module sees case texts
//! only sealed.

use policy::{CaseStatus, Responsibility};
use sqlx::Row;

use super::grants::BUMP_DECISION_VERSION;
use super::outbox::{case_event, emit_events};
use super::{Store, WriteTx, on_read, on_write};
use crate::vault::{SealedField, WrappedDek};

pub struct NewCase {
    pub id: String,
    pub grid: String,
    pub kind: String,
    pub reported_by: String,
    pub subjects: Vec<String>,
    /// Held back from subject access reports until closed.
    pub confidential: bool,
    pub wrapped: WrappedDek,
    pub summary: SealedField,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: String,
    pub grid: String,
    pub kind: String,
    pub status: CaseStatus,
    pub reported_by: String,
    pub reported_at: i64,
    pub deadline: Option<i64>,
    pub satisfaction: Option<i64>,
    pub closed_at: Option<i64>,
    pub confidential: bool,
    pub wrapped: WrappedDek,
    pub subjects: Vec<String>,
    pub assignments: Vec<AssignmentRow>,
    pub events: Vec<CaseEvent>,
    pub texts: Vec<SealedField>,
}

#[derive(Debug, Clone)]
pub struct AssignmentRow {
    pub department: String,
    pub round: i64,
    pub assigned_at: i64,
    pub deadline: i64,
    pub replied_at: Option<i64>,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub struct CaseEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    /// JSON without personal data.
    pub detail: String,
}

/// Outcome of a case step.
#[derive(Debug, PartialEq, Eq)]
pub enum CaseChange {
    /// Applied; the case is now in `status`; `version` is the decision version when the step
    /// changed responsibilities.
    Done {
        status: CaseStatus,
        version: Option<i64>,
    },
    /// The case does not exist.
    NotFound,
    /// The step does not apply to the case as it is now (closed, or not an open assignee).
    NotApplicable,
}

fn decode_error(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored case has a bad {what}").into())
}

const NEXT_EVENT: &str = "INSERT INTO case_events (case_id, seq, at, actor, action, detail) \
     SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM case_events WHERE case_id = $1";

impl Store {
    /// Store a new case; returns the decision version (a known case, even unassigned, lets a
    /// decision say "not assigned" rather than "unknown").
    pub async fn insert_case(&self, c: &NewCase) -> Result<i64, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(
                "INSERT INTO cases (id, grid, kind, status, reported_by, reported_at, deadline, \
                 satisfaction, closed_at, kek_version, wrapped_dek, updated_at, confidential) \
                 VALUES ($1, $2, $3, 'reported', $4, $5, NULL, NULL, NULL, $6, $7, $5, $8)",
            )
            .bind(c.id.clone())
            .bind(c.grid.clone())
            .bind(c.kind.clone())
            .bind(c.reported_by.clone())
            .bind(c.now)
            .bind(i64::from(c.wrapped.kek_version))
            .bind(c.wrapped.bytes.clone())
            .bind(c.confidential)
            .execute(&mut *tx)
            .await?;
            super::keys::charge_kek!(
                &mut *tx,
                crate::vault::CASE_TEXTS,
                c.wrapped.kek_version,
                1_i64
            );
            for record in &c.subjects {
                sqlx::query("INSERT INTO case_subjects (case_id, record_id) VALUES ($1, $2)")
                    .bind(c.id.clone())
                    .bind(record.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO case_texts (case_id, name, kek_version, sealed) VALUES ($1, $2, $3, $4)",
            )
            .bind(c.id.clone())
            .bind(c.summary.field.clone())
            .bind(i64::from(c.summary.kek_version))
            .bind(c.summary.sealed.clone())
            .execute(&mut *tx)
            .await?;
            let detail = serde_json::json!({ "subjects": c.subjects.len() }).to_string();
            sqlx::query(NEXT_EVENT)
                .bind(c.id.clone())
                .bind(c.now)
                .bind(c.reported_by.clone())
                .bind("report")
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            let version: i64 = sqlx::query(BUMP_DECISION_VERSION)
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
            tx.commit().await?;
            Ok(version)
        })
    }

    /// Which of `ids` are live (not erased) records.
    pub async fn live_record_ids(&self, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
        let mut out = Vec::new();
        for id in ids {
            let found = on_read!(self, |pool| {
                sqlx::query("SELECT id FROM records WHERE id = $1 AND erased_at IS NULL")
                    .bind(id.clone())
                    .fetch_optional(pool)
                    .await?
                    .is_some()
            });
            if found {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    pub async fn case(&self, id: &str) -> Result<Option<CaseRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let Some(r) = sqlx::query(
                "SELECT id, grid, kind, status, reported_by, reported_at, deadline, \
                 satisfaction, closed_at, kek_version, wrapped_dek, confidential FROM cases \
                 WHERE id = $1",
            )
            .bind(id.to_owned())
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let status: String = r.try_get("status")?;
            let kek_version: i64 = r.try_get("kek_version")?;
            let subjects = sqlx::query(
                "SELECT record_id FROM case_subjects WHERE case_id = $1 ORDER BY record_id",
            )
            .bind(id.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get("record_id"))
            .collect::<Result<Vec<String>, _>>()?;
            let assignments = sqlx::query(
                "SELECT department, round, assigned_at, deadline, replied_at, current \
                 FROM case_assignments WHERE case_id = $1 ORDER BY round, department",
            )
            .bind(id.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AssignmentRow {
                    department: r.try_get("department")?,
                    round: r.try_get("round")?,
                    assigned_at: r.try_get("assigned_at")?,
                    deadline: r.try_get("deadline")?,
                    replied_at: r.try_get("replied_at")?,
                    current: r.try_get("current")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let events = sqlx::query(
                "SELECT at, actor, action, detail FROM case_events WHERE case_id = $1 ORDER BY seq",
            )
            .bind(id.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CaseEvent {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let texts = sqlx::query(
                "SELECT name, kek_version, sealed FROM case_texts WHERE case_id = $1 ORDER BY name",
            )
            .bind(id.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let v: i64 = r.try_get("kek_version")?;
                Ok(SealedField {
                    field: r.try_get("name")?,
                    kek_version: u32::try_from(v).map_err(|_| decode_error("key version"))?,
                    sealed: r.try_get("sealed")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(Some(CaseRow {
                id: r.try_get("id")?,
                grid: r.try_get("grid")?,
                kind: r.try_get("kind")?,
                status: CaseStatus::parse(&status).ok_or_else(|| decode_error("status"))?,
                reported_by: r.try_get("reported_by")?,
                reported_at: r.try_get("reported_at")?,
                deadline: r.try_get("deadline")?,
                satisfaction: r.try_get("satisfaction")?,
                closed_at: r.try_get("closed_at")?,
                confidential: r.try_get("confidential")?,
                wrapped: WrappedDek {
                    kek_version: u32::try_from(kek_version)
                        .map_err(|_| decode_error("key version"))?,
                    bytes: r.try_get("wrapped_dek")?,
                },
                subjects,
                assignments,
                events,
                texts,
            }))
        })
    }

    /// Replace the case's current assignees with `departments` (a new round), unless closed.
    pub async fn assign_case(
        &self,
        id: &str,
        departments: &[String],
        deadline: i64,
        actor: &str,
        now: i64,
    ) -> Result<CaseChange, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "UPDATE cases SET status = 'assigned', deadline = $2, updated_at = $3 \
                 WHERE id = $1 AND status <> 'closed'",
            )
            .bind(id.to_owned())
            .bind(deadline)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let exists = sqlx::query("SELECT 1 AS one FROM cases WHERE id = $1")
                    .bind(id.to_owned())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                tx.rollback().await?;
                return Ok(if exists {
                    CaseChange::NotApplicable
                } else {
                    CaseChange::NotFound
                });
            }
            // The departments that lose the case on a reassignment hear of it too.
            let previous: Vec<String> = sqlx::query(
                "SELECT department FROM case_assignments WHERE case_id = $1 AND current = $2",
            )
            .bind(id.to_owned())
            .bind(true)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("department"))
            .collect::<Result<_, _>>()?;
            let kind: String = sqlx::query("SELECT kind FROM cases WHERE id = $1")
                .bind(id.to_owned())
                .fetch_one(&mut *tx)
                .await?
                .try_get("kind")?;
            sqlx::query(
                "UPDATE case_assignments SET current = $2 WHERE case_id = $1 AND current = $3",
            )
            .bind(id.to_owned())
            .bind(false)
            .bind(true)
            .execute(&mut *tx)
            .await?;
            let round: i64 = sqlx::query(
                "SELECT COALESCE(MAX(round), 0) + 1 AS round FROM case_assignments \
                 WHERE case_id = $1",
            )
            .bind(id.to_owned())
            .fetch_one(&mut *tx)
            .await?
            .try_get("round")?;
            for department in departments {
                sqlx::query(
                    "INSERT INTO case_assignments (case_id, department, round, assigned_at, \
                     deadline, replied_at, current) VALUES ($1, $2, $3, $4, $5, NULL, $6)",
                )
                .bind(id.to_owned())
                .bind(department.clone())
                .bind(round)
                .bind(now)
                .bind(deadline)
                .bind(true)
                .execute(&mut *tx)
                .await?;
            }
            let detail = serde_json::json!({
                "departments": departments, "deadline": deadline, "round": round,
            })
            .to_string();
            sqlx::query(NEXT_EVENT)
                .bind(id.to_owned())
                .bind(now)
                .bind(actor.to_owned())
                .bind("assign")
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            let what = if round == 1 { "assigned" } else { "reassigned" };
            let mut event = case_event(id, what, &kind, round, departments, deadline);
            for department in previous {
                if !event.destinations.contains(&department) {
                    event.destinations.push(department);
                }
            }
            emit_events!(self, tx, [&event], now);
            let version: i64 = sqlx::query(BUMP_DECISION_VERSION)
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
            tx.commit().await?;
            Ok(CaseChange::Done {
                status: CaseStatus::Assigned,
                version: Some(version),
            })
        })
    }

    /// `department` (a current assignee that has not replied yet) replies with a sealed note.
    /// The case becomes `replied` once every current assignee has.
    pub async fn reply_case(
        &self,
        id: &str,
        department: &str,
        note: &SealedField,
        actor: &str,
        now: i64,
    ) -> Result<CaseChange, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "UPDATE case_assignments SET replied_at = $3 WHERE case_id = $1 \
                 AND department = $2 AND current = $4 AND replied_at IS NULL \
                 AND EXISTS (SELECT 1 FROM cases WHERE id = $1 AND status = 'assigned')",
            )
            .bind(id.to_owned())
            .bind(department.to_owned())
            .bind(now)
            .bind(true)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(CaseChange::NotApplicable);
            }
            sqlx::query(
                "INSERT INTO case_texts (case_id, name, kek_version, sealed) VALUES ($1, $2, $3, $4)",
            )
            .bind(id.to_owned())
            .bind(note.field.clone())
            .bind(i64::from(note.kek_version))
            .bind(note.sealed.clone())
            .execute(&mut *tx)
            .await?;
            let waiting: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM case_assignments WHERE case_id = $1 \
                 AND current = $2 AND replied_at IS NULL",
            )
            .bind(id.to_owned())
            .bind(true)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            let status = if waiting == 0 {
                CaseStatus::Replied
            } else {
                CaseStatus::Assigned
            };
            sqlx::query("UPDATE cases SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(id.to_owned())
                .bind(status.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let detail =
                serde_json::json!({ "department": department, "note": note.field }).to_string();
            sqlx::query(NEXT_EVENT)
                .bind(id.to_owned())
                .bind(now)
                .bind(actor.to_owned())
                .bind("reply")
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(CaseChange::Done {
                status,
                version: None,
            })
        })
    }

    /// Close the case with a sealed resolution and an optional rating; ends every
    /// responsibility for it.
    pub async fn close_case(
        &self,
        id: &str,
        resolution: &SealedField,
        satisfaction: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<CaseChange, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "UPDATE cases SET status = 'closed', satisfaction = $2, closed_at = $3, \
                 updated_at = $3 WHERE id = $1 AND status <> 'closed'",
            )
            .bind(id.to_owned())
            .bind(satisfaction)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let exists = sqlx::query("SELECT 1 AS one FROM cases WHERE id = $1")
                    .bind(id.to_owned())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                tx.rollback().await?;
                return Ok(if exists {
                    CaseChange::NotApplicable
                } else {
                    CaseChange::NotFound
                });
            }
            sqlx::query(
                "INSERT INTO case_texts (case_id, name, kek_version, sealed) VALUES ($1, $2, $3, $4)",
            )
            .bind(id.to_owned())
            .bind(resolution.field.clone())
            .bind(i64::from(resolution.kek_version))
            .bind(resolution.sealed.clone())
            .execute(&mut *tx)
            .await?;
            let detail = serde_json::json!({ "satisfaction": satisfaction }).to_string();
            sqlx::query(NEXT_EVENT)
                .bind(id.to_owned())
                .bind(now)
                .bind(actor.to_owned())
                .bind("close")
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            let version: i64 = sqlx::query(BUMP_DECISION_VERSION)
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
            tx.commit().await?;
            Ok(CaseChange::Done {
                status: CaseStatus::Closed,
                version: Some(version),
            })
        })
    }

    /// Every open case with current assignees and subjects: the responsibilities a decision
    /// index holds.
    pub async fn open_responsibilities(&self) -> Result<Vec<Responsibility>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut out: std::collections::BTreeMap<String, Responsibility> =
                sqlx::query("SELECT id FROM cases WHERE status <> 'closed'")
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| {
                        let id: String = r.try_get("id")?;
                        Ok((
                            id.clone(),
                            Responsibility {
                                case: id,
                                open: true,
                                assignees: Vec::new(),
                                records: Vec::new(),
                            },
                        ))
                    })
                    .collect::<Result<_, sqlx::Error>>()?;
            for r in sqlx::query(
                "SELECT a.case_id, a.department FROM case_assignments a \
                 JOIN cases c ON c.id = a.case_id AND c.status <> 'closed' WHERE a.current = $1",
            )
            .bind(true)
            .fetch_all(pool)
            .await?
            {
                let case: String = r.try_get("case_id")?;
                if let Some(entry) = out.get_mut(&case) {
                    entry.assignees.push(r.try_get("department")?);
                }
            }
            for r in sqlx::query(
                "SELECT s.case_id, s.record_id FROM case_subjects s \
                 JOIN cases c ON c.id = s.case_id AND c.status <> 'closed'",
            )
            .fetch_all(pool)
            .await?
            {
                let case: String = r.try_get("case_id")?;
                if let Some(entry) = out.get_mut(&case) {
                    entry.records.push(r.try_get("record_id")?);
                }
            }
            Ok(out.into_values().collect())
        })
    }

    /// One case's responsibility as it is now (after a local change, for the index).
    pub async fn responsibility(&self, id: &str) -> Result<Option<Responsibility>, sqlx::Error> {
        Ok(self.case(id).await?.map(|c| Responsibility {
            case: c.id,
            open: c.status.is_open(),
            assignees: c
                .assignments
                .iter()
                .filter(|a| a.current)
                .map(|a| a.department.clone())
                .collect(),
            records: c.subjects,
        }))
    }
}
