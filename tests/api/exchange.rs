//! The two-way exchange (issue 19): a department publishes a category and writes its records;
//! a grant on it needs both a DPO's approval and the owner's consent, in either order; the
//! owner declines with a reason; the owner reads its slice of the ledger; a grant to the grid
//! centre returns a department's data to the grids it covers and no others.

use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, OTHER_GRID, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{client_get, client_post, grant_request};

/// Health's home-care register: an indexed identity number, an indexed care level, a note.
pub fn home_care(owner: &str) -> Value {
    json!({
        "category": "home_care",
        "owner": owner,
        "description": "Home-care status of residents, kept by health",
        "fields": [
            {"name": "id_number", "type": "id_number", "sensitivity": "sensitive",
             "share": "conditional", "encrypted": true, "indexed": true, "required": true,
             "mask": {"type": "keep_ends", "first": 6, "last": 4},
             "description": "Resident identity number"},
            {"name": "care_level", "type": "enum", "values": ["none", "light", "full"],
             "sensitivity": "sensitive", "share": "conditional", "encrypted": true,
             "indexed": true, "description": "Care the resident receives at home"},
            {"name": "nurse_notes", "type": "text", "max_chars": 200, "sensitivity": "sensitive",
             "share": "none", "encrypted": true, "indexed": false,
             "description": "The nurse's notes, never shared"}
        ]
    })
}

pub fn care_record(grid: &str, serial: u32, level: &str) -> Value {
    json!({
        "category": "home_care",
        "grid": grid,
        "purpose": "elderly-care",
        "fields": {
            "id_number": id_number(&format!("33010219500101{serial:03}")),
            "care_level": level,
            "nurse_notes": "visits on Tuesdays",
        }
    })
}

