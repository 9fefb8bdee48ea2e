//! The console's anomalies and charts pages in a real browser (issue 20, item 7), driven by
//! `tests/console/oversight.mjs`. The hub is set up here with a known history — disclosures by
//! two departments on two Beijing days, a client denied five times within the hour (a
//! `repeated_denials` anomaly) — and what the browser did and read is checked against the API:
//! the anomaly it acknowledged and resolved through the forms is `resolved` with the DPO as
//! `by` and both steps in the ledger; a resolve without a note was refused and changed nothing;
//! the figures the charts' tables show are `GET /v1/audit/activity`'s and the known counts. A
//! grid worker gets the 403 page, and a form without the session's CSRF token is refused.
//!
//! The ledger dates its entries by the wall clock, not by the test clock. Entries of the next
//! day are therefore written with the ledger's own offline builder (`ledger::stored_form` and
//! `Store::append_ledger`, as the audit search bench seeds its ledger) while the hub is
//! stopped, and the test clock is moved to that day: the hub's "today" for the charts.

use std::collections::BTreeMap;

use gridhub::config::DatabaseLocation;
use gridhub::ledger::{Actor, Decision, EntryDraft, RecordRef};
use gridhub::storage::Store;
use gridhub::time::{Clock, cst_day, parse_rfc3339};
use gridhub_tests::{
    Backend, TestApp, WORKER_GRID, id_number, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

use crate::audit_search::entries_matching;
use crate::console::{Browserless, csrf_of, run_browser};
use crate::grants::{client_get, grant_request};

const DAY_MS: i64 = 86_400_000;

async fn anomalies(app: &TestApp) -> Vec<Value> {
    let resp = app.get(&app.dpo_token, "/v1/audit/anomalies").await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["anomalies"]
        .as_array()
        .unwrap()
        .clone()
}

async fn activity(app: &TestApp) -> Value {
    let resp = app.get(&app.dpo_token, "/v1/audit/activity?days=14").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Two `data.read` entries of health-sys, 4 records each, dated `at`, appended to the stopped
/// hub's ledger as the writer would have.
async fn next_day_disclosures(location: &DatabaseLocation, at: i64) {
    let store = Store::open(location).await.unwrap();
    let (mut frontier, last_time) = gridhub::ledger::stored_head(&store).await.unwrap();
    assert!(at > last_time, "times never go back");
    let actor = Actor {
        client: Some("health-sys".to_owned()),
        department: Some("health".to_owned()),
        on_behalf_of: None,
        user: None,
    };
    let drafts: Vec<EntryDraft> = (0..2)
        .map(|i| {
            let records = (0..4)
                .map(|r| RecordRef::new(&format!("rec-{i}-{r}"), [("name".to_owned(), "masked")]))
                .collect();
            EntryDraft::new(
                actor.clone(),
                "data.read",
                Decision::Allow,
                uuid::Uuid::new_v4().to_string(),
            )
            .category("person")
            .purpose("elderly-care")
            .records(records)
        })
        .collect();
    let (rows, nodes, _) =
        gridhub::ledger::stored_form(&mut frontier, drafts.iter().map(|d| (d, at)));
    store.append_ledger(&rows, &nodes).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_review_anomalies_and_read_charts_in_a_browser() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110"]).await;
    app.create_department("housing", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let _health = app.register_client("health-sys", "health").await;
    let housing = app.register_client("housing-sys", "housing").await;
    for i in 0..3 {
        let body = person(
            WORKER_GRID,
            "测试",
            &id_number(&format!("33010219500101{i:03}")),
            &format!("1380000000{i}"),
        );
        let resp = app.post(&app.worker_token, "/v1/records", &body).await;
        assert_eq!(resp.status(), 201);
    }
    app.approved_grant(
        &civil,
        &grant_request(
            "civil-affairs",
            "elderly-care",
            json!({"name": "masked"}),
            &["330110.001"],
        ),
    )
    .await;
    // Two cases assigned to civil-affairs: one due within the hour (overdue once the clock has
    // moved a day), one in a week.
    for due_in in [3_600, 7 * 86_400] {
        let resp = app
            .post(
                &app.worker_token,
                "/v1/cases",
                &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "邻里纠纷"}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let case = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let resp = app
            .post(
                &app.admin_token,
                &format!("/v1/cases/{case}/assign"),
                &json!({"departments": ["civil-affairs"], "deadline": crate::grants::rfc3339(due_in)}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
    // Today: civil-affairs pulls three times; housing is denied five times (no grant).
    for _ in 0..3 {
        let resp = client_get(&app, &civil, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(resp.status(), 200);
    }
    for _ in 0..5 {
        let resp = client_get(&app, &housing, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(resp.status(), 403);
    }
    let denied = anomalies(&app).await;
    let anomaly = denied
        .iter()
        .find(|a| a["kind"] == "repeated_denials" && a["actor"]["client"] == "housing-sys")
        .unwrap_or_else(|| panic!("housing's denials are an anomaly: {denied:?}"));
    let id = anomaly["id"].as_str().unwrap().to_owned();
    assert_eq!(anomaly["review"]["state"], "open");
    assert_eq!(anomaly["count"], 5);

    // The API twins refuse what they must, and change nothing.
    let resolve = format!("/v1/audit/anomalies/{id}/resolve");
    let resp = app
        .post(&app.worker_token, &resolve, &json!({"note": "x"}))
        .await;
    assert_eq!(resp.status(), 403, "grid workers review nothing");
    let resp = app.post(&app.dpo_token, &resolve, &json!({})).await;
    assert_eq!(resp.status(), 422, "a resolve needs a note");
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "validation_failed"
    );
    let resp = app
        .post(
            &app.dpo_token,
            "/v1/audit/anomalies/999999-0123456789abcdef/resolve",
            &json!({"note": "x"}),
        )
        .await;
    assert_eq!(resp.status(), 404, "no such anomaly");

    // Tomorrow (written while the hub is stopped), health-sys received 2 × 4 records.
    let tomorrow = app.clock.now_ms() + DAY_MS;
    let location = DatabaseLocation::Sqlite(app.sqlite_path());
    let mut app = app
        .restart_after(|| {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(next_day_disclosures(&location, tomorrow))
            })
        })
        .await;
    app.advance_clock(std::time::Duration::from_millis(DAY_MS as u64))
        .await;
    assert_eq!(app.clock.now_ms(), tomorrow);

    // A grid worker: 403 pages. The DPO: a form without the CSRF token is refused.
    let mut worker = Browserless::new(&app);
    worker.login("worker", gridhub_tests::WORKER_PASSWORD).await;
    for path in ["/console/anomalies", "/console/charts"] {
        assert_eq!(worker.get(path).await.status(), 403, "worker on {path}");
    }
    let mut dpo = Browserless::new(&app);
    let resp = dpo.login("dpo", gridhub_tests::DPO_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let page = dpo.get("/console/anomalies").await;
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(page).await;
    let ack = format!("/console/anomalies/{id}/acknowledge");
    let resp = dpo.post(&ack, &[]).await;
    assert_eq!(resp.status(), 403, "no CSRF token");
    let resp = dpo.post(&ack, &[("csrf", "not-the-token")]).await;
    assert_eq!(resp.status(), 403, "a wrong CSRF token");
    assert!(!csrf.is_empty());
    let still: Vec<Value> = anomalies(&app).await;
    let still = still.iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(
        still["review"]["state"], "open",
        "the refused form changed nothing"
    );

    // The browser: both pages in both languages; acknowledge, resolve without and with a note.
    let note = "已与住房部门核实：系统配置错误，已修复";
    let steps = run_browser(
        &app,
        "oversight.mjs",
        &[("ANOMALY", id.clone()), ("NOTE", note.to_owned())],
    );
    assert_eq!(steps["resolve_without_note"][0]["status"], 422);
    assert_eq!(steps["resolve_without_note"][0]["state"], "acknowledged");

    // The review as the API tells it: resolved by the DPO, with the note; both steps in the
    // ledger, by the DPO.
    let dpo_id = app
        .state
        .store
        .user_by_username("dpo")
        .await
        .unwrap()
        .unwrap()
        .id;
    let all = anomalies(&app).await;
    let reviewed = all.iter().find(|a| a["id"] == id.as_str()).unwrap();
    let review = &reviewed["review"];
    assert_eq!(review["state"], "resolved", "{review}");
    let steps_done = review["steps"].as_array().unwrap();
    assert_eq!(steps_done.len(), 2, "{review}");
    assert_eq!(steps_done[0]["state"], "acknowledged");
    assert_eq!(steps_done[1]["state"], "resolved");
    assert_eq!(steps_done[1]["note"], note);
    for step in steps_done {
        assert_eq!(step["by"], format!("user:{dpo_id}"));
    }
    for (action, step) in [
        ("audit.anomaly_acknowledge", &steps_done[0]),
        ("audit.anomaly_resolve", &steps_done[1]),
    ] {
        let entries = entries_matching(&app, &format!("action={action}&decision=allow")).await;
        assert_eq!(entries.len(), 1, "{action}: {entries:?}");
        assert_eq!(entries[0]["index"], step["entry"], "{action}");
        let entry = &entries[0]["entry"];
        assert_eq!(entry["actor"]["user"], dpo_id.as_str());
        assert_eq!(entry["decision"], "allow");
        assert!(entry["reason"].as_str().unwrap().contains(&id), "{entry}");
    }
    let resp = app
        .post(&app.dpo_token, &resolve, &json!({"note": "again"}))
        .await;
    assert_eq!(resp.status(), 409, "resolved twice");
    let worker_refused = entries_matching(&app, "action=audit.anomaly_resolve&decision=deny").await;
    assert_eq!(
        worker_refused.len(),
        1,
        "the worker's attempt is in the ledger"
    );
    assert_ne!(worker_refused[0]["entry"]["actor"]["user"], dpo_id.as_str());
    let refused = entries_matching(&app, "action=console.csrf&decision=deny").await;
    assert_eq!(refused.len(), 2, "both refused forms are in the ledger");

    // The charts: the tables the browser read are the API's figures, and the known counts.
    let figures = activity(&app).await;
    let days: Vec<String> = serde_json::from_value(figures["days"].clone()).unwrap();
    assert_eq!(days.len(), 14);
    let today = cst_day(tomorrow);
    assert_eq!(days.last().unwrap(), &today);
    // What the ledger holds, through the audit search API (not the activity code).
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    for action in ["data.read", "data.lookup"] {
        for found in entries_matching(&app, &format!("action={action}&decision=allow")).await {
            let e = &found["entry"];
            let day = cst_day(parse_rfc3339(e["time"].as_str().unwrap()).unwrap());
            let dept = e["actor"]["department"].as_str().unwrap().to_owned();
            *expected.entry((dept, day)).or_default() += 1;
            *records
                .entry(format!("client:{}", e["actor"]["client"].as_str().unwrap()))
                .or_default() += e["records"].as_array().unwrap().len() as u64;
        }
    }
    let pulled_on = cst_day(parse_rfc3339(anomaly["first"].as_str().unwrap()).unwrap());
    assert_ne!(pulled_on, today, "two different days");
    assert_eq!(
        expected[&("civil-affairs".to_owned(), pulled_on.clone())],
        3
    );
    assert_eq!(expected[&("health".to_owned(), today.clone())], 2);
    assert_eq!(expected.len(), 2, "{expected:?}");
    assert_eq!(records["client:civil-sys"], 9);
    assert_eq!(records["client:health-sys"], 8);

    let mut api: BTreeMap<(String, String), u64> = BTreeMap::new();
    for d in figures["departments"].as_array().unwrap() {
        for (day, n) in days.iter().zip(d["disclosures"].as_array().unwrap()) {
            if n.as_u64().unwrap() > 0 {
                api.insert(
                    (d["department"].as_str().unwrap().to_owned(), day.clone()),
                    n.as_u64().unwrap(),
                );
            }
        }
    }
    assert_eq!(
        api, expected,
        "the API's disclosures per department per day"
    );
    let shown: BTreeMap<(String, String), u64> = steps["chart_disclosures"][0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["value"].as_u64().unwrap() > 0)
        .map(|c| {
            (
                (
                    c["department"].as_str().unwrap().to_owned(),
                    c["day"].as_str().unwrap().to_owned(),
                ),
                c["value"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, expected, "the chart's table");
    let bars: u64 = steps["chart_disclosures"][0]["bars"].as_u64().unwrap();
    assert_eq!(
        bars,
        expected.values().sum::<u64>(),
        "the SVG's bars add up"
    );

    let consumers: BTreeMap<String, u64> = figures["top_consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["actor"].as_str().unwrap().to_owned(),
                c["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(consumers, records, "top consumers by records");
    let shown: BTreeMap<String, u64> = steps["chart_consumers"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, records, "the consumers' table");

    // Denials per day: the API's figures are the ledger's deny entries of each day, and the
    // browser showed them (no denial was written between the two reads: the browser's steps
    // write none, and the Rust side's refusals came before it).
    let denials: Vec<u64> = serde_json::from_value(figures["denials"].clone()).unwrap();
    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    for found in entries_matching(&app, "decision=deny").await {
        let e = &found["entry"];
        let day = cst_day(parse_rfc3339(e["time"].as_str().unwrap()).unwrap());
        *per_day.entry(day).or_default() += 1;
    }
    for (day, n) in days.iter().zip(&denials) {
        assert_eq!(
            per_day.get(day).copied().unwrap_or(0),
            *n,
            "denials on {day}"
        );
    }
    assert!(denials.iter().sum::<u64>() >= 5, "housing's five at least");
    let shown: Vec<u64> =
        serde_json::from_value(steps["chart_denials"][0]["values"].clone()).unwrap();
    assert_eq!(shown, denials, "the denials' table");
    let cases = json!([{"department": "civil-affairs", "open": 2, "overdue": 1}]);
    assert_eq!(figures["cases"], cases, "open and overdue cases now");
    assert_eq!(steps["chart_cases"][0]["rows"], cases, "the cases' table");

    // Screenshots of both pages in both languages.
    let screens =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screens");
    for shot in [
        "anomalies.zh.png",
        "anomalies.en.png",
        "charts.zh.png",
        "charts.en.png",
        "anomaly-resolved.zh.png",
    ] {
        assert!(screens.join(shot).exists(), "{shot}");
    }
    drop(app.stop().await);
}

/// The API twins on both backends: an anomaly's review goes open → acknowledged → resolved and
/// no further (409), an unknown id is 404, a resolve without a note 422; the activity figures
/// count today's disclosures and denials and the open and overdue cases.
async fn reviews_and_activity_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("housing", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let housing = app.register_client("housing-sys", "housing").await;
    let body = person(
        WORKER_GRID,
        "测试",
        &id_number("33010219500101001"),
        "13800000001",
    );
    assert_eq!(
        app.post(&app.worker_token, "/v1/records", &body)
            .await
            .status(),
        201
    );
    app.approved_grant(
        &civil,
        &grant_request(
            "civil-affairs",
            "elderly-care",
            json!({"name": "masked"}),
            &["330110.001"],
        ),
    )
    .await;
    for _ in 0..2 {
        let resp = client_get(&app, &civil, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(resp.status(), 200);
    }
    for _ in 0..5 {
        let resp = client_get(&app, &housing, "/v1/data/person?purpose=elderly-care").await;
        assert_eq!(resp.status(), 403);
    }
    let all = anomalies(&app).await;
    let id = all
        .iter()
        .find(|a| a["kind"] == "repeated_denials")
        .unwrap_or_else(|| panic!("{all:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |step: &str, body: Value| {
        let path = format!("/v1/audit/anomalies/{id}/{step}");
        let app = &app;
        async move { app.post(&app.dpo_token, &path, &body).await }
    };
    let resp = post("acknowledge", json!({})).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["review"]["state"], "acknowledged");
    assert_eq!(post("acknowledge", json!({})).await.status(), 409);
    assert_eq!(post("resolve", json!({"note": "  "})).await.status(), 422);
    let resp = post("resolve", json!({"note": "checked"})).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["review"]["state"], "resolved");
    assert_eq!(answer["review"]["steps"][1]["note"], "checked");
    assert_eq!(
        post("resolve", json!({"note": "again"})).await.status(),
        409
    );
    let unknown = app
        .post(
            &app.dpo_token,
            "/v1/audit/anomalies/0-0123456789abcdef/acknowledge",
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let listed = anomalies(&app).await;
    let listed = listed.iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(
        listed["review"], answer["review"],
        "the list shows the review"
    );

    let figures = activity(&app).await;
    let today = cst_day(app.clock.now_ms());
    assert_eq!(figures["days"][13], today.as_str());
    let civil_days = figures["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["department"] == "civil-affairs")
        .unwrap();
    let pulled: u64 = civil_days["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(pulled, 2);
    let denials: u64 = figures["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(denials >= 5, "{figures}");
    assert_eq!(figures["top_consumers"][0]["actor"], "client:civil-sys");
    assert_eq!(figures["top_consumers"][0]["records"], 2);
    assert_eq!(figures["cases"], json!([]));
    let resp = app.get(&app.worker_token, "/v1/audit/activity").await;
    assert_eq!(resp.status(), 403);
    let resp = app.get(&app.dpo_token, "/v1/audit/activity?days=0").await;
    assert_eq!(resp.status(), 422);
}

on_both_backends!(reviews_and_activity_through_the_api);
