//! `GET /v1/data/{category}` over real mTLS: only what the grants and responsibilities allow,
//! each field transformed as planned, withheld fields never sent, the ledger entry durable
//! (with a signed receipt) before anything leaves, paging by cursor, per-department pseudonyms,
//! and nothing at all when the ledger cannot record.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{
    Backend, OTHER_GRID, TestApp, WORKER_GRID, error_code, id_number, on_both_backends, person,
    spawn_app,
};
use serde_json::{Value, json};

use crate::grants::{approved_grant, client_get, grant_request, rfc3339};

struct Resident {
    id: String,
    name: &'static str,
    id_number: String,
    phone: String,
}

async fn resident(
    app: &TestApp,
    grid: &str,
    name: &'static str,
    tags: &[&str],
    seq: u32,
) -> Resident {
    let id_number = id_number(&format!("33010219500101{seq:03}"));
    let phone = format!("1381234{seq:04}");
    let mut body = person(grid, name, &id_number, &phone);
    body["fields"]["tags"] = json!(tags);
    let token = if grid == WORKER_GRID {
        &app.worker_token
    } else {
        &app.admin_token
    };
    let resp = app.post(token, "/v1/records", &body).await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Resident {
        id,
        name,
        id_number,
        phone,
    }
}

async fn pull(app: &TestApp, client: &DeptClient, query: &str) -> reqwest::Response {
    client_get(app, client, &format!("/v1/data/person?{query}")).await
}

