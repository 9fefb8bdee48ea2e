//! The console's admin pages for people and places (issue 20, item 8): users, departments with
//! their jurisdiction, grids as a tree, purposes. `tests/console/admin.mjs` drives them in
//! headless Chromium (in three phases: create and change, disable, enable); this test sets the
//! hub up and checks on the hub's side, through the API and the ledger, that what the browser
//! did happened: the grid, purpose, department and user exist as the forms said, the new user
//! logs in, a disabled user cannot log in and its earlier token and console session stop
//! working, re-enabled it can again; every action is in the ledger under the admin. Also: a
//! grid worker and a DPO get 403 pages (audited), an admin cannot disable itself (409
//! `cannot_disable_self`, audited), a form without the CSRF token changes nothing, and the new
//! API routes refuse those without `users:write` / `departments:write`.

use gridhub_tests::{
    Backend, OTHER_GRID, TestApp, WORKER_GRID, error_code, on_both_backends, spawn_app,
};
use serde_json::{Value, json};

use crate::console::{Browserless, csrf_of, location, run_browser};
use crate::grants::entries_of;

const NEW_GRID: &str = "330110.001.002";
const NEW_PURPOSE: &str = "flood-relief";
const NEW_DEPARTMENT: &str = "flood-control";
const EXISTING_DEPARTMENT: &str = "health";
const NEW_USER: &str = "grid.worker2";
const NEW_PASSWORD: &str = "a-long-initial-password-2026";

