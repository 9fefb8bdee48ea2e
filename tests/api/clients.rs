//! Departments, clients and mTLS: certificates from CSRs, client-credentials tokens bound to the
//! certificate, refused certificates, revocation without a restart, the JWT attack suite.

use gridhub_tests::jwt::{self, HubKey};
use gridhub_tests::mtls::{key_and_csr, mtls_client};
use gridhub_tests::{Backend, TestApp, error_code, on_both_backends, spawn_app};
use serde_json::{Value, json};

/// Denials of `action` in the ledger, as their reasons (DPO view).
async fn denials(app: &TestApp, action: &str) -> Vec<String> {
    let page: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?decision=deny&limit=1000")
        .await
        .json()
        .await
        .unwrap();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["action"] == action)
        .map(|e| e["entry"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Refusals of `action` as their reasons, each refusal once: the entries of their own and the
/// counts of the summaries (`<action>.refusals`) of anonymous ones, after closing the window.
async fn refusals(app: &TestApp, action: &str) -> Vec<String> {
    app.close_refusal_window().await;
    let mut reasons = denials(app, action).await;
    let page: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?action={action}.refusals&limit=1000"),
        )
        .await
        .json()
        .await
        .unwrap();
    for e in page["entries"].as_array().unwrap() {
        for (reason, n) in e["entry"]["refusals"]["reasons"].as_object().unwrap() {
            reasons.extend(std::iter::repeat_n(
                reason.clone(),
                n.as_u64().unwrap() as usize,
            ));
        }
    }
    reasons
}

async fn me(app: &TestApp, http: &reqwest::Client, token: &str) -> reqwest::Response {
    http.get(app.url("/v1/clients/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn client_registration_token_and_whoami(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &["330110.001"])
        .await;
    let client = app
        .register_client("civil-affairs-app", "civil-affairs")
        .await;
    assert!(client.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let token = app.client_token(&client).await;
    // The token names the client and is bound to the certificate it was issued over.
    let payload: Value = {
        use base64::Engine;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(payload["sub"], "civil-affairs-app");
    assert_eq!(payload["aud"], "gridhub");
    assert_eq!(payload["cnf"]["x5t#S256"], client.thumbprint.as_str());
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        300
    );

    let resp = me(&app, &client.http, &token).await;
    assert_eq!(resp.status(), 200);
    let who: Value = resp.json().await.unwrap();
    assert_eq!(who["client"], "civil-affairs-app");
    assert_eq!(who["department"], "civil-affairs");
    assert_eq!(who["jurisdiction"], json!(["330110.001"]));
    assert_eq!(who["roles"], json!(["department"]));

    // The issuance is in the ledger under the client's name.
    let page: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?decision=allow&limit=1000",
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(page["entries"].as_array().unwrap().iter().any(|e| {
        e["entry"]["action"] == "auth.client_token"
            && e["entry"]["actor"]["client"] == "civil-affairs-app"
    }));
    app.stop().await;
}

async fn registration_is_validated_and_admin_only(backend: Backend) {
    let app = spawn_app(backend).await;
    // Departments: unknown grids, bad ids; only admins.
    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/departments",
            &json!({"id": "Bad Id", "name": "x", "jurisdiction": ["999999"]}),
        )
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["id", "jurisdiction[0]"]);
    let resp = app
        .post(
            &app.dpo_token,
            "/v1/admin/departments",
            &json!({"id": "health", "name": "Health", "jurisdiction": ["330110"]}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 403);
    app.create_department("health", &["330110"]).await;
    assert_eq!(
        app.post(
            &app.admin_token,
            "/v1/admin/departments",
            &json!({"id": "health", "name": "Health", "jurisdiction": ["330110"]}),
        )
        .await
        .status(),
        409
    );

    // Clients: garbage CSR, a CSR whose signature does not verify, both or neither of
    // csr_pem/certificate_pem, a bad age recipient, an unknown department.
    let (_, csr) = key_and_csr("x");
    let tampered = {
        let mut lines: Vec<String> = csr.lines().map(str::to_owned).collect();
        let mid = lines.len() / 2;
        let line = lines[mid].clone();
        let flipped: String = line
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 10 {
                    if c == 'A' { 'B' } else { 'A' }
                } else {
                    c
                }
            })
            .collect();
        lines[mid] = flipped;
        lines.join("\n")
    };
    for (body, field) in [
        (
            json!({"id": "h1", "department": "health", "csr_pem": "garbage"}),
            "csr_pem",
        ),
        (
            json!({"id": "h1", "department": "health", "csr_pem": tampered}),
            "csr_pem",
        ),
        (json!({"id": "h1", "department": "health"}), "csr_pem"),
        (
            json!({"id": "h1", "department": "health", "csr_pem": csr, "certificate_pem": "x"}),
            "csr_pem",
        ),
        (
            json!({"id": "h1", "department": "health", "csr_pem": csr, "age_recipient": "age1nope"}),
            "age_recipient",
        ),
        (
            json!({"id": "h1", "department": "nope", "csr_pem": csr}),
            "department",
        ),
    ] {
        let resp = app.post(&app.admin_token, "/v1/admin/clients", &body).await;
        let (status, code, err) = error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{body}"
        );
        assert_eq!(err["error"]["details"][0]["field"], field, "{body}");
        assert!(!err.to_string().contains("BEGIN CERTIFICATE REQUEST"));
    }
    let resp = app
        .post(
            &app.worker_token,
            "/v1/admin/clients",
            &json!({"id": "h1", "department": "health", "csr_pem": csr}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 403);
    assert_eq!(
        app.raw_count("SELECT COUNT(*) AS n FROM clients").await,
        0,
        "nothing registered"
    );
    // An externally issued certificate is registered as is (chain checked at each handshake).
    let first = app.register_client("health-a", "health").await;
    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/clients",
            &json!({"id": "health-b", "department": "health", "certificate_pem": first.cert_pem}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 409, "the same certificate twice");
    app.stop().await;
}

async fn refused_certificates_never_get_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("housing", &["330110"]).await;
    // No client certificate: TLS is fine (console users need none), the token is refused.
    let resp = app.client_token_response(&app.client).await;
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (401, "unauthenticated"));
    let registered = app.register_client("housing-app", "housing").await;
    // A hub-CA certificate of a revoked client: valid at the TLS layer, refused for a token.
    let revoked = {
        let ghost = app.register_client("housing-ghost", "housing").await;
        let resp = app
            .post(
                &app.admin_token,
                "/v1/admin/clients/housing-ghost/revoke",
                &json!({}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        ghost
    };
    let resp = app.client_token_response(&revoked.http).await;
    assert_eq!(error_code(resp).await.0, 401);
    // Unknown CA, expired, no clientAuth EKU: the handshake itself fails.
    for (what, cert, key) in app.refused_certificates() {
        let http = mtls_client(&app, &cert, &key);
        let result = http
            .post(app.url("/v1/oauth/token"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        assert!(
            result.is_err(),
            "{what}: handshake must fail, got {result:?}"
        );
    }
    // The registered client still works.
    let token = app.client_token(&registered).await;
    assert_eq!(me(&app, &registered.http, &token).await.status(), 200);
    // A bad grant type is a 400.
    let resp = registered
        .http
        .post(app.url("/v1/oauth/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 400);
    app.stop().await;
}

async fn revocation_stops_certificate_and_tokens_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("health", &["330110"]).await;
    let client = app.register_client("health-app", "health").await;
    let token = app.client_token(&client).await;
    assert_eq!(me(&app, &client.http, &token).await.status(), 200);

    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/clients/health-app/revoke",
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"id": "health-app", "status": "revoked"}));

    // The token issued before is refused on the very next request, and no new one is issued.
    let (status, code, _) = error_code(me(&app, &client.http, &token).await).await;
    assert_eq!((status, code.as_str()), (401, "unauthenticated"));
    assert_eq!(
        error_code(app.client_token_response(&client.http).await)
            .await
            .0,
        401
    );
    assert!(
        denials(&app, "auth.token")
            .await
            .contains(&"client revoked".to_owned())
    );
    assert!(
        denials(&app, "auth.client_token")
            .await
            .contains(&"client revoked".to_owned())
    );
    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/clients/nobody/revoke",
            &json!({}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 404);
    app.stop().await;
}

on_both_backends!(
    client_registration_token_and_whoami,
    registration_is_validated_and_admin_only,
    refused_certificates_never_get_a_token,
    revocation_stops_certificate_and_tokens_at_once,
);

/// Every forged, stale or misbound token is refused with 401 and each refusal is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_attack_suite() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department("public-security", &["330110"]).await;
    let a = app.register_client("police-a", "public-security").await;
    let b = app.register_client("police-b", "public-security").await;
    let token_a = app.client_token(&a).await;
    assert_eq!(me(&app, &a.http, &token_a).await.status(), 200);
    let key = HubKey::of(&app);
    // The hub's clock, which its tokens live by (it stands still unless the test moves it).
    let now = gridhub::time::Clock::now_ms(app.clock.as_ref()).div_euclid(1000);
    let good = jwt::client_claims("police-a", &a.thumbprint, now);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        c
    };
    // Sanity: the forging helper makes tokens the hub accepts when nothing is wrong.
    assert_eq!(
        me(&app, &a.http, &key.sign(key.header(), &good))
            .await
            .status(),
        200,
        "a correctly forged token must pass, or the cases below prove nothing"
    );

    let mut attacks: Vec<(&str, String)> = vec![
        ("alg none", jwt::unsigned(&good)),
        (
            "HS256 with the public key",
            jwt::hs256_with_public_key(&key, &good),
        ),
        (
            "expired",
            key.sign(
                key.header(),
                &with(&|c| {
                    c["exp"] = json!(now - 600);
                    c["nbf"] = json!(now - 900);
                }),
            ),
        ),
        (
            "not yet valid",
            key.sign(
                key.header(),
                &with(&|c| {
                    c["nbf"] = json!(now + 600);
                    c["exp"] = json!(now + 900);
                }),
            ),
        ),
        (
            "exp as a string",
            key.sign(key.header(), &with(&|c| c["exp"] = json!("9999999999"))),
        ),
        (
            "nbf as a string",
            key.sign(key.header(), &with(&|c| c["nbf"] = json!(now.to_string()))),
        ),
        (
            "missing aud",
            key.sign(
                key.header(),
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("aud");
                }),
            ),
        ),
        (
            "wrong aud",
            key.sign(key.header(), &with(&|c| c["aud"] = json!("other-service"))),
        ),
        (
            "wrong iss",
            key.sign(
                key.header(),
                &with(&|c| c["iss"] = json!("gridhub/elsewhere")),
            ),
        ),
        ("unknown kid", {
            let mut h = key.header();
            h.kid = Some("0123456789abcdef".to_owned());
            key.sign(h, &good)
        }),
        (
            "token of client A on client B's certificate",
            token_a.clone(),
        ),
        (
            "client token without cnf",
            key.sign(
                key.header(),
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("cnf");
                }),
            ),
        ),
        ("user token on a department route", app.admin_token.clone()),
        (
            "tampered payload",
            jwt::with_payload(&token_a, &with(&|c| c["sub"] = json!("police-b"))),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("empty", String::new()),
    ];
    for (i, t) in jwt::attacker_signed_with_key_headers(&good)
        .into_iter()
        .enumerate()
    {
        attacks.push((["jku header", "jwk header with kid", "jwk header"][i], t));
    }
    let before = refusals(&app, "auth.token").await.len();
    for (what, token) in &attacks {
        // Client A's token is only an attack on B's connection; the rest go over A's.
        let http = if *what == "token of client A on client B's certificate" {
            &b.http
        } else {
            &a.http
        };
        let (status, code, body) = error_code(me(&app, http, token).await).await;
        assert_eq!((status, code.as_str()), (401, "unauthenticated"), "{what}");
        if !token.is_empty() {
            assert!(
                !body.to_string().contains(token.as_str()),
                "{what}: token echoed"
            );
        }
    }
    let after = refusals(&app, "auth.token").await;
    assert_eq!(
        after.len() - before,
        attacks.len(),
        "every refusal is audited (an entry of its own, or counted in a summary): {after:?}"
    );
    assert!(after.contains(&"token bound to another certificate".to_owned()));
    assert!(after.contains(&"client token without cnf".to_owned()));
    assert!(after.contains(&"department route needs a certificate-bound client token".to_owned()));
    // The same attacks on a user route are refused as well (no cnf confusion there either).
    let (status, _, _) = error_code(
        a.http
            .get(app.url("/v1/grids"))
            .bearer_auth(jwt::unsigned(&json!({"sub": "x", "kind": "user"})))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    app.stop().await;
}

