//! Identity through the real binary: demo departments with their certificates, the
//! `--insecure-http` dev listener, and token-key rotation across a restart.

use std::process::Command;

use gridhub_tests::mtls::mtls_client_for_dir;
use gridhub_tests::process::{drain_to_end, signal, start_server, start_server_with, wait_bounded};
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
    let out = run(&["demo", "--residents", "50", "--no-serve"], dir);
    // Without serving, the tour is printed all the same: accounts, then commands to try.
    let printed = String::from_utf8_lossy(&out.stdout);
    let credentials = std::fs::read_to_string(dir.join("demo-credentials.txt")).unwrap();
    for line in credentials.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let (user, password) = (words.next().unwrap(), words.next().unwrap());
        assert!(
            printed.contains(user) && printed.contains(password),
            "account {user} not printed: {printed}"
        );
    }
    assert!(printed.contains("/v1/auth/login"), "{printed}");
    assert!(printed.contains("/v1/oauth/token"), "{printed}");
    assert!(printed.contains("gridhub serve --data-dir"), "{printed}");
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
    // The demo's story: civil affairs holds an approved elderly-care grant, nothing else.
    let explain = |purpose: &str| {
        http.post(format!("{base}/v1/decisions/explain"))
            .bearer_auth(token)
            .json(&serde_json::json!({"category": "person", "purpose": purpose}))
            .send()
    };
    let plan: Value = explain("elderly-care").await.unwrap().json().await.unwrap();
    assert_eq!(plan["allowed"], true, "{plan}");
    assert_eq!(plan["fields"]["name"]["disclosure"], "clear");
    assert_eq!(plan["fields"]["phone"]["disclosure"], "masked");
    assert_eq!(plan["fields"]["id_number"]["withheld"], "not_granted");
    let plan: Value = explain("epidemic-prevention")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["reason"], "no_grant");
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
    let lines = drain_to_end(&log).join("\n");
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

/// `client_ca_file` trusts a department's own CA: its certificates are registered as is
/// (`certificate_pem`) and get tokens; an unregistered one of the same CA gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_ca_trusted_by_configuration() {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pw = "admin-password-for-tests";
    run(&["init", "--admin-password", pw], dir);
    // The department's PKI.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("dept-ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (registered_cert, registered_key) = leaf("court-app");
    let (stray_cert, stray_key) = leaf("stray");
    let config = dir.join("gridhub.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "client_ca_file = \"{}\"\n",
        dir.join("dept-ca.pem").display()
    ));
    std::fs::write(&config, text).unwrap();

    let server = start_server(BIN, dir);
    let base = format!("https://localhost:{}", server.port);
    let admin = login_at(&client_for(&dir.join("pki/ca.pem")), &base, "admin", pw).await;
    let http = client_for(&dir.join("pki/ca.pem"));
    for (path, body) in [
        (
            "/v1/grids",
            serde_json::json!({"code": "L.court-execution", "name": "执行网格", "kind": "logical"}),
        ),
        (
            "/v1/admin/departments",
            serde_json::json!({"id": "court", "name": "法院", "jurisdiction": ["L.court-execution"]}),
        ),
        (
            "/v1/admin/clients",
            serde_json::json!({"id": "court-app", "department": "court", "certificate_pem": registered_cert}),
        ),
    ] {
        let resp = http
            .post(format!("{base}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{path}");
    }
    let ca = dir.join("pki/ca.pem");
    let registered = gridhub_tests::mtls::client_with(&ca, &registered_cert, &registered_key);
    let stray = gridhub_tests::mtls::client_with(&ca, &stray_cert, &stray_key);
    let token_for = |http: reqwest::Client| {
        let url = format!("{base}/v1/oauth/token");
        async move {
            http.post(url)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = token_for(registered.clone()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let me = registered
        .get(format!("{base}/v1/clients/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        token_for(stray).await.status(),
        401,
        "same CA, not registered"
    );
    signal(&server.child, "TERM");
    assert!(wait_bounded(server.child).success());
}
