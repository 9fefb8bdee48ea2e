//! Reading a department's table in PostgreSQL or MySQL/MariaDB, in `(updated_at, key)` order
//! after a watermark, one batch at a time, every column as text (the catalog parses text).
//!
//! Invariants: the only SQL built from the config is identifiers, quoted for the dialect, the
//! operator's own `query` (trusted like the rest of the config) and type names checked to be
//! plain words; watermark values are always bound parameters. Rows whose `updated_at` is NULL
//! are never read (they have no place in the order). Errors name columns, never a row's values.

use std::sync::Arc;

use anyhow::{Context, bail};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Column, Executor, Row, SqlSafeStr, Statement, TypeInfo};

use super::config::{Config, Dialect, Relation};
use super::watermark::Watermark;

/// One source row: every column by name (NULL as `None`), and its place in the order.
pub struct SourceRow {
    pub cells: Vec<(Arc<str>, Option<String>)>,
    pub watermark: Watermark,
}

enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// A connected source and the shape of its rows.
pub struct Source {
    pool: Pool,
    plan: Plan,
}

/// What the queries are built from. Invariant: `updated_at` and `key` index into `columns`.
struct Plan {
    dialect: Dialect,
    /// `"table" AS src` or `(query) AS src`.
    from: String,
    columns: Vec<Arc<str>>,
    updated_at: usize,
    key: usize,
    /// PostgreSQL: the types the watermark's text is cast back to (checked plain words).
    updated_at_type: String,
    key_type: String,
}

impl Source {
    pub async fn connect(config: &Config) -> anyhow::Result<Source> {
        let pool = match config.dialect {
            Dialect::Postgres => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&config.url)
                    .await
                    .context("cannot connect to the source database")?,
            ),
            Dialect::MySql => Pool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(2)
                    .connect(&config.url)
                    .await
                    .context("cannot connect to the source database")?,
            ),
        };
        let from = from_clause(config.dialect, &config.relation);
        let probe = format!("SELECT * FROM {from}");
        let described: Vec<(String, String)> = match &pool {
            Pool::Postgres(p) => columns(
                p.prepare(AssertSqlSafe(probe).into_sql_str())
                    .await?
                    .columns(),
            ),
            Pool::MySql(p) => columns(
                p.prepare(AssertSqlSafe(probe).into_sql_str())
                    .await?
                    .columns(),
            ),
        };
        let plan = Plan::new(config, from, described)?;
        Ok(Source { pool, plan })
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[Arc<str>] {
        &self.plan.columns
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
        }
    }

    /// How many rows lie after `after` (the progress bar's total).
    pub async fn pending(&self, after: Option<&Watermark>) -> anyhow::Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE {}",
            self.plan.from,
            self.plan.condition(after.is_some())
        );
        let n: i64 = match &self.pool {
            Pool::Postgres(p) => bind_pg(sqlx::query(AssertSqlSafe(sql)), after)
                .fetch_one(p)
                .await
                .map(|r| r.try_get(0))
                .context("cannot count the source rows")??,
            Pool::MySql(p) => bind_my(sqlx::query(AssertSqlSafe(sql)), after)
                .fetch_one(p)
                .await
                .map(|r| r.try_get(0))
                .context("cannot count the source rows")??,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The next at most `limit` rows after `after`, in `(updated_at, key)` order.
    pub async fn batch(
        &self,
        after: Option<&Watermark>,
        limit: usize,
    ) -> anyhow::Result<Vec<SourceRow>> {
        let sql = self.plan.select(after.is_some(), limit);
        let n = self.plan.columns.len();
        let texts: Vec<Vec<Option<String>>> = match &self.pool {
            Pool::Postgres(p) => {
                let rows = bind_pg(sqlx::query(AssertSqlSafe(sql)), after)
                    .fetch_all(p)
                    .await
                    .context("cannot read the source rows")?;
                rows.iter()
                    .map(|r| (0..n).map(|i| r.try_get(i)).collect())
                    .collect::<Result<_, _>>()
                    .context("cannot read a source column as text")?
            }
            Pool::MySql(p) => {
                let rows = bind_my(sqlx::query(AssertSqlSafe(sql)), after)
                    .fetch_all(p)
                    .await
                    .context("cannot read the source rows")?;
                rows.iter()
                    .map(|r| (0..n).map(|i| r.try_get(i)).collect())
                    .collect::<Result<_, _>>()
                    .context("cannot read a source column as text")?
            }
        };
        texts.into_iter().map(|t| self.plan.row(t)).collect()
    }
}

fn columns<C: Column>(columns: &[C]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
        .collect()
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
type MyQuery<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;

/// The watermark's parameters, in the order `Plan::condition` names them.
fn bind_pg<'q>(q: PgQuery<'q>, after: Option<&Watermark>) -> PgQuery<'q> {
    match after {
        Some(w) => q
            .bind(w.updated_at.clone())
            .bind(w.updated_at.clone())
            .bind(w.key.clone()),
        None => q,
    }
}

fn bind_my<'q>(q: MyQuery<'q>, after: Option<&Watermark>) -> MyQuery<'q> {
    match after {
        Some(w) => q
            .bind(w.updated_at.clone())
            .bind(w.updated_at.clone())
            .bind(w.key.clone()),
        None => q,
    }
}

/// An identifier quoted for `dialect`.
fn quote(dialect: Dialect, ident: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
        Dialect::MySql => format!("`{}`", ident.replace('`', "``")),
    }
}

fn from_clause(dialect: Dialect, relation: &Relation) -> String {
    match relation {
        Relation::Table(table) => {
            let parts: Vec<String> = table.split('.').map(|p| quote(dialect, p)).collect();
            format!("{} AS src", parts.join("."))
        }
        Relation::Query(query) => format!("({query}) AS src"),
    }
}

