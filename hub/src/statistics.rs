//! Statistics answers (`POST /v1/data/{category}/statistics`): counts per cell under a
//! statistics grant, never records (PIPL art. 6).
//!
//! Steps, in this order: the caller's role permits receiving data (`data:read`); an approved,
//! consented statistics grant of its department for the category and purpose, valid now,
//! allows the dimensions and filter asked for (else 403 `no_grant`, audited); records in the
//! grant's scope (within the department's current jurisdiction) passing the grant's row filter
//! and the query's filter are counted per cell in SQL, grouped by grid and blind-index tokens,
//! so nothing is decrypted; each cell gets discrete Laplace noise if the grant has a privacy
//! budget; cells under the grant's `min_cell` are suppressed; the query, every cell's size and
//! what was released go into the ledger, with the budget spent charged in the same commit
//! (429 `privacy_budget_exhausted` when it cannot pay); only then does the answer leave.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dashu::integer::{IBig, UBig};
use dashu::rational::RBig;
use policy::statistics::{self, Cell, CellOutcome, Dimension, MAX_CELLS};
use policy::{CategoryDef, FieldType, GridCode, RowFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Access, Principal};
use crate::decisions::{Decisions, compile_filter};
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft, LedgerError, Receipt, StatisticsCell, StatisticsRecord};
use crate::storage::{CountQuery, GrantRow, QuotaCharge, QuotaClaim, Store};
use crate::time::{cst_day, now_ms, seconds_to_cst_midnight};
use crate::vault::Vault;

/// The `grant_usage.day` under which a grant's ε spent on `day` is counted.
pub fn budget_day(day: &str) -> String {
    format!("{day}/epsilon")
}

/// A statistics query as asked.
pub struct StatisticsAsk {
    pub category: &'static CategoryDef,
    pub purpose: String,
    pub group_by: Vec<String>,
    pub filter: Option<String>,
}

/// One answered cell.
#[derive(Serialize, ToSchema)]
pub struct AnsweredCell {
    /// Dimension name → the cell's value (a grid code, an enum value or a tag).
    #[schema(value_type = Object)]
    pub group: BTreeMap<String, String>,
    /// Records in the cell (with noise, when the grant adds noise); at least the grant's
    /// `min_cell`.
    pub count: u64,
}

/// The noise an answer carries.
#[derive(Serialize, ToSchema)]
pub struct NoiseBody {
    /// Always `discrete_laplace`.
    pub mechanism: &'static str,
    /// ε this answer spent.
    pub epsilon: f64,
    /// ε left today for this grant.
    pub epsilon_left_today: f64,
    /// The noise scale (sensitivity / ε).
    pub scale: f64,
}

/// The answer to a statistics query: counts, never records.
#[derive(Serialize, ToSchema)]
pub struct StatisticsAnswer {
    /// The statistics grant that allowed it.
    pub grant: String,
    pub group_by: Vec<String>,
    /// Cells at or above `min_cell`, in key order; the others are suppressed.
    pub cells: Vec<AnsweredCell>,
    pub min_cell: u32,
    /// How many cells were suppressed (absent with noise: their number would leak).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_cells: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<NoiseBody>,
    /// The signed receipt of the ledger entry recording this answer.
    #[schema(value_type = Object)]
    pub receipt: Receipt,
}

pub struct Statistics {
    access: Access,
    store: Store,
    vault: Arc<Vault>,
    decisions: Arc<Decisions>,
}

