//! Statistics grants (issue 19): counts per cell and nothing per person; a cell of 9 is
//! suppressed at threshold 10; a pull under a statistics grant is `no_grant`; with a budget of
//! ε = 1 a day and 0.25 a query, the fifth query is refused; every answer is in the ledger.

use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{client_get, client_post, entries_of, grant_request};

/// Write `n` people in `WORKER_GRID` with `tags` and `residence`; their ids.
async fn people(app: &TestApp, first: u32, n: u32, tags: &[&str], residence: &str) -> Vec<String> {
    let records: Vec<Value> = (first..first + n)
        .map(|serial| {
            let mut p = gridhub_tests::person(
                WORKER_GRID,
                &format!("居民{serial}"),
                &id_number(&format!("33010219400101{serial:03}")),
                &format!("138{serial:08}"),
            );
            p["fields"]["tags"] = json!(tags);
            p["fields"]["residence"] = json!(residence);
            p
        })
        .collect();
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &json!({"records": records}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn statistics_grant(purpose: &str, extra: Value) -> Value {
    let mut request = grant_request("civil-affairs", purpose, json!({}), &["330110.001"]);
    request["kind"] = json!("statistics");
    request["group_by"] = json!(["grid", "grid.district", "tags", "residence"]);
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    request
}

async fn ask(app: &TestApp, client: &DeptClient, body: &Value) -> reqwest::Response {
    client_post(app, client, "/v1/data/person/statistics", body).await
}

async fn statistics_answer_counts_and_nothing_per_person(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let mut ids = people(&app, 1, 12, &["elderly_alone"], "registered").await;
    ids.extend(people(&app, 100, 9, &["disabled"], "floating").await);

    // Refused at creation, naming what is wrong.
    let resp = client_post(
        &app,
        &civil,
        "/v1/grants",
        &statistics_grant("elderly-care", json!({"group_by": ["name"]})),
    )
    .await;
    let (status, _, body) = error_code(resp).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"][0]["field"], "group_by", "{body}");
    let resp = client_post(
        &app,
        &civil,
        "/v1/grants",
        &statistics_grant("elderly-care", json!({"fields": {"name": "clear"}})),
    )
    .await;
    assert_eq!(
        error_code(resp).await.0,
        422,
        "a statistics grant names no fields"
    );
    let resp = client_post(
        &app,
        &civil,
        "/v1/grants",
        &statistics_grant("elderly-care", json!({"row_filter": "gender == \"male\""})),
    )
    .await;
    assert_eq!(
        error_code(resp).await.0,
        422,
        "filters read blind-indexed fields only"
    );

    let grant = app
        .approved_grant(&civil, &statistics_grant("elderly-care", json!({})))
        .await;
    let answer = ask(
        &app,
        &civil,
        &json!({"purpose": "elderly-care", "group_by": ["grid", "tags"]}),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["grant"], grant.as_str());
    assert_eq!(
        body["cells"],
        json!([{"group": {"grid": WORKER_GRID, "tags": "elderly_alone"}, "count": 12}]),
        "the cell of 9 is suppressed at threshold 10"
    );
    assert_eq!(body["suppressed_cells"], 1);
    assert_eq!(body["min_cell"], 10);
    assert!(body.get("noise").is_none());
    for id in &ids {
        assert!(!text.contains(id.as_str()), "no record id in an answer");
    }
    for leak in ["居民", "138000", "330102194", "records"] {
        assert!(
            !text.contains(leak),
            "no personal value in an answer: {leak}"
        );
    }
    // A coarser level merges grids; residence counts both groups.
    let body: Value = ask(
        &app,
        &civil,
        &json!({"purpose": "elderly-care", "group_by": ["grid.district", "residence"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["cells"],
        json!([{"group": {"grid.district": "330110.001", "residence": "registered"}, "count": 12}])
    );
    // A filter over a grouped field.
    let body: Value = ask(
        &app,
        &civil,
        &json!({"purpose": "elderly-care", "group_by": ["grid"],
                "filter": "tags has \"elderly_alone\" or residence == \"floating\""}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["cells"],
        json!([{"group": {"grid": WORKER_GRID}, "count": 21}])
    );

    // Outside the grant (403, recorded): an ungranted dimension, a filter on an ungrouped
    // field, a purpose without a grant. Malformed (422): no dimension, a field that is no
    // dimension (`gender` has no blind index), a filter that does not parse.
    for (query, code) in [
        (
            json!({"purpose": "elderly-care", "group_by": ["grid.city"]}),
            403,
        ),
        (
            json!({"purpose": "elderly-care", "group_by": ["grid"], "filter": "phone == \"13800000001\""}),
            403,
        ),
        (
            json!({"purpose": "epidemic-prevention", "group_by": ["grid"]}),
            403,
        ),
        (json!({"purpose": "elderly-care", "group_by": []}), 422),
        (
            json!({"purpose": "elderly-care", "group_by": ["gender"]}),
            422,
        ),
        (
            json!({"purpose": "elderly-care", "group_by": ["grid"], "filter": "tags has"}),
            422,
        ),
    ] {
        let resp = ask(&app, &civil, &query).await;
        assert_eq!(error_code(resp).await.0, code, "{query}");
    }

    // No record-level access at all: a pull or a lookup under it is `no_grant`.
    let resp = client_get(&app, &civil, "/v1/data/person?purpose=elderly-care").await;
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (403, "no_grant"));
    let resp = client_post(
        &app,
        &civil,
        "/v1/data/person/lookup",
        &json!({"purpose": "elderly-care", "key": {"id_number": id_number("33010219400101001")}}),
    )
    .await;
    assert_eq!(error_code(resp).await.1, "no_grant");
    let explained: Value = client_post(
        &app,
        &civil,
        "/v1/decisions/explain",
        &json!({"category": "person", "purpose": "elderly-care"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(explained["allowed"], false);
    assert_eq!(explained["statistics"][0]["id"], grant.as_str());

    // The ledger holds the query, every cell's size and what was suppressed; no subjects.
    let answers: Vec<Value> = entries_of(&app, "data.statistics")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "allow")
        .collect();
    assert_eq!(answers.len(), 3);
    let first = &answers[0];
    assert_eq!(first["records"], json!([]));
    assert_eq!(first["grants"], json!([grant]));
    assert_eq!(
        first["statistics"]["cells"],
        json!([
            {"group": [WORKER_GRID, "disabled"], "size": 9},
            {"group": [WORKER_GRID, "elderly_alone"], "released": 12, "size": 12},
        ])
    );
    assert_eq!(first["statistics"]["min_cell"], 10);
    // Statistics answers disclose no one: they are in no subject's report.
    let report: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/subjects/{}/report", ids[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["disclosures"], json!([]), "{report}");
    assert_eq!(report["departments"], json!({}));
    let refusals = entries_of(&app, "data.statistics")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "deny")
        .count();
    assert_eq!(refusals, 3, "each refused query is recorded");
}

async fn a_privacy_budget_is_spent_and_then_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    people(&app, 1, 40, &["elderly_alone"], "registered").await;
    let grant = app
        .approved_grant(
            &civil,
            &statistics_grant(
                "elderly-care",
                json!({"privacy": {"epsilon_per_day": 1, "epsilon_per_query": 0.25}}),
            ),
        )
        .await;
    let query = json!({"purpose": "elderly-care", "group_by": ["residence"]});
    for left in [0.75, 0.5, 0.25, 0.0] {
        let resp = ask(&app, &civil, &query).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["noise"]["mechanism"], "discrete_laplace");
        assert_eq!(body["noise"]["epsilon"], 0.25);
        assert_eq!(body["noise"]["epsilon_left_today"], left);
        assert!(
            body.get("suppressed_cells").is_none(),
            "its number would leak"
        );
        // Noise of scale 4 around 40: the cell shows, and not always at its true size.
        let cells = body["cells"].as_array().unwrap();
        assert!(cells.len() <= 1);
    }
    let resp = ask(&app, &civil, &query).await;
    assert!(resp.headers().get("retry-after").is_some());
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (429, "privacy_budget_exhausted"));
    let entries = entries_of(&app, "data.statistics").await;
    let spent: Vec<u64> = entries
        .iter()
        .filter(|e| e["decision"] == "allow")
        .map(|e| e["statistics"]["epsilon_milli"].as_u64().unwrap())
        .collect();
    assert_eq!(spent, [250, 250, 250, 250]);
    let last = entries.last().unwrap();
    assert_eq!(last["decision"], "deny");
    assert!(last["reason"].as_str().unwrap().contains("privacy budget"));
    let _ = grant;
}

on_both_backends!(
    statistics_answer_counts_and_nothing_per_person,
    a_privacy_budget_is_spent_and_then_refused,
);
