//! Counting records for statistics grants without opening them: grouped by the record's grid
//! and by blind-index tokens, filtered by blind-index tokens, all in one SQL `GROUP BY`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use policy::row_filter::Op;
use policy::{GridCode, RowFilter};
use sqlx::{QueryBuilder, Row};

use super::{Store, on_read};

/// What to count.
pub struct CountQuery<'a> {
    pub category: &'a str,
    /// A record counts when its grid is one of these or beneath one.
    pub scope: &'a [GridCode],
    /// Blind-indexed fields to group by, in order.
    pub fields: &'a [String],
    /// Filters a record must all pass, compiled to blind-index tokens (`t:` literals,
    /// `decisions::compile_filter`).
    pub filters: &'a [RowFilter<String>],
}

/// The number of (record, tokens) combinations in one grid with one token per grouped field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub grid: String,
    pub tokens: Vec<Vec<u8>>,
    pub count: i64,
}

/// A filter literal that is not a blind-index token (statistics filters only read tokens).
fn bad_literal() -> sqlx::Error {
    sqlx::Error::Protocol("a statistics filter names a field without a blind index".to_owned())
}

fn token(literal: &str) -> Result<Vec<u8>, sqlx::Error> {
    literal
        .strip_prefix("t:")
        .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
        .ok_or_else(bad_literal)
}

/// Append `filter` as SQL over the record `r`.
fn push_filter<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    category: &str,
    filter: &RowFilter<String>,
) -> Result<(), sqlx::Error>
where
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match filter {
        RowFilter::Compare { field, op, value } => {
            if *op == Op::Ne {
                qb.push("NOT ");
            }
            qb.push(
                "EXISTS (SELECT 1 FROM blind_index x WHERE x.record_id = r.id AND x.category = ",
            );
            qb.push_bind(category.to_owned());
            qb.push(" AND x.field = ");
            qb.push_bind(field.clone());
            qb.push(" AND x.token = ");
            qb.push_bind(token(value)?);
            qb.push(")");
        }
        RowFilter::Not(inner) => {
            qb.push("NOT (");
            push_filter(qb, category, inner)?;
            qb.push(")");
        }
        RowFilter::And(a, b) | RowFilter::Or(a, b) => {
            let joint = if matches!(filter, RowFilter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            push_filter(qb, category, a)?;
            qb.push(joint);
            push_filter(qb, category, b)?;
            qb.push(")");
        }
    }
    Ok(())
}

fn build<DB: sqlx::Database>(q: &CountQuery<'_>) -> Result<QueryBuilder<DB>, sqlx::Error>
where
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut qb = QueryBuilder::new("SELECT r.grid AS grid");
    for i in 0..q.fields.len() {
        qb.push(format!(", b{i}.token AS t{i}"));
    }
    qb.push(", COUNT(*) AS n FROM records r");
    for (i, field) in q.fields.iter().enumerate() {
        qb.push(format!(
            " JOIN blind_index b{i} ON b{i}.record_id = r.id AND b{i}.category = "
        ));
        qb.push_bind(q.category.to_owned());
        qb.push(format!(" AND b{i}.field = "));
        qb.push_bind(field.clone());
    }
    qb.push(" WHERE r.category = ");
    qb.push_bind(q.category.to_owned());
    qb.push(" AND r.erased_at IS NULL AND (");
    if q.scope.is_empty() {
        qb.push("1 = 0");
    }
    for (i, grid) in q.scope.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("r.grid = ");
        qb.push_bind(grid.as_str().to_owned());
        // Grid codes hold only letters, digits, `-` and `.`: nothing LIKE treats specially.
        qb.push(" OR r.grid LIKE ");
        qb.push_bind(format!("{}.%", grid.as_str()));
    }
    qb.push(")");
    for filter in q.filters {
        qb.push(" AND ");
        push_filter(&mut qb, q.category, filter)?;
    }
    qb.push(" GROUP BY r.grid");
    for i in 0..q.fields.len() {
        qb.push(format!(", b{i}.token"));
    }
    Ok(qb)
}

impl Store {
    /// Count live records of `q.category` in `q.scope` passing `q.filters`, per grid and per
    /// combination of the grouped fields' tokens. Nothing is decrypted.
    pub async fn count_cells(&self, q: &CountQuery<'_>) -> Result<Vec<CountRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let mut qb = build(q)?;
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let mut tokens = Vec::with_capacity(q.fields.len());
                    for i in 0..q.fields.len() {
                        tokens.push(row.try_get::<Vec<u8>, _>(format!("t{i}").as_str())?);
                    }
                    Ok(CountRow {
                        grid: row.try_get("grid")?,
                        tokens,
                        count: row.try_get("n")?,
                    })
                })
                .collect()
        })
    }
}
