//! Grants: request → DPO approval (never the requester) or rejection with a reason → suspend,
//! resume, revoke; refusals at creation; the signed artefact verified here with ring against
//! the published JWKS; every transition in the ledger.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{Backend, TestApp, error_code, on_both_backends, spawn_app};
use serde_json::{Value, json};

pub fn rfc3339(offset_secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub fn parse_time(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

/// `n` weekdays (Monday–Friday in China Standard Time: the test hub has no holiday file) after
/// `from`, at the same time of day; counted here day by day, whatever day the test runs on.
pub fn weekdays_after(from: time::OffsetDateTime, n: u32) -> time::OffsetDateTime {
    let mut at = from.to_offset(time::macros::offset!(+8));
    let mut left = n;
    while left > 0 {
        at += time::Duration::days(1);
        if !matches!(
            at.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        ) {
            left -= 1;
        }
    }
    at
}

/// A grant request valid from an hour ago for 30 days.
pub fn grant_request(grantee: &str, purpose: &str, fields: Value, scope: &[&str]) -> Value {
    json!({
        "grantee": grantee,
        "purpose": purpose,
        "category": "person",
        "fields": fields,
        "scope": scope,
        "case_bound": false,
        "valid_from": rfc3339(-3600),
        "valid_until": rfc3339(30 * 86_400),
    })
}

/// A client `POST` with its certificate and token.
pub async fn client_post(
    app: &TestApp,
    client: &DeptClient,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    let token = app.client_token(client).await;
    client
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn client_get(app: &TestApp, client: &DeptClient, path: &str) -> reqwest::Response {
    let token = app.client_token(client).await;
    client
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Request as `client`, approve as the DPO; returns the grant id.
pub async fn approved_grant(app: &TestApp, client: &DeptClient, request: &Value) -> String {
    app.approved_grant(client, request).await
}

/// Audit entries with `action`.
pub async fn entries_of(app: &TestApp, action: &str) -> Vec<Value> {
    let page: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["action"] == action)
        .map(|e| e["entry"].clone())
        .collect()
}

async fn problems(resp: reqwest::Response) -> Vec<String> {
    let (status, code, body) = error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "validation_failed"),
        "{body}"
    );
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                d["field"].as_str().unwrap(),
                d["problem"].as_str().unwrap()
            )
        })
        .collect()
}

/// Verify a compact EdDSA JWS against the hub's JWKS with ring; returns its header and claims.
async fn verify_jws(app: &TestApp, jws: &str) -> (Value, Value) {
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the artefact's kid is published");
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(signed.as_bytes(), &signature)
        .expect("the artefact's signature verifies");
    // One flipped bit of the payload and it no longer does.
    let mut tampered = signed.into_bytes();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
            .verify(&tampered, &signature)
            .is_err()
    );
    (header, claims)
}