async fn pulled(app: &TestApp, client: &DeptClient, query: &str) -> (Value, String) {
    let resp = pull(app, client, query).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn ids(page: &Value) -> Vec<&str> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// The receipt's signature verifies with the ledger's public key, and the entry at its index
/// is the disclosure, naming every record with its per-field levels.
async fn check_receipt(app: &TestApp, page: &Value) -> Value {
    let key: Value = app
        .client
        .get(app.url("/v1/audit/public-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = B64.decode(key["public_key"].as_str().unwrap()).unwrap();
    let receipt = &page["receipt"];
    let index = receipt["index"].as_u64().unwrap();
    let message = format!(
        "gridhub-receipt/v1\n{index}\n{}\n{}\n",
        receipt["leaf_hash"].as_str().unwrap(),
        receipt["integrated_time"].as_str().unwrap()
    );
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
        .verify(
            message.as_bytes(),
            &B64.decode(receipt["signature"].as_str().unwrap()).unwrap(),
        )
        .expect("receipt signature verifies");
    let entries: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?start={index}&limit=1"),
        )
        .await
        .json()
        .await
        .unwrap();
    let entry = entries["entries"][0].clone();
    let leaf = ring::digest::digest(
        &ring::digest::SHA256,
        &[&[0u8][..], entry["canonical"].as_str().unwrap().as_bytes()].concat(),
    );
    assert_eq!(
        B64.encode(leaf.as_ref()),
        receipt["leaf_hash"].as_str().unwrap()
    );
    // And the entry is in the signed tree: an inclusion proof against a fresh checkpoint,
    // checked with the test's own RFC 9162 verifier.
    let (key_name, ledger_key) = crate::ledger::public_key(app).await;
    let note = crate::ledger::checkpoint(app).await;
    let (size, root) = crate::ledger::check_checkpoint(&note, &key_name, &ledger_key);
    assert!(size > index);
    let proof: Value = app
        .client
        .get(app.url(&format!(
            "/v1/audit/proofs/inclusion?index={index}&size={size}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(crate::ledger::hash_of)
        .collect();
    let leaf: [u8; 32] = leaf.as_ref().try_into().unwrap();
    assert!(
        crate::ledger::verify_inclusion(index, size, leaf, &path, &root),
        "inclusion proof verifies"
    );
    entry["entry"].clone()
}

async fn departments_get_what_their_grants_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let health = app.register_client("health-sys", "health").await;
    let alone = resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
    let alone_too = resident(
        &app,
        WORKER_GRID,
        "欧阳娜娜",
        &["elderly_alone", "disabled"],
        2,
    )
    .await;
    let not_alone = resident(&app, WORKER_GRID, "李四", &["disabled"], 3).await;
    let elsewhere = resident(&app, OTHER_GRID, "王五", &["elderly_alone"], 4).await;

    // No grant: 403 no_grant, audited, nothing sent.
    let (status, code, _) = error_code(pull(&app, &civil, "purpose=elderly-care").await).await;
    assert_eq!((status, code.as_str()), (403, "no_grant"));
    let denials = crate::grants::entries_of(&app, "data.read").await;
    assert_eq!(denials.len(), 1);
    assert_eq!(
        (
            denials[0]["decision"].as_str(),
            denials[0]["purpose"].as_str()
        ),
        (Some("deny"), Some("elderly-care"))
    );

    let mut care = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear", "phone": "masked", "birth_date": "generalized", "address": "generalized"}),
        &["330110.001"],
    );
    care["row_filter"] = json!("tags has \"elderly_alone\"");
    approved_grant(&app, &civil, &care).await;
    let (page, text) = pulled(&app, &civil, "purpose=elderly-care").await;
    let mut expected = vec![alone.id.as_str(), alone_too.id.as_str()];
    expected.sort();
    assert_eq!(
        ids(&page),
        expected,
        "only elderly residents living alone, in the district"
    );
    assert!(page.get("next_cursor").is_none());
    let first = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == alone.id.as_str())
        .unwrap();
    assert_eq!(
        first["fields"],
        json!({"name": "张三丰", "phone": "138****0001", "birth_date": "1950", "address": WORKER_GRID})
    );
    assert_eq!(first["grid"], WORKER_GRID);
    // Withheld and masked values appear nowhere in the response.
    for r in [&alone, &alone_too] {
        assert!(
            !text.contains(&r.id_number) && !text.contains(&r.phone),
            "{text}"
        );
    }
    assert!(!text.contains(not_alone.name) && !text.contains(elsewhere.name));
    // The ledger entry behind the receipt names both records with their levels, no values.
    let entry = check_receipt(&app, &page).await;
    assert_eq!(
        (entry["action"].as_str(), entry["decision"].as_str()),
        (Some("data.read"), Some("allow"))
    );
    assert_eq!(entry["actor"]["client"], "civil-sys");
    let record = entry["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == alone.id.as_str())
        .unwrap();
    assert_eq!(
        record["fields"],
        json!({"address": "generalized", "birth_date": "generalized", "name": "clear", "phone": "masked"})
    );
    assert!(!entry.to_string().contains("张三丰"));
    // The officer a system acts for is recorded with the disclosure.
    let token = app.client_token(&civil).await;
    let resp = civil
        .http
        .get(app.url("/v1/data/person?purpose=elderly-care"))
        .header("gridhub-on-behalf-of", "officer-007")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let page: Value = resp.json().await.unwrap();
    let entry = check_receipt(&app, &page).await;
    assert_eq!(entry["actor"]["on_behalf_of"], "officer-007");

    // Paging: one record per page, the cursor carries on, the last page has no cursor.
    let (one, _) = pulled(&app, &civil, "purpose=elderly-care&limit=1").await;
    assert_eq!(ids(&one), [expected[0]]);
    let cursor = one["next_cursor"].as_str().unwrap();
    let (two, _) = pulled(
        &app,
        &civil,
        &format!("purpose=elderly-care&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(ids(&two), [expected[1]]);
    if let Some(cursor) = two["next_cursor"].as_str() {
        let (three, _) = pulled(
            &app,
            &civil,
            &format!("purpose=elderly-care&limit=1&cursor={cursor}"),
        )
        .await;
        assert!(ids(&three).is_empty() && three.get("next_cursor").is_none());
    }
    for bad in [
        "limit=0",
        "limit=501",
        "cursor=x'%20OR%201=1--",
        "grid=not%20a%20grid",
    ] {
        let (status, code, _) =
            error_code(pull(&app, &civil, &format!("purpose=elderly-care&{bad}")).await).await;
        assert_eq!((status, code.as_str()), (422, "validation_failed"), "{bad}");
    }
    let (narrow, _) = pulled(
        &app,
        &civil,
        &format!("purpose=elderly-care&grid={OTHER_GRID}"),
    )
    .await;
    assert!(ids(&narrow).is_empty());

    // Pseudonyms: stable for one department, different for another.
    let mut pseudo = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"id_number": "pseudonym"}),
        &["330110.001"],
    );
    pseudo["legal_basis"] = json!("Elderly Rights Protection Law art. 3");
    approved_grant(&app, &civil, &pseudo).await;
    let mut health_pseudo = grant_request(
        "health",
        "elderly-care",
        json!({"id_number": "pseudonym"}),
        &["330110"],
    );
    health_pseudo["legal_basis"] = json!("Basic Medical and Health Care Law art. 3");
    approved_grant(&app, &health, &health_pseudo).await;
    let token_of = |page: &Value, id: &str| {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["fields"]["id_number"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, text) = pulled(&app, &civil, "purpose=elderly-care").await;
    let (b, _) = pulled(&app, &civil, "purpose=elderly-care").await;
    let (h, _) = pulled(&app, &health, "purpose=elderly-care").await;
    let civil_token = token_of(&a, &alone.id);
    assert_eq!(civil_token.len(), 16);
    assert!(
        civil_token
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
    );
    assert_eq!(civil_token, token_of(&b, &alone.id));
    assert_ne!(civil_token, token_of(&h, &alone.id));
    assert_ne!(token_of(&a, &alone.id), token_of(&a, &alone_too.id));
    assert!(!text.contains(&alone.id_number));
    // Health's grant has no row filter and its jurisdiction is the city: all four residents.
    assert_eq!(ids(&h).len(), 4);
    app.stop().await;
}

async fn case_bound_pulls_follow_the_assignment(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("public-security", &["330110"]).await;
    app.create_department("health", &["330110"]).await;
    let police = app.register_client("police-sys", "public-security").await;
    let suspect = resident(&app, WORKER_GRID, "赵六", &[], 1).await;
    let bystander = resident(&app, WORKER_GRID, "钱七", &[], 2).await;
    let mut g = grant_request(
        "public-security",
        "case-investigation",
        json!({"name": "clear", "id_number": "clear"}),
        &["330110"],
    );
    g["case_bound"] = json!(true);
    g["legal_basis"] = json!("Criminal Procedure Law art. 54");
    approved_grant(&app, &police, &g).await;

    let (status, code, _) =
        error_code(pull(&app, &police, "purpose=case-investigation").await).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "forbidden"),
        "no case, no responsibility"
    );
    let resp = app
        .post(&app.worker_token, "/v1/cases", &json!({"grid": WORKER_GRID, "kind": "dispute", "summary": "纠纷", "subjects": [suspect.id]}))
        .await;
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = format!("purpose=case-investigation&case={case}");
    assert_eq!(
        error_code(pull(&app, &police, &query).await).await.0,
        403,
        "reported, not assigned"
    );
    let assign = |d: &str| json!({"departments": [d], "deadline": rfc3339(86_400)});
    app.post(
        &app.admin_token,
        &format!("/v1/cases/{case}/assign"),
        &assign("public-security"),
    )
    .await;
    let (page, text) = pulled(&app, &police, &query).await;
    assert_eq!(ids(&page), [suspect.id.as_str()]);
    assert_eq!(
        page["records"][0]["fields"],
        json!({"name": "赵六", "id_number": suspect.id_number})
    );
    assert!(!text.contains(&bystander.id_number));
    let entry = check_receipt(&app, &page).await;
    assert_eq!(entry["case"], case.as_str());

    // Reassigned: the next pull is refused.
    app.post(
        &app.admin_token,
        &format!("/v1/cases/{case}/assign"),
        &assign("health"),
    )
    .await;
    assert_eq!(error_code(pull(&app, &police, &query).await).await.0, 403);
    app.stop().await;
}

async fn lookup(app: &TestApp, client: &DeptClient, key: Value) -> reqwest::Response {
    let body = json!({"purpose": "elderly-care", "key": key});
    crate::grants::client_post(app, client, "/v1/data/person/lookup", &body).await
}

async fn lookups_find_one_subject_through_the_blind_index(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let health = app.register_client("health-sys", "health").await;
    let alone = resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
    let not_alone = resident(&app, WORKER_GRID, "李四", &["disabled"], 2).await;
    let mut care = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear", "phone": "masked"}),
        &["330110.001"],
    );
    care["row_filter"] = json!("tags has \"elderly_alone\"");
    approved_grant(&app, &civil, &care).await;
    let resp = lookup(&app, &civil, json!({"id_number": alone.id_number})).await;
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(ids(&page), [alone.id.as_str()]);
    assert_eq!(
        page["records"][0]["fields"],
        json!({"name": "张三丰", "phone": "138****0001"})
    );
    let entry = check_receipt(&app, &page).await;
    assert_eq!(entry["action"], "data.lookup");
    assert!(
        !entry.to_string().contains(&alone.id_number),
        "the looked-up value is not in the ledger"
    );
    // Phones are normalised before the token is made: the same person by another spelling.
    let spaced = format!(
        "+86 {} {} {}",
        &alone.phone[..3],
        &alone.phone[3..7],
        &alone.phone[7..]
    );
    let page: Value = lookup(&app, &civil, json!({"phone": spaced}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&page), [alone.id.as_str()]);
    // Found in the index, but outside what the grant reaches: nothing.
    let page: Value = lookup(&app, &civil, json!({"id_number": not_alone.id_number}))
        .await
        .json()
        .await
        .unwrap();
    assert!(ids(&page).is_empty());
    // Refusals: not indexed, two keys, an invalid value (never echoed), no grant.
    for (key, path) in [
        (json!({"name": "张三丰"}), "key.name"),
        (
            json!({"id_number": alone.id_number, "phone": alone.phone}),
            "key",
        ),
        (json!({"id_number": "110105194912310021"}), "key.id_number"),
    ] {
        let (status, code, body) = error_code(lookup(&app, &civil, key).await).await;
        assert_eq!((status, code.as_str()), (422, "validation_failed"));
        assert_eq!(body["error"]["details"][0]["field"], path);
        assert!(!body.to_string().contains("110105194912310021"));
    }
    let (status, code, _) =
        error_code(lookup(&app, &health, json!({"id_number": alone.id_number})).await).await;
    assert_eq!((status, code.as_str()), (403, "no_grant"));
    app.stop().await;
}

