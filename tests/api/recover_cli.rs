//! `gridhub admin recover` through the real binary: a data directory locked out behind the
//! hub's back (the API refuses to do it) is usable again, and the recovery is in the ledger.

use std::process::Command;

use gridhub_tests::process::{signal, start_server, wait_bounded};
use gridhub_tests::{ADMIN_PASSWORD, Backend, TestApp, client_for, login_at, on_both_backends};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

/// Run `gridhub admin recover` with `args`; its standard output.
fn recover(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["admin", "recover"])
        .args(args)
        .env_remove("GRIDHUB_ADMIN_PASSWORD")
        .env_remove("GRIDHUB_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridhub admin recover {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn permissions(app: &TestApp, role: &str) -> Vec<Value> {
    let body: Value = app
        .get(&app.admin_token, &format!("/v1/admin/roles/{role}"))
        .await
        .json()
        .await
        .unwrap();
    body["permissions"].as_array().unwrap().clone()
}

async fn admin_recover_ends_a_lock_out(backend: Backend) {
    let app = spawn_locked_out(backend).await;
    let dir = app.data_dir.path().to_path_buf();
    let database_url = app.database_url.clone();
    // Recover while the hub is stopped; `restart_after` logs the admin in with ADMIN_PASSWORD.
    let app = app
        .restart_after(move || {
            let dir_arg = dir.display().to_string();
            let said = match database_url {
                None => recover(&["--data-dir", &dir_arg, "--admin-password", ADMIN_PASSWORD]),
                Some(url) => {
                    let file = dir.join("new-admin-password");
                    std::fs::write(&file, format!("{ADMIN_PASSWORD}\n")).unwrap();
                    recover(&[
                        "--data-dir",
                        &dir_arg,
                        "--database-url",
                        &url,
                        "--password-file",
                        &file.display().to_string(),
                    ])
                }
            };
            assert!(said.contains("shipped roles restored"), "{said}");
            assert!(
                !said.contains(ADMIN_PASSWORD),
                "a given password is not printed"
            );
        })
        .await;
    // A role write by the recovered admin.
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/roles/auditor2",
            &json!({"permissions": [{"object": "audit", "action": "read"}]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    // Shipped roles are as shipped again; a role an admin added is left alone.
    let dpo = permissions(&app, "dpo").await;
    assert!(
        !dpo.iter()
            .any(|p| p["object"] == "grids" && p["action"] == "write")
    );
    assert!(
        dpo.iter()
            .any(|p| p["object"] == "audit" && p["action"] == "read")
    );
    assert_eq!(
        permissions(&app, "auditor").await,
        [json!({"object": "audit", "action": "read", "grids": ["*"]})]
    );
    // The recovery is in the ledger, by the system.
    let page: Value = app
        .get(&app.dpo_token, "/v1/audit/entries?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let recoveries: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["action"] == "admin.recover")
        .collect();
    assert_eq!(recoveries.len(), 1);
    let entry = &recoveries[0]["entry"];
    assert_eq!(entry["decision"], "allow");
    assert_eq!(entry["actor"]["user"], "system", "{entry}");
    app.stop().await;
}

/// A hub whose only admin is disabled and whose admin role lost `roles write`, both done in
/// the database directly; the DPO's role was widened and an `auditor` role added through the
/// API before.
async fn spawn_locked_out(backend: Backend) -> TestApp {
    let app = gridhub_tests::spawn_app(backend).await;
    let mut dpo = permissions(&app, "dpo").await;
    dpo.push(json!({"object": "grids", "action": "write"}));
    for (role, body) in [
        ("dpo", json!({"permissions": dpo})),
        (
            "auditor",
            json!({"permissions": [{"object": "audit", "action": "read"}]}),
        ),
    ] {
        let resp = app
            .put_json(&app.admin_token, &format!("/v1/admin/roles/{role}"), &body)
            .await;
        assert!(resp.status().is_success(), "{role}");
    }
    for sql in [
        "DELETE FROM casbin_rule WHERE ptype = 'p' AND v0 = 'admin' AND v2 = 'roles' \
         AND v3 = 'write'",
        "UPDATE users SET disabled = TRUE WHERE username = 'admin'",
        "UPDATE policy_state SET version = version + 1 WHERE id = 1",
    ] {
        app.raw_execute(sql.to_owned()).await;
    }
    assert_eq!(app.login("admin", ADMIN_PASSWORD).await.status(), 401);
    let resp = app
        .put_json(
            &app.dpo_token,
            "/v1/admin/roles/auditor",
            &json!({"permissions": []}),
        )
        .await;
    assert_eq!(resp.status(), 403, "nobody may write roles");
    app
}

on_both_backends!(admin_recover_ends_a_lock_out);

/// Without a password the recovery generates one and prints it once; `--username` names an
/// account that does not exist yet, which is created. No hub has run on the directory (the
/// roles were never seeded): the recovery seeds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_recover_creates_an_account_with_a_generated_password() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(dir)
        .args(["--admin-password", ADMIN_PASSWORD])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir_arg = dir.display().to_string();
    let said = recover(&["--data-dir", &dir_arg, "--username", "ops.admin"]);
    let line = said
        .lines()
        .find(|l| l.contains("ops.admin /"))
        .unwrap_or_else(|| panic!("no password shown: {said}"));
    let password = line.split_whitespace().nth(3).unwrap().to_owned();
    assert!(
        line.contains("created") && line.contains("shown once"),
        "{line}"
    );
    assert_eq!(password.chars().count(), 20);

    let server = start_server(BIN, dir);
    let base = format!("https://localhost:{}", server.port);
    let http = client_for(&dir.join("pki/ca.pem"));
    let token = login_at(&http, &base, "ops.admin", &password).await;
    let resp = http
        .put(format!("{base}/v1/admin/roles/auditor"))
        .bearer_auth(&token)
        .json(&json!({"permissions": [{"object": "audit", "action": "read"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // The first admin is untouched.
    login_at(&http, &base, "admin", ADMIN_PASSWORD).await;
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
    // The ledger, recovery entry included, still verifies.
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
