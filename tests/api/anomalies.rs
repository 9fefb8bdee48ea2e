//! `GET /v1/audit/anomalies`: bulk pulls, repeated denials, lookups without a case and
//! off-hours disclosures, each flagged with the ledger entries behind it — and nothing flagged
//! below the thresholds.

use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{approved_grant, client_get, client_post, grant_request};

async fn anomalies(app: &TestApp) -> Vec<Value> {
    let resp = app.get(&app.dpo_token, "/v1/audit/anomalies").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["truncated"], false);
    body["anomalies"].as_array().unwrap().clone()
}

fn of_kind<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|a| a["kind"] == kind).collect()
}

async fn patterns_are_flagged_with_their_entries(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110"]).await;
    app.create_department("housing", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let health = app.register_client("health-sys", "health").await;
    let housing = app.register_client("housing-sys", "housing").await;
    // 1 000 residents in one batch.
    let records: Vec<Value> = (0..1000)
        .map(|i| {
            person(
                WORKER_GRID,
                "张三",
                &id_number(&format!("33010219500101{:03}", i)),
                &format!("138{:08}", i),
            )
        })
        .collect();
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records/batch",
            &json!({"records": records}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    approved_grant(
        &app,
        &civil,
        &grant_request(
            "civil-affairs",
            "elderly-care",
            json!({"name": "clear", "phone": "masked"}),
            &["330110.001"],
        ),
    )
    .await;

    // Below every threshold: nothing but what the clock may make off-hours.
    let (page, _) = {
        let resp = client_get(
            &app,
            &civil,
            "/v1/data/person?purpose=elderly-care&limit=500",
        )
        .await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        (page, ())
    };
    let first_pull = page["receipt"]["index"].as_u64().unwrap();
    for _ in 0..4 {
        let resp = client_get(&app, &housing, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(error_code(resp).await.0, 403);
    }
    let all = anomalies(&app).await;
    assert!(of_kind(&all, "bulk_pull").is_empty(), "{all:?}");
    assert!(of_kind(&all, "repeated_denials").is_empty(), "{all:?}");
    assert!(of_kind(&all, "lookup_without_case").is_empty(), "{all:?}");

    // Crossing them: 1 000 records within the hour, 5 denials, a lookup without a case.
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let resp = client_get(
        &app,
        &civil,
        &format!("/v1/data/person?purpose=elderly-care&limit=500&cursor={cursor}"),
    )
    .await;
    let second_pull = resp.json::<Value>().await.unwrap()["receipt"]["index"]
        .as_u64()
        .unwrap();
    for _ in 0..5 {
        let resp = client_get(&app, &health, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(error_code(resp).await.0, 403);
    }
    let resp = client_post(
        &app,
        &civil,
        "/v1/data/person/lookup",
        &json!({"purpose": "elderly-care", "key": {"phone": "13800000007"}}),
    )
    .await;
    let lookup = resp.json::<Value>().await.unwrap()["receipt"]["index"]
        .as_u64()
        .unwrap();

    let all = anomalies(&app).await;
    let bulk = of_kind(&all, "bulk_pull");
    assert_eq!(bulk.len(), 1, "{all:?}");
    assert_eq!(bulk[0]["actor"]["client"], "civil-sys");
    assert_eq!(bulk[0]["count"].as_u64(), Some(1001));
    let behind: Vec<u64> = bulk[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_u64().unwrap())
        .collect();
    assert_eq!(behind, [first_pull, second_pull, lookup]);
    let denials = of_kind(&all, "repeated_denials");
    assert_eq!(
        denials.len(),
        1,
        "housing's 4 denials stay below the threshold: {all:?}"
    );
    assert_eq!(
        (
            denials[0]["actor"]["client"].as_str(),
            denials[0]["count"].as_u64()
        ),
        (Some("health-sys"), Some(5))
    );
    let lookups = of_kind(&all, "lookup_without_case");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0]["entries"], json!([lookup]));
    // Off-hours follows each disclosure's own recorded time (China Standard Time).
    let entries: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let mut expected_off: Vec<u64> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let action = e["entry"]["action"].as_str().unwrap();
            e["entry"]["decision"] == "allow" && (action == "data.read" || action == "data.lookup")
        })
        .filter(|e| {
            let t = time::OffsetDateTime::parse(
                e["entry"]["time"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let hour = t
                .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
                .hour();
            !(7..20).contains(&hour)
        })
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    expected_off.sort_unstable();
    let flagged: Vec<u64> = of_kind(&all, "off_hours")
        .iter()
        .flat_map(|a| {
            a["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_u64().unwrap())
        })
        .collect();
    assert_eq!(flagged, expected_off);
    // Asking is audited; bad windows are refused.
    assert_eq!(
        crate::grants::entries_of(&app, "audit.anomalies")
            .await
            .len(),
        2
    );
    let resp = app
        .get(
            &app.dpo_token,
            "/v1/audit/anomalies?since=2026-11-24T10:00:00Z&until=2026-11-24T09:00:00Z",
        )
        .await;
    assert_eq!(error_code(resp).await.0, 422);
    assert_eq!(
        error_code(client_get(&app, &civil, "/v1/audit/anomalies").await)
            .await
            .0,
        403
    );
    // The role is checked before the window is read: without it, a bad window is 403 too.
    assert_eq!(
        error_code(
            client_get(
                &app,
                &civil,
                "/v1/audit/anomalies?since=2026-11-24T10:00:00Z&until=yesterday",
            )
            .await
        )
        .await
        .0,
        403
    );
    app.stop().await;
}

on_both_backends!(patterns_are_flagged_with_their_entries);