async fn sealed_delivery_opens_only_with_the_clients_identity(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let (sealed, identity) = app
        .register_sealed_client("civil-sealed", "civil-affairs")
        .await;
    let plain_only = app.register_client("civil-plain", "civil-affairs").await;
    let alone = resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
    approved_grant(
        &app,
        &sealed,
        &grant_request(
            "civil-affairs",
            "elderly-care",
            json!({"name": "clear", "phone": "masked"}),
            &["330110.001"],
        ),
    )
    .await;
    let get_sealed = |client: &DeptClient, token: String| {
        client
            .http
            .get(app.url("/v1/data/person?purpose=elderly-care"))
            .header("accept", "application/age")
            .bearer_auth(token)
            .send()
    };
    let resp = get_sealed(&sealed, app.client_token(&sealed).await)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/age");
    let body = resp.bytes().await.unwrap();
    assert!(body.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&body).contains("张三丰"));
    // Its own identity opens it: the same JSON shape, with a receipt.
    let opened = age::decrypt(&identity, &body).expect("the client's identity opens it");
    let page: Value = serde_json::from_slice(&opened).unwrap();
    assert_eq!(ids(&page), [alone.id.as_str()]);
    assert_eq!(page["records"][0]["fields"]["name"], "张三丰");
    check_receipt(&app, &page).await;
    // Any other identity does not.
    assert!(age::decrypt(&age::x25519::Identity::generate(), &body).is_err());
    // A client without a recipient: 406, audited, nothing disclosed.
    let before = crate::grants::entries_of(&app, "data.read").await.len();
    let resp = get_sealed(&plain_only, app.client_token(&plain_only).await)
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (406, "not_acceptable"));
    let after = crate::grants::entries_of(&app, "data.read").await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap()["decision"], "deny");
    app.stop().await;
}