/// Publish `home_care` owned by `owner` (admin), asserting it was created.
pub async fn publish_home_care(app: &TestApp, owner: &str) {
    let resp = app
        .put_json(&app.admin_token, "/v1/catalog/home_care", &home_care(owner))
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

/// Write `record` as `client`; the status.
async fn write(app: &TestApp, client: &DeptClient, record: &Value) -> u16 {
    client_post(app, client, "/v1/records", record)
        .await
        .status()
        .as_u16()
}

fn care_grant(grantee: &str, purpose: &str, scope: &[&str]) -> Value {
    let mut request = grant_request(
        grantee,
        purpose,
        json!({"care_level": "clear", "id_number": "masked"}),
        scope,
    );
    request["category"] = json!("home_care");
    request["legal_basis"] = json!("民政部门养老服务职责");
    request
}

async fn request(app: &TestApp, client: &DeptClient, body: &Value) -> String {
    let resp = client_post(app, client, "/v1/grants", body).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn pull(app: &TestApp, client: &DeptClient, purpose: &str) -> reqwest::Response {
    client_get(
        app,
        client,
        &format!("/v1/data/home_care?purpose={purpose}&limit=500"),
    )
    .await
}

async fn status_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn a_published_category_needs_approval_and_consent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("health", &["330110.001"]).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let health = app.register_client("health-sys", "health").await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;

    // Only an admin publishes; the owner must exist; a field that does not fit is 422.
    let resp = client_post(&app, &health, "/v1/catalog/home_care", &home_care("health")).await;
    assert_eq!(resp.status(), 405, "PUT, not POST");
    let resp = health
        .http
        .put(app.url("/v1/catalog/home_care"))
        .bearer_auth(app.client_token(&health).await)
        .json(&home_care("health"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 403);
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/catalog/home_care",
            &home_care("nobody"),
        )
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "validation_failed"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["field"], "owner");
    let mut unencrypted = home_care("health");
    unencrypted["fields"][0]["encrypted"] = json!(false);
    let resp = app
        .put_json(&app.admin_token, "/v1/catalog/home_care", &unencrypted)
        .await;
    assert_eq!(error_code(resp).await.0, 422);
    publish_home_care(&app, "health").await;
    let catalog: Value = app
        .get(&app.worker_token, "/v1/catalog")
        .await
        .json()
        .await
        .unwrap();
    let published = catalog["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "home_care")
        .expect("the new category is in the catalog");
    assert_eq!(published["owner"], "health");
    // The same definition again changes nothing.
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/catalog/home_care",
            &home_care("health"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["outcome"], "unchanged");

    // The owner's clients write it, in the owner's jurisdiction; nobody else does.
    for serial in 1..=3 {
        assert_eq!(
            write(&app, &health, &care_record(WORKER_GRID, serial, "full")).await,
            201
        );
    }
    assert_eq!(
        write(&app, &health, &care_record(OTHER_GRID, 4, "full")).await,
        403,
        "outside health's jurisdiction"
    );
    assert_eq!(
        write(&app, &civil, &care_record(WORKER_GRID, 5, "full")).await,
        403,
        "not the owner"
    );
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &care_record(WORKER_GRID, 6, "full"),
        )
        .await;
    assert_eq!(
        error_code(resp).await.0,
        403,
        "grid workers do not write it"
    );
    let person = gridhub_tests::person(
        WORKER_GRID,
        "张三",
        &id_number("33010219800101001"),
        "13812345678",
    );
    assert_eq!(
        write(&app, &health, &person).await,
        403,
        "a department does not write grid-side categories"
    );
    let mut bad = care_record(WORKER_GRID, 7, "total");
    bad["fields"]["care_level"] = json!("total");
    assert_eq!(
        write(&app, &health, &bad).await,
        422,
        "the catalog validates"
    );

    // Evolving the category: adding a field is fine; removing one that holds data is 409.
    let mut evolved = home_care("health");
    evolved["fields"].as_array_mut().unwrap().push(json!({
        "name": "since", "type": "date", "sensitivity": "personal", "share": "conditional",
        "encrypted": true, "indexed": false, "generalize": "year"}));
    let resp = app
        .put_json(&app.admin_token, "/v1/catalog/home_care", &evolved)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["added_fields"],
        json!(["since"])
    );
    let mut shrunk = evolved.clone();
    shrunk["fields"].as_array_mut().unwrap().remove(2);
    let resp = app
        .put_json(&app.admin_token, "/v1/catalog/home_care", &shrunk)
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (409, "conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nurse_notes")
    );

    // Grant A: the DPO approves first. Approval alone gives nothing.
    let a = request(
        &app,
        &civil,
        &care_grant("civil-affairs", "elderly-care", &["330110.001"]),
    )
    .await;
    let grant: Value = client_get(&app, &civil, &format!("/v1/grants/{a}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grant["consent"]["owner"], "health");
    assert_eq!(grant["consent"]["status"], "pending");
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{a}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (status, body) = status_of(pull(&app, &civil, "elderly-care").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("no_grant"))
    );
    let explained: Value = client_post(
        &app,
        &civil,
        "/v1/decisions/explain",
        &json!({"category": "home_care", "purpose": "elderly-care"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(explained["allowed"], false);
    assert_eq!(explained["awaiting_consent"][0]["id"], a.as_str());
    assert_eq!(explained["awaiting_consent"][0]["status"], "approved");
    let resp = client_get(&app, &civil, &format!("/v1/grants/{a}/artefact")).await;
    assert_eq!(error_code(resp).await.0, 409, "no artefact before consent");
    // Only the owner answers for its category.
    let resp = client_post(&app, &civil, &format!("/v1/grants/{a}/consent"), &json!({})).await;
    assert_eq!(error_code(resp).await.0, 403);
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{a}/consent"),
            &json!({}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 403);
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/grants/{a}/consent"),
        &json!({}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // Both: exactly the granted fields, at the granted levels.
    let (status, page) = status_of(pull(&app, &civil, "elderly-care").await).await;
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for record in records {
        let fields = record["fields"].as_object().unwrap();
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        assert_eq!(names, ["care_level", "id_number"]);
        assert_eq!(fields["care_level"], "full");
        assert!(fields["id_number"].as_str().unwrap().contains("********"));
    }
    // The artefact names both the DPO's approval and the owner's consent.
    let jws = client_get(&app, &civil, &format!("/v1/grants/{a}/artefact"))
        .await
        .text()
        .await
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jws.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(claims["approved_by"].as_str().unwrap().starts_with("user:"));
    assert_eq!(claims["owner_consent"]["department"], "health");
    assert_eq!(claims["owner_consent"]["consented_by"], "client:health-sys");

    // Grant B: the owner consents first. Consent alone gives nothing; then the DPO approves.
    let b = request(
        &app,
        &civil,
        &care_grant("civil-affairs", "epidemic-prevention", &["330110.001"]),
    )
    .await;
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/grants/{b}/consent"),
        &json!({}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "requested");
    let (status, _) = status_of(pull(&app, &civil, "epidemic-prevention").await).await;
    assert_eq!(status, 403, "consent alone gives nothing");
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{b}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (status, page) = status_of(pull(&app, &civil, "epidemic-prevention").await).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["records"].as_array().unwrap().len(), 3);
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/grants/{b}/consent"),
        &json!({}),
    )
    .await;
    assert_eq!(error_code(resp).await.0, 409, "already answered");

    // Grant C: the owner declines, with a reason (required); the grant is refused.
    let c = request(
        &app,
        &civil,
        &care_grant("civil-affairs", "rental-registration", &["330110.001"]),
    )
    .await;
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/grants/{c}/decline"),
        &json!({}),
    )
    .await;
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/grants/{c}/decline"),
        &json!({"reason": "租赁登记不需要居家护理信息"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "rejected");
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{c}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 409);
    let grant: Value = client_get(&app, &civil, &format!("/v1/grants/{c}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grant["status"], "rejected");
    assert_eq!(grant["consent"]["status"], "declined");
    assert_eq!(grant["consent"]["reason"], "租赁登记不需要居家护理信息");

    // The owner sees who reads its data: every grant on its category, and its ledger slice.
    let grants: Value = client_get(&app, &health, "/v1/grants?category=home_care")
        .await
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![a.as_str(), b.as_str(), c.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let slice: Value = client_get(&app, &health, "/v1/catalog/home_care/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let entries = slice["entries"].as_array().unwrap();
    let pulls: Vec<&Value> = entries
        .iter()
        .map(|e| &e["entry"])
        .filter(|e| e["action"] == "data.read" && e["decision"] == "allow")
        .collect();
    assert_eq!(pulls.len(), 2, "both disclosures to civil affairs");
    assert!(pulls.iter().all(|e| e["actor"]["client"] == "civil-sys"));
    assert!(
        entries
            .iter()
            .all(|e| e["entry"]["category"] == "home_care"),
        "only its own category"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["entry"]["action"] == "grant.decline")
    );
    // The subject access report of the person's grid record lists what health's category
    // disclosed about the same person (found through the identity number's blind index).
    let resp = app
        .post(
            &app.worker_token,
            "/v1/records",
            &gridhub_tests::person(
                WORKER_GRID,
                "王五",
                &id_number("33010219500101001"),
                "13900000001",
            ),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let person_id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/subjects/{person_id}/report"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["disclosures"], json!([]), "{report}");
    let related = report["related"].as_array().unwrap();
    assert_eq!(related.len(), 1, "{report}");
    assert_eq!(related[0]["category"], "home_care");
    assert_eq!(related[0]["owner"], "health");
    let lines = related[0]["disclosures"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "the pulls under grants A and B");
    assert!(lines.iter().all(|l| l["department"] == "civil-affairs"));
    assert_eq!(
        lines[0]["fields"],
        json!({"care_level": "clear", "id_number": "masked"})
    );
    assert_eq!(report["departments"]["civil-affairs"], 2);
    let text = report.to_string();
    assert!(
        !text.contains("330102195001010"),
        "no identity number in the report"
    );

    let resp = client_get(&app, &civil, "/v1/catalog/home_care/audit").await;
    assert_eq!(error_code(resp).await.0, 403, "not the owner");
    let resp = client_get(&app, &civil, "/v1/catalog/person/audit").await;
    assert_eq!(
        error_code(resp).await.0,
        403,
        "the grid side's slice is the DPO's"
    );
}

async fn a_grant_to_the_grid_centre_returns_data_to_its_grids_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("health", &["330110"]).await;
    app.create_department("grid-center", &["330110.001"]).await;
    let health = app.register_client("health-sys", "health").await;
    let centre = app.register_client("grid-center-sys", "grid-center").await;
    publish_home_care(&app, "health").await;
    for serial in 1..=4 {
        assert_eq!(
            write(&app, &health, &care_record(WORKER_GRID, serial, "light")).await,
            201
        );
    }
    for serial in 5..=7 {
        assert_eq!(
            write(&app, &health, &care_record(OTHER_GRID, serial, "full")).await,
            201
        );
    }
    // The centre may not even ask beyond the grids it covers.
    let resp = client_post(
        &app,
        &centre,
        "/v1/grants",
        &care_grant("grid-center", "elderly-care", &["330110"]),
    )
    .await;
    assert_eq!(error_code(resp).await.0, 422);
    let id = request(
        &app,
        &centre,
        &care_grant("grid-center", "elderly-care", &["330110.001"]),
    )
    .await;
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{id}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = client_post(
        &app,
        &health,
        &format!("/v1/grants/{id}/consent"),
        &json!({}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (status, page) = status_of(pull(&app, &centre, "elderly-care").await).await;
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 4, "the four records of the grids it covers");
    for record in records {
        assert_eq!(record["grid"], WORKER_GRID);
        assert_eq!(record["fields"]["care_level"], "light");
    }
    // The owner decides who must consent: it cannot change while grants on the category are
    // still open (even before it holds records).
    let mut shelter = home_care("health");
    shelter["category"] = json!("shelter");
    let resp = app
        .put_json(&app.admin_token, "/v1/catalog/shelter", &shelter)
        .await;
    assert_eq!(resp.status(), 201);
    let mut asked = care_grant("grid-center", "elderly-care", &["330110.001"]);
    asked["category"] = json!("shelter");
    request(&app, &centre, &asked).await;
    shelter["owner"] = json!("grid-center");
    let resp = app
        .put_json(&app.admin_token, "/v1/catalog/shelter", &shelter)
        .await;
    assert_eq!(error_code(resp).await.0, 409);

    // Receipts as for any disclosure: the entry is in the ledger, listing the four records.
    let index = page["receipt"]["index"].as_u64().unwrap();
    let entries: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?start={index}&end={}", index + 1),
        )
        .await
        .json()
        .await
        .unwrap();
    let entry = &entries["entries"][0]["entry"];
    assert_eq!(entry["action"], "data.read");
    assert_eq!(entry["records"].as_array().unwrap().len(), 4);
    assert_eq!(entry["grants"], json!([id]));
}

on_both_backends!(
    a_published_category_needs_approval_and_consent,
    a_grant_to_the_grid_centre_returns_data_to_its_grids_only,
);
