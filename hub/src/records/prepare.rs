//! Checking what a caller submitted and sealing it: category, grid (existing, and one the caller
//! may write in), purpose, legal basis and every field against the catalog. All problems of a
//! request are listed together (prefixed `records[i].` for batch items); a grid the caller may
//! not write in refuses the whole request (403, audited).

use std::collections::HashMap;

use policy::{CategoryDef, FieldProblem, GridCode};

use super::sealing::{self, RecordDraft, prefix_problems};
use super::{RecordInput, Records};
use crate::auth::Principal;
use crate::auth::permissions::NO_GRID;
use crate::error::Error;
use crate::storage::NewRecord;

/// Existence checks of grids and purposes, and the caller's write permission per grid,
/// remembered for the length of one request so that a batch of thousands asks the database and
/// the enforcer once per distinct value.
#[derive(Default)]
pub(super) struct Lookups {
    grids: HashMap<String, bool>,
    purposes: HashMap<String, bool>,
    writable: HashMap<String, bool>,
}

impl Lookups {
    async fn grid_exists(&mut self, records: &Records, code: &GridCode) -> Result<bool, Error> {
        if let Some(known) = self.grids.get(code.as_str()) {
            return Ok(*known);
        }
        let exists = records.store.grid_exists(code).await?;
        self.grids.insert(code.as_str().to_owned(), exists);
        Ok(exists)
    }

    /// May `who` write records of `category` in `grid`? A grid-side category: the caller's
    /// role permits `records:write` in that grid. A department-owned category: the caller
    /// belongs to the owner, its role permits `records:publish`, and the grid is within the
    /// owner's jurisdiction; nobody else writes it.
    async fn may_write(
        &mut self,
        records: &Records,
        who: &Principal,
        category: &CategoryDef,
        grid: &GridCode,
    ) -> Result<bool, Error> {
        let key = format!("{}\u{0}{}", category.name, grid.as_str());
        if let Some(known) = self.writable.get(&key) {
            return Ok(*known);
        }
        let allowed = match &category.owner {
            None => {
                records
                    .access
                    .permits(who, grid.as_str(), "records", "write")
                    .await
            }
            Some(owner) => {
                who.department.as_deref() == Some(owner.as_str())
                    && records
                        .access
                        .permits(who, NO_GRID, "records", "publish")
                        .await
                    && records.store.department(owner).await?.is_some_and(|d| {
                        d.jurisdiction
                            .iter()
                            .filter_map(|j| GridCode::parse(j).ok())
                            .any(|j| j.contains(grid))
                    })
            }
        };
        self.writable.insert(key, allowed);
        Ok(allowed)
    }

    async fn purpose_exists(&mut self, records: &Records, id: &str) -> Result<bool, Error> {
        if let Some(known) = self.purposes.get(id) {
            return Ok(*known);
        }
        let exists = records.store.purpose_exists(id).await?;
        self.purposes.insert(id.to_owned(), exists);
        Ok(exists)
    }
}

fn problem(field: String, text: &str) -> FieldProblem {
    FieldProblem {
        field,
        problem: text.to_owned(),
    }
}

/// Check one submitted record and seal it. Validation problems are collected (each field path
/// prefixed with `prefix`); a grid the caller may not write in is a 403 for the whole request.
pub(super) async fn one(
    records: &Records,
    who: &Principal,
    lookups: &mut Lookups,
    input: RecordInput,
    prefix: &str,
) -> Result<Result<NewRecord, Vec<FieldProblem>>, Error> {
    let mut problems = Vec::new();
    let category = records.decisions.catalog()?.category(&input.category);
    if category.is_none() {
        problems.push(problem(format!("{prefix}category"), "unknown category"));
    }
    let grid = match GridCode::parse(&input.grid) {
        Ok(code) if !lookups.grid_exists(records, &code).await? => {
            problems.push(problem(format!("{prefix}grid"), "unknown grid"));
            None
        }
        Ok(code) => Some(code),
        Err(_) => {
            problems.push(problem(format!("{prefix}grid"), "not a grid code"));
            None
        }
    };
    if let (Some(grid), Some(category)) = (&grid, category)
        && !lookups.may_write(records, who, category, grid).await?
    {
        let (why, text) = match &category.owner {
            None => (
                "grid outside the caller's grids",
                "the grid is outside your grids",
            ),
            Some(_) => (
                "a department-owned category is written by its owner, in its jurisdiction",
                "only the publishing department writes this category, in its jurisdiction",
            ),
        };
        let error = Error::Forbidden(text.to_owned());
        return Err(records
            .access
            .deny(who.actor(), "record.create", why, error)
            .await);
    }
    if !lookups.purpose_exists(records, &input.purpose).await? {
        problems.push(problem(format!("{prefix}purpose"), "unknown purpose"));
    }
    if input
        .legal_basis
        .as_ref()
        .is_some_and(|b| b.trim().is_empty() || b.chars().count() > 500)
    {
        problems.push(problem(format!("{prefix}legal_basis"), "1–500 characters"));
    }
    let retention_until = match input.retention_until.as_deref() {
        None => None,
        Some(text) => match crate::time::parse_rfc3339(text) {
            Some(ms) => Some(ms),
            None => {
                problems.push(problem(
                    format!("{prefix}retention_until"),
                    "an RFC 3339 time, e.g. 2031-12-31T00:00:00+08:00",
                ));
                None
            }
        },
    };
    let values = match category.map(|c| c.parse_fields(&input.fields)) {
        Some(Ok(values)) => Some(values),
        Some(Err(field_problems)) => {
            problems.extend(prefix_problems(prefix, field_problems));
            None
        }
        None => None,
    };
    match (category, grid, values) {
        (Some(category), Some(grid), Some(values)) if problems.is_empty() => {
            let draft = RecordDraft {
                category,
                grid,
                purpose: input.purpose,
                legal_basis: input.legal_basis,
                retention_until,
                collector: who.id().to_owned(),
                values,
            };
            Ok(Ok(sealing::seal(&records.vault, draft)?))
        }
        _ => Ok(Err(problems)),
    }
}

/// Check and seal every item of a batch; all problems are listed (`Error::Validation`) if any
/// item has one.
pub(super) async fn batch(
    records: &Records,
    who: &Principal,
    items: Vec<RecordInput>,
) -> Result<Vec<NewRecord>, Error> {
    let mut ready = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    let mut lookups = Lookups::default();
    for (i, item) in items.into_iter().enumerate() {
        match one(records, who, &mut lookups, item, &format!("records[{i}].")).await? {
            Ok(record) => ready.push(record),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(ready)
    } else {
        Err(Error::Validation(problems))
    }
}
