//! No admin lock-out: a role or assignment change that would leave no active user able to write
//! roles is 409 `last_role_admin`, audited, and changes nothing — also when two such changes race.

use gridhub::auth::role_administrators::KeepsARoleAdministrator;
use gridhub::storage::{Apply, Guarded, PolicyGuard, PolicySnapshot};
use gridhub_tests::{Backend, TestApp, error_code, on_both_backends, spawn_app};
use serde_json::{Value, json};

/// A user's id, from its token's `sub`.
fn user_id(token: &str) -> String {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

async fn role(app: &TestApp, name: &str) -> Value {
    let resp = app
        .get(&app.admin_token, &format!("/v1/admin/roles/{name}"))
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `(action, reason)` of the ledger entries with `decision`.
async fn entries(app: &TestApp, decision: &str) -> Vec<(String, String)> {
    let page: Value = app
        .get(
            &app.dpo_token,
            &format!("/v1/audit/entries?decision={decision}&limit=1000"),
        )
        .await
        .json()
        .await
        .unwrap();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entry"]["action"].as_str().unwrap().to_owned(),
                e["entry"]["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn create_admin(app: &TestApp, username: &str) -> String {
    let password = format!("{username}-password-ok");
    let resp = app
        .post(
            &app.admin_token,
            "/v1/admin/users",
            &json!({"username": username, "password": password, "roles": ["admin"]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    app.token(username, &password).await
}

const LOCK_OUT: &str = "would leave no active user able to write roles";

async fn a_change_that_would_lock_out_every_admin_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = role(&app, "admin").await;
    let all = admin["permissions"].as_array().unwrap().clone();
    let without: Vec<Value> = all
        .iter()
        .filter(|p| !(p["object"] == "roles" && p["action"] == "write"))
        .cloned()
        .collect();
    assert_eq!(without.len() + 1, all.len());
    let lock_out = json!({"permissions": without});

    // The request: refused, with a message that says what to do; nothing changed.
    let resp = app
        .put_json(&app.admin_token, "/v1/admin/roles/admin", &lock_out)
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (409, "last_role_admin"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("gridhub admin recover"), "{message}");
    assert_eq!(role(&app, "admin").await, admin);
    // Role writes still work.
    let auditor = json!({"permissions": [{"object": "audit", "action": "read"}]});
    let resp = app
        .put_json(&app.admin_token, "/v1/admin/roles/auditor", &auditor)
        .await;
    assert_eq!(resp.status(), 201);

    // Taking `admin` from its only active holder: refused. A disabled admin does not count.
    let _ = create_admin(&app, "admin2").await;
    app.raw_execute("UPDATE users SET disabled = TRUE WHERE username = 'admin2'".to_owned())
        .await;
    let me = user_id(&app.admin_token);
    let resp = app
        .put_json(
            &app.admin_token,
            &format!("/v1/admin/users/{me}/roles"),
            &json!({"roles": ["dpo"]}),
        )
        .await;
    let (status, code, _) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (409, "last_role_admin"));
    let resp = app
        .put_json(&app.admin_token, "/v1/admin/roles/auditor", &auditor)
        .await;
    assert_eq!(resp.status(), 200, "still an admin");

    // Decided as requests are: once the DPO's role may write roles, the admin role may lose
    // it, and then the DPO is the one nobody may take it from.
    let mut dpo = role(&app, "dpo").await["permissions"]
        .as_array()
        .unwrap()
        .clone();
    dpo.push(json!({"object": "roles", "action": "write"}));
    dpo.push(json!({"object": "users", "action": "write"}));
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/dpo",
            &json!({"permissions": dpo}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .put_json(&app.admin_token, "/v1/admin/roles/admin", &lock_out)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        error_code(
            app.put_json(&app.admin_token, "/v1/admin/roles/auditor", &auditor)
                .await
        )
        .await
        .0,
        403
    );
    let dpo_id = user_id(&app.dpo_token);
    let resp = app
        .put_json(
            &app.dpo_token,
            &format!("/v1/admin/users/{dpo_id}/roles"),
            &json!({"roles": ["grid_worker"]}),
        )
        .await;
    assert_eq!(error_code(resp).await.1, "last_role_admin");
    let resp = app
        .put_json(&app.dpo_token, "/v1/admin/roles/auditor", &auditor)
        .await;
    assert_eq!(resp.status(), 200);

    // Every refusal is a denial in the ledger; a refused change never an allowed one.
    let denied = entries(&app, "deny").await;
    let refusals = |action: &str| {
        denied
            .iter()
            .filter(|(a, r)| a == action && r.contains(LOCK_OUT))
            .count()
    };
    assert_eq!(refusals("role.update"), 1);
    assert_eq!(refusals("user.roles"), 2);
    let admin_changes = entries(&app, "allow")
        .await
        .into_iter()
        .filter(|(a, r)| a == "role.update" && r.starts_with("role admin:"))
        .count();
    assert_eq!(admin_changes, 1, "only the change that was made");
    app.stop().await;
}

/// Two admins take `admin` from each other at the same time: each change alone leaves one
/// admin, both together none. Exactly one passes, whichever order they are served in.
async fn concurrent_changes_cannot_both_remove_the_last_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = create_admin(&app, "admin2").await;
    let (me, them) = (user_id(&app.admin_token), user_id(&other));
    let demote = json!({"roles": ["dpo"]});
    let (theirs, mine) = (
        format!("/v1/admin/users/{them}/roles"),
        format!("/v1/admin/users/{me}/roles"),
    );
    let (first, second) = tokio::join!(
        app.put_json(&app.admin_token, &theirs, &demote),
        app.put_json(&other, &mine, &demote),
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    // The loser is 409, or 403 if the winner had committed before its request was authorized.
    assert!(
        statuses == [200, 409] || statuses == [200, 403],
        "{statuses:?}"
    );
    let admins = app
        .raw_count(
            "SELECT COUNT(*) AS n FROM user_roles r JOIN users u ON u.id = r.user_id \
             WHERE r.role = 'admin' AND NOT u.disabled",
        )
        .await;
    assert_eq!(admins, 1);
    // Whoever is left still administers roles.
    let survivor = if first.status() == 200 {
        app.admin_token.clone()
    } else {
        other
    };
    let resp = app
        .put_json(
            &survivor,
            "/v1/admin/roles/auditor",
            &json!({"permissions": [{"object": "audit", "action": "read"}]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    app.stop().await;
}

on_both_backends!(
    a_change_that_would_lock_out_every_admin_is_refused,
    concurrent_changes_cannot_both_remove_the_last_admins,
);

/// A guard that stops inside its transaction until released, then decides as the hub does.
struct Paused {
    entered: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

#[async_trait::async_trait]
impl PolicyGuard for Paused {
    async fn admits(&self, after: &PolicySnapshot) -> bool {
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
        }
        if let Some(release) = self.release.lock().await.take() {
            release.await.unwrap();
        }
        KeepsARoleAdministrator.admits(after).await
    }
}

/// PostgreSQL runs transactions side by side (SQLite's one writer queues them): while one
/// demotion sits inside its transaction, checked but not committed, the other must wait for it
/// — at its first statement, the policy lock — and then see it and be refused. Deterministic:
/// the second is known to be waiting (`pg_locks`) before the first is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demotion_waits_for_one_in_flight_on_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let other = create_admin(&app, "admin2").await;
    let (me, them) = (user_id(&app.admin_token), user_id(&other));
    let (entered_tx, entered) = tokio::sync::oneshot::channel();
    let (release, release_rx) = tokio::sync::oneshot::channel();
    let paused = std::sync::Arc::new(Paused {
        entered: std::sync::Mutex::new(Some(entered_tx)),
        release: tokio::sync::Mutex::new(Some(release_rx)),
    });
    let demote = |id: String, guard: std::sync::Arc<dyn PolicyGuard>| {
        let store = app.state.store.clone();
        tokio::spawn(async move {
            store
                .set_user_roles(&id, &["dpo".to_owned()], guard.as_ref(), Apply::Commit)
                .await
                .unwrap()
        })
    };
    let first = demote(them, paused);
    entered.await.unwrap();
    let second = demote(me, std::sync::Arc::new(KeepsARoleAdministrator));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while app
        .raw_count(
            "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.datname = current_database()",
        )
        .await
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second demotion never waited for the first"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap(), Guarded::Admitted(true));
    assert_eq!(second.await.unwrap(), Guarded::Refused);
    app.stop().await;
}
