//! `GET /v1/audit/entries` as the audit explorer uses it: every filter narrows to exactly the
//! entries a model written here (from the entries' own JSON) picks, oldest first and newest
//! first, paging visits each entry once; a page the scan budget cuts short continues; the export
//! holds exactly the filtered entries; bad parameters are 422 naming them; callers without
//! `audit:read` are refused and audited. And migration 0017 fills the new columns of old
//! entries as the ledger fills them for new ones.

use std::collections::BTreeSet;

use gridhub::auth::Principal;
use gridhub::oversight::audit_search::{AuditQuery, Order, ScanBudget};
use gridhub::oversight::{AuditParams, FoundEntry};
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{approved_grant, client_get, client_post, grant_request};

/// Every entry, oldest first, read with the plain paging that predates the search.
async fn all_entries(app: &TestApp) -> Vec<Value> {
    entries_matching(app, "").await
}

/// Every entry `GET /v1/audit/entries?{query}` answers, oldest first, following `next_start`.
pub(crate) async fn entries_matching(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let page: Value = app
            .get(
                &app.dpo_token,
                &format!("/v1/audit/entries?{query}&start={start}&limit=1000"),
            )
            .await
            .json()
            .await
            .unwrap();
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_start"].as_i64() {
            Some(next) => start = next,
            None => return out,
        }
    }
}

/// The stream of an action, written out here by family (not the hub's function).
fn stream_of(action: &str) -> &'static str {
    match action.split('.').next().unwrap() {
        "data" | "decision" => "disclosure",
        "record" => "records",
        "auth" | "console" => "login",
        "ledger" => "system",
        _ => "admin",
    }
}