async fn daily_quotas_refuse_whole_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    for seq in 1..=3 {
        resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], seq).await;
    }
    let mut care = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    care["daily_quota"] = json!(3);
    approved_grant(&app, &civil, &care).await;
    let (page, _) = pulled(&app, &civil, "purpose=elderly-care&limit=2").await;
    assert_eq!(ids(&page).len(), 2);
    // Two more would pass the quota of 3: refused whole, with when to retry.
    let resp = pull(&app, &civil, "purpose=elderly-care&limit=2").await;
    assert_eq!(resp.status(), 429, "{:?}", resp.headers());
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (429, "quota_exceeded"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has 1 records left today"),
        "{body}"
    );
    // One more fits; then nothing does, and an answer with no records costs nothing.
    let (page, _) = pulled(&app, &civil, "purpose=elderly-care&limit=1").await;
    assert_eq!(ids(&page).len(), 1);
    assert_eq!(
        error_code(pull(&app, &civil, "purpose=elderly-care&limit=1").await)
            .await
            .0,
        429
    );
    let (empty, _) = pulled(
        &app,
        &civil,
        &format!("purpose=elderly-care&grid={OTHER_GRID}"),
    )
    .await;
    assert!(ids(&empty).is_empty());
    let denials: Vec<Value> = crate::grants::entries_of(&app, "data.read")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "deny")
        .collect();
    assert_eq!(denials.len(), 2);
    app.stop().await;
}

