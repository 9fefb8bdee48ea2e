//! The grid hierarchy as reference data: listed by anyone who may read grids, extended by
//! admins. Invariants: a stored grid has a canonical `GridCode`, a name of 1–100 characters, a
//! kind that agrees with its code (`logical` exactly for `L.…` codes), and a parent (implied by
//! the code) that exists; every addition is a durable `grid.create` entry before it is stored.
//! `routes/grids.rs` and the console's grid page call these same methods.

use policy::GridCode;

use super::{Identity, problem};
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::GridRow;
use crate::time::now_ms;

/// A grid as asked for: nothing checked yet.
pub struct GridDraft {
    pub code: String,
    pub name: String,
    /// `physical` or `logical`.
    pub kind: String,
}

impl Identity {
    /// All grids, parents before children (role permission `grids:read`).
    pub async fn grids(&self, who: &Principal) -> Result<Vec<GridRow>, Error> {
        self.access
            .authorize(who, "grids", "read", None, "grid.read")
            .await?;
        Ok(self.store.grids().await?)
    }

    /// Add a grid (role permission `grids:write`; audited before it is stored).
    pub async fn create_grid(&self, who: &Principal, draft: GridDraft) -> Result<GridRow, Error> {
        self.access
            .authorize(who, "grids", "write", None, "grid.create")
            .await?;
        let row = self.checked_grid(draft).await?;
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "grid.create",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("grid {}", row.code)),
            )
            .await?;
        if !self
            .store
            .insert_grids(std::slice::from_ref(&row), now_ms())
            .await?
        {
            return Err(Error::Conflict("a grid with this code exists".to_owned()));
        }
        tracing::info!(by = %who.id(), grid = %row.code, "grid created");
        Ok(row)
    }

    /// The row a draft describes, or every field problem it has (a code that does not parse is
    /// the only problem reported, as nothing else can be checked without it).
    async fn checked_grid(&self, draft: GridDraft) -> Result<GridRow, Error> {
        let code =
            GridCode::parse(&draft.code).map_err(|e| Error::validation("code", e.to_string()))?;
        let mut problems = Vec::new();
        let name_chars = draft.name.trim().chars().count();
        if name_chars == 0 || name_chars > 100 {
            problems.push(problem("name", "1–100 characters"));
        }
        match (draft.kind.as_str(), code.is_logical()) {
            ("physical", false) | ("logical", true) => {}
            ("physical" | "logical", _) => problems.push(problem(
                "kind",
                "logical grids have codes starting with `L.`, physical ones do not",
            )),
            _ => problems.push(problem("kind", "not one of: physical, logical")),
        }
        if let Some(parent) = code.parent()
            && !self.store.grid_exists(&parent).await?
        {
            problems.push(problem("code", "parent grid does not exist"));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        Ok(GridRow {
            code: code.as_str().to_owned(),
            name: draft.name.trim().to_owned(),
            kind: draft.kind,
        })
    }
}
