//! Statistics grants (统计授权): a department receives counts per cell, never records
//! (PIPL art. 6, the minimum necessary). A statistics grant names the dimensions its grantee
//! may group by, the smallest cell it may see (`min_cell`, 10 unless the grant says otherwise)
//! and, optionally, a daily privacy budget spent by noisy answers.
//!
//! Dimensions are the record's grid cut to a level (`grid.city`, `grid.district`,
//! `grid.street`, `grid.community`, or `grid` itself) and blind-indexed enum and tag-set fields
//! (a record counts once in each cell its values put it in: a tag set with two tags, in two
//! cells; a record without a value of a grouped field is in no cell). Counting reads the grid
//! column and the blind-index tokens only, so no field is decrypted to answer. Fields of share
//! class `none` never are dimensions.
//!
//! Invariants: a `StatisticsTerms` that passed `check` names at least one and at most
//! `MAX_GROUP_BY` distinct dimensions that exist in its category; its budget, if any, spends at
//! least one query a day; `release` shows a cell only at or above `min_cell` (after noise, when
//! there is noise), so a cell smaller than the threshold is never in an answer.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::{Catalog, CategoryDef, FieldDef, FieldType, ShareClass};
use crate::grant::{GrantTerms, check_terms};
use crate::grid::GridCode;
use crate::row_filter::RowFilter;
use crate::value::FieldProblem;

/// The smallest cell shown when a grant does not say.
pub const DEFAULT_MIN_CELL: u32 = 10;
/// Most dimensions one grant (and so one query) may group by.
pub const MAX_GROUP_BY: usize = 4;
/// Most cells one answer may hold before it is refused as too fine.
pub const MAX_CELLS: usize = 20_000;
/// Largest ε a budget may spend in a day (ε = 10 already gives little protection).
pub const MAX_EPSILON_MILLI: u32 = 10_000;

/// A grid level a count may be grouped at, by how many leading segments of the code it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GridLevel {
    City,
    District,
    Street,
    Community,
    /// The record's own grid code.
    Grid,
}

impl GridLevel {
    const ALL: [(GridLevel, &'static str); 5] = [
        (GridLevel::City, "grid.city"),
        (GridLevel::District, "grid.district"),
        (GridLevel::Street, "grid.street"),
        (GridLevel::Community, "grid.community"),
        (GridLevel::Grid, "grid"),
    ];

    /// Leading segments kept (`None`: the whole code).
    pub fn segments(self) -> Option<usize> {
        match self {
            GridLevel::City => Some(1),
            GridLevel::District => Some(2),
            GridLevel::Street => Some(3),
            GridLevel::Community => Some(4),
            GridLevel::Grid => None,
        }
    }

    /// `code` cut to this level (a code shorter than the level stays whole).
    pub fn cut(self, code: &str) -> String {
        match self.segments() {
            None => code.to_owned(),
            Some(n) => code.split('.').take(n).collect::<Vec<_>>().join("."),
        }
    }
}

/// One dimension of a count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Grid(GridLevel),
    /// A blind-indexed enum or tag-set field.
    Field(String),
}

/// Why a dimension, a filter or a budget was refused; names the dimension, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatisticsError {
    #[error(
        "`{0}` is not a dimension of this category (grid levels, blind-indexed enum and tag-set fields)"
    )]
    UnknownDimension(String),
    #[error("`{0}` is never shared (share class `none`)")]
    NotShared(String),
    #[error("name between 1 and {MAX_GROUP_BY} distinct dimensions")]
    GroupByCount,
    #[error("`{0}` is named twice")]
    Duplicate(String),
    #[error("`{0}` is not a dimension this grant allows")]
    NotGranted(String),
    #[error("the filter may use only fields the grant groups by; `{0}` is not one")]
    FilterField(String),
    #[error("min_cell must be between 1 and 1000")]
    MinCell,
    #[error("epsilon values are between 0.001 and {} in steps of 0.001, and a day's budget covers at least one query", MAX_EPSILON_MILLI / 1000)]
    Budget,
}

