//! Authority follows responsibility, seen through `POST /v1/decisions/explain`: no grant → no
//! data; jurisdiction, scope and row filters bound the records; two grants → the more
//! revealing level per field; revocation is live; a case-bound grant reaches a case's records
//! only while the case is open and assigned to the department — reassign or close it and the
//! access ends on the next request. Also: a change made behind the hub's back (another replica)
//! is picked up through the decision version.

use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, OTHER_GRID, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person,
    spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{approved_grant, client_post, entries_of, grant_request};

async fn record(app: &TestApp, grid: &str, name: &str, tags: &[&str], seq: u32) -> String {
    let mut body = person(
        grid,
        name,
        &id_number(&format!("33010219500101{seq:03}")),
        &format!("1381234{seq:04}"),
    );
    body["fields"]["tags"] = json!(tags);
    let token = if grid == WORKER_GRID {
        &app.worker_token
    } else {
        &app.admin_token
    };
    let resp = app.post(token, "/v1/records", &body).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn explain(app: &TestApp, client: &DeptClient, body: Value) -> Value {
    let resp = client_post(app, client, "/v1/decisions/explain", &body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

/// The disclosure of every disclosed field, as `name=level`, sorted.
fn disclosed(plan: &Value) -> Vec<String> {
    plan["fields"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, f)| f["disclosure"].as_str().map(|d| format!("{name}={d}")))
        .collect()
}

fn unreached(plan: &Value) -> Vec<&str> {
    plan["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["unreached"].as_str())
        .collect()
}

async fn access_follows_grants_scope_filters_and_revocation(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let alone = record(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
    let disabled = record(&app, WORKER_GRID, "李四", &["disabled"], 2).await;
    let elsewhere = record(&app, OTHER_GRID, "王五", &["elderly_alone"], 3).await;
    let ask =
        |record: &str| json!({"category": "person", "purpose": "elderly-care", "record": record});

    // No grant: nothing, with the reason.
    let plan = explain(&app, &civil, ask(&alone)).await;
    assert_eq!(
        (plan["allowed"].as_bool(), plan["reason"].as_str()),
        (Some(false), Some("no_grant"))
    );
    assert_eq!(plan["fields"]["name"]["withheld"], "no_grant");

    let mut a = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear", "phone": "masked"}),
        &["330110.001"],
    );
    a["row_filter"] = json!("tags has \"elderly_alone\" and residence == \"registered\"");
    let a = approved_grant(&app, &civil, &a).await;
    let plan = explain(&app, &civil, ask(&alone)).await;
    assert_eq!(plan["allowed"], true);
    assert_eq!(disclosed(&plan), ["name=clear", "phone=masked"]);
    assert_eq!(plan["fields"]["name"]["grant"], a.as_str());
    assert_eq!(plan["fields"]["id_number"]["withheld"], "not_granted");
    assert_eq!(plan["fields"]["worker_notes"]["withheld"], "never_shared");
    // The row filter excludes; the scope (inside the jurisdiction) excludes.
    let plan = explain(&app, &civil, ask(&disabled)).await;
    assert_eq!(
        (plan["allowed"].as_bool(), unreached(&plan)),
        (Some(false), vec!["row_filter"])
    );
    let plan = explain(&app, &civil, ask(&elsewhere)).await;
    assert_eq!(
        (plan["allowed"].as_bool(), unreached(&plan)),
        (Some(false), vec!["out_of_scope"])
    );
    // Another purpose: no grant.
    let other = json!({"category": "person", "purpose": "epidemic-prevention", "record": alone});
    assert_eq!(explain(&app, &civil, other).await["reason"], "no_grant");

    // A second grant: each field at the more revealing level of the two.
    let b = approved_grant(
        &app,
        &civil,
        &grant_request(
            "civil-affairs",
            "elderly-care",
            json!({"name": "masked", "phone": "clear", "birth_date": "generalized"}),
            &["330110.001"],
        ),
    )
    .await;
    let plan = explain(&app, &civil, ask(&alone)).await;
    assert_eq!(
        disclosed(&plan),
        ["birth_date=generalized", "name=clear", "phone=clear"]
    );
    assert_eq!(plan["fields"]["phone"]["grant"], b.as_str());
    assert_eq!(plan["fields"]["name"]["grant"], a.as_str());
    // Without a record: the most any record could get.
    let ceiling = explain(
        &app,
        &civil,
        json!({"category": "person", "purpose": "elderly-care"}),
    )
    .await;
    assert_eq!(
        disclosed(&ceiling),
        ["birth_date=generalized", "name=clear", "phone=clear"]
    );

    // Revoked: effective on the very next request.
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{b}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        disclosed(&explain(&app, &civil, ask(&alone)).await),
        ["name=clear", "phone=masked"]
    );

    // A change another replica made (straight into the database, with the version bump every
    // writer makes): this hub notices on its next decision. Here grant A's window ends.
    app.raw_execute(format!(
        "UPDATE grants SET valid_until = valid_from + 1 WHERE id = '{a}'"
    ))
    .await;
    app.raw_execute("UPDATE decision_state SET version = version + 1 WHERE id = 1".to_owned())
        .await;
    assert_eq!(
        explain(&app, &civil, ask(&alone)).await["reason"],
        "no_grant"
    );

    // A DPO may explain any department's access; a department only its own.
    let resp = app
        .post(&app.dpo_token, "/v1/decisions/explain", &json!({"category": "person", "purpose": "elderly-care", "department": "civil-affairs"}))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = client_post(
        &app,
        &civil,
        "/v1/decisions/explain",
        &json!({"category": "person", "purpose": "elderly-care", "department": "health"}),
    )
    .await;
    assert_eq!(error_code(resp).await.0, 403);
    // Every explanation is audited, with the plan of the record it was asked about.
    let explained = entries_of(&app, "decision.explain").await;
    assert!(explained.len() >= 8);
    assert!(
        explained
            .iter()
            .any(|e| e["records"][0]["id"] == alone.as_str()
                && e["records"][0]["fields"]["name"] == "clear")
    );
    app.stop().await;
}

async fn case_bound_access_follows_the_assignment(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("public-security", &["330110"]).await;
    app.create_department("health", &["330110.002"]).await;
    let police = app.register_client("police-sys", "public-security").await;
    let health = app.register_client("health-sys", "health").await;
    let suspect = record(&app, WORKER_GRID, "赵六", &[], 1).await;
    let bystander = record(&app, WORKER_GRID, "钱七", &[], 2).await;
    let case_bound = |grantee: &str| {
        let mut g = grant_request(
            grantee,
            "case-investigation",
            json!({"name": "clear", "id_number": "clear"}),
            &["330110.001"],
        );
        g["case_bound"] = json!(true);
        g["legal_basis"] = json!("Criminal Procedure Law art. 54");
        g
    };
    approved_grant(&app, &police, &case_bound("public-security")).await;
    // Case-bound grants may reach beyond the jurisdiction: health's is 330110.002.
    approved_grant(&app, &health, &case_bound("health")).await;
    let ask = |record: &str, case: Option<&str>| json!({"category": "person", "purpose": "case-investigation", "record": record, "case": case});

    // Before any case: denied, a case is required.
    let plan = explain(&app, &police, ask(&suspect, None)).await;
    assert_eq!(
        (plan["allowed"].as_bool(), unreached(&plan)),
        (Some(false), vec!["case_required"])
    );

    let resp = app
        .post(&app.worker_token, "/v1/cases", &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "赵六与邻居发生纠纷", "subjects": [suspect]}))
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Reported, not assigned: still denied.
    let plan = explain(&app, &police, ask(&suspect, Some(&case))).await;
    assert_eq!(unreached(&plan), ["case_not_assigned"]);

    let assign = |departments: Vec<&str>| json!({"departments": departments, "deadline": crate::grants::rfc3339(7 * 86_400)});
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/assign"),
            &assign(vec!["public-security"]),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "assigned");
    // Assigned: the linked record only.
    let plan = explain(&app, &police, ask(&suspect, Some(&case))).await;
    assert_eq!(disclosed(&plan), ["id_number=clear", "name=clear"]);
    let plan = explain(&app, &police, ask(&bystander, Some(&case))).await;
    assert_eq!(unreached(&plan), ["not_linked_to_case"]);
    // The assignee reads the case (texts decrypted for it); others may not.
    let resp = crate::grants::client_get(&app, &police, &format!("/v1/cases/{case}")).await;
    assert_eq!(resp.status(), 200);
    let shown: Value = resp.json().await.unwrap();
    assert_eq!(shown["texts"][0]["text"], "赵六与邻居发生纠纷");
    assert_eq!(
        crate::grants::client_get(&app, &health, &format!("/v1/cases/{case}"))
            .await
            .status(),
        403
    );

    // Reassigned to health: police loses access on its next request, health gains it.
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/assign"),
            &assign(vec!["health"]),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        unreached(&explain(&app, &police, ask(&suspect, Some(&case))).await),
        ["case_not_assigned"]
    );
    assert_eq!(
        disclosed(&explain(&app, &health, ask(&suspect, Some(&case))).await),
        ["id_number=clear", "name=clear"]
    );
    // Only a current assignee replies.
    let (status, _, _) = error_code(
        client_post(
            &app,
            &police,
            &format!("/v1/cases/{case}/reply"),
            &json!({"note": "已移交"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/cases/{case}/reply"),
        &json!({"note": "已上门核查"}),
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "replied");
    let (status, _, _) = error_code(
        client_post(
            &app,
            &health,
            &format!("/v1/cases/{case}/reply"),
            &json!({"note": "again"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);

    // Closed: the responsibility ends.
    let p = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/close"),
            &json!({"resolution": "调解成功", "satisfaction": 9}),
        )
        .await;
    assert_eq!(error_code(p).await.0, 422);
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/cases/{case}/close"),
            &json!({"resolution": "调解成功", "satisfaction": 5}),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "closed");
    assert_eq!(
        unreached(&explain(&app, &health, ask(&suspect, Some(&case))).await),
        ["case_closed"]
    );
    let (status, _, _) = error_code(
        app.post(
            &app.admin_token,
            &format!("/v1/cases/{case}/assign"),
            &assign(vec!["health"]),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);

    // The history is kept, texts sealed at rest and opened for the DPO.
    let shown: Value = app
        .get(&app.dpo_token, &format!("/v1/cases/{case}"))
        .await
        .json()
        .await
        .unwrap();
    let steps: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["report", "assign", "assign", "reply", "close"]);
    let rounds: Vec<(i64, &str, bool)> = shown["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["round"].as_i64().unwrap(),
                a["department"].as_str().unwrap(),
                a["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rounds, [(1, "public-security", false), (2, "health", true)]);
    assert_eq!(
        (shown["status"].as_str(), shown["satisfaction"].as_i64()),
        (Some("closed"), Some(5))
    );
    let texts: Vec<&str> = shown["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"调解成功") && texts.contains(&"已上门核查"),
        "{texts:?}"
    );
    let sealed = app
        .raw_bytes("SELECT sealed FROM case_texts".to_owned())
        .await;
    assert_eq!(sealed.len(), 3);
    for bytes in sealed {
        assert!(!String::from_utf8_lossy(&bytes).contains("调解"));
    }
    // Assignments are audited.
    assert_eq!(entries_of(&app, "case.assign").await.len(), 2);
    assert_eq!(entries_of(&app, "case.close").await.len(), 1);
    app.stop().await;
}

on_both_backends!(
    access_follows_grants_scope_filters_and_revocation,
    case_bound_access_follows_the_assignment
);
