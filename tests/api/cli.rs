//! The `gridhub` binary itself: init, serve, graceful shutdown, clear start-up errors.

use std::process::Command;

use gridhub_tests::client_for;
use gridhub_tests::process::{drain_to_end, signal, start_server, wait_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");

fn init(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(dir)
        .args(["--admin-password", "a-long-admin-password"])
        .args(extra)
        .output()
        .expect("run gridhub init")
}

#[test]
fn init_creates_a_private_data_dir_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    let out = init(&dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "gridhub.toml",
        "gridhub.db",
        "keyring.age",
        "keyring.identity",
        "pki/ca.pem",
        "pki/server.pem",
        "pki/server-key.pem",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [
            "keyring.identity",
            "keyring.age",
            "pki/server-key.pem",
            "pki/ca-key.pem",
        ] {
            let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f} is readable by others");
        }
    }
    let keyring_before = std::fs::read(dir.join("keyring.age")).unwrap();
    let again = init(&dir, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        std::fs::read(dir.join("keyring.age")).unwrap(),
        keyring_before,
        "keyring untouched"
    );
    let forced = init(&dir, &["--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_ne!(
        std::fs::read(dir.join("keyring.age")).unwrap(),
        keyring_before,
        "new keyring"
    );
}

#[test]
fn serve_without_init_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gridhub init"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_over_tls_and_stops_gracefully_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let out = init(tmp.path(), &[]);
    assert!(out.status.success());
    let server = start_server(BIN, tmp.path());
    let client = client_for(&tmp.path().join("pki/ca.pem"));
    let resp = client
        .get(format!("https://localhost:{}/readyz", server.port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiates h2"
    );
    // Plain HTTP is not served.
    let plain = client
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    signal(&server.child, "TERM");
    let log = server.log;
    let status = wait_bounded(server.child);
    assert!(status.success(), "exit status {status:?}");
    let lines = drain_to_end(&log).join("\n");
    assert!(lines.contains("stopped"), "{lines}");
}
