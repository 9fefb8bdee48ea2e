//! Role permissions through casbin: admins change them and the next request follows; nobody
//! else can; grid-limited permissions stop at the subtree's edge; login throttling.

use gridhub_tests::{
    Backend, DPO_PASSWORD, OTHER_GRID, WORKER_GRID, error_code, on_both_backends, person, spawn_app,
};
use serde_json::{Value, json};

async fn an_admins_role_change_decides_the_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let grid = json!({"code": "330110.001.009", "name": "新网格", "kind": "physical"});
    // Shipped: the DPO may not create grids.
    let (status, code, _) = error_code(app.post(&app.dpo_token, "/v1/grids", &grid).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));

    let dpo: Value = app
        .get(&app.admin_token, "/v1/admin/roles/dpo")
        .await
        .json()
        .await
        .unwrap();
    let mut permissions = dpo["permissions"].as_array().unwrap().clone();
    assert!(permissions.iter().any(|p| p["object"] == "audit"));
    permissions.push(json!({"object": "grids", "action": "write"}));
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/dpo",
            &json!({"permissions": permissions}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Same token, next request: allowed.
    assert_eq!(
        app.post(&app.dpo_token, "/v1/grids", &grid).await.status(),
        201
    );

    // Taken away again: refused again.
    permissions.pop();
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/dpo",
            &json!({"permissions": permissions}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let other = json!({"code": "330110.001.010", "name": "又一网格", "kind": "physical"});
    assert_eq!(
        error_code(app.post(&app.dpo_token, "/v1/grids", &other).await)
            .await
            .0,
        403
    );

    // Non-admins cannot change roles (and the attempt is audited).
    let resp = app
        .put_json(
            &app.dpo_token,
            "/v1/admin/roles/dpo",
            &json!({"permissions": [{"object": "roles", "action": "write"}]}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 403);
    let page: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?decision=deny&limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let denied: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["action"] == "role.update")
        .collect();
    assert_eq!(denied.len(), 1);
    // Every accepted change is an entry too.
    let page: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?decision=allow&limit=1000",
        )
        .await
        .json()
        .await
        .unwrap();
    let changes = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["action"] == "role.update")
        .count();
    assert_eq!(changes, 2);
    app.stop().await;
}

async fn grid_limited_permissions_stop_at_the_subtree(backend: Backend) {
    let app = spawn_app(backend).await;
    let record = person(
        WORKER_GRID,
        "张三",
        &gridhub_tests::id_number("33010219900101123"),
        "13812345678",
    );
    assert_eq!(
        app.post(&app.worker_token, "/v1/records", &record)
            .await
            .status(),
        201
    );
    // Limit grid workers' writes to the other district: the worker (assigned WORKER_GRID) can
    // no longer write in its own grid, since its role and the permission no longer overlap.
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/grid_worker",
            &json!({"permissions": [
                {"object": "records", "action": "read"},
                {"object": "records", "action": "write", "grids": ["330110.002"]},
            ]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!({"object": "records", "action": "write", "grids": ["330110.002"]}))
    );
    let (status, code, _) =
        error_code(app.post(&app.worker_token, "/v1/records", &record).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    // A grid worker assigned in the other district writes there: role and permission overlap.
    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/users",
            &json!({"username": "worker2", "password": "worker2-password-ok", "roles": ["grid_worker"], "grids": [OTHER_GRID]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let worker2 = app.token("worker2", "worker2-password-ok").await;
    let other = person(
        OTHER_GRID,
        "李四",
        &gridhub_tests::id_number("33010219900101124"),
        "13812345679",
    );
    assert_eq!(
        app.post(&worker2, "/v1/records", &other).await.status(),
        201
    );
    assert_eq!(
        error_code(app.post(&worker2, "/v1/records", &record).await)
            .await
            .0,
        403,
        "not assigned there"
    );
    app.stop().await;
}

async fn roles_api_refuses_what_is_not_in_the_vocabulary(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, body, field) in [
        (
            "/v1/admin/roles/auditor",
            json!({"permissions": [{"object": "secrets", "action": "read"}]}),
            "permissions[0].object",
        ),
        (
            "/v1/admin/roles/auditor",
            json!({"permissions": [{"object": "audit", "action": "delete"}]}),
            "permissions[0].action",
        ),
        (
            "/v1/admin/roles/auditor",
            json!({"permissions": [{"object": "audit", "action": "read", "grids": ["330110"]}]}),
            "permissions[0].grids[0]",
        ),
        (
            "/v1/admin/roles/auditor",
            json!({"permissions": [{"object": "records", "action": "read", "grids": ["999999"]}]}),
            "permissions[0].grids[0]",
        ),
        (
            "/v1/admin/roles/auditor",
            json!({"permissions": [{"object": "records", "action": "read", "grids": ["r.dom || true"]}]}),
            "permissions[0].grids[0]",
        ),
        (
            "/v1/admin/roles/Bad%20Role",
            json!({"permissions": []}),
            "role",
        ),
    ] {
        let (status, code, err) =
            error_code(app.put_json(&app.admin_token, path, &body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{body}"
        );
        assert_eq!(err["error"]["details"][0]["field"], field, "{body}");
    }
    // A new role, assigned to a user, works on the next request.
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/auditor",
            &json!({"description": "reads the ledger", "permissions": [{"object": "audit", "action": "read"}]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        error_code(app.get(&app.worker_token, "/v1/audit/entries").await)
            .await
            .0,
        403
    );
    let roles: Value = app
        .get(&app.admin_token, "/v1/admin/roles")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "admin",
            "auditor",
            "department",
            "dpo",
            "grid_center",
            "grid_worker"
        ]
    );
    let worker_id = worker_id(&app).await;
    let resp = app
        .put_json(
            &app.admin_token,
            &format!("/v1/admin/users/{worker_id}/roles"),
            &json!({"roles": ["grid_worker", "auditor"]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.get(&app.worker_token, "/v1/audit/entries")
            .await
            .status(),
        200
    );
    let resp = app
        .put_json(
            &app.admin_token,
            &format!("/v1/admin/users/{worker_id}/roles"),
            &json!({"roles": ["ghost"]}),
        )
        .await;
    assert_eq!(error_code(resp).await.0, 422);
    app.stop().await;
}

/// The worker's user id, from its token's `sub`.
async fn worker_id(app: &gridhub_tests::TestApp) -> String {
    use base64::Engine;
    let part = app.worker_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

on_both_backends!(
    an_admins_role_change_decides_the_next_request,
    grid_limited_permissions_stop_at_the_subtree,
    roles_api_refuses_what_is_not_in_the_vocabulary,
);

/// Failed logins are throttled per username (5 in 15 minutes by default): the sixth attempt is
/// 429 even with the right password; other users are unaffected; refusals are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_throttled_per_user() {
    let app = spawn_app(Backend::Sqlite).await;
    for _ in 0..5 {
        assert_eq!(app.login("dpo", "wrong-password-000").await.status(), 401);
    }
    let resp = app.login("dpo", DPO_PASSWORD).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "retry-after {retry}");
    let (_, code, _) = error_code(resp).await;
    assert_eq!(code, "rate_limited");
    assert_eq!(
        app.login("admin", gridhub_tests::ADMIN_PASSWORD)
            .await
            .status(),
        200
    );
    let page: Value = app
        .get(
            &app.admin_token,
            "/v1/audit/entries?decision=deny&limit=1000",
        )
        .await
        .json()
        .await
        .unwrap();
    let throttled = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["reason"] == "too many failed logins for this username or address")
        .count();
    assert_eq!(throttled, 1);
    app.stop().await;
}