impl Statistics {
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        decisions: Arc<Decisions>,
    ) -> Statistics {
        Statistics {
            access,
            store,
            vault,
            decisions,
        }
    }

    /// Answer `ask` for `who` (module docs).
    pub async fn answer(
        &self,
        who: &Principal,
        ask: StatisticsAsk,
    ) -> Result<StatisticsAnswer, Error> {
        self.access
            .authorize(who, "data", "read", None, "data.statistics")
            .await?;
        let department = who
            .department
            .clone()
            .ok_or_else(|| Error::Internal("a client without a department".to_owned()))?;
        self.decisions.refresh_to(who.versions.decision).await?;
        let category = ask.category;
        // The query's own shape first (422, like any malformed request): known dimensions,
        // 1–4 of them, none twice.
        statistics::parse_dimensions(&ask.group_by, category)
            .map_err(|e| Error::validation("group_by", e.to_string()))?;
        let filter = match &ask.filter {
            None => None,
            Some(text) => Some(
                RowFilter::parse(text, category)
                    .map_err(|e| Error::validation("filter", e.to_string()))?,
            ),
        };
        let now = now_ms();
        let grants: Vec<GrantRow> = self
            .store
            .statistics_grants(&department, &category.name, &ask.purpose)
            .await?
            .into_iter()
            .filter(|g| g.in_force() && g.terms.valid_at(now))
            .collect();
        if grants.is_empty() {
            let why = "no approved statistics grant for this department, purpose and category";
            return Err(self
                .refuse(who, &ask, why, Error::NoGrant(why.to_owned()))
                .await);
        }
        let mut first_problem = None;
        let mut chosen = None;
        for grant in grants {
            let Some(terms) = &grant.statistics else {
                continue;
            };
            match terms.check_query(category, &ask.group_by, filter.as_ref()) {
                Ok(dimensions) => {
                    chosen = Some((grant, dimensions));
                    break;
                }
                Err(e) => {
                    first_problem.get_or_insert(e);
                }
            }
        }
        let Some((grant, dimensions)) = chosen else {
            let why = first_problem.map_or_else(
                || "no statistics grant allows this query".to_owned(),
                |e| e.to_string(),
            );
            let error = Error::NoGrant(why.clone());
            return Err(self.refuse(who, &ask, &why, error).await);
        };
        let terms = grant
            .statistics
            .clone()
            .ok_or_else(|| Error::Internal("a statistics grant without terms".to_owned()))?;
        let scope = self.scope(&department, &grant).await?;
        let mut filters = Vec::new();
        if let Some(compiled) = self.decisions.live_grant(&grant)?.filter {
            filters.push(compiled);
        }
        if let Some(f) = &filter {
            filters.push(
                compile_filter(&self.vault, category, f)
                    .map_err(|p| Error::validation("filter", p))?,
            );
        }
        let fields: Vec<String> = dimensions
            .iter()
            .filter_map(|d| d.field().map(str::to_owned))
            .collect();
        let rows = self
            .store
            .count_cells(&CountQuery {
                category: &category.name,
                scope: &scope,
                fields: &fields,
                filters: &filters,
            })
            .await?;
        let cells = self.cells(category, &dimensions, &fields, rows)?;
        let sensitivity = statistics::sensitivity(&dimensions, category);
        let outcomes = match terms.privacy {
            None => statistics::release::<Error>(cells, terms.min_cell, None)?,
            Some(budget) => {
                let scale = noise_scale(sensitivity, budget.epsilon_per_query);
                let mut draw = || draw_noise(&scale);
                statistics::release(cells, terms.min_cell, Some(&mut draw))?
            }
        };
        let suppressed = outcomes.iter().filter(|c| c.released.is_none()).count();
        let record = StatisticsRecord {
            cells: outcomes
                .iter()
                .map(|c| StatisticsCell {
                    group: c.key.clone(),
                    released: c.released,
                    size: c.size,
                })
                .collect(),
            epsilon_milli: terms.privacy.map(|b| b.epsilon_per_query.milli()),
            filter: ask.filter.clone(),
            group_by: ask.group_by.clone(),
            min_cell: terms.min_cell,
        };
        let draft = entry(who, &ask, Decision::Allow)
            .grants(vec![grant.id.clone()])
            .reason(&format!(
                "{} cells counted, {suppressed} suppressed; no record disclosed",
                outcomes.len()
            ))
            .statistics(record);
        let (receipt, noise) = match terms.privacy {
            // Counted as a use of the grant in the entry's commit (the grant watchlist's last
            // use); no quota: `u32::MAX` queries a day is never reached.
            None => {
                let charge = QuotaCharge {
                    day: cst_day(now),
                    claims: vec![QuotaClaim {
                        grant: grant.id.clone(),
                        quota: u32::MAX,
                        records: 1,
                    }],
                };
                let appended = self.access.ledger().append_charged(draft, charge).await?;
                (self.access.ledger().receipt(&appended), None)
            }
            Some(budget) => {
                let day = cst_day(now);
                let charge = QuotaCharge {
                    day: budget_day(&day),
                    claims: vec![QuotaClaim {
                        grant: grant.id.clone(),
                        quota: budget.epsilon_per_day.milli(),
                        records: i64::from(budget.epsilon_per_query.milli()),
                    }],
                };
                let appended = match self.access.ledger().append_charged(draft, charge).await {
                    Ok(appended) => appended,
                    Err(LedgerError::OverQuota { left, .. }) => {
                        let why = format!(
                            "the grant's privacy budget has ε {:.3} left today and a query spends {:.3}",
                            left as f64 / 1000.0,
                            budget.epsilon_per_query.value()
                        );
                        let error = Error::PrivacyBudgetExhausted {
                            message: why.clone(),
                            retry_after_secs: seconds_to_cst_midnight(now),
                        };
                        return Err(self.refuse(who, &ask, &why, error).await);
                    }
                    Err(e) => return Err(e.into()),
                };
                let spent = self
                    .store
                    .quota_usage(&[(grant.id.clone(), budget_day(&day))])
                    .await?
                    .values()
                    .sum::<i64>();
                let left = i64::from(budget.epsilon_per_day.milli()) - spent;
                let noise = NoiseBody {
                    mechanism: "discrete_laplace",
                    epsilon: budget.epsilon_per_query.value(),
                    epsilon_left_today: left.max(0) as f64 / 1000.0,
                    scale: sensitivity as f64 / budget.epsilon_per_query.value(),
                };
                (self.access.ledger().receipt(&appended), Some(noise))
            }
        };
        Ok(StatisticsAnswer {
            grant: grant.id,
            group_by: ask.group_by.clone(),
            cells: answered(&ask.group_by, &outcomes),
            min_cell: terms.min_cell,
            suppressed_cells: noise.is_none().then_some(suppressed),
            noise,
            receipt,
        })
    }

    /// The grant's scope within the department's jurisdiction now: each scope grid inside a
    /// jurisdiction grid, and each jurisdiction grid inside a scope grid.
    async fn scope(&self, department: &str, grant: &GrantRow) -> Result<Vec<GridCode>, Error> {
        let jurisdiction: Vec<GridCode> = self
            .store
            .department(department)
            .await?
            .map(|d| d.jurisdiction)
            .unwrap_or_default()
            .iter()
            .filter_map(|g| GridCode::parse(g).ok())
            .collect();
        let mut scope = Vec::new();
        for s in &grant.terms.scope {
            if jurisdiction.iter().any(|j| j.contains(s)) {
                scope.push(s.clone());
            } else {
                scope.extend(jurisdiction.iter().filter(|j| s.contains(j)).cloned());
            }
        }
        scope.sort();
        scope.dedup();
        Ok(scope)
    }

    /// Counted rows into cells keyed in dimension order: grids cut to their level, tokens
    /// turned back into the catalog values they index.
    fn cells(
        &self,
        category: &CategoryDef,
        dimensions: &[Dimension],
        fields: &[String],
        rows: Vec<crate::storage::CountRow>,
    ) -> Result<Vec<Cell>, Error> {
        let values: Vec<HashMap<Vec<u8>, String>> = fields
            .iter()
            .map(|field| {
                let known = match category.field(field).map(|f| &f.ty) {
                    Some(FieldType::Enum { values } | FieldType::TagSet { values }) => {
                        values.clone()
                    }
                    _ => Vec::new(),
                };
                known
                    .into_iter()
                    .map(|v| (self.vault.blind_token(&category.name, field, &v), v))
                    .collect()
            })
            .collect();
        let mut counts: BTreeMap<Vec<String>, u64> = BTreeMap::new();
        for row in rows {
            let mut key = Vec::with_capacity(dimensions.len());
            let mut tokens = row.tokens.iter().zip(&values);
            for dimension in dimensions {
                match dimension {
                    Dimension::Grid(level) => key.push(level.cut(&row.grid)),
                    Dimension::Field(_) => {
                        let (token, known) = tokens.next().ok_or_else(|| {
                            Error::Internal("a count row without its token".to_owned())
                        })?;
                        // A token of no current value: a value removed from the catalog.
                        let value = known.get(token).cloned().unwrap_or_else(|| "?".to_owned());
                        key.push(value);
                    }
                }
            }
            *counts.entry(key).or_default() += u64::try_from(row.count).unwrap_or(0);
            if counts.len() > MAX_CELLS {
                return Err(Error::validation(
                    "group_by",
                    format!(
                        "the answer would have more than {MAX_CELLS} cells; group by fewer or coarser dimensions"
                    ),
                ));
            }
        }
        Ok(counts
            .into_iter()
            .map(|(key, count)| Cell { key, count })
            .collect())
    }

    async fn refuse(&self, who: &Principal, ask: &StatisticsAsk, why: &str, error: Error) -> Error {
        let draft = entry(who, ask, Decision::Deny).reason(why);
        match self.access.record(draft).await {
            Ok(_) => error,
            Err(e) => e,
        }
    }
}