impl Dimension {
    /// Parse a dimension name against `category`.
    pub fn parse(name: &str, category: &CategoryDef) -> Result<Dimension, StatisticsError> {
        if let Some((level, _)) = GridLevel::ALL.iter().find(|(_, n)| *n == name) {
            return Ok(Dimension::Grid(*level));
        }
        let unknown = || StatisticsError::UnknownDimension(name.to_owned());
        let shared = |field: &FieldDef| {
            if field.share == ShareClass::None {
                Err(StatisticsError::NotShared(field.name.clone()))
            } else {
                Ok(())
            }
        };
        let field = category.field(name).ok_or_else(unknown)?;
        shared(field)?;
        match field.ty {
            FieldType::Enum { .. } | FieldType::TagSet { .. } if field.indexed => {
                Ok(Dimension::Field(name.to_owned()))
            }
            _ => Err(unknown()),
        }
    }

    /// The name as written in grants, queries and answers.
    pub fn name(&self) -> String {
        match self {
            Dimension::Grid(level) => GridLevel::ALL
                .iter()
                .find(|(l, _)| l == level)
                .map(|(_, n)| (*n).to_owned())
                .unwrap_or_default(),
            Dimension::Field(field) => field.clone(),
        }
    }

    /// The catalog field behind this dimension, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Dimension::Grid(_) => None,
            Dimension::Field(f) => Some(f),
        }
    }

    /// How many cells of this dimension one record can count in: the number of tags for a tag
    /// set, one otherwise.
    fn cells_per_record(&self, category: &CategoryDef) -> u64 {
        match self.field().and_then(|f| category.field(f)).map(|f| &f.ty) {
            Some(FieldType::TagSet { values }) => values.len().max(1) as u64,
            _ => 1,
        }
    }
}

/// ε in thousandths, so that a day's spending adds up exactly. Written as a decimal number
/// (`0.25`); at most three decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Epsilon(u32);

impl Epsilon {
    pub fn from_milli(milli: u32) -> Option<Epsilon> {
        (1..=MAX_EPSILON_MILLI)
            .contains(&milli)
            .then_some(Epsilon(milli))
    }

    pub fn milli(self) -> u32 {
        self.0
    }

    /// The decimal value, for answers and documents.
    pub fn value(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// Parse a decimal ε with at most three decimals.
    pub fn from_decimal(value: f64) -> Option<Epsilon> {
        let scaled = value * 1000.0;
        let rounded = scaled.round();
        if !scaled.is_finite() || (scaled - rounded).abs() > 1e-6 || rounded < 1.0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked positive and finite; from_milli bounds it"
        )]
        Epsilon::from_milli(rounded.min(f64::from(u32::MAX)) as u32)
    }
}

impl Serialize for Epsilon {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.value())
    }
}

impl<'de> Deserialize<'de> for Epsilon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Epsilon, D::Error> {
        let value = f64::deserialize(d)?;
        Epsilon::from_decimal(value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "epsilon is between 0.001 and {} with at most three decimals",
                MAX_EPSILON_MILLI / 1000
            ))
        })
    }
}

/// Differential privacy for a grant's answers: discrete Laplace noise of scale
/// `sensitivity / epsilon_per_query` on every count, and at most `epsilon_per_day` spent per
/// day (China Standard Time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyBudget {
    pub epsilon_per_day: Epsilon,
    pub epsilon_per_query: Epsilon,
}

/// What a statistics grant allows, beside its purpose, scope, row filter and window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsTerms {
    /// Dimension names, as written.
    pub group_by: Vec<String>,
    /// The smallest count shown; smaller cells are suppressed.
    pub min_cell: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacyBudget>,
}

