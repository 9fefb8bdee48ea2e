//! Login, tokens and the role checks of the skeleton (casbin replaces them in the next issue).

use gridhub_tests::{ADMIN_PASSWORD, Backend, error_code, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn login_gives_a_short_lived_eddsa_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let resp = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let token = body["access_token"].as_str().unwrap();
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_unknown_user_and_bad_tokens_are_401() {
    let app = spawn_app(Backend::Sqlite).await;
    for (user, pw) in [("admin", "wrong-password-123"), ("nobody", ADMIN_PASSWORD)] {
        let (status, code, body) = error_code(app.login(user, pw).await).await;
        assert_eq!((status, code.as_str()), (401, "unauthenticated"));
        assert!(!body.to_string().contains(pw));
    }
    let resp = app.client.get(app.url("/v1/grids")).send().await.unwrap();
    assert_eq!(error_code(resp).await.0, 401);
    for token in ["garbage", "a.b.c", &format!("{}x", app.admin_token)] {
        let (status, code, _) = error_code(app.get(token, "/v1/grids").await).await;
        assert_eq!((status, code.as_str()), (401, "unauthenticated"));
    }
    // A token from another hub (other keys) is refused.
    let other = spawn_app(Backend::Sqlite).await;
    let (status, _, _) = error_code(app.get(&other.admin_token, "/v1/grids").await).await;
    assert_eq!(status, 401);
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn only_admins_manage_users_grids_and_purposes() {
    let app = spawn_app(Backend::Sqlite).await;
    let user =
        json!({"username": "mallory", "password": "long-enough-password", "roles": ["admin"]});
    let (status, code, _) =
        error_code(app.post(&app.worker_token, "/v1/admin/users", &user).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let grid = json!({"code": "330110.001.001.009", "name": "新网格", "kind": "physical"});
    assert_eq!(
        app.post(&app.worker_token, "/v1/grids", &grid)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post(&app.admin_token, "/v1/grids", &grid)
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post(&app.admin_token, "/v1/grids", &grid)
            .await
            .status(),
        409
    );
    let orphan = json!({"code": "330199.001", "name": "孤儿", "kind": "physical"});
    let (status, _, body) =
        error_code(app.post(&app.admin_token, "/v1/grids", &orphan).await).await;
    assert_eq!(status, 422, "{body}");
    let logical = json!({"code": "L.court-execution", "name": "法院执行网格", "kind": "logical"});
    assert_eq!(
        app.post(&app.admin_token, "/v1/grids", &logical)
            .await
            .status(),
        201
    );

    let purpose = json!({"id": "library-cards", "description": "Issuing library cards", "legal_basis": "Public Library Law"});
    assert_eq!(
        app.post(&app.worker_token, "/v1/purposes", &purpose)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post(&app.admin_token, "/v1/purposes", &purpose)
            .await
            .status(),
        201
    );
    let list: Value = app
        .get(&app.worker_token, "/v1/purposes")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for shipped in [
        "population-registration",
        "elderly-care",
        "epidemic-prevention",
        "rental-registration",
        "case-investigation",
        "court-execution",
        "library-cards",
    ] {
        assert!(ids.contains(&shipped), "{shipped} missing");
    }
    // A new user can log in; a duplicate username is a conflict; unknown roles are refused.
    let worker2 = json!({"username": "worker2", "password": "another-long-password", "roles": ["grid_worker"], "grids": ["330110.002.001"]});
    assert_eq!(
        app.post(&app.admin_token, "/v1/admin/users", &worker2)
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post(&app.admin_token, "/v1/admin/users", &worker2)
            .await
            .status(),
        409
    );
    assert_eq!(
        app.login("worker2", "another-long-password").await.status(),
        200
    );
    let bad_role =
        json!({"username": "eve", "password": "another-long-password", "roles": ["superuser"]});
    let (status, _, body) = error_code(
        app.post(&app.admin_token, "/v1/admin/users", &bad_role)
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(!body.to_string().contains("another-long-password"));
    app.stop().await;
}

#[tokio::test]
async fn catalog_serves_the_normative_person_fields() {
    let app = spawn_app(Backend::Sqlite).await;
    let catalog: Value = app
        .get(&app.worker_token, "/v1/catalog")
        .await
        .json()
        .await
        .unwrap();
    let person = catalog["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "person")
        .unwrap();
    let names: Vec<&str> = person["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "name",
            "id_number",
            "gender",
            "birth_date",
            "phone",
            "address",
            "household_id",
            "residence",
            "tags",
            "worker_notes"
        ]
    );
    let notes = person["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "worker_notes")
        .unwrap();
    assert_eq!(notes["share"], "none");
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_openapi_and_request_ids() {
    let app = spawn_app(Backend::Sqlite).await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "sqlite");
    // A hostile request id is replaced, not reflected.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], "bad id\twith spaces");
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/auth/login",
        "/v1/admin/users",
        "/v1/grids",
        "/v1/catalog",
        "/v1/purposes",
        "/v1/records",
        "/v1/records/batch",
        "/v1/records/{id}",
        "/healthz",
        "/readyz",
        "/.well-known/jwks.json",
        "/v1/grants",
        "/v1/grants/{id}/approve",
        "/v1/grants/{id}/artefact",
        "/v1/cases",
        "/v1/cases/{id}/assign",
        "/v1/decisions/explain",
        "/v1/data/{category}",
        "/v1/data/{category}/lookup",
        "/v1/audit/subjects/{id}/report",
        "/v1/audit/anomalies",
    ] {
        assert!(paths.contains_key(p), "{p} missing from openapi.json");
    }
    for m in ["get", "patch", "delete"] {
        assert!(
            paths["/v1/records/{id}"].get(m).is_some(),
            "{m} /v1/records/{{id}} undocumented"
        );
    }
    app.stop().await;
}
