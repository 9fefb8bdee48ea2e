//! The three statements behind "read 100 records" (`Store::disclosure_page`), as the hub builds
//! them for this bench's pull (one scope, a cursor, no grid filter, no case, no lookup), run on
//! a connection of our own to the hub's database: each timed, and the page query's plan shown.

use std::time::Instant;

use gridhub_tests::{Backend, TestApp};
use sqlx::{Connection, Executor};

use crate::setup::{CATEGORY, PAGE};

/// The page query for a pull with one scope and a cursor (text as `disclosure_page` builds it).
const PAGE_SQL: &str = "SELECT id, grid, plain_fields, kek_version, wrapped_dek FROM records \
     WHERE erased_at IS NULL AND category = $1 AND (grid = $2 OR grid LIKE $3) AND id > $4 \
     ORDER BY id LIMIT $5";

fn in_list(sql: &str, n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("{sql} ({})", params.join(", "))
}

/// The page as the hub reads it now: one statement, the needed fields joined on the primary
/// key of `record_fields` (values of name, phone, birth date and identity number; presence of
/// the address), as `Store::disclosure_page` builds it for this grant.
const JOINED_SQL: &str = "SELECT r.id, r.grid, r.plain_fields, r.kek_version, r.wrapped_dek, \
     f0.kek_version, f0.sealed, f1.kek_version, f1.sealed, f2.kek_version, f2.sealed, \
     f3.kek_version, f3.sealed, f4.kek_version FROM records r \
     LEFT JOIN record_fields f0 ON f0.record_id = r.id AND f0.field = $1 \
     LEFT JOIN record_fields f1 ON f1.record_id = r.id AND f1.field = $2 \
     LEFT JOIN record_fields f2 ON f2.record_id = r.id AND f2.field = $3 \
     LEFT JOIN record_fields f3 ON f3.record_id = r.id AND f3.field = $4 \
     LEFT JOIN record_fields f4 ON f4.record_id = r.id AND f4.field = $5 \
     WHERE r.erased_at IS NULL AND r.category = $6 AND (r.grid = $7 OR r.grid LIKE $8) \
     AND r.id > $9 ORDER BY r.id LIMIT $10";

/// Median µs of each statement over `n` runs (pages from `cursors`), and the page query's plan.
pub struct Split {
    pub page_us: f64,
    pub fields_us: f64,
    pub tokens_us: f64,
    /// What-if: only the four sealed fields the plan needs.
    pub needed_us: f64,
    /// The hub's joined statement (page and needed fields in one).
    pub joined_us: f64,
    /// Rows of the last page: sealed fields, tokens, needed sealed fields.
    pub rows: [usize; 3],
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
        let fields_sql = in_list(
            "SELECT record_id, field, kek_version, sealed FROM record_fields WHERE record_id IN",
            PAGE,
        );
        let tokens_sql = in_list(
            "SELECT record_id, field, token FROM blind_index WHERE record_id IN",
            PAGE,
        );
        // What-if: only the sealed fields this grant's levels need the value of (address is
        // generalised to the grid and needs none).
        let needed_sql = format!(
            "{} AND field IN ('name', 'phone', 'birth_date', 'id_number')",
            in_list(
                "SELECT record_id, field, kek_version, sealed FROM record_fields \
                 WHERE record_id IN",
                PAGE,
            )
        );
        let (mut page, mut fields, mut tokens, mut needed, mut joined) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut rows_of = [0usize; 3];
        for i in 0..$n {
            let cursor: &String = &$cursors[i % $cursors.len()];
            let t = Instant::now();
            let rows = sqlx::query(PAGE_SQL)
                .bind(CATEGORY)
                .bind("330110")
                .bind("330110.%")
                .bind(cursor.as_str())
                .bind(PAGE as i64)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            page.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            sqlx::query(JOINED_SQL)
                .bind("name")
                .bind("phone")
                .bind("birth_date")
                .bind("id_number")
                .bind("address")
                .bind(CATEGORY)
                .bind("330110")
                .bind("330110.%")
                .bind(cursor.as_str())
                .bind(PAGE as i64)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            joined.push(t.elapsed().as_secs_f64() * 1e6);
            let ids: Vec<String> = rows.iter().map(|r| r.get::<String, _>("id")).collect();
            if ids.len() < PAGE {
                continue;
            }
            let statements = [
                (&fields_sql, &mut fields),
                (&tokens_sql, &mut tokens),
                (&needed_sql, &mut needed),
            ];
            for (k, (sql, out)) in statements.into_iter().enumerate() {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for id in &ids {
                    q = q.bind(id.as_str());
                }
                let t = Instant::now();
                rows_of[k] = q.fetch_all(&mut *conn).await.unwrap().len();
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
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
            fields_us: median(fields),
            tokens_us: median(tokens),
            needed_us: median(needed),
            joined_us: median(joined),
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