impl StatisticsTerms {
    /// Check the terms against their category: every problem, in order.
    pub fn check(&self, category: &CategoryDef) -> Vec<StatisticsError> {
        let mut problems = Vec::new();
        if let Err(e) = parse_dimensions(&self.group_by, category) {
            problems.push(e);
        }
        if !(1..=1000).contains(&self.min_cell) {
            problems.push(StatisticsError::MinCell);
        }
        if let Some(budget) = self.privacy
            && budget.epsilon_per_query > budget.epsilon_per_day
        {
            problems.push(StatisticsError::Budget);
        }
        problems
    }

    /// The grant's dimensions (the terms passed `check`).
    pub fn dimensions(&self, category: &CategoryDef) -> Result<Vec<Dimension>, StatisticsError> {
        parse_dimensions(&self.group_by, category)
    }

    /// The dimensions of a query, each allowed by these terms, and its filter's fields, each one
    /// the terms group by.
    pub fn check_query(
        &self,
        category: &CategoryDef,
        group_by: &[String],
        filter: Option<&RowFilter>,
    ) -> Result<Vec<Dimension>, StatisticsError> {
        let asked = parse_dimensions(group_by, category)?;
        let allowed = self.dimensions(category)?;
        if let Some(outside) = asked.iter().find(|d| !allowed.contains(d)) {
            return Err(StatisticsError::NotGranted(outside.name()));
        }
        if let Some(filter) = filter {
            let grouped: BTreeSet<&str> = allowed
                .iter()
                .filter_map(|d| match d {
                    Dimension::Field(f) => Some(f.as_str()),
                    _ => None,
                })
                .collect();
            if let Some(field) = filter.fields().into_iter().find(|f| !grouped.contains(f)) {
                return Err(StatisticsError::FilterField(field.to_owned()));
            }
        }
        Ok(asked)
    }
}

