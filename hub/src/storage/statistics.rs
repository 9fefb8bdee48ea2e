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
    qb.push(", COUNT(*) AS n");
    // With a grouped field, the walk starts from its blind-index rows (one range of the
    // primary key) and joins each to its record by id, then to the other fields' tokens through
    // `blind_index_by_record`. `CROSS JOIN` fixes that order on SQLite, whose planner has no
    // statistics and would otherwise search the primary key once per record; PostgreSQL reads
    // it as an inner join and plans it itself.
    if q.fields.is_empty() {
        qb.push(" FROM records r WHERE r.category = ");
        qb.push_bind(q.category.to_owned());
    } else {
        qb.push(" FROM blind_index b0 CROSS JOIN records r");
        for i in 1..q.fields.len() {
            qb.push(format!(" CROSS JOIN blind_index b{i}"));
        }
        qb.push(" WHERE r.category = ");
        qb.push_bind(q.category.to_owned());
        for (i, field) in q.fields.iter().enumerate() {
            if i == 0 {
                qb.push(" AND r.id = b0.record_id");
            } else {
                qb.push(format!(" AND b{i}.record_id = r.id"));
            }
            qb.push(format!(" AND b{i}.category = "));
            qb.push_bind(q.category.to_owned());
            qb.push(format!(" AND b{i}.field = "));
            qb.push_bind(field.clone());
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::Backend;

    async fn run(store: &Store, statement: &str) {
        let Backend::Sqlite { write, .. } = &store.backend else {
            unreachable!()
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(write)
            .await
            .unwrap();
    }

    /// Three records in two grids, one erased, one outside the scope; tags as tokens `a`/`b`.
    #[tokio::test]
    async fn counts_group_by_grid_and_tokens_and_filter_on_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("t.db")))
            .await
            .unwrap();
        run(
            &store,
            "INSERT INTO grids (code, name, kind, created_at) VALUES \
             ('1', 'c', 'physical', 0), ('1.1', 'g', 'physical', 0), ('1.2', 'h', 'physical', 0), \
             ('2', 'x', 'physical', 0);
             INSERT INTO purposes (id, description, legal_basis, created_at) VALUES ('p', 'p', 'l', 0);
             INSERT INTO records (id, category, grid, version, purpose, collector, plain_fields, \
             created_at, updated_at, erased_at) VALUES \
             ('r1', 'person', '1.1', 1, 'p', 'w', '{}', 0, 0, NULL), \
             ('r2', 'person', '1.1', 1, 'p', 'w', '{}', 0, 0, NULL), \
             ('r3', 'person', '1.2', 1, 'p', 'w', '{}', 0, 0, NULL), \
             ('r4', 'person', '1.2', 1, 'p', 'w', '{}', 0, 0, 5), \
             ('r5', 'person', '2', 1, 'p', 'w', '{}', 0, 0, NULL);
             INSERT INTO blind_index (category, field, token, record_id) VALUES \
             ('person', 'tags', X'61', 'r1'), ('person', 'tags', X'62', 'r1'), \
             ('person', 'tags', X'61', 'r2'), ('person', 'tags', X'61', 'r3'), \
             ('person', 'tags', X'61', 'r4'), ('person', 'tags', X'61', 'r5'), \
             ('person', 'residence', X'66', 'r1'), ('person', 'residence', X'67', 'r2'), \
             ('person', 'residence', X'66', 'r3');",
        )
        .await;
        let scope = [GridCode::parse("1").unwrap()];
        let fields = ["tags".to_owned()];
        let mut rows = store
            .count_cells(&CountQuery {
                category: "person",
                scope: &scope,
                fields: &fields,
                filters: &[],
            })
            .await
            .unwrap();
        rows.sort_by(|a, b| (&a.grid, &a.tokens).cmp(&(&b.grid, &b.tokens)));
        let seen: Vec<(&str, &[u8], i64)> = rows
            .iter()
            .map(|r| (r.grid.as_str(), r.tokens[0].as_slice(), r.count))
            .collect();
        assert_eq!(
            seen,
            [
                ("1.1", &b"a"[..], 2),
                ("1.1", &b"b"[..], 1),
                ("1.2", &b"a"[..], 1)
            ]
        );
        // Grid only, filtered on residence `f` (base64url of b"f" is "Zg").
        let filter = RowFilter::Compare {
            field: "residence".to_owned(),
            op: Op::Eq,
            value: "t:Zg".to_owned(),
        };
        let rows = store
            .count_cells(&CountQuery {
                category: "person",
                scope: &scope,
                fields: &[],
                filters: std::slice::from_ref(&filter),
            })
            .await
            .unwrap();
        let mut seen: Vec<(String, i64)> = rows.into_iter().map(|r| (r.grid, r.count)).collect();
        seen.sort();
        assert_eq!(seen, [("1.1".to_owned(), 1), ("1.2".to_owned(), 1)]);
        let rows = store
            .count_cells(&CountQuery {
                category: "person",
                scope: &scope,
                fields: &[],
                filters: &[RowFilter::Not(Box::new(filter))],
            })
            .await
            .unwrap();
        assert_eq!(rows.iter().map(|r| r.count).sum::<i64>(), 1, "r2 only");
        // A literal that is not a token is refused, not compared as text.
        let plain = RowFilter::Compare {
            field: "household_id".to_owned(),
            op: Op::Eq,
            value: "p:h1".to_owned(),
        };
        assert!(
            store
                .count_cells(&CountQuery {
                    category: "person",
                    scope: &scope,
                    fields: &[],
                    filters: &[plain],
                })
                .await
                .is_err()
        );
    }
}
