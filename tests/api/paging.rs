//! Pulls fill their page (issue 17): `limit` means "up to this many records" even when a row
//! filter keeps 1 record in 200. Candidate rows are read in chunks sized for the database until
//! the page is full, the records end, or the scan budget (`pull_scan_budget_rows`) is spent;
//! a page the budget cut short says `complete: false` and carries the cursor to go on from.

use std::collections::BTreeSet;

use gridhub_tests::{
    Backend, SpawnOptions, TestApp, WORKER_GRID, id_number, on_both_backends, person,
    spawn_app_with,
};
use serde_json::{Value, json};

use crate::grants::{approved_grant, client_get, grant_request};

/// Residents written, and every how many of them lives alone (the row filter's match).
const RESIDENTS: u32 = 1200;
const ONE_IN: u32 = 200;
/// The scan budget of the test hub (the setting's minimum).
const BUDGET: u32 = 500;

/// Write `RESIDENTS` residents, every `ONE_IN`-th tagged `elderly_alone`; returns the ids of the
/// tagged ones.
async fn residents(app: &TestApp) -> BTreeSet<String> {
    let mut tagged = BTreeSet::new();
    for batch in 0..RESIDENTS / 400 {
        let records: Vec<Value> = (0..400)
            .map(|i| {
                let n = batch * 400 + i;
                let first17 = format!("3301021{:03}0101{:03}", 940 + n / 1000, n % 1000);
                let mut body = person(WORKER_GRID, "李梅", &id_number(&first17), "13912340000");
                let tags = if n.is_multiple_of(ONE_IN) {
                    json!(["elderly_alone"])
                } else {
                    json!(["disabled"])
                };
                body["fields"]["tags"] = tags;
                body
            })
            .collect();
        let resp = app
            .post(
                &app.worker_token,
                "/v1/records/batch",
                &json!({ "records": records }),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let created: Value = resp.json().await.unwrap();
        for (i, r) in created["records"].as_array().unwrap().iter().enumerate() {
            if (batch * 400 + i as u32).is_multiple_of(ONE_IN) {
                tagged.insert(r["id"].as_str().unwrap().to_owned());
            }
        }
    }
    tagged
}

/// Follow the cursor from the first page to the last; returns every page.
async fn all_pages(
    app: &TestApp,
    client: &gridhub_tests::mtls::DeptClient,
    limit: u32,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/data/person?purpose=elderly-care&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let resp = client_get(app, client, &path).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() <= 20, "the cursor never ends");
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn pulls_fill_their_page(backend: Backend) {
    let app = spawn_app_with(
        backend,
        SpawnOptions {
            extra_config: Some(format!("pull_scan_budget_rows = {BUDGET}")),
            ..SpawnOptions::default()
        },
    )
    .await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let mut grant = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    grant["row_filter"] = json!("tags has \"elderly_alone\"");
    approved_grant(&app, &civil, &grant).await;
    let tagged = residents(&app).await;
    assert_eq!(tagged.len(), (RESIDENTS / ONE_IN) as usize);

    // Two matches lie within the budget: a page of 2 is full, though 1 row in 200 matches.
    let first = &all_pages(&app, &civil, 2).await[0];
    assert_eq!(ids(first).len(), 2, "{first}");
    assert_eq!(first["complete"], true);
    assert!(first["next_cursor"].is_string());

    // A page of 5 needs more rows than the budget: it comes back short, says so, and the
    // cursor goes on from where the scan stopped until every match was disclosed once.
    let pages = all_pages(&app, &civil, 5).await;
    let (last, cut) = pages.split_last().unwrap();
    assert!(
        !cut.is_empty(),
        "{RESIDENTS} rows cannot fit one budget of {BUDGET}"
    );
    for page in cut {
        assert!(page["next_cursor"].is_string());
        if ids(page).len() < 5 {
            assert_eq!(
                page["complete"], false,
                "a short page before the end: {page}"
            );
        }
    }
    assert_eq!(last["complete"], true, "the scan reached the end: {last}");
    let mut seen = Vec::new();
    for page in &pages {
        assert!(ids(page).len() <= 5);
        seen.extend(ids(page));
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a record was disclosed on two pages"
    );
    assert_eq!(
        unique, tagged,
        "every match, and only matches, across the pages"
    );
    app.stop().await;
}

on_both_backends!(pulls_fill_their_page);