async fn a_grant_lives_through_its_whole_cycle(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    app.create_department("health", &["330110.002"]).await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let health = app.register_client("health-sys", "health").await;
    let fields = json!({"name": "clear", "phone": "masked", "birth_date": "generalized"});
    let good = grant_request(
        "civil-affairs",
        "elderly-care",
        fields.clone(),
        &["330110.001"],
    );

    // Refused at creation, each naming what is wrong.
    let mut bad = good.clone();
    bad["fields"]["worker_notes"] = json!("clear");
    bad["fields"]["shoe_size"] = json!("clear");
    bad["fields"]["gender"] = json!("masked");
    bad["fields"]["name"] = json!("everything");
    let p = problems(client_post(&app, &civil, "/v1/grants", &bad).await).await;
    assert_eq!(p.len(), 1, "level errors come first: {p:?}");
    assert!(p[0].starts_with("fields.name: level must be"), "{p:?}");
    bad["fields"]["name"] = json!("clear");
    let p = problems(client_post(&app, &civil, "/v1/grants", &bad).await).await;
    assert!(
        p.iter()
            .any(|x| x.starts_with("fields.worker_notes: has share class `none`")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("fields.shoe_size: not a field")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("fields.gender: has no mask rule")),
        "{p:?}"
    );
    let mut bad = good.clone();
    bad["scope"] = json!(["330110.002"]);
    bad["valid_until"] = bad["valid_from"].clone();
    bad["row_filter"] = json!("tags has \"elderly_alone\" and (residence ==");
    bad["fields"]["id_number"] = json!("masked");
    let p = problems(client_post(&app, &civil, "/v1/grants", &bad).await).await;
    assert!(
        p.iter()
            .any(|x| x.starts_with("scope[0]: outside the grantee's jurisdiction")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x == "valid_until: must be after valid_from"),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("row_filter: at position 42: expected")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("legal_basis: required when a sensitive field")),
        "{p:?}"
    );
    let mut bad = good.clone();
    bad["row_filter"] = json!("phone == \"not a phone\"");
    let p = problems(client_post(&app, &civil, "/v1/grants", &bad).await).await;
    assert_eq!(
        p,
        ["row_filter: field `phone`: the value is not valid for this field"]
    );
    // A department requests only for itself.
    let for_other = grant_request("health", "elderly-care", fields.clone(), &["330110.002"]);
    let (status, code, _) =
        error_code(client_post(&app, &civil, "/v1/grants", &for_other).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));

    // Requested: answer due in 5 working days, not overdue.
    let resp = client_post(&app, &civil, "/v1/grants", &good).await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["status"], "requested");
    let id = created["id"].as_str().unwrap().to_owned();
    let shown: Value = client_get(&app, &civil, &format!("/v1/grants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["overdue"].as_bool()),
        (Some("requested"), Some(false))
    );
    assert_eq!(shown["answer_due"], created["answer_due"]);
    let requested_at = parse_time(shown["requested_at"].as_str().unwrap());
    assert_eq!(
        parse_time(created["answer_due"].as_str().unwrap()),
        weekdays_after(requested_at, 5),
        "requested at {requested_at}"
    );
    // Another department cannot see it; the artefact does not exist yet.
    assert_eq!(
        client_get(&app, &health, &format!("/v1/grants/{id}"))
            .await
            .status(),
        403
    );
    let (status, _, _) =
        error_code(client_get(&app, &civil, &format!("/v1/grants/{id}/artefact")).await).await;
    assert_eq!(status, 409);

    // The requester never decides: an admin's own request, approved by itself → 403.
    let resp = app.post(&app.admin_token, "/v1/grants", &good).await;
    assert_eq!(resp.status(), 201);
    let admins: Value = resp.json().await.unwrap();
    let admins = admins["id"].as_str().unwrap();
    let (status, code, body) = error_code(
        app.post(
            &app.admin_token,
            &format!("/v1/grants/{admins}/approve"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{body}");
    // A department cannot approve either (no role permits it).
    let (status, _, _) = error_code(
        client_post(
            &app,
            &civil,
            &format!("/v1/grants/{id}/approve"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    // A rejection must give its reason.
    let p = problems(
        app.post(
            &app.dpo_token,
            &format!("/v1/grants/{admins}/reject"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(p, ["reason: a rejection must give its reason"]);
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{admins}/reject"),
            &json!({"reason": "duplicate of the department's own request"}),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "rejected");
    let rejected: Value = app
        .get(&app.dpo_token, &format!("/v1/grants/{admins}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rejected["reason"],
        "duplicate of the department's own request"
    );

    // The DPO approves: a signed artefact the grantee can verify offline.
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{id}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "approved");
    let resp = client_get(&app, &civil, &format!("/v1/grants/{id}/artefact")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/jose");
    let jws = resp.text().await.unwrap();
    let (header, claims) = verify_jws(&app, &jws).await;
    assert_eq!(header["typ"], "gridhub-grant+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["grantee"], "civil-affairs");
    assert_eq!(claims["purpose"], "elderly-care");
    assert_eq!(claims["fields"], fields);
    assert_eq!(claims["scope"], json!(["330110.001"]));
    assert_eq!(claims["case_bound"], false);
    assert!(claims["exp"].as_i64().unwrap() > claims["nbf"].as_i64().unwrap());
    assert_eq!(claims["requested_by"], "client:civil-sys");
    assert_eq!(
        claims["approved_by"].as_str().unwrap().split(':').next(),
        Some("user")
    );

    // Approving twice is a conflict; suspend, resume, revoke; nothing after revoke.
    let (status, code, _) = error_code(
        app.post(
            &app.dpo_token,
            &format!("/v1/grants/{id}/approve"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    for (step, expected) in [
        ("suspend", "suspended"),
        ("resume", "approved"),
        ("revoke", "revoked"),
    ] {
        let resp = app
            .post(
                &app.dpo_token,
                &format!("/v1/grants/{id}/{step}"),
                &json!({"reason": "routine review"}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{step}");
        assert_eq!(resp.json::<Value>().await.unwrap()["status"], expected);
    }
    for step in ["approve", "resume", "suspend", "revoke"] {
        let (status, _, _) = error_code(
            app.post(
                &app.dpo_token,
                &format!("/v1/grants/{id}/{step}"),
                &json!({}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 409, "{step} after revoke");
    }
    let shown: Value = client_get(&app, &civil, &format!("/v1/grants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["request", "approve", "suspend", "resume", "revoke"]
    );

    // Listing: the department sees its own only; the DPO filters by status.
    let mine: Value = client_get(&app, &civil, "/v1/grants")
        .await
        .json()
        .await
        .unwrap();
    let grantees: Vec<&str> = mine["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grantee"].as_str().unwrap())
        .collect();
    assert_eq!(grantees, ["civil-affairs", "civil-affairs"]);
    let rejected: Value = app
        .get(&app.dpo_token, "/v1/grants?status=rejected")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rejected["grants"].as_array().unwrap().len(), 1);
    assert_eq!(
        client_get(&app, &health, "/v1/grants?grantee=civil-affairs")
            .await
            .status(),
        403
    );

    // Every transition is in the ledger, before it was stored.
    for (action, count) in [
        ("grant.request", 2),
        ("grant.approve", 1),
        ("grant.reject", 1),
        ("grant.suspend", 1),
        ("grant.resume", 1),
        ("grant.revoke", 1),
    ] {
        let entries = entries_of(&app, action).await;
        let allowed = entries.iter().filter(|e| e["decision"] == "allow").count();
        assert_eq!(allowed, count, "{action}");
        assert!(
            entries
                .iter()
                .filter(|e| e["decision"] == "allow")
                .all(|e| !e["grants"].as_array().unwrap().is_empty())
        );
    }
    let self_approval = entries_of(&app, "grant.approve").await;
    assert!(self_approval.iter().any(|e| e["decision"] == "deny"
        && e["reason"] == "the requester of a grant cannot decide on it"));
    app.stop().await;
}

async fn grants_past_their_window_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let civil = app.register_client("civil-sys", "civil-affairs").await;
    let request = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    let ending = approved_grant(&app, &civil, &request).await;
    let lasting = approved_grant(&app, &civil, &request).await;
    let suspended = approved_grant(&app, &civil, &request).await;
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{suspended}/suspend"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Nothing is due yet: the sweep changes nothing.
    assert_eq!(app.state.grants.expire_due().await.unwrap(), 0);
    // Two windows end (written straight into the database, as time passing would).
    for id in [&ending, &suspended] {
        app.raw_execute(format!(
            "UPDATE grants SET valid_until = valid_from + 1 WHERE id = '{id}'"
        ))
        .await;
    }
    // Shown as expired at once, even before the sweep records it.
    let shown: Value = app
        .get(&app.dpo_token, &format!("/v1/grants/{ending}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "expired");
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM grants WHERE status = 'expired'")
            .await,
        0
    );
    assert_eq!(app.state.grants.expire_due().await.unwrap(), 2);
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM grants WHERE status = 'expired'")
            .await,
        2
    );
    // Recorded once, with the history, the ledger entries, and nothing left to resume.
    assert_eq!(app.state.grants.expire_due().await.unwrap(), 0);
    let shown: Value = app
        .get(&app.dpo_token, &format!("/v1/grants/{ending}"))
        .await
        .json()
        .await
        .unwrap();
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("expire"), Some("system"))
    );
    let expired = entries_of(&app, "grant.expire").await;
    assert_eq!(expired.len(), 2);
    assert!(
        expired
            .iter()
            .all(|e| e["decision"] == "allow" && e["grants"].as_array().unwrap().len() == 1)
    );
    let (status, _, _) = error_code(
        app.post(
            &app.dpo_token,
            &format!("/v1/grants/{suspended}/resume"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);
    let shown: Value = app
        .get(&app.dpo_token, &format!("/v1/grants/{lasting}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "approved");
    app.stop().await;
}

on_both_backends!(
    a_grant_lives_through_its_whole_cycle,
    grants_past_their_window_expire
);

/// What the OpenAPI document allows, the hub takes (issue 18): a whole number written with a
/// zero fraction is an integer (JSON Schema counts it one), a fraction is not, and a
/// transition's optional body may be `null`.
#[tokio::test]
async fn schema_valid_spellings_are_accepted() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let mut request = grant_request(
        "civil-affairs",
        "elderly-care",
        json!({"name": "clear"}),
        &["330110.001"],
    );
    request["daily_quota"] = json!(1000.5);
    let (status, code, body) =
        error_code(app.post(&app.admin_token, "/v1/grants", &request).await).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "validation_failed"),
        "{body}"
    );
    request["daily_quota"] = json!(1000.0);
    let resp = app.post(&app.admin_token, "/v1/grants", &request).await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap();

    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{id}/approve"),
            &Value::Null,
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let grant: Value = app
        .get(&app.dpo_token, &format!("/v1/grants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grant["status"], "approved");
    assert_eq!(grant["daily_quota"], 1000);
}