impl Plan {
    fn new(
        config: &Config,
        from: String,
        described: Vec<(String, String)>,
    ) -> anyhow::Result<Plan> {
        let find = |name: &str, key: &str| {
            described
                .iter()
                .position(|(c, _)| c == name)
                .with_context(|| format!("source.{key}: the source has no column `{name}`"))
        };
        let updated_at = find(&config.updated_at, "updated_at")?;
        let key = find(&config.key, "key")?;
        let type_of = |i: usize, key: &str| -> anyhow::Result<String> {
            let t = described.get(i).map(|(_, t)| t.clone()).unwrap_or_default();
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ')
            {
                bail!("source.{key}: a column of an unsupported type");
            }
            Ok(t)
        };
        Ok(Plan {
            dialect: config.dialect,
            from,
            updated_at_type: type_of(updated_at, "updated_at")?,
            key_type: type_of(key, "key")?,
            columns: described.into_iter().map(|(c, _)| Arc::from(c)).collect(),
            updated_at,
            key,
        })
    }

    fn column(&self, i: usize) -> String {
        let name = self.columns.get(i).map(|c| c.as_ref()).unwrap_or_default();
        format!("src.{}", quote(self.dialect, name))
    }

    /// The `i`-th bound parameter, cast back to `type_name` on PostgreSQL (MySQL converts a
    /// string compared with a column by itself).
    fn param(&self, i: usize, type_name: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("CAST(${i} AS {type_name})"),
            Dialect::MySql => "?".to_owned(),
        }
    }

    /// Rows with an `updated_at`, after the watermark if there is one: `t > $1 OR (t = $2 AND
    /// k > $3)`, the row comparison `(t, k) > ($t, $k)` spelled out for both dialects.
    fn condition(&self, after: bool) -> String {
        let t = self.column(self.updated_at);
        let k = self.column(self.key);
        if !after {
            return format!("{t} IS NOT NULL");
        }
        format!(
            "{t} IS NOT NULL AND ({t} > {} OR ({t} = {} AND {k} > {}))",
            self.param(1, &self.updated_at_type),
            self.param(2, &self.updated_at_type),
            self.param(3, &self.key_type),
        )
    }

    fn select(&self, after: bool, limit: usize) -> String {
        let cast = match self.dialect {
            Dialect::Postgres => "TEXT",
            Dialect::MySql => "CHAR",
        };
        let list: Vec<String> = (0..self.columns.len())
            .map(|i| format!("CAST({} AS {cast})", self.column(i)))
            .collect();
        format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {}, {} LIMIT {limit}",
            list.join(", "),
            self.from,
            self.condition(after),
            self.column(self.updated_at),
            self.column(self.key),
        )
    }

    fn row(&self, texts: Vec<Option<String>>) -> anyhow::Result<SourceRow> {
        let at = |i: usize| texts.get(i).cloned().flatten();
        let (Some(updated_at), Some(key)) = (at(self.updated_at), at(self.key)) else {
            bail!("a source row has no key (the key column must not be NULL)");
        };
        Ok(SourceRow {
            cells: self.columns.iter().cloned().zip(texts).collect(),
            watermark: Watermark { updated_at, key },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dialect: Dialect, relation: Relation) -> Plan {
        Plan {
            dialect,
            from: from_clause(dialect, &relation),
            columns: ["id", "na\"me", "modified"]
                .into_iter()
                .map(Arc::from)
                .collect(),
            updated_at: 2,
            key: 0,
            updated_at_type: "TIMESTAMPTZ".into(),
            key_type: "INT4".into(),
        }
    }

    #[test]
    fn postgres_reads_after_the_watermark_in_order_with_typed_parameters() {
        let p = plan(Dialect::Postgres, Relation::Table("civil.residents".into()));
        assert_eq!(
            p.select(true, 10),
            "SELECT CAST(src.\"id\" AS TEXT), CAST(src.\"na\"\"me\" AS TEXT), \
             CAST(src.\"modified\" AS TEXT) FROM \"civil\".\"residents\" AS src \
             WHERE src.\"modified\" IS NOT NULL AND (src.\"modified\" > CAST($1 AS TIMESTAMPTZ) \
             OR (src.\"modified\" = CAST($2 AS TIMESTAMPTZ) AND src.\"id\" > CAST($3 AS INT4))) \
             ORDER BY src.\"modified\", src.\"id\" LIMIT 10"
        );
    }

    #[test]
    fn mysql_quotes_with_backticks_and_wraps_a_query() {
        let p = plan(
            Dialect::MySql,
            Relation::Query("SELECT * FROM r WHERE live".into()),
        );
        let sql = p.select(false, 5);
        assert!(sql.contains("CAST(src.`id` AS CHAR)"), "{sql}");
        assert!(
            sql.contains("FROM (SELECT * FROM r WHERE live) AS src"),
            "{sql}"
        );
        assert!(
            sql.ends_with(
                "WHERE src.`modified` IS NOT NULL ORDER BY src.`modified`, src.`id` LIMIT 5"
            ),
            "{sql}"
        );
        assert!(p.condition(true).contains("src.`modified` > ? OR"));
    }

    #[test]
    fn a_row_knows_its_place_in_the_order() {
        let p = plan(Dialect::MySql, Relation::Table("t".into()));
        let row = p
            .row(vec![
                Some("7".into()),
                None,
                Some("2026-01-01 00:00:00".into()),
            ])
            .expect("row");
        assert_eq!(row.watermark.key, "7");
        assert_eq!(row.watermark.updated_at, "2026-01-01 00:00:00");
        assert!(p.row(vec![None, None, Some("x".into())]).is_err());
    }
}
