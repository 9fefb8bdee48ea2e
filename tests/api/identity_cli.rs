//! Identity through the real binary: demo departments with their certificates, the
//! `--insecure-http` dev listener, and token-key rotation across a restart.

use std::process::Command;

use gridhub_tests::mtls::mtls_client_for_dir;
use gridhub_tests::process::{drain, signal, start_server, start_server_with, wait_bounded};
use gridhub_tests::{client_for, login_at};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

fn run(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridhub {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn kid(token: &str) -> String {
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_departments_get_tokens_with_their_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(&["demo", "--residents", "50", "--no-serve"], dir);
    let clients = dir.join("clients");
    let mut names: Vec<String> = std::fs::read_dir(&clients)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "civil-affairs-system",
            "court-execution-system",
            "health-system",
            "housing-system",
            "public-security-system",
            "urban-management-system"
        ]
    );
    #[cfg(unix)]
    for file in ["key.pem", "age-identity.txt"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(clients.join("health-system").join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is private");
    }
    let server = start_server(BIN, dir);
    let base = format!("https://localhost:{}", server.port);
    let http = mtls_client_for_dir(dir, &clients.join("civil-affairs-system"));
    let resp = http
        .post(format!("{base}/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let me: Value = http
        .get(format!("{base}/v1/clients/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["client"], "civil-affairs-system");
    assert_eq!(me["department"], "civil-affairs");
    assert_eq!(me["jurisdiction"], serde_json::json!(["330110.001"]));
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_http_is_plain_http_logged_loudly_and_gives_no_department_access() {
    let tmp = tempfile::tempdir().unwrap();
    run(
        &["init", "--admin-password", "admin-password-for-tests"],
        tmp.path(),
    );
    let server = start_server_with(BIN, tmp.path(), &["--insecure-http"]);
    let http = client_for(&tmp.path().join("pki/ca.pem"));
    let base = format!("http://127.0.0.1:{}", server.port);
    let resp = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(format!("{base}/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "no TLS, no client certificate, no token"
    );
    signal(&server.child, "TERM");
    let log = server.log;
    assert!(wait_bounded(server.child).success());
    let lines = drain(&log).join("\n");
    assert!(lines.contains("INSECURE"), "{lines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_token_key_signs_new_tokens_and_old_ones_stay_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pw = "admin-password-for-tests";
    run(&["init", "--admin-password", pw], dir);
    let client = client_for(&dir.join("pki/ca.pem"));

    let server = start_server(BIN, dir);
    let base = format!("https://localhost:{}", server.port);
    let old = login_at(&client, &base, "admin", pw).await;
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());

    let out = run(&["keys", "rotate", "--token-key"], dir);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("new token signing key"), "{said}");

    let server = start_server(BIN, dir);
    let base = format!("https://localhost:{}", server.port);
    let new = login_at(&client, &base, "admin", pw).await;
    assert_ne!(kid(&old), kid(&new), "the new key signs");
    for token in [&old, &new] {
        let resp = client
            .get(format!("{base}/v1/admin/roles"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "token signed by {}", kid(token));
    }
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&kid(&old).as_str()) && kids.contains(&kid(&new).as_str()));
    let page: Value = client
        .get(format!("{base}/v1/audit/entries?limit=1000"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotations: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["action"] == "keys.rotate")
        .collect();
    assert_eq!(rotations.len(), 1, "the rotation is audited");
    assert!(
        rotations[0]["canonical"]
            .as_str()
            .unwrap()
            .contains(&kid(&new))
    );
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
    // The ledger, rotation entry included, still verifies (exit 0).
    run(&["audit", "verify"], dir);
}
