//! Ledger and keys, the grant watchlist and who can see one record, in a real browser
//! (issue 20; `tests/console/ledger.mjs`). The hub is set up through the API; the browser uses
//! every page in both languages; this side checks that what the browser showed is what the API
//! says and what was written: the checkpoint the API signed, a verification that counts every
//! entry (and, after one stored entry is altered behind the hub's back, names that entry, as
//! the API does), the data keys per KEK version (one per record written), the watchlist's three
//! lists before and after the clock moves 31 days, and the departments that could see one
//! record (by the decision index). A grid worker gets 403 pages and 403 answers.

use std::collections::BTreeSet;

use base64::Engine;

use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{Backend, TestApp, WORKER_GRID, id_number, person, spawn_app};
use serde_json::{Value, json};

use crate::console::run_browser;
use crate::grants::{client_get, client_post, entries_of, grant_request, rfc3339};

/// A person grant as `grant_request` makes it, valid for `days` from now.
fn grant(grantee: &str, purpose: &str, fields: Value, scope: &[&str], days: i64) -> Value {
    let mut g = grant_request(grantee, purpose, fields, scope);
    g["valid_until"] = json!(rfc3339(days * 86_400));
    g
}

async fn pull(app: &TestApp, client: &DeptClient, purpose: &str) {
    let resp = client_get(app, client, &format!("/v1/data/person?purpose={purpose}")).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    assert!(!body["records"].as_array().unwrap().is_empty(), "{body}");
}

