//! Departments and their jurisdiction (grid subtrees). A department is created once, never
//! renamed here; its jurisdiction (set at creation, replaced by `set_jurisdiction`) is stored
//! sorted and without duplicates, as canonical grid codes of grids that exist, at least one
//! (storage bumps the decision version in the same transaction, so the decision index picks it
//! up on the next request).

use super::{ID_RULE, Identity, problem, valid_id};
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::{DepartmentRow, Inserted};
use crate::time::now_ms;

/// A department as asked for: nothing checked yet.
pub struct DepartmentDraft {
    pub id: String,
    pub name: String,
    /// Grid codes as sent.
    pub jurisdiction: Vec<String>,
}

impl Identity {
    /// Create a department (role permission `departments:write`; audited before it is stored).
    pub async fn create_department(
        &self,
        who: &Principal,
        draft: DepartmentDraft,
    ) -> Result<DepartmentRow, Error> {
        self.access
            .authorize(who, "departments", "write", None, "department.create")
            .await?;
        let row = self.checked_department(draft).await?;
        if self.store.department(&row.id).await?.is_some() {
            return Err(exists());
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "department.create",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!(
                    "department {} with jurisdiction {}",
                    row.id,
                    row.jurisdiction.join(",")
                )),
            )
            .await?;
        match self.store.insert_department(&row, now_ms()).await? {
            Inserted::Created => Ok(row),
            Inserted::AlreadyExists => Err(exists()),
        }
    }

    /// All departments (role permission `departments:read`).
    pub async fn departments(&self, who: &Principal) -> Result<Vec<DepartmentRow>, Error> {
        self.access
            .authorize(who, "departments", "read", None, "department.read")
            .await?;
        Ok(self.store.departments().await?)
    }

    /// Replace department `id`'s jurisdiction (role permission `departments:write`; audited as
    /// `department.jurisdiction` before it is stored); answers the stored department.
    pub async fn set_jurisdiction(
        &self,
        who: &Principal,
        id: &str,
        jurisdiction: &[String],
    ) -> Result<DepartmentRow, Error> {
        self.access
            .authorize(who, "departments", "write", None, "department.jurisdiction")
            .await?;
        let Some(current) = self.store.department(id).await? else {
            return Err(Error::NotFound("department"));
        };
        let codes = self.checked_jurisdiction(jurisdiction).await?;
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "department.jurisdiction",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!(
                    "department {id}: jurisdiction {} (was {})",
                    codes.join(","),
                    current.jurisdiction.join(",")
                )),
            )
            .await?;
        if !self.store.set_department_jurisdiction(id, &codes).await? {
            return Err(Error::NotFound("department"));
        }
        tracing::info!(by = %who.id(), department = %id, "jurisdiction replaced");
        Ok(DepartmentRow {
            jurisdiction: codes,
            ..current
        })
    }

    /// At least one known grid, as canonical codes sorted and without duplicates, or a problem
    /// per bad code.
    async fn checked_jurisdiction(&self, grids: &[String]) -> Result<Vec<String>, Error> {
        let mut problems = Vec::new();
        if grids.is_empty() {
            problems.push(problem("jurisdiction", "at least one grid code"));
        }
        let mut codes = Vec::new();
        for (i, g) in grids.iter().enumerate() {
            match self.known_grid(&format!("jurisdiction[{i}]"), g).await? {
                Ok(code) => codes.push(code.as_str().to_owned()),
                Err(p) => problems.push(p),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        codes.sort();
        codes.dedup();
        Ok(codes)
    }

    /// The row a draft describes, or every field problem it has.
    async fn checked_department(&self, draft: DepartmentDraft) -> Result<DepartmentRow, Error> {
        let mut problems = Vec::new();
        if !valid_id(&draft.id) {
            problems.push(problem("id", ID_RULE));
        }
        let name_chars = draft.name.trim().chars().count();
        if name_chars == 0 || name_chars > 100 || draft.name.contains(['\n', '\r']) {
            problems.push(problem("name", "one line of 1–100 characters"));
        }
        if draft.jurisdiction.is_empty() {
            problems.push(problem("jurisdiction", "at least one grid code"));
        }
        let mut jurisdiction = Vec::new();
        for (i, g) in draft.jurisdiction.iter().enumerate() {
            match self.known_grid(&format!("jurisdiction[{i}]"), g).await? {
                Ok(code) => jurisdiction.push(code.as_str().to_owned()),
                Err(p) => problems.push(p),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        jurisdiction.sort();
        jurisdiction.dedup();
        Ok(DepartmentRow {
            id: draft.id,
            name: draft.name.trim().to_owned(),
            jurisdiction,
        })
    }
}

fn exists() -> Error {
    Error::Conflict("a department with this id exists".to_owned())
}