/// Check a statistics grant request: the common checks of `grant::check_terms` (category,
/// scope within the jurisdiction, window, legal basis, row filter) except that it names no
/// fields, then its own: not case-bound, no daily quota (a budget instead), dimensions, and a
/// row filter over blind-indexed fields only (statistics are counted on tokens). Returns the
/// parsed row filter; every problem is listed.
pub fn check_statistics_terms(
    terms: &GrantTerms,
    statistics: &StatisticsTerms,
    catalog: &Catalog,
    jurisdiction: &[GridCode],
    now: i64,
) -> Result<Option<RowFilter>, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let filter = match check_terms(terms, catalog, jurisdiction, now) {
        Ok(filter) => filter,
        Err(found) => {
            // An empty field list is what a statistics grant must have.
            problems.extend(
                found
                    .into_iter()
                    .filter(|p| !(p.field == "fields" && terms.fields.is_empty())),
            );
            None
        }
    };
    let mut problem = |field: &str, text: String| {
        problems.push(FieldProblem {
            field: field.to_owned(),
            problem: text,
        })
    };
    if !terms.fields.is_empty() {
        problem(
            "fields",
            "a statistics grant names no fields; it groups by `group_by`".to_owned(),
        );
    }
    if terms.case_bound {
        problem(
            "case_bound",
            "a statistics grant cannot be case-bound".to_owned(),
        );
    }
    if terms.daily_quota.is_some() {
        problem(
            "daily_quota",
            "a statistics grant has no record quota; give it a `privacy` budget".to_owned(),
        );
    }
    if let Some(category) = catalog.category(&terms.category) {
        for e in statistics.check(category) {
            let field = match e {
                StatisticsError::MinCell => "min_cell",
                StatisticsError::Budget => "privacy",
                _ => "group_by",
            };
            problem(field, e.to_string());
        }
        if let Some(filter) = &filter {
            for name in filter.fields() {
                if !category.field(name).is_some_and(|f| f.indexed) {
                    problem(
                        "row_filter",
                        format!(
                            "`{name}` has no blind index; a statistics grant filters on blind-indexed fields only"
                        ),
                    );
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

/// The dimensions `names` stand for in `category`: 1–`MAX_GROUP_BY` known dimensions, none
/// twice (what a query must be before any grant is consulted).
pub fn parse_dimensions(
    names: &[String],
    category: &CategoryDef,
) -> Result<Vec<Dimension>, StatisticsError> {
    if names.is_empty() || names.len() > MAX_GROUP_BY {
        return Err(StatisticsError::GroupByCount);
    }
    let mut seen = BTreeSet::new();
    let mut dimensions = Vec::with_capacity(names.len());
    for name in names {
        let dimension = Dimension::parse(name, category)?;
        if !seen.insert(dimension.clone()) {
            return Err(StatisticsError::Duplicate(name.clone()));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}

/// The L1 sensitivity of a count over `dimensions`: how many cells one record can move (the
/// product of each dimension's cells per record), so that noise of scale `sensitivity / ε`
/// gives ε-differential privacy to every record.
pub fn sensitivity(dimensions: &[Dimension], category: &CategoryDef) -> u64 {
    dimensions
        .iter()
        .map(|d| d.cells_per_record(category))
        .fold(1u64, u64::saturating_mul)
}

/// A cell's key (one value per dimension, in query order) and its true count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub key: Vec<String>,
    pub count: u64,
}

/// What became of one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellOutcome {
    pub key: Vec<String>,
    /// The true count (recorded in the ledger, never answered as such when there is noise).
    pub size: u64,
    /// The count answered (noisy when there is noise), or `None`: suppressed.
    pub released: Option<u64>,
}

/// Decide each cell: with `noise`, the noisy count is answered when it reaches `min_cell`;
/// without, the true count when it reaches `min_cell`. Cells come back in key order.
pub fn release<E>(
    mut cells: Vec<Cell>,
    min_cell: u32,
    mut noise: Option<&mut dyn FnMut() -> Result<i64, E>>,
) -> Result<Vec<CellOutcome>, E> {
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::with_capacity(cells.len());
    for cell in cells {
        let shown = match noise.as_mut() {
            Some(draw) => {
                let noisy = i64::try_from(cell.count)
                    .unwrap_or(i64::MAX)
                    .saturating_add(draw()?);
                u64::try_from(noisy).ok()
            }
            None => Some(cell.count),
        };
        out.push(CellOutcome {
            key: cell.key,
            size: cell.count,
            released: shown.filter(|n| *n >= u64::from(min_cell)),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::Catalog;

    fn person() -> &'static CategoryDef {
        Catalog::default_catalog().category("person").unwrap()
    }

    fn terms(group_by: &[&str]) -> StatisticsTerms {
        StatisticsTerms {
            group_by: group_by.iter().map(|s| (*s).to_owned()).collect(),
            min_cell: DEFAULT_MIN_CELL,
            privacy: None,
        }
    }

    #[test]
    fn dimensions_are_grid_levels_and_indexed_enums_and_tags() {
        let p = person();
        assert_eq!(
            Dimension::parse("grid.community", p),
            Ok(Dimension::Grid(GridLevel::Community))
        );
        assert_eq!(
            Dimension::parse("tags", p),
            Ok(Dimension::Field("tags".into()))
        );
        // `gender` is an enum but not blind-indexed: counting it would mean decrypting it.
        for refused in [
            "name",
            "id_number",
            "gender",
            "birth_date.year",
            "grid.block",
            "x",
        ] {
            assert!(
                matches!(
                    Dimension::parse(refused, p),
                    Err(StatisticsError::UnknownDimension(_))
                ),
                "{refused}"
            );
        }
        assert_eq!(
            GridLevel::Community.cut("330110.003.012.004.021"),
            "330110.003.012.004"
        );
        assert_eq!(GridLevel::Street.cut("330110.003"), "330110.003");
        assert_eq!(GridLevel::Grid.cut("330110.003"), "330110.003");
    }

    #[test]
    fn terms_are_checked_and_queries_stay_inside_them() {
        let p = person();
        assert!(terms(&["grid.community", "tags"]).check(p).is_empty());
        assert_eq!(terms(&[]).check(p), [StatisticsError::GroupByCount]);
        assert_eq!(
            terms(&["tags", "tags"]).check(p),
            [StatisticsError::Duplicate("tags".into())]
        );
        let granted = terms(&["grid.community", "tags"]);
        assert!(granted.check_query(p, &["tags".into()], None).is_ok());
        assert_eq!(
            granted.check_query(p, &["residence".into()], None),
            Err(StatisticsError::NotGranted("residence".into()))
        );
        let filter = RowFilter::parse("residence == \"floating\"", p).unwrap();
        assert_eq!(
            granted.check_query(p, &["tags".into()], Some(&filter)),
            Err(StatisticsError::FilterField("residence".into()))
        );
        let on_tags = RowFilter::parse("tags has \"elderly_alone\"", p).unwrap();
        assert!(
            granted
                .check_query(p, &["grid.community".into()], Some(&on_tags))
                .is_ok()
        );
    }

    #[test]
    fn sensitivity_counts_the_cells_one_record_can_move() {
        let p = person();
        let dims = terms(&["grid.community", "tags", "residence"])
            .dimensions(p)
            .unwrap();
        // Six tags, one community, one residence value.
        assert_eq!(sensitivity(&dims, p), 6);
        let dims = terms(&["grid", "residence"]).dimensions(p).unwrap();
        assert_eq!(sensitivity(&dims, p), 1);
    }

    #[test]
    fn epsilon_takes_three_decimals_and_stays_in_bounds() {
        assert_eq!(Epsilon::from_decimal(0.25).unwrap().milli(), 250);
        assert_eq!(Epsilon::from_decimal(1.0).unwrap().milli(), 1000);
        assert_eq!(Epsilon::from_decimal(0.1).unwrap().milli(), 100);
        assert!(Epsilon::from_decimal(0.0001).is_none());
        assert!(Epsilon::from_decimal(0.0).is_none());
        assert!(Epsilon::from_decimal(-1.0).is_none());
        assert!(Epsilon::from_decimal(f64::NAN).is_none());
        assert!(Epsilon::from_decimal(10.001).is_none());
        let budget: PrivacyBudget =
            serde_json::from_str(r#"{"epsilon_per_day": 1, "epsilon_per_query": 0.25}"#).unwrap();
        assert_eq!(
            budget.epsilon_per_day.milli() / budget.epsilon_per_query.milli(),
            4
        );
        assert!(
            serde_json::from_str::<PrivacyBudget>(
                r#"{"epsilon_per_day": 0.0005, "epsilon_per_query": 0.25}"#
            )
            .is_err()
        );
    }

    #[test]
    fn cells_under_the_threshold_are_suppressed() {
        let cells = vec![
            Cell {
                key: vec!["b".into()],
                count: 9,
            },
            Cell {
                key: vec!["a".into()],
                count: 10,
            },
            Cell {
                key: vec!["c".into()],
                count: 250,
            },
        ];
        let out = release::<()>(cells.clone(), 10, None).unwrap();
        let shown: Vec<(&str, Option<u64>)> = out
            .iter()
            .map(|c| (c.key[0].as_str(), c.released))
            .collect();
        assert_eq!(shown, [("a", Some(10)), ("b", None), ("c", Some(250))]);
        assert_eq!(out[1].size, 9);

        // Noise is added before the threshold: -1 pushes 10 under it, +1 lifts 9 onto it.
        let mut draws = vec![-1, 1, 5].into_iter();
        let mut noise = || Ok::<i64, ()>(draws.next().unwrap());
        let out = release(cells, 10, Some(&mut noise)).unwrap();
        let shown: Vec<Option<u64>> = out.iter().map(|c| c.released).collect();
        assert_eq!(shown, [None, Some(10), Some(255)]);
        assert_eq!(out[0].size, 10);
    }
}