async fn json_of(app: &TestApp, token: &str, path: &str) -> Value {
    let resp = app.get(token, path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// The user named `username`, as `GET /v1/admin/users` lists it.
async fn listed_user(app: &TestApp, username: &str) -> Option<Value> {
    let list = json_of(app, &app.admin_token, "/v1/admin/users").await;
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .cloned()
}

async fn jurisdiction_of(app: &TestApp, department: &str) -> Value {
    let list = json_of(app, &app.admin_token, "/v1/admin/departments").await;
    list["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == department)
        .unwrap_or_else(|| panic!("department {department} is not listed"))["jurisdiction"]
        .clone()
}

/// Is there an `allow` entry `action` by user `admin` whose reason starts with `reason`?
async fn recorded(app: &TestApp, action: &str, admin: &str, reason: &str) -> bool {
    entries_of(app, action).await.iter().any(|e| {
        e["decision"] == "allow"
            && e["actor"]["user"] == admin
            && e["reason"].as_str().is_some_and(|r| r.starts_with(reason))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_people_and_places_in_a_real_browser() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_department(EXISTING_DEPARTMENT, &["330110.001"])
        .await;
    let admin = listed_user(&app, "admin").await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pick = format!("{NEW_GRID},{OTHER_GRID}");

    // --- Phase 1: create and change in the browser.
    let steps = run_browser(
        &app,
        "admin.mjs",
        &[
            ("PHASE", "pages".to_owned()),
            ("NEW_GRID", NEW_GRID.to_owned()),
            ("NEW_GRID_NAME", "江滨街道".to_owned()),
            ("NEW_PURPOSE", NEW_PURPOSE.to_owned()),
            ("NEW_DEPARTMENT", NEW_DEPARTMENT.to_owned()),
            ("PICK_GRIDS", pick),
            ("EXISTING_DEPARTMENT", EXISTING_DEPARTMENT.to_owned()),
            ("NEW_JURISDICTION", "330110.002".to_owned()),
            ("NEW_USER", NEW_USER.to_owned()),
            ("NEW_PASSWORD", NEW_PASSWORD.to_owned()),
            ("USER_GRID", WORKER_GRID.to_owned()),
            ("EXTRA_GRID", OTHER_GRID.to_owned()),
            ("EXTRA_ROLE", "grid_center".to_owned()),
        ],
    );
    assert_eq!(steps["forbidden"].len(), 2, "a worker and a DPO tried");

    // The grid, under its parent, and the purpose: in the API's lists.
    let grids = json_of(&app, &app.worker_token, "/v1/grids").await;
    assert!(
        grids["grids"]
            .as_array()
            .unwrap()
            .contains(&json!({"code": NEW_GRID, "name": "江滨街道", "kind": "physical"})),
        "{grids}"
    );
    let purposes = json_of(&app, &app.worker_token, "/v1/purposes").await;
    let purpose = purposes["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == NEW_PURPOSE)
        .expect("the purpose is registered");
    assert!(
        purpose["legal_basis"]
            .as_str()
            .unwrap()
            .contains("第十三条")
    );

    // The department with the grids picked in the tree; the other one's new jurisdiction.
    assert_eq!(
        jurisdiction_of(&app, NEW_DEPARTMENT).await,
        json!([NEW_GRID, OTHER_GRID])
    );
    assert_eq!(
        jurisdiction_of(&app, EXISTING_DEPARTMENT).await,
        json!(["330110.002"])
    );
    assert_eq!(steps["department_refused"][0]["status"], 422);

    // The user, with the roles and grids its page gave it.
    let user = listed_user(&app, NEW_USER).await.expect("the user exists");
    let user_id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(steps["user"][0]["id"], user_id.as_str());
    assert_eq!(user["roles"], json!(["grid_center", "grid_worker"]));
    assert_eq!(user["grids"], json!([WORKER_GRID, OTHER_GRID]));
    assert_eq!(user["status"], "active");
    assert!(user.get("password_hash").is_none(), "{user}");

    // Each action is in the ledger, under the admin.
    for (action, reason) in [
        ("grid.create", format!("grid {NEW_GRID}")),
        ("purpose.create", format!("purpose {NEW_PURPOSE}")),
        (
            "department.create",
            format!("department {NEW_DEPARTMENT} with jurisdiction {NEW_GRID},{OTHER_GRID}"),
        ),
        (
            "department.jurisdiction",
            format!("department {EXISTING_DEPARTMENT}: jurisdiction 330110.002 (was 330110.001)"),
        ),
        (
            "user.create",
            format!("user {user_id} with roles grid_worker"),
        ),
        (
            "user.roles",
            format!("user {user_id}: roles grid_center,grid_worker"),
        ),
        (
            "user.grids",
            format!("user {user_id}: grids {WORKER_GRID},{OTHER_GRID}"),
        ),
    ] {
        assert!(
            recorded(&app, action, &admin, &reason).await,
            "no `{action}` entry `{reason}`"
        );
    }
    // The rotate button on the ledger page: the case texts' KEK has a second, active version,
    // shown there at once; the rotation is in the ledger under the admin.
    let shown = &steps["rotate"][0]["shown"];
    assert!(
        shown
            .as_array()
            .unwrap()
            .contains(&json!({"version": 2, "current": true, "state": "active"})),
        "{shown}"
    );
    assert!(
        steps["rotate"][0]["notice"]
            .as_str()
            .unwrap()
            .contains("case-texts")
    );
    let keys = json_of(&app, &app.admin_token, "/v1/admin/keys").await;
    let case_texts = keys["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "case-texts")
        .unwrap();
    assert!(
        case_texts["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == 2 && v["state"] == "active"),
        "{keys}"
    );
    let rotations = entries_of(&app, "keys.rotate").await;
    assert!(
        rotations
            .iter()
            .any(|e| e["decision"] == "allow" && e["actor"]["user"] == admin),
        "{rotations:?}"
    );

    // The worker's and the DPO's attempts on the pages are refusals in the ledger.
    for action in [
        "user.read",
        "console.departments",
        "console.grids",
        "console.purposes",
    ] {
        let denied = entries_of(&app, action).await;
        for who in ["worker", "dpo"] {
            let id = listed_user(&app, who).await.unwrap()["id"].clone();
            assert!(
                denied
                    .iter()
                    .any(|e| e["decision"] == "deny" && e["actor"]["user"] == id),
                "no refusal `{action}` of {who}"
            );
        }
    }

    // The new user logs in (API and console), and its token works.
    let token = app.token(NEW_USER, NEW_PASSWORD).await;
    assert_eq!(app.get(&token, "/v1/grids").await.status(), 200);
    let mut its_console = Browserless::new(&app);
    assert_eq!(
        its_console.login(NEW_USER, NEW_PASSWORD).await.status(),
        303
    );
    assert_eq!(its_console.get("/console/").await.status(), 200);

    // A form without the session's CSRF token creates nothing and is a refusal in the ledger.
    let mut admin_console = Browserless::new(&app);
    admin_console
        .login("admin", gridhub_tests::ADMIN_PASSWORD)
        .await;
    let before = entries_of(&app, "console.csrf").await.len();
    let forged = admin_console
        .post(
            "/console/users",
            &[
                ("username", "forged.user"),
                ("password", NEW_PASSWORD),
                ("roles", "admin"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert!(listed_user(&app, "forged.user").await.is_none());
    let forged = admin_console
        .post(
            &format!("/console/users/{user_id}/disable"),
            &[("csrf", "not-the-token")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(
        listed_user(&app, NEW_USER).await.unwrap()["status"],
        "active"
    );
    let csrf = entries_of(&app, "console.csrf").await;
    assert_eq!(csrf.len(), before + 2);
    assert!(csrf.iter().all(|e| e["decision"] == "deny"));

    // An admin cannot disable itself: not in the console, not through the API; both audited.
    let csrf = csrf_of(admin_console.get(&format!("/console/users/{admin}")).await).await;
    let own = admin_console
        .post(
            &format!("/console/users/{admin}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(own.status(), 409);
    assert!(own.text().await.unwrap().contains("cannot_disable_self"));
    let (status, code, _) = error_code(
        app.post(
            &app.admin_token,
            &format!("/v1/admin/users/{admin}/disable"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "cannot_disable_self"));
    let refusals: Vec<Value> = entries_of(&app, "user.disable")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "deny" && e["actor"]["user"] == admin.as_str())
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(app.get(&app.admin_token, "/v1/grids").await.status(), 200);

    // --- Phase 2: disabled in the browser. No login, no token, no console session.
    run_browser(
        &app,
        "admin.mjs",
        &[
            ("PHASE", "disable".to_owned()),
            ("USER_ID", user_id.clone()),
        ],
    );
    assert_eq!(
        listed_user(&app, NEW_USER).await.unwrap()["status"],
        "disabled"
    );
    assert!(recorded(&app, "user.disable", &admin, &format!("user {user_id}")).await);
    assert_eq!(app.login(NEW_USER, NEW_PASSWORD).await.status(), 401);
    let (status, code, _) = error_code(app.get(&token, "/v1/grids").await).await;
    assert_eq!(
        (status, code.as_str()),
        (401, "unauthenticated"),
        "the earlier token"
    );
    let ended = its_console.get("/console/").await;
    assert_eq!(ended.status(), 303, "the console session ended");
    assert!(location(&ended).starts_with("/console/login"));
    let mut again = Browserless::new(&app);
    assert_eq!(again.login(NEW_USER, NEW_PASSWORD).await.status(), 401);

    // --- Phase 3: enabled again in the browser; it logs in again.
    run_browser(
        &app,
        "admin.mjs",
        &[("PHASE", "enable".to_owned()), ("USER_ID", user_id.clone())],
    );
    assert_eq!(
        listed_user(&app, NEW_USER).await.unwrap()["status"],
        "active"
    );
    assert!(recorded(&app, "user.enable", &admin, &format!("user {user_id}")).await);
    let token = app.token(NEW_USER, NEW_PASSWORD).await;
    assert_eq!(app.get(&token, "/v1/grids").await.status(), 200);

    // Screenshots of every page of the section in both languages.
    let screens =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screens");
    for page in [
        "users",
        "user",
        "departments",
        "department",
        "grids",
        "purposes",
    ] {
        for lang in ["zh", "en"] {
            let shot = screens.join(format!("{page}.{lang}.png"));
            assert!(shot.exists(), "{}", shot.display());
        }
    }
    drop(app.stop().await);
}

/// The API twins of the pages, on both backends (the browser test runs on SQLite).
async fn the_user_and_jurisdiction_routes_are_for_admins_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_department(EXISTING_DEPARTMENT, &["330110.001"])
        .await;
    let worker = listed_user(&app, "worker").await.unwrap();
    let worker_id = worker["id"].as_str().unwrap();
    assert_eq!(worker["roles"], json!(["grid_worker"]));
    assert_eq!(worker["grids"], json!([WORKER_GRID]));
    let one = json_of(
        &app,
        &app.admin_token,
        &format!("/v1/admin/users/{worker_id}"),
    )
    .await;
    assert_eq!(one, worker);

    for token in [&app.dpo_token, &app.worker_token] {
        let denied = [
            app.get(token, "/v1/admin/users").await,
            app.get(token, &format!("/v1/admin/users/{worker_id}"))
                .await,
            app.put_json(
                token,
                &format!("/v1/admin/users/{worker_id}/grids"),
                &json!({"grids": [OTHER_GRID]}),
            )
            .await,
            app.post(
                token,
                &format!("/v1/admin/users/{worker_id}/disable"),
                &json!({}),
            )
            .await,
            app.post(
                token,
                &format!("/v1/admin/users/{worker_id}/enable"),
                &json!({}),
            )
            .await,
            app.put_json(
                token,
                &format!("/v1/admin/departments/{EXISTING_DEPARTMENT}/jurisdiction"),
                &json!({"jurisdiction": ["330110.002"]}),
            )
            .await,
        ];
        for resp in denied {
            let (status, code, _) = error_code(resp).await;
            assert_eq!((status, code.as_str()), (403, "forbidden"));
        }
    }
    assert_eq!(
        listed_user(&app, "worker").await.unwrap(),
        worker,
        "nothing changed"
    );
    assert_eq!(
        jurisdiction_of(&app, EXISTING_DEPARTMENT).await,
        json!(["330110.001"])
    );

    // The admin's answers: grids replaced (a grid worker keeps at least one), jurisdiction
    // replaced (at least one known grid), unknown ids 404.
    let resp = app
        .put_json(
            &app.admin_token,
            &format!("/v1/admin/users/{worker_id}/grids"),
            &json!({"grids": [OTHER_GRID, WORKER_GRID, OTHER_GRID]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"id": worker_id, "grids": [WORKER_GRID, OTHER_GRID]})
    );
    let (status, code, body) = error_code(
        app.put_json(
            &app.admin_token,
            &format!("/v1/admin/users/{worker_id}/grids"),
            &json!({"grids": []}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    assert_eq!(body["error"]["details"][0]["field"], "grids");
    let (status, code, body) = error_code(
        app.put_json(
            &app.admin_token,
            &format!("/v1/admin/departments/{EXISTING_DEPARTMENT}/jurisdiction"),
            &json!({"jurisdiction": ["330110.002", "330199"]}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    assert_eq!(body["error"]["details"][0]["field"], "jurisdiction[1]");
    let resp = app
        .put_json(
            &app.admin_token,
            &format!("/v1/admin/departments/{EXISTING_DEPARTMENT}/jurisdiction"),
            &json!({"jurisdiction": ["330110.002"]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["jurisdiction"],
        json!(["330110.002"])
    );
    for resp in [
        app.post(
            &app.admin_token,
            "/v1/admin/users/nobody/disable",
            &json!({}),
        )
        .await,
        app.put_json(
            &app.admin_token,
            "/v1/admin/departments/nowhere/jurisdiction",
            &json!({"jurisdiction": ["330110.002"]}),
        )
        .await,
    ] {
        assert_eq!(error_code(resp).await.1, "not_found");
    }

    // Someone who may manage users but not roles cannot disable the last admin who may
    // write roles: 409 `last_role_admin`, audited, nothing changed.
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/user-manager",
            &json!({"permissions": [{"object": "users", "action": "write", "grids": ["*"]}]}),
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/users",
            &json!({"username": "ops", "password": NEW_PASSWORD, "roles": ["user-manager"]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let ops = app.token("ops", NEW_PASSWORD).await;
    let admin = listed_user(&app, "admin").await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, code, _) = error_code(
        app.post(
            &ops,
            &format!("/v1/admin/users/{admin}/disable"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "last_role_admin"));
    assert_eq!(
        listed_user(&app, "admin").await.unwrap()["status"],
        "active"
    );
    assert!(
        entries_of(&app, "user.disable")
            .await
            .iter()
            .any(|e| e["decision"] == "deny" && e["reason"].as_str().unwrap().contains("roles")),
        "the refusal is in the ledger"
    );

    // Disabling the worker through the API: its token stops working at once; enabled, it
    // logs in again.
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/admin/users/{worker_id}/disable"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"id": worker_id, "status": "disabled"})
    );
    assert_eq!(app.get(&app.worker_token, "/v1/grids").await.status(), 401);
    let resp = app
        .post(
            &app.admin_token,
            &format!("/v1/admin/users/{worker_id}/enable"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.get(&app.worker_token, "/v1/grids").await.status(), 200);
    drop(app.stop().await);
}

on_both_backends!(the_user_and_jurisdiction_routes_are_for_admins_only);