/// The discrete Laplace scale that makes one answer `epsilon`-differentially private when one
/// record can move `sensitivity` cells by one: `sensitivity / epsilon`, exactly (ε is in
/// thousandths).
pub fn noise_scale(sensitivity: u64, epsilon: policy::statistics::Epsilon) -> RBig {
    RBig::from_parts(
        IBig::from(sensitivity) * IBig::from(1000u32),
        UBig::from(epsilon.milli()),
    )
}

/// One draw of discrete Laplace noise of `scale` (OpenDP, exact sampler).
pub fn draw_noise(scale: &RBig) -> Result<i64, Error> {
    let noise = opendp::traits::samplers::sample_discrete_laplace(scale.clone())
        .map_err(|e| Error::Internal(format!("cannot draw noise: {e:?}")))?;
    i64::try_from(noise).map_err(|_| Error::Internal("noise out of range".to_owned()))
}

fn entry(who: &Principal, ask: &StatisticsAsk, decision: Decision) -> EntryDraft {
    EntryDraft::new(
        who.actor(),
        "data.statistics",
        decision,
        current_request_id(),
    )
    .category(&ask.category.name)
    .purpose(&ask.purpose)
}

fn answered(group_by: &[String], outcomes: &[CellOutcome]) -> Vec<AnsweredCell> {
    outcomes
        .iter()
        .filter_map(|c| {
            c.released.map(|count| AnsweredCell {
                group: group_by
                    .iter()
                    .cloned()
                    .zip(c.key.iter().cloned())
                    .collect(),
                count,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
    use super::*;
    use policy::statistics::Epsilon;

    /// The wiring, not OpenDP's sampler (which has its own proofs and tests): ε = 0.25 with
    /// sensitivity 1 must give scale 4, i.e. mean 0 and variance 2p/(1-p)² with p = e^(-1/4)
    /// (≈ 31.8); scale 1/4 (ε and scale swapped) would give ≈ 0.04. 20 000 draws put the
    /// sample variance within ±10 % and the mean within ±0.3 with overwhelming probability
    /// (≥ 6 standard errors).
    #[test]
    fn noise_has_the_scale_its_epsilon_asks_for() {
        let scale = noise_scale(1, Epsilon::from_milli(250).unwrap());
        assert_eq!(scale, RBig::from(4));
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| draw_noise(&scale).unwrap() as f64).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let variance = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        let p = (-0.25f64).exp();
        let expected = 2.0 * p / (1.0 - p).powi(2);
        assert!(mean.abs() < 0.3, "mean {mean}");
        assert!(
            (variance / expected - 1.0).abs() < 0.1,
            "variance {variance}, expected {expected}"
        );
        // Noise is integral and symmetric: both signs occur.
        assert!(draws.iter().any(|x| *x < 0.0) && draws.iter().any(|x| *x > 0.0));
        // Sensitivity scales it: six tags, ε = 0.5 → scale 12.
        assert_eq!(
            noise_scale(6, Epsilon::from_milli(500).unwrap()),
            RBig::from(12)
        );
    }
}
