//! The hub under test: synthetic residents seeded through `POST /v1/records/batch`, a department
//! whose jurisdiction is the whole city, its client (with an age recipient, so the same client
//! can pull plain and sealed), an approved five-field grant with a daily quota, and a second
//! department whose identical grant has no quota (to show what the quota costs). Then one walk
//! over every page gives the cursor table the load generator replays and a real response body
//! for the ceiling.

use std::sync::Arc;

use gridhub::demo::{SEED, synth};
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{Backend, TestApp, spawn_app};
use serde_json::{Value, json};

use crate::loadgen::{PageCount, PageSpec};

pub const PURPOSE: &str = "elderly-care";
pub const CATEGORY: &str = "person";
pub const PAGE: usize = 100;
/// Large enough that a day of benchmarking never reaches it, small enough to be a real check.
pub const DAILY_QUOTA: u32 = 10_000_000;

pub struct Fixture {
    pub app: TestApp,
    /// `civil-affairs`: the grant with a daily quota; registered with an age recipient.
    pub client: DeptClient,
    pub identity: age::x25519::Identity,
    pub grant_id: String,
    /// `civil-nq`: the same grant without a quota.
    pub unmetered: DeptClient,
    pub pages: Arc<Vec<PageSpec>>,
    /// A full page exactly as the hub sent it (plain JSON).
    pub sample_body: Vec<u8>,
}

fn rfc3339(offset_secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Name clear, phone masked, birth date and address generalised, identity number pseudonymised.
fn grant(department: &str, quota: Option<u32>) -> Value {
    let mut g = json!({
        "grantee": department,
        "purpose": PURPOSE,
        "category": CATEGORY,
        "fields": {
            "name": "clear",
            "phone": "masked",
            "birth_date": "generalized",
            "address": "generalized",
            "id_number": "pseudonym",
        },
        "scope": ["330110"],
        "case_bound": false,
        "valid_from": rfc3339(-3600),
        "valid_until": rfc3339(30 * 86_400),
        "legal_basis": "Elderly Rights Protection Law art. 3",
    });
    if let Some(q) = quota {
        g["daily_quota"] = json!(q);
    }
    g
}

/// `records` synthetic residents of the demo city, in batches of 500 from 2 clients.
async fn seed(app: &TestApp, records: usize) {
    let grids = synth::grid_tree(SEED);
    for g in grids.iter().filter(|g| !g.code.starts_with("L.")) {
        // The test app pre-creates a few grids of the same city; those answer 409.
        let _ = app
            .post(
                &app.admin_token,
                "/v1/grids",
                &json!({"code": g.code, "name": g.name, "kind": "physical"}),
            )
            .await;
    }
    let people: Vec<Value> = synth::population(SEED, records, &grids)
        .into_iter()
        .filter(|r| r.category == CATEGORY)
        .map(|r| {
            json!({"category": r.category, "grid": r.grid,
                   "purpose": "population-registration", "fields": r.fields})
        })
        .collect();
    let batches: Vec<Value> = people
        .chunks(500)
        .map(|c| json!({ "records": c }))
        .collect();
    async fn post_all(app: &TestApp, mine: impl Iterator<Item = &Value>) {
        for body in mine {
            let resp = app.post(&app.admin_token, "/v1/records/batch", body).await;
            assert_eq!(
                resp.status(),
                201,
                "{}",
                resp.text().await.unwrap_or_default()
            );
        }
    }
    tokio::join!(
        post_all(app, batches.iter().step_by(2)),
        post_all(app, batches.iter().skip(1).step_by(2)),
    );
}

/// Every page of the pull, from the start (one pass; the hub audits and counts each).
async fn walk(app: &TestApp, client: &DeptClient) -> (Vec<PageSpec>, Vec<u8>) {
    let token = app.client_token(client).await;
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    let mut sample = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/data/{CATEGORY}?purpose={PURPOSE}&limit={PAGE}"),
            Some(c) => format!("/v1/data/{CATEGORY}?purpose={PURPOSE}&limit={PAGE}&cursor={c}"),
        };
        let resp = client
            .http
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.bytes().await.unwrap().to_vec();
        let page = PageCount::parse(&body);
        if page.records.is_empty() {
            break;
        }
        if sample.is_none() && page.records.len() == PAGE {
            sample = Some(body.clone());
        }
        pages.push(PageSpec {
            path,
            records: page.records.len(),
            fields: page.fields(),
        });
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    (pages, sample.expect("at least one full page"))
}

pub async fn fixture(backend: Backend, records: usize) -> Fixture {
    let app = spawn_app(backend).await;
    let seeding = std::time::Instant::now();
    seed(&app, records).await;
    println!(
        "  seeded {records} residents in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    app.create_department("civil-affairs", &["330110"]).await;
    app.create_department("civil-nq", &["330110"]).await;
    let (client, identity) = app
        .register_sealed_client("civil-sys", "civil-affairs")
        .await;
    let unmetered = app.register_client("civil-nq-sys", "civil-nq").await;
    let grant_id = app
        .approved_grant(&client, &grant("civil-affairs", Some(DAILY_QUOTA)))
        .await;
    app.approved_grant(&unmetered, &grant("civil-nq", None))
        .await;
    if backend == Backend::Postgres {
        // What autovacuum's analyze would have done by now on a production server; the dev
        // server runs with `autovacuum = off`, and never-analysed tables get seq-scan plans.
        let url = app.database_url.clone().unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let on: String = sqlx::query_scalar("SHOW autovacuum")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
        println!("  ANALYZE after seeding (this server's autovacuum: {on})");
    }
    let (pages, sample_body) = walk(&app, &client).await;
    // The unmetered department sees the same pages.
    let (other, _) = walk(&app, &unmetered).await;
    assert_eq!(other.len(), pages.len());
    Fixture {
        app,
        client,
        identity,
        grant_id,
        unmetered,
        pages: Arc::new(pages),
        sample_body,
    }
}