/// Console users need no client certificate; with one, a user token still works as a user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_work_with_or_without_a_client_certificate() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department("housing", &["330110"]).await;
    let c = app.register_client("housing-app", "housing").await;
    for http in [&app.client, &c.http] {
        let resp = http
            .get(app.url("/v1/audit/entries?limit=1"))
            .bearer_auth(&app.dpo_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // A client token is not a user token: the client has no `audit read` permission.
    let token = app.client_token(&c).await;
    let resp = c
        .http
        .get(app.url("/v1/audit/entries?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 403);
    app.stop().await;
}

on_both_backends!(a_client_without_the_data_role_is_refused_and_audited_whatever_it_sends);

/// The role check comes before the request is read: a client whose roles do not permit
/// `data:read` / `data:lookup` gets 403 and a `deny` entry even for an unknown category, a bad
/// limit or a malformed lookup key (not the 404 or 422 those would otherwise answer).
async fn a_client_without_the_data_role_is_refused_and_audited_whatever_it_sends(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department("civil-affairs", &[gridhub_tests::WORKER_GRID])
        .await;
    let client = app.register_client("civil-sys", "civil-affairs").await;
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/clients/civil-sys/roles",
            &json!({"roles": []}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let token = app.client_token(&client).await;
    let pull = client
        .http
        .get(app.url("/v1/data/no-such-category?purpose=elderly-care&limit=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(pull).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let lookup = client
        .http
        .post(app.url("/v1/data/no-such-category/lookup"))
        .bearer_auth(&token)
        .json(&json!({"purpose": "elderly-care", "key": {}}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(lookup).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(denials(&app, "data.read").await.len(), 1);
    assert_eq!(denials(&app, "data.lookup").await.len(), 1);
}