/// Does the entry (its JSON) pass filter `name=value`? The model the hub is checked against.
fn passes(entry: &Value, name: &str, value: &str) -> bool {
    let e = &entry["entry"];
    let text = |v: &Value| v.as_str() == Some(value);
    match name {
        "department" => text(&e["actor"]["department"]),
        "actor" => {
            let actor = e["actor"]["client"]
                .as_str()
                .or(e["actor"]["user"].as_str())
                .unwrap_or("anonymous");
            actor == value
        }
        "action" | "decision" | "purpose" | "case" | "category" | "request_id" => text(&e[name]),
        "stream" => stream_of(e["action"].as_str().unwrap()) == value,
        "grant" => e["grants"].as_array().unwrap().iter().any(text),
        "field" => e["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["fields"].get(value).is_some()),
        "since" => {
            gridhub::time::parse_rfc3339(e["time"].as_str().unwrap()).unwrap()
                >= gridhub::time::parse_rfc3339(value).unwrap()
        }
        "until" => {
            gridhub::time::parse_rfc3339(e["time"].as_str().unwrap()).unwrap()
                < gridhub::time::parse_rfc3339(value).unwrap()
        }
        other => panic!("no model for {other}"),
    }
}

fn index_of(entry: &Value) -> i64 {
    entry["index"].as_i64().unwrap()
}

/// Every page of `query` (`&`-joined filters) in `order`, `limit` per page; the indexes in the
/// order served, each page checked to be in order.
async fn paged(app: &TestApp, query: &str, order: &str, limit: u32) -> Vec<i64> {
    let mut found = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let path = match (order, cursor) {
            ("desc", None) => format!("/v1/audit/entries?{query}&order=desc&limit={limit}"),
            ("desc", Some(c)) => {
                format!("/v1/audit/entries?{query}&order=desc&before={c}&limit={limit}")
            }
            (_, c) => format!(
                "/v1/audit/entries?{query}&start={}&limit={limit}",
                c.unwrap_or(0)
            ),
        };
        let resp = app.get(&app.dpo_token, &path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let page: Value = resp.json().await.unwrap();
        let indexes: Vec<i64> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(index_of)
            .collect();
        assert!(indexes.len() <= limit as usize);
        assert!(page.get("scan_limited").is_none(), "{path}: {page}");
        found.extend(indexes);
        let next = if order == "desc" {
            assert!(page.get("next_start").is_none());
            page["next_before"].as_i64()
        } else {
            assert!(page.get("next_before").is_none());
            page["next_start"].as_i64()
        };
        match next {
            Some(n) => cursor = Some(n),
            None => return found,
        }
    }
}

/// A few departments, residents, grants, pulls, lookups, a refusal and a pull with a request id
/// of the test's choosing; returns that request id and the civil affairs grant.
async fn varied_ledger(app: &TestApp) -> (String, String) {
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110"]).await;
    app.create_department("housing", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let health = app.register_client("health-sys", "health").await;
    let housing = app.register_client("housing-sys", "housing").await;
    for i in 0..3 {
        let id = id_number(&format!("33010219500101{:03}", i + 1));
        let resp = app
            .post(
                &app.worker_token,
                "/v1/records",
                &person(WORKER_GRID, "张三", &id, &format!("1381234{:04}", i + 1)),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let civil_grant = approved_grant(
        app,
        &civil,
        &grant_request(
            "civil-affairs",
            "elderly-care",
            json!({"name": "clear", "phone": "masked"}),
            &["330110.001"],
        ),
    )
    .await;
    approved_grant(
        app,
        &health,
        &grant_request(
            "health",
            "epidemic-prevention",
            json!({"name": "clear", "birth_date": "generalized"}),
            &["330110"],
        ),
    )
    .await;
    for _ in 0..3 {
        let resp = client_get(app, &civil, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(resp.status(), 200);
    }
    let resp = client_get(app, &health, "/v1/data/person?purpose=epidemic-prevention").await;
    assert_eq!(resp.status(), 200);
    let resp = client_post(
        app,
        &civil,
        "/v1/data/person/lookup",
        &json!({"purpose": "elderly-care", "key": {"phone": "13812340001"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // Housing has no grant: a refusal of its department.
    let resp = client_get(app, &housing, "/v1/data/person?purpose=elderly-care").await;
    assert_eq!(resp.status(), 403);
    let request_id = "audit-search-test-0001".to_owned();
    pull_with_request_id(app, &civil, &request_id).await;
    (request_id, civil_grant)
}

async fn pull_with_request_id(app: &TestApp, client: &DeptClient, request_id: &str) {
    let token = app.client_token(client).await;
    let resp = client
        .http
        .get(app.url("/v1/data/person?purpose=elderly-care"))
        .bearer_auth(token)
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn each_filter_narrows_to_exactly_its_entries(backend: Backend) {
    let app = spawn_app(backend).await;
    let (request_id, civil_grant) = varied_ledger(&app).await;
    let all = all_entries(&app).await;
    let middle = all[all.len() / 2]["entry"]["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let filters: Vec<Vec<(&str, String)>> = vec![
        vec![("department", "civil-affairs".into())],
        vec![
            ("department", "housing".into()),
            ("decision", "deny".into()),
        ],
        vec![("actor", "health-sys".into())],
        vec![("action", "data.lookup".into())],
        vec![("decision", "deny".into())],
        vec![("purpose", "epidemic-prevention".into())],
        vec![("category", "person".into())],
        vec![("field", "phone".into())],
        vec![
            ("field", "birth_date".into()),
            ("department", "health".into()),
        ],
        vec![("grant", civil_grant.clone())],
        vec![("request_id", request_id.clone())],
        vec![("stream", "disclosure".into())],
        vec![("stream", "disclosure".into()), ("since", middle.clone())],
        vec![("stream", "admin".into()), ("until", middle.clone())],
        vec![("stream", "login".into())],
        vec![("stream", "records".into())],
        vec![("since", middle.clone())],
    ];
    for filter in filters {
        let query = filter
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(':', "%3A")))
            .collect::<Vec<_>>()
            .join("&");
        let expected: Vec<i64> = all
            .iter()
            .filter(|e| filter.iter().all(|(k, v)| passes(e, k, v)))
            .map(index_of)
            .collect();
        assert!(
            !expected.is_empty() && expected.len() < all.len(),
            "{query}: the test ledger should hold some entries of this filter and others"
        );
        assert_eq!(paged(&app, &query, "asc", 1000).await, expected, "{query}");
        assert_eq!(paged(&app, &query, "asc", 2).await, expected, "{query}");
        let mut newest_first = expected.clone();
        newest_first.reverse();
        assert_eq!(
            paged(&app, &query, "desc", 3).await,
            newest_first,
            "{query}"
        );
    }
    // Newest first without filters visits every entry exactly once (none appended meanwhile:
    // reading is not audited).
    let every: Vec<i64> = all.iter().map(index_of).collect();
    let desc = paged(&app, "start=0", "desc", 7).await;
    assert_eq!(desc.iter().collect::<BTreeSet<_>>().len(), desc.len());
    assert_eq!(desc.into_iter().rev().collect::<Vec<_>>(), every);
    // The old parameters mean what they meant: an index range, oldest first.
    let page: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?start=3&end=6&limit=2")
        .await
        .json()
        .await
        .unwrap();
    let indexes: Vec<i64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(index_of)
        .collect();
    assert_eq!(
        (indexes, page["next_start"].as_i64()),
        (vec![3, 4], Some(5))
    );
    app.stop().await;
}

/// The DPO as a principal, for calling the service in-process.
async fn dpo(app: &TestApp) -> Principal {
    let store = &app.state.store;
    let user = store.user_by_username("dpo").await.unwrap().unwrap();
    Principal::of_user(user, store.versions().await.unwrap())
}

fn indexes(entries: &[FoundEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

async fn a_scan_limited_page_continues_and_the_export_is_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, civil_grant) = varied_ledger(&app).await;
    let all = all_entries(&app).await;
    let expected: Vec<u64> = all
        .iter()
        .filter(|e| passes(e, "grant", &civil_grant) && passes(e, "department", "civil-affairs"))
        .map(|e| index_of(e) as u64)
        .collect();
    assert!(expected.len() >= 3);
    let who = dpo(&app).await;
    for order in [Order::Ascending, Order::Descending { before: None }] {
        let mut query = AuditQuery::parse(&AuditParams {
            grant: Some(&civil_grant),
            department: Some("civil-affairs"),
            limit: Some(2),
            ..AuditParams::default()
        })
        .unwrap();
        query.order = order;
        // Three entries of the department per page at most: pages come back short, say so,
        // and their cursor carries on past what they examined.
        query.budget = ScanBudget::new(3);
        let mut found = Vec::new();
        let mut limited = 0;
        loop {
            let page = app
                .state
                .oversight
                .search_entries(&who, &query)
                .await
                .unwrap();
            assert!(page.entries.len() <= 2);
            if page.scan_limited {
                limited += 1;
                assert!(page.entries.len() < 2 && page.next.is_some());
            }
            found.extend(indexes(&page.entries));
            match page.next {
                Some(next) => query = query.continued(next),
                None => break,
            }
        }
        assert!(limited > 0, "{order:?}: some page was cut by the budget");
        if order == Order::Ascending {
            assert_eq!(found, expected);
        } else {
            assert_eq!(found.iter().rev().copied().collect::<Vec<_>>(), expected);
        }
    }
    // The export holds exactly the filtered entries, and is audited before it starts.
    let query = AuditQuery::parse(&AuditParams {
        stream: Some("disclosure"),
        limit: Some(3),
        ..AuditParams::default()
    })
    .unwrap();
    let expected: Vec<u64> = all
        .iter()
        .filter(|e| passes(e, "stream", "disclosure"))
        .map(|e| index_of(e) as u64)
        .collect();
    let mut export = app
        .state
        .oversight
        .export_entries(&who, &query)
        .await
        .unwrap();
    let mut exported = Vec::new();
    while let Some(page) = export.next_page().await.unwrap() {
        exported.extend(page);
    }
    assert_eq!(indexes(&exported), expected);
    for entry in &exported {
        let parsed: Value = serde_json::from_str(&entry.canonical).unwrap();
        assert_eq!(parsed["index"].as_u64(), Some(entry.index));
    }
    let exports = crate::grants::entries_of(&app, "audit.export").await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0]["actor"]["user"], who.id());
    app.stop().await;
}

async fn bad_parameters_are_named_and_refusals_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, field) in [
        ("order=sideways", "order"),
        ("before=5", "before"),
        ("order=desc&before=-1", "before"),
        ("stream=everything", "stream"),
        ("decision=maybe", "decision"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("start=-1", "start"),
        ("since=yesterday", "since"),
        ("until=2026-02-30T00%3A00%3A00Z", "until"),
    ] {
        let resp = app
            .get(&app.dpo_token, &format!("/v1/audit/entries?{query}"))
            .await;
        let (status, code, body) = error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{query}: {body}"
        );
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{query}: {body}");
    }
    // /openapi.json documents the parameters and the answer's cursors.
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let params = doc["paths"]["/v1/audit/entries"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for name in [
        "start",
        "end",
        "order",
        "before",
        "actor",
        "department",
        "purpose",
        "case",
        "decision",
        "action",
        "stream",
        "category",
        "field",
        "grant",
        "request_id",
        "since",
        "until",
        "limit",
    ] {
        assert!(
            params
                .iter()
                .any(|p| p["name"] == name && p["in"] == "query"),
            "{name}: {params:?}"
        );
    }
    let page = &doc["components"]["schemas"]["EntryPage"];
    for field in ["next_start", "next_before", "scan_limited"] {
        assert!(page["properties"].get(field).is_some(), "{page}");
        let required = page["required"].as_array().cloned().unwrap_or_default();
        assert!(
            !required.iter().any(|r| r == field),
            "{field} is optional: {page}"
        );
    }
    // A value of the wrong type is a malformed query string (400), named as well.
    let resp = app
        .get(&app.dpo_token, "/v1/audit/entries?order=desc&before=x")
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`before`"),
        "{body}"
    );
    let long = "g".repeat(257);
    let resp = app
        .get(&app.dpo_token, &format!("/v1/audit/entries?grant={long}"))
        .await;
    let (status, _, body) = error_code(resp).await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("grant"))
    );

    // A grid worker has no `audit:read`: refused whatever it asks, and the refusal is an entry.
    for query in ["", "?order=desc&department=health", "?stream=nonsense"] {
        let resp = app
            .get(&app.worker_token, &format!("/v1/audit/entries{query}"))
            .await;
        let (status, code, _) = error_code(resp).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{query}");
    }
    let worker = app
        .state
        .store
        .user_by_username("worker")
        .await
        .unwrap()
        .unwrap();
    let refusals = crate::grants::entries_of(&app, "audit.entries").await;
    assert_eq!(refusals.len(), 3);
    for r in &refusals {
        assert_eq!(
            (r["decision"].as_str(), r["actor"]["user"].as_str()),
            (Some("deny"), Some(worker.id.as_str()))
        );
    }
    // Through the service as well: search and export refuse, and the export's refusal is
    // recorded under its own action (the stream of both is `admin`).
    let who = Principal::of_user(worker, app.state.store.versions().await.unwrap());
    let query = AuditQuery::default();
    assert!(
        app.state
            .oversight
            .search_entries(&who, &query)
            .await
            .is_err()
    );
    assert!(
        app.state
            .oversight
            .export_entries(&who, &query)
            .await
            .is_err()
    );
    let page: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?action=audit.export&decision=deny&stream=admin",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// The filter columns of every entry, `(index, action, department, category, request_id,
/// stream, canonical)`, read straight from the database at `sqlite` or `postgres` (a URL).
pub(crate) async fn filter_columns(database: &Database) -> Vec<FilterColumns> {
    use sqlx::Connection;
    let sql = "SELECT idx, action, department, category, request_id, stream, canonical \
               FROM ledger_entries ORDER BY idx";
    match database {
        Database::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
        Database::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

pub(crate) enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

pub(crate) type FilterColumns = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// Every entry's filter columns hold what its canonical text says, and its stream is the
/// hub's `Stream::of` of its action (for entries the ledger wrote, and for older ones the
/// migration filled).
pub(crate) fn assert_columns_match_entries(rows: &[FilterColumns]) {
    assert!(!rows.is_empty());
    for (index, action, department, category, request_id, stream, canonical) in rows {
        let entry: Value = serde_json::from_str(canonical).unwrap();
        let text = |v: &Value| v.as_str().map(str::to_owned);
        assert_eq!(
            (department, category, request_id),
            (
                &text(&entry["actor"]["department"]),
                &text(&entry["category"]),
                &text(&entry["request_id"])
            ),
            "entry {index}"
        );
        assert_eq!(
            stream,
            gridhub::ledger::Stream::of(action).as_str(),
            "entry {index}"
        );
    }
}

/// Migration 0017 on a ledger written before it: one entry of every action the hub writes
/// (with and without department and category), and one whose text is not JSON. Its `CASE`
/// gives each the stream `Stream::of` gives, and its copies are those the ledger's own write
/// path (`ledger::stored_form`) stores for the same entries; the non-JSON one gets no copies
/// and does not stop the upgrade.
async fn migration_0017_fills_old_entries_as_the_ledger_fills_new_ones(backend: Backend) {
    use gridhub::ledger::{
        Actor, Decision, EntryDraft, Stream, stored_form, stream::WRITTEN_ACTIONS,
    };
    let drafts: Vec<EntryDraft> = WRITTEN_ACTIONS
        .iter()
        .enumerate()
        .map(|(i, action)| {
            let actor = if i % 2 == 0 {
                Actor {
                    department: Some(format!("dept-{}", i % 3)),
                    client: Some("c".into()),
                    ..Actor::default()
                }
            } else {
                Actor::user("u")
            };
            let draft = EntryDraft::new(actor, action, Decision::Allow, format!("req-{i}"));
            if i % 3 == 0 {
                draft.category("person")
            } else {
                draft
            }
        })
        .collect();
    let mut frontier = gridhub::ledger::merkle::Frontier::new();
    let (rows, _, _) = stored_form(&mut frontier, drafts.iter().map(|d| (d, 1_700_000_000_000)));
    let dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => Database::Sqlite(dir.path().join("old.db")),
        Backend::Postgres => Database::Postgres(gridhub_tests::fresh_pg_database().await.0),
    };
    let insert = "INSERT INTO ledger_entries (idx, time_ms, actor, action, purpose, case_id, \
                  decision, canonical, leaf_hash) VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, $7)";
    let broken = rows.len() as i64;
    // The same statements through either backend's pool.
    macro_rules! old_ledger {
        ($pool:expr, $migrations:expr) => {{
            let pool = $pool;
            $migrations.run_to(16, &pool).await.unwrap();
            for r in &rows {
                sqlx::query(insert)
                    .bind(r.index)
                    .bind(r.time_ms)
                    .bind(r.actor.clone())
                    .bind(r.action.clone())
                    .bind(r.decision.clone())
                    .bind(r.canonical.clone())
                    .bind(r.leaf_hash.clone())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            sqlx::query(insert)
                .bind(broken)
                .bind(1_700_000_000_000i64)
                .bind("c")
                .bind("data.read")
                .bind("allow")
                .bind("{not json")
                .bind(vec![0u8; 32])
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }};
    }
    let location = match &database {
        Database::Sqlite(path) => {
            let url = format!("sqlite://{}?mode=rwc", path.display());
            old_ledger!(
                sqlx::SqlitePool::connect(&url).await.unwrap(),
                gridhub::storage::SQLITE_MIGRATIONS
            );
            gridhub::config::DatabaseLocation::Sqlite(path.clone())
        }
        Database::Postgres(url) => {
            old_ledger!(
                sqlx::PgPool::connect(url).await.unwrap(),
                gridhub::storage::POSTGRES_MIGRATIONS
            );
            gridhub::config::DatabaseLocation::Postgres(url.clone().into())
        }
    };
    let store = gridhub::storage::Store::open(&location).await.unwrap();
    store.close().await;
    let stored = filter_columns(&database).await;
    assert_eq!(stored.len(), rows.len() + 1);
    for (row, (index, action, department, category, request_id, stream, _)) in
        rows.iter().zip(&stored)
    {
        assert_eq!(
            (
                index,
                action,
                department,
                category,
                request_id.as_ref(),
                stream.as_str()
            ),
            (
                &row.index,
                &row.action,
                &row.department,
                &row.category,
                Some(&row.request_id),
                row.stream
            ),
            "{action}"
        );
        assert_eq!(row.stream, Stream::of(action).as_str());
    }
    assert_columns_match_entries(&stored[..rows.len()]);
    let (_, _, department, category, request_id, stream, _) = &stored[rows.len()];
    assert_eq!(
        (department, category, request_id, stream.as_str()),
        (&None, &None, &None, "disclosure")
    );
}

on_both_backends!(
    each_filter_narrows_to_exactly_its_entries,
    a_scan_limited_page_continues_and_the_export_is_exact,
    bad_parameters_are_named_and_refusals_audited,
    migration_0017_fills_old_entries_as_the_ledger_fills_new_ones,
);