/// The size line of the API's signed checkpoint.
async fn api_checkpoint_size(app: &TestApp) -> u64 {
    let note = app
        .client
        .get(app.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// Verify the whole ledger through `POST /v1/audit/verify`, `chunk` entries at a time; the last
/// answer.
async fn api_verify(app: &TestApp, token: &str, chunk: u64) -> Value {
    let mut from = 0;
    loop {
        let resp = app
            .post(
                token,
                "/v1/audit/verify",
                &json!({"from": from, "to": from + chunk}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let answer: Value = resp.json().await.unwrap();
        if answer["done"] == true {
            return answer;
        }
        from = answer["to"].as_u64().unwrap();
    }
}

fn grants_in(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant"].as_str().or(g["id"].as_str()).unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_ledger_keys_watchlist_and_record_visibility() {
    let mut app = spawn_app(Backend::Sqlite).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110.002"]).await;
    app.create_department("public-security", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let health = app.register_client("health-sys", "health").await;
    let police = app.register_client("police-sys", "public-security").await;
    let mut records = Vec::new();
    for (i, name) in ["甲", "乙", "丙"].iter().enumerate() {
        let body = person(
            WORKER_GRID,
            &format!("测试{name}"),
            &id_number(&format!("33010219600101{i:03}")),
            &format!("1390000000{i}"),
        );
        let resp = app.post(&app.worker_token, "/v1/records", &body).await;
        assert_eq!(resp.status(), 201);
        records.push(
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let scope = &["330110.001"];
    // Ends in 10 days (watchlist: expiring), used today.
    let soon = app
        .approved_grant(
            &civil,
            &grant(
                "civil-affairs",
                "elderly-care",
                json!({"name": "clear"}),
                scope,
                10,
            ),
        )
        .await;
    // Ends in 20 days: not expiring soon.
    let later = app
        .approved_grant(
            &civil,
            &grant(
                "civil-affairs",
                "rental-registration",
                json!({"phone": "masked"}),
                scope,
                20,
            ),
        )
        .await;
    // Ends in 60 days, used today: unused only once the clock has moved 31 days.
    let long = app
        .approved_grant(
            &civil,
            &grant(
                "civil-affairs",
                "population-registration",
                json!({"gender": "clear", "birth_date": "generalized"}),
                scope,
                60,
            ),
        )
        .await;
    // Health's grant covers another district: it cannot see the records of WORKER_GRID.
    let elsewhere = app
        .approved_grant(
            &health,
            &grant(
                "health",
                "epidemic-prevention",
                json!({"name": "masked"}),
                &["330110.002"],
                60,
            ),
        )
        .await;
    // Case-bound: its only case gets closed.
    let mut bound = grant(
        "public-security",
        "case-investigation",
        json!({"name": "clear", "id_number": "clear"}),
        scope,
        60,
    );
    bound["case_bound"] = json!(true);
    bound["legal_basis"] = json!("Criminal Procedure Law art. 54");
    let case_bound = app.approved_grant(&police, &bound).await;
    for purpose in ["elderly-care", "population-registration"] {
        pull(&app, &civil, purpose).await;
    }
    let resp = app
        .post(&app.worker_token, "/v1/cases", &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "邻里纠纷", "subjects": [records[1]]}))
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/assign"),
            &json!({"departments": ["public-security"], "deadline": rfc3339(7 * 86_400)}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // While the case is open, the police see the linked record through it (API).
    let reach: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/records/{}/visibility", records[1]),
        )
        .await
        .json()
        .await
        .unwrap();
    let through_case: Vec<&Value> = reach["departments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["department"] == "public-security")
        .collect();
    assert_eq!(through_case.len(), 1, "{reach}");
    assert_eq!(through_case[0]["case"], case.as_str());
    assert_eq!(through_case[0]["grants"][0]["id"], case_bound.as_str());
    assert_eq!(through_case[0]["grants"][0]["case_bound"], true);
    let resp = client_post(
        &app,
        &police,
        &format!("/v1/cases/{case}/reply"),
        &json!({"note": "已处理"}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/close"),
            &json!({"resolution": "调解成功", "satisfaction": 5}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    // A grid worker reads none of it through the API either.
    for (path, body) in [
        ("/v1/audit/status", None),
        ("/v1/admin/keys", None),
        ("/v1/grants/watchlist", None),
        ("/v1/audit/verify", Some(json!({"from": 0, "to": 10}))),
    ] {
        let resp = match body {
            None => app.get(&app.worker_token, path).await,
            Some(body) => app.post(&app.worker_token, path, &body).await,
        };
        assert_eq!(resp.status(), 403, "worker on {path}");
    }
    let resp = app
        .get(
            &app.worker_token,
            &format!("/v1/records/{}/visibility", records[0]),
        )
        .await;
    assert_eq!(resp.status(), 403);

    let signed = api_checkpoint_size(&app).await;
    let status: Value = app
        .get(&app.dpo_token, "/v1/audit/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["checkpoint"]["size"], signed);
    let keys: Value = app
        .get(&app.dpo_token, "/v1/admin/keys")
        .await
        .json()
        .await
        .unwrap();
    let watch: Value = app
        .get(&app.dpo_token, "/v1/grants/watchlist")
        .await
        .json()
        .await
        .unwrap();
    let api_reach: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/records/{}/visibility", records[0]),
        )
        .await
        .json()
        .await
        .unwrap();

    let chunk = 16u64;
    let steps = run_browser(
        &app,
        "ledger.mjs",
        &[
            ("PHASE", "intact".to_owned()),
            ("RECORD", records[0].clone()),
            ("CHUNK", chunk.to_string()),
        ],
    );

    // The ledger page shows the checkpoint the API signed.
    let verified: Vec<Value> = entries_of(&app, "audit.verify")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "allow")
        .collect();
    assert_eq!(verified.len(), 2, "one verification per language");
    for (shown, entry) in steps["ledger"].iter().zip(&verified) {
        // The checkpoint the API signed, or a later one the hub's checkpointer signed since
        // (every 10 s when the log grew): a stored signed checkpoint, with its root.
        let size = shown["checkpoint"]["size"].as_u64().unwrap();
        assert!(size >= signed, "{shown}");
        if size == signed {
            assert_eq!(shown["checkpoint"]["root"], status["checkpoint"]["root"]);
        }
        let stored = app
            .raw_bytes(format!(
                "SELECT root FROM ledger_checkpoints WHERE size = {size}"
            ))
            .await;
        assert_eq!(
            shown["checkpoint"]["root"].as_str().unwrap(),
            base64::engine::general_purpose::STANDARD.encode(&stored[0]),
            "the page shows a signed checkpoint as stored"
        );
        // Every entry was checked: the count is the ledger's size when the last range ran,
        // which is where the entry recording the verification landed.
        assert_eq!(shown["verify"]["checked"], entry["index"], "{shown}");
        assert!(shown["verify"]["checked"].as_u64().unwrap() > signed);
        assert!(shown["verify"]["ranges"].as_u64().unwrap() >= signed / chunk);
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .starts_with("ledger verified"),
            "{entry}"
        );
        assert_eq!(entry["decision"], "allow");
        // Key versions: what the API counts, one data key per record written.
        assert_eq!(
            shown["keys"].as_array().unwrap().len(),
            keys["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["versions"].as_array().unwrap().len())
                .sum::<usize>()
        );
        let person_keys: Vec<&Value> = shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["category"] == "person")
            .collect();
        assert_eq!(person_keys.len(), 1);
        assert_eq!(person_keys[0]["current"], true);
        assert_eq!(person_keys[0]["deks"], records.len());
        let cases_keys: Vec<&Value> = shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["category"] == "case-texts")
            .collect();
        assert_eq!(
            cases_keys
                .iter()
                .map(|k| k["deks"].as_i64().unwrap())
                .sum::<i64>(),
            1,
            "one case"
        );
    }
    let api_person = keys["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "person")
        .unwrap();
    assert_eq!(api_person["versions"][0]["deks"], records.len());
    assert_eq!(api_person["versions"][0]["current"], true);

    // The watchlist: what the API lists, and the right grants under each heading.
    for shown in &steps["watchlist"] {
        let lists = &shown["lists"];
        for key in ["expiring", "cases_closed", "unused"] {
            assert_eq!(
                grants_in(&lists[key]),
                grants_in(&watch[key]),
                "{key}: {shown}"
            );
        }
        let expiring = grants_in(&lists["expiring"]);
        assert!(expiring.contains(&soon), "{shown}");
        assert!(
            !expiring.contains(&later) && !expiring.contains(&long),
            "{shown}"
        );
        let days_left = lists["expiring"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["grant"] == soon.as_str())
            .unwrap()["days_left"]
            .as_i64()
            .unwrap();
        assert!((9..=10).contains(&days_left), "{days_left}");
        assert_eq!(
            grants_in(&lists["cases_closed"]),
            BTreeSet::from([case_bound.clone()])
        );
        assert!(
            grants_in(&lists["unused"]).is_empty(),
            "nothing is 30 days idle yet: {shown}"
        );
    }

    // Who can see records[0]: civil affairs through its three grants (the decision index's own
    // answer, as the API gives it); health, whose grant covers another district, does not; the
    // police grant is case-bound and the record is in no case.
    for shown in &steps["record_visibility"] {
        let rows = shown["rows"].as_array().unwrap();
        let departments: BTreeSet<&str> = rows
            .iter()
            .map(|r| r["department"].as_str().unwrap())
            .collect();
        assert_eq!(departments, BTreeSet::from(["civil-affairs"]), "{shown}");
        let mut levels: Vec<(String, String, String, String)> = rows
            .iter()
            .flat_map(|r| {
                r["fields"].as_array().unwrap().iter().map(move |f| {
                    let s = |v: &Value| v.as_str().unwrap().to_owned();
                    (
                        s(&r["purpose"]),
                        s(&f["field"]),
                        s(&f["level"]),
                        s(&f["grant"]),
                    )
                })
            })
            .collect();
        levels.sort();
        let mut expected = vec![
            (
                "elderly-care".to_owned(),
                "name".to_owned(),
                "clear".to_owned(),
                soon.clone(),
            ),
            (
                "rental-registration".to_owned(),
                "phone".to_owned(),
                "masked".to_owned(),
                later.clone(),
            ),
            (
                "population-registration".to_owned(),
                "gender".to_owned(),
                "clear".to_owned(),
                long.clone(),
            ),
            (
                "population-registration".to_owned(),
                "birth_date".to_owned(),
                "generalized".to_owned(),
                long.clone(),
            ),
        ];
        expected.sort();
        assert_eq!(levels, expected);
        let api_rows = api_reach["departments"].as_array().unwrap();
        assert_eq!(api_rows.len(), rows.len(), "{api_reach}");
        assert!(
            !api_reach.to_string().contains(&elsewhere),
            "health's grant does not reach it"
        );
    }
    let looked_up = entries_of(&app, "decision.visibility").await;
    assert!(
        looked_up
            .iter()
            .any(|e| e["records"][0]["id"] == records[0].as_str())
    );
    // The worker's attempts are in the ledger.
    for action in ["audit.status", "grant.watchlist", "decision.visibility"] {
        assert!(
            entries_of(&app, action)
                .await
                .iter()
                .any(|e| e["decision"] == "deny" && e["actor"]["user"].is_string()),
            "no refusal `{action}`"
        );
    }

    // One stored entry altered behind the hub's back, and 31 days later.
    let bad = signed / 2;
    app.raw_execute(format!(
        "UPDATE ledger_entries SET canonical = replace(canonical, '\"request_id\":\"', '\"request_id\":\"x') WHERE idx = {bad}"
    ))
    .await;
    app.advance_clock(std::time::Duration::from_secs(31 * 86_400))
        .await;
    let steps = run_browser(
        &app,
        "ledger.mjs",
        &[
            ("PHASE", "tampered".to_owned()),
            ("RECORD", records[0].clone()),
            ("CHUNK", chunk.to_string()),
        ],
    );
    let tampered = &steps["tampered"][0];
    assert_eq!(
        tampered["verify"]["bad_index"],
        bad.to_string(),
        "{tampered}"
    );
    // Signed a few seconds (of real time) after the clock's start, read 31 days later.
    assert!(tampered["checkpoint"]["age_minutes"].as_i64().unwrap() >= 31 * 24 * 60 - 10);
    let api = api_verify(&app, &app.dpo_token, 1000).await;
    assert_eq!(api["ok"], false);
    assert_eq!(api["failure"]["index"], bad, "{api}");
    let failed = entries_of(&app, "audit.verify").await;
    assert!(
        failed.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("entry {bad}"))),
        "the failed verification is in the ledger"
    );

    // Used today, idle now: the 60-day grant is listed as unused (the others have ended).
    let later_lists = &steps["watchlist_later"][0]["lists"];
    let unused = grants_in(&later_lists["unused"]);
    assert!(unused.contains(&long), "{later_lists}");
    assert!(
        !unused.contains(&soon) && !unused.contains(&later),
        "ended grants are not listed"
    );
    let row = later_lists["unused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grant"] == long.as_str())
        .unwrap();
    assert!(row["idle_days"].as_i64().unwrap() >= 31, "{row}");
    let api_watch: Value = app
        .get(&app.dpo_token, "/v1/grants/watchlist")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grants_in(&api_watch["unused"]), unused);
    let last_used = api_watch["unused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == long.as_str())
        .unwrap()["last_used"]
        .clone();
    assert!(last_used.is_string(), "it was used once: {last_used}");

    for page in [
        "ledger",
        "ledger-verified",
        "watchlist",
        "visibility-record",
    ] {
        for lang in ["zh", "en"] {
            let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../target/console-screens/{page}.{lang}.png"));
            assert!(shot.exists(), "{}", shot.display());
        }
    }
    drop(app.stop().await);
}

/// The API twins on both backends: a verification in odd-sized ranges passes and counts every
/// entry, the keys count one DEK per record, the watchlist and a record's visibility follow
/// the grants and the case, and bad ranges are refused with the stable codes.
async fn api_twins_on_both_backends(backend: Backend) {
    let app = gridhub_tests::spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("public-security", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let police = app.register_client("police-sys", "public-security").await;
    let mut records = Vec::new();
    for i in 0..2 {
        let body = person(
            WORKER_GRID,
            "测试",
            &id_number(&format!("33010219700101{i:03}")),
            "13900000009",
        );
        let resp = app.post(&app.worker_token, "/v1/records", &body).await;
        assert_eq!(resp.status(), 201);
        records.push(
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut quota = grant(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
        5,
    );
    quota["daily_quota"] = json!(100);
    let soon = app.approved_grant(&civil, &quota).await;
    pull(&app, &civil, "elderly-care").await;
    let mut bound = grant(
        "public-security",
        "case-investigation",
        json!({"name": "masked"}),
        &["330110.001"],
        60,
    );
    bound["case_bound"] = json!(true);
    bound["legal_basis"] = json!("Criminal Procedure Law art. 54");
    let case_bound = app.approved_grant(&police, &bound).await;
    let resp = app
        .post(&app.worker_token, "/v1/cases", &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "纠纷", "subjects": [records[0]]}))
        .await;
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/assign"),
            &json!({"departments": ["public-security"], "deadline": rfc3339(7 * 86_400)}),
        )
        .await;
    assert_eq!(resp.status(), 200);

    let reach: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/records/{}/visibility", records[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    // A department may explain its own access, not learn who else sees a record.
    let refused = client_get(
        &app,
        &civil,
        &format!("/v1/records/{}/visibility", records[0]),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let mut seen: Vec<(String, Value)> = reach["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["department"].as_str().unwrap().to_owned(),
                d["case"].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("civil-affairs".to_owned(), Value::Null),
            ("public-security".to_owned(), json!(case))
        ],
        "{reach}"
    );
    let watch: Value = app
        .get(&app.dpo_token, "/v1/grants/watchlist")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        grants_in(&watch["expiring"]),
        BTreeSet::from([soon.clone()])
    );
    assert!(
        grants_in(&watch["cases_closed"]).is_empty(),
        "the case is open: {watch}"
    );
    let resp = client_post(
        &app,
        &police,
        &format!("/v1/cases/{case}/reply"),
        &json!({"note": "已处理"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/close"),
            &json!({"resolution": "已结", "satisfaction": 4}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let watch: Value = app
        .get(&app.dpo_token, "/v1/grants/watchlist")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        grants_in(&watch["cases_closed"]),
        BTreeSet::from([case_bound.clone()])
    );

    let keys: Value = app
        .get(&app.admin_token, "/v1/admin/keys")
        .await
        .json()
        .await
        .unwrap();
    let person_keys = keys["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "person")
        .unwrap();
    assert_eq!(person_keys["versions"][0]["deks"], 2, "{keys}");

    let size = app
        .get(&app.dpo_token, "/v1/audit/status")
        .await
        .json::<Value>()
        .await
        .unwrap()["size"]
        .as_u64()
        .unwrap();
    let answer = api_verify(&app, &app.dpo_token, 7).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["to"].as_u64().unwrap() >= size, "{answer}");
    for (body, status, code) in [
        (json!({"from": 5, "to": 4}), 422, "validation_failed"),
        (
            json!({"from": 0, "to": 2_000_000}),
            422,
            "validation_failed",
        ),
        (
            json!({"from": size + 1000, "to": size + 1001}),
            400,
            "bad_request",
        ),
    ] {
        let (got, got_code, _) =
            gridhub_tests::error_code(app.post(&app.dpo_token, "/v1/audit/verify", &body).await)
                .await;
        assert_eq!((got, got_code.as_str()), (status, code), "{body}");
    }
    drop(app.stop().await);
}

gridhub_tests::on_both_backends!(api_twins_on_both_backends);