async fn report(app: &TestApp, record: &str) -> Value {
    let path = format!("/v1/audit/subjects/{record}/report");
    app.get(&app.dpo_token, &path).await.json().await.unwrap()
}

async fn the_subject_access_report_shows_who_received_what(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("public-security", &["330110"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let police = app.register_client("police-sys", "public-security").await;
    let alone = resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
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
    let mut g = grant_request(
        "public-security",
        "case-investigation",
        json!({"name": "clear", "id_number": "clear"}),
        &["330110"],
    );
    g["case_bound"] = json!(true);
    g["legal_basis"] = json!("Criminal Procedure Law art. 54");
    approved_grant(&app, &police, &g).await;
    pulled(&app, &civil, "purpose=elderly-care").await;
    let resp = app
        .post(&app.worker_token, "/v1/cases", &json!({"grid": WORKER_GRID, "kind": "investigation", "summary": "线索核查", "subjects": [alone.id], "confidential": true}))
        .await;
    let case = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &app.admin_token,
        &format!("/v1/cases/{case}/assign"),
        &json!({"departments": ["public-security"], "deadline": rfc3339(86_400)}),
    )
    .await;
    let (page, _) = pulled(
        &app,
        &police,
        &format!("purpose=case-investigation&case={case}"),
    )
    .await;
    assert_eq!(ids(&page), [alone.id.as_str()]);

    // While the confidential case is open, its disclosure is held back.
    let r = report(&app, &alone.id).await;
    assert_eq!(r["held_back"], 1);
    assert_eq!(r["departments"], json!({"civil-affairs": 1}));
    let line = &r["disclosures"][0];
    assert_eq!(
        (
            line["department"].as_str(),
            line["purpose"].as_str(),
            line["how"].as_str(),
            line["client"].as_str()
        ),
        (
            Some("civil-affairs"),
            Some("elderly-care"),
            Some("pull"),
            Some("civil-sys")
        )
    );
    assert_eq!(line["fields"], json!({"name": "clear", "phone": "masked"}));
    assert_eq!(line["grants"].as_array().unwrap().len(), 1);
    // Closed: shown, with the case.
    app.post(
        &app.admin_token,
        &format!("/v1/cases/{case}/close"),
        &json!({"resolution": "已结案"}),
    )
    .await;
    let r = report(&app, &alone.id).await;
    assert_eq!(r["held_back"], 0);
    assert_eq!(
        r["departments"],
        json!({"civil-affairs": 1, "public-security": 1})
    );
    let police_line = r["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["department"] == "public-security")
        .unwrap();
    assert_eq!(police_line["case"], case.as_str());
    assert_eq!(
        police_line["fields"],
        json!({"id_number": "clear", "name": "clear"})
    );
    // Asking is audited; a department may not ask.
    assert_eq!(
        crate::grants::entries_of(&app, "audit.subject_report")
            .await
            .len(),
        2
    );
    let resp = client_get(
        &app,
        &civil,
        &format!("/v1/audit/subjects/{}/report", alone.id),
    )
    .await;
    assert_eq!(error_code(resp).await.0, 403);
    app.stop().await;
}

async fn pull_with_key(
    app: &TestApp,
    client: &DeptClient,
    query: &str,
    key: &str,
) -> reqwest::Response {
    let token = app.client_token(client).await;
    client
        .http
        .get(app.url(&format!("/v1/data/person?{query}")))
        .header("idempotency-key", key)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn a_retried_pull_is_one_disclosure(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    for seq in 1..=2 {
        resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], seq).await;
    }
    let mut care = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    care["daily_quota"] = json!(4);
    let grant = approved_grant(&app, &civil, &care).await;
    let query = "purpose=elderly-care&limit=2";
    let first: Value = pull_with_key(&app, &civil, query, "retry-1")
        .await
        .json()
        .await
        .unwrap();
    let again: Value = pull_with_key(&app, &civil, query, "retry-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&first).len(), 2);
    assert_eq!(first, again, "same records, same receipt");
    check_receipt(&app, &again).await;
    assert_eq!(
        crate::grants::entries_of(&app, "data.read").await.len(),
        1,
        "one ledger entry"
    );
    // The retry did not count against the quota: two more records still fit, then none.
    assert_eq!(pull(&app, &civil, query).await.status(), 200);
    assert_eq!(error_code(pull(&app, &civil, query).await).await.0, 429);
    // The key belongs to that request only; keys are checked.
    let (status, _, body) =
        error_code(pull_with_key(&app, &civil, "purpose=elderly-care&limit=1", "retry-1").await)
            .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"][0]["field"], "idempotency-key");
    let (status, _, _) = error_code(pull_with_key(&app, &civil, query, "not a key!").await).await;
    assert_eq!(status, 422);
    // A retry after the grant was revoked is refused: replays are decided again.
    app.post(
        &app.dpo_token,
        &format!("/v1/grants/{grant}/revoke"),
        &json!({}),
    )
    .await;
    let (status, code, _) = error_code(pull_with_key(&app, &civil, query, "retry-1").await).await;
    assert_eq!((status, code.as_str()), (403, "no_grant"));
    app.stop().await;
}

/// The ledger refuses inserts (a trigger): the pull answers 503 and sends no data, and the
/// failed pull does not count against the daily quota (it is charged in the entry's commit).
async fn no_audit_no_data(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let alone = resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
    let mut care = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    care["daily_quota"] = json!(1);
    approved_grant(&app, &civil, &care).await;
    // A token first: issuing one is audited too.
    let token = app.client_token(&civil).await;
    app.break_ledger().await;
    let resp = civil
        .http
        .get(app.url("/v1/data/person?purpose=elderly-care"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("audit_unavailable"));
    assert!(!text.contains(alone.name) && !text.contains(&alone.id));
    // The ledger works again: the quota of one record is still whole.
    app.mend_ledger().await;
    // Until its probe write commits, the ledger refuses at once; then it serves again.
    app.wait_ready(std::time::Duration::from_secs(30)).await;
    let (page, _) = pulled(&app, &civil, "purpose=elderly-care").await;
    assert_eq!(ids(&page), [alone.id.as_str()]);
    assert_eq!(
        error_code(pull(&app, &civil, "purpose=elderly-care").await)
            .await
            .0,
        429
    );
    app.stop().await;
}

/// No field is opened before the ledger entry that records its disclosure is durable: with a
/// tampered ciphertext and a failing ledger, the answer is the ledger's 503, not the integrity
/// error that opening the field would raise (it was, when values were opened while planning).
async fn nothing_is_decrypted_before_the_entry_is_durable(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let grant = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    approved_grant(&app, &civil, &grant).await;
    let alone = resident(&app, WORKER_GRID, "张三丰", &["elderly_alone"], 1).await;
    let mut fields = app.raw_sealed_fields(&alone.id).await;
    let name = fields.iter_mut().find(|f| f.field == "name").unwrap();
    *name.sealed.last_mut().unwrap() ^= 1;
    app.raw_set_sealed_fields(&alone.id, &fields).await;
    // The ledger works: the entry is written, then opening the field fails closed.
    let (status, code, _) = error_code(pull(&app, &civil, "purpose=elderly-care").await).await;
    assert_eq!((status, code.as_str()), (500, "integrity_failed"));
    // A token first: issuing one is audited too.
    let token = app.client_token(&civil).await;
    app.break_ledger().await;
    let resp = civil
        .http
        .get(app.url("/v1/data/person?purpose=elderly-care"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (503, "audit_unavailable"));
    app.stop().await;
}

on_both_backends!(
    departments_get_what_their_grants_allow,
    case_bound_pulls_follow_the_assignment,
    lookups_find_one_subject_through_the_blind_index,
    sealed_delivery_opens_only_with_the_clients_identity,
    daily_quotas_refuse_whole_answers,
    the_subject_access_report_shows_who_received_what,
    a_retried_pull_is_one_disclosure,
    no_audit_no_data,
    nothing_is_decrypted_before_the_entry_is_durable
);
