//! A grant request as submitted, and its parsing into `GrantTerms`. Guarantees: terms come out
//! of here only if every refusal of API.md "Grants" passed — levels the field has a rule for,
//! a known grantee, purpose and grids, times that parse, `check_terms` (scope, window, legal
//! basis, row filter) and a row filter that compiles against the vault's blind index.
//!
//! The request stays text until here, not parsed at the HTTP boundary, on purpose: the 422
//! names every problem at once, the syntactic ones among those only the store can tell (an
//! unknown department, purpose or grid), and it comes after the role check.

use std::collections::BTreeMap;

use policy::grant::check_terms;
use policy::statistics::{DEFAULT_MIN_CELL, PrivacyBudget, check_statistics_terms};
use policy::{Catalog, Disclosure, FieldProblem, GrantTerms, GridCode, StatisticsTerms};

use crate::decisions::compile_filter;
use crate::error::Error;
use crate::storage::Store;
use crate::vault::Vault;

/// A grant request as its requester wrote it.
#[derive(Debug, Clone)]
pub struct GrantDraft {
    /// `records` (default) or `statistics`.
    pub kind: Option<String>,
    /// Statistics grants: dimensions, smallest cell, privacy budget.
    pub group_by: Option<Vec<String>>,
    pub min_cell: Option<u32>,
    pub privacy: Option<PrivacyBudget>,
    /// Department id.
    pub grantee: String,
    pub purpose: String,
    pub category: String,
    /// Field name → `clear` | `pseudonym` | `masked` | `generalized`.
    pub fields: BTreeMap<String, String>,
    /// Grid codes.
    pub scope: Vec<String>,
    pub row_filter: Option<String>,
    pub case_bound: bool,
    /// RFC 3339.
    pub valid_from: String,
    /// RFC 3339; after `valid_from`.
    pub valid_until: String,
    pub daily_quota: Option<u32>,
    /// Required when a sensitive field is requested.
    pub legal_basis: Option<String>,
}

fn problem(field: &str, text: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        problem: text.to_owned(),
    }
}

/// What parsing needs to look up.
pub(super) struct TermsContext<'a> {
    pub store: &'a Store,
    pub vault: &'a Vault,
    pub catalog: &'a Catalog,
    pub now: i64,
}

impl GrantDraft {
    /// The terms of this request (and, for a statistics grant, its statistics terms), or 422
    /// naming every problem found.
    pub(super) async fn parse(
        mut self,
        cx: &TermsContext<'_>,
    ) -> Result<(GrantTerms, Option<StatisticsTerms>), Error> {
        let mut problems = Vec::new();
        let statistics = match self.kind.as_deref() {
            None | Some("records") => {
                for (name, given) in [
                    ("group_by", self.group_by.is_some()),
                    ("min_cell", self.min_cell.is_some()),
                    ("privacy", self.privacy.is_some()),
                ] {
                    if given {
                        problems.push(problem(name, "only a statistics grant has this"));
                    }
                }
                None
            }
            Some("statistics") => Some(StatisticsTerms {
                group_by: self.group_by.take().unwrap_or_default(),
                min_cell: self.min_cell.unwrap_or(DEFAULT_MIN_CELL),
                privacy: self.privacy,
            }),
            Some(_) => {
                problems.push(problem("kind", "records or statistics"));
                None
            }
        };
        let fields = self.levels(&mut problems);
        let grantee = cx.store.department(&self.grantee).await?;
        if grantee.is_none() {
            problems.push(problem("grantee", "unknown department"));
        }
        if !cx.store.purpose_exists(&self.purpose).await? {
            problems.push(problem("purpose", "unknown purpose"));
        }
        let mut scope = Vec::new();
        for (i, g) in self.scope.iter().enumerate() {
            match GridCode::parse(g) {
                Ok(code) if cx.store.grid_exists(&code).await? => scope.push(code),
                Ok(_) => problems.push(problem(&format!("scope[{i}]"), "unknown grid")),
                Err(_) => problems.push(problem(&format!("scope[{i}]"), "not a grid code")),
            }
        }
        let valid_from = crate::time::parse_rfc3339(&self.valid_from);
        let valid_until = crate::time::parse_rfc3339(&self.valid_until);
        if valid_from.is_none() {
            problems.push(problem("valid_from", "not an RFC 3339 time"));
        }
        if valid_until.is_none() {
            problems.push(problem("valid_until", "not an RFC 3339 time"));
        }
        let (Some(grantee), Some(valid_from), Some(valid_until), true) =
            (grantee, valid_from, valid_until, problems.is_empty())
        else {
            return Err(Error::Validation(problems));
        };
        let terms = self.into_terms(fields, scope, valid_from, valid_until);
        let jurisdiction: Vec<GridCode> = grantee
            .jurisdiction
            .iter()
            .filter_map(|g| GridCode::parse(g).ok())
            .collect();
        match statistics {
            None => Ok((
                checked_terms(terms, &jurisdiction, cx.catalog, cx.vault, cx.now)?,
                None,
            )),
            Some(stats) => {
                let filter =
                    check_statistics_terms(&terms, &stats, cx.catalog, &jurisdiction, cx.now)
                        .map_err(Error::Validation)?;
                if let (Some(filter), Some(category)) =
                    (&filter, cx.catalog.category(&terms.category))
                {
                    compile_filter(cx.vault, category, filter)
                        .map_err(|p| Error::validation("row_filter", p))?;
                }
                Ok((terms, Some(stats)))
            }
        }
    }

    /// The access levels asked for, each unknown level noted in `problems`.
    pub fn levels(&self, problems: &mut Vec<FieldProblem>) -> BTreeMap<String, Disclosure> {
        let mut fields = BTreeMap::new();
        for (name, level) in &self.fields {
            match level.parse::<Disclosure>() {
                Ok(level) => {
                    fields.insert(name.clone(), level);
                }
                Err(()) => problems.push(problem(
                    &format!("fields.{name}"),
                    "level must be clear, pseudonym, masked or generalized",
                )),
            }
        }
        fields
    }

    /// The terms, from this draft and its parts already parsed (and looked up).
    pub fn into_terms(
        self,
        fields: BTreeMap<String, Disclosure>,
        scope: Vec<GridCode>,
        valid_from: i64,
        valid_until: i64,
    ) -> GrantTerms {
        GrantTerms {
            grantee: self.grantee,
            purpose: self.purpose,
            category: self.category,
            fields,
            scope,
            row_filter: self.row_filter,
            case_bound: self.case_bound,
            valid_from,
            valid_until,
            daily_quota: self.daily_quota,
            legal_basis: self
                .legal_basis
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty()),
        }
    }
}

/// The checks of terms whose every lookup passed: `check_terms` (scope within the grantee's
/// `jurisdiction`, window, legal basis, row filter) and the row filter's compilation against
/// the vault's blind index. 422 names every problem.
pub fn checked_terms(
    terms: GrantTerms,
    jurisdiction: &[GridCode],
    catalog: &Catalog,
    vault: &Vault,
    now: i64,
) -> Result<GrantTerms, Error> {
    let filter = check_terms(&terms, catalog, jurisdiction, now).map_err(Error::Validation)?;
    if let (Some(filter), Some(category)) = (&filter, catalog.category(&terms.category)) {
        compile_filter(vault, category, filter).map_err(|p| Error::validation("row_filter", p))?;
    }
    Ok(terms)
}
