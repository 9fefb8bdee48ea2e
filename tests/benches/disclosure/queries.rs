//! The statement behind "read 100 records" (`Store::disclosure_page`), as the hub builds it for
//! this bench's pull (one scope, a cursor, no grid filter, no case, no lookup), run on a
//! connection of our own to the hub's database: timed with and without the sealed fields, with
//! the token statement a row filter would add, and the page query's plan shown.

use std::time::Instant;

use gridhub_tests::{Backend, TestApp};
use sqlx::{Connection, Executor};

use crate::setup::{CATEGORY, PAGE};

/// The page query for a pull with one scope and a cursor (text as `disclosure_page` builds it):
/// the records' rows with their sealed fields, one index walk over `records`.
const PAGE_SQL: &str = "SELECT r.id, r.grid, r.plain_fields, r.kek_version, r.wrapped_dek, \
     r.sealed_fields FROM records r WHERE r.erased_at IS NULL AND r.category = $1 \
     AND (r.grid = $2 OR r.grid LIKE $3) AND r.id > $4 ORDER BY r.id LIMIT $5";

/// For comparison: the same rows without their sealed fields.
const BARE_SQL: &str = "SELECT r.id, r.grid, r.plain_fields, r.kek_version, r.wrapped_dek \
     FROM records r WHERE r.erased_at IS NULL AND r.category = $1 \
     AND (r.grid = $2 OR r.grid LIKE $3) AND r.id > $4 ORDER BY r.id LIMIT $5";

fn in_list(sql: &str, n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("{sql} ({})", params.join(", "))
}

/// Median µs of each statement over `n` runs (pages from `cursors`), and the page query's plan.
pub struct Split {
    /// The hub's page statement (rows with their sealed fields).
    pub page_us: f64,
    /// The same rows without the sealed fields.
    pub bare_us: f64,
    /// Every blind-index token of the page's records (read only for row filters).
    pub tokens_us: f64,
    /// Rows of the last page: records, tokens.
    pub rows: [usize; 2],
    pub plan: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

macro_rules! split_on {
    ($conn:expr, $cursors:expr, $n:expr, $explain:expr) => {{
        use sqlx::Row;
        let conn = $conn;
        let tokens_sql = in_list(
            "SELECT record_id, field, token FROM blind_index WHERE record_id IN",
            PAGE,
        );
        let (mut page, mut bare, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows_of = [0usize; 2];
        for i in 0..$n {
            let cursor: &String = &$cursors[i % $cursors.len()];
            let mut rows = Vec::new();
            for (sql, out) in [(PAGE_SQL, &mut page), (BARE_SQL, &mut bare)] {
                let t = Instant::now();
                rows = sqlx::query(sql)
                    .bind(CATEGORY)
                    .bind("330110")
                    .bind("330110.%")
                    .bind(cursor.as_str())
                    .bind(PAGE as i64)
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let ids: Vec<String> = rows.iter().map(|r| r.get::<String, _>("id")).collect();
            rows_of[0] = ids.len();
            if ids.len() < PAGE {
                continue;
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(tokens_sql.as_str()));
            for id in &ids {
                q = q.bind(id.as_str());
            }
            let t = Instant::now();
            rows_of[1] = q.fetch_all(&mut *conn).await.unwrap().len();
            tokens.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let plan: Vec<String> = conn
            .fetch_all(sqlx::AssertSqlSafe($explain))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let cols = r.len();
                (0..cols)
                    .filter_map(|c| {
                        r.try_get::<String, _>(c)
                            .ok()
                            .or_else(|| r.try_get::<i64, _>(c).ok().map(|v| v.to_string()))
                    })
                    .last()
                    .unwrap_or_default()
            })
            .collect();
        Split {
            page_us: median(page),
            bare_us: median(bare),
            tokens_us: median(tokens),
            rows: rows_of,
            plan,
        }
    }};
}

/// The plan of the page query with these literals (SQLite: `EXPLAIN QUERY PLAN` with them bound
/// as text is what the hub gets; PostgreSQL 15 cannot explain a parameterised statement, so the
/// values are inlined).
fn explain(backend: Backend, cursor: &str) -> String {
    let sql = PAGE_SQL
        .replace("$1", &format!("'{CATEGORY}'"))
        .replace("$2", "'330110'")
        .replace("$3", "'330110.%'")
        .replace("$4", &format!("'{cursor}'"))
        .replace("$5", &PAGE.to_string());
    match backend {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Backend::Postgres => format!("EXPLAIN {sql}"),
    }
}

pub async fn split(app: &TestApp, cursors: &[String], n: usize) -> Split {
    let explain = explain(app.backend, &cursors[cursors.len() / 2]);
    match app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}?mode=ro", app.sqlite_path().display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let s = split_on!(&mut conn, cursors, n, explain);
            conn.close().await.unwrap();
            s
        }
        Backend::Postgres => {
            let url = app.database_url.clone().unwrap();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let s = split_on!(&mut conn, cursors, n, explain);
            conn.close().await.unwrap();
            s
        }
    }
}
