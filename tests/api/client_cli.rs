//! The `gridhub-client` binary (built here as `gridhub-client-under-test`) against the real hub
//! over real mTLS: a pull to JSONL gets every record exactly once, also when a run is stopped
//! and one is killed and resumed; `checkpoint verify` passes and then catches a rewritten ledger
//! with both notes; a department witness cosigns; lookups, explanations and grants; exit codes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{Backend, TestApp, on_both_backends};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::sdk::{FORK, RECORDS, hub_with_residents, rewrite_ledger};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-client-under-test");

/// The department system's files: its certificate and key, the state file, outputs.
struct Operator {
    dir: tempfile::TempDir,
}

impl Operator {
    fn new(client: &DeptClient) -> Operator {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.pem"), &client.cert_pem).unwrap();
        std::fs::write(dir.path().join("client-key.pem"), &client.key_pem).unwrap();
        Operator { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `gridhub-client` with the connection options for `app` (none from the environment).
    fn command(&self, app: &TestApp, args: &[&str]) -> Command {
        self.command_with(app, &[], args)
    }

    /// As `command`, with more options before the subcommand.
    fn command_with(&self, app: &TestApp, options: &[&str], args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GRIDHUB_CLIENT_") {
                command.env_remove(key);
            }
        }
        command
            .arg("--url")
            .arg(&app.base)
            .arg("--ca")
            .arg(app.data_dir.path().join("pki/ca.pem"))
            .arg("--cert")
            .arg(self.path("client.pem"))
            .arg("--key")
            .arg(self.path("client-key.pem"))
            .arg("--state-file")
            .arg(self.path("state.json"))
            .args(options)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, app: &TestApp, args: &[&str]) -> Output {
        self.command(app, args).output().await.unwrap()
    }

    async fn run_with(&self, app: &TestApp, options: &[&str], args: &[&str]) -> Output {
        self.command_with(app, options, args)
            .output()
            .await
            .unwrap()
    }

    /// Run and expect success; returns stdout as JSON.
    async fn json(&self, app: &TestApp, args: &[&str]) -> Value {
        let out = self.run(app, args).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The record ids of a JSONL file; every line must be a whole record.
fn jsonl_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            assert!(record["fields"].is_object(), "{line}");
            record["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn exactly_once(ids: &[String], expected: &BTreeSet<String>) {
    assert_eq!(ids.len(), RECORDS, "every record exactly once");
    assert_eq!(&ids.iter().cloned().collect::<BTreeSet<_>>(), expected);
}

fn cursor_pages(out: &Path) -> u64 {
    let mut name = out.as_os_str().to_owned();
    name.push(".cursor");
    std::fs::read(PathBuf::from(name))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["pages"].as_u64())
        .unwrap_or(0)
}

const PULL: &[&str] = &["pull", "--category", "person", "--purpose", "elderly-care"];

fn pull_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = PULL.to_vec();
    args.extend(["--out", out]);
    args.extend(extra);
    args
}

async fn pull_writes_every_record_once_and_a_killed_pull_resumes(backend: Backend) {
    let (app, civil, ids) = hub_with_residents(backend).await;
    let op = Operator::new(&civil);

    // One run to the end.
    let whole = op.path("whole.jsonl");
    let whole_str = whole.to_str().unwrap();
    let summary = op
        .json(&app, &pull_args(whole_str, &["--limit", "5"]))
        .await;
    assert_eq!(summary["records"], RECORDS);
    assert_eq!(summary["pages"], 5);
    assert_eq!(summary["complete"], true);
    assert!(summary["checkpoint_size"].as_u64().unwrap() > 0);
    exactly_once(&jsonl_ids(&whole), &ids);

    // A run stopped after two pages, then a resumed run killed (SIGKILL) once it got further,
    // then a torn last line as a kill mid-page leaves it, then a resume to the end.
    let parts = op.path("parts.jsonl");
    let parts_str = parts.to_str().unwrap();
    let stopped = op
        .json(
            &app,
            &pull_args(parts_str, &["--limit", "2", "--max-pages", "2"]),
        )
        .await;
    assert_eq!(
        (stopped["records"].as_u64(), stopped["complete"].as_bool()),
        (Some(4), Some(false))
    );
    assert_eq!(jsonl_ids(&parts).len(), 4);

    let mut child = op
        .command(&app, &pull_args(parts_str, &["--limit", "1", "--resume"]))
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if cursor_pages(&parts) > 3 || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resumed pull made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    {
        use std::io::Write;
        let mut torn = std::fs::OpenOptions::new()
            .append(true)
            .open(&parts)
            .unwrap();
        torn.write_all(br#"{"id":"a-record-half-writ"#).unwrap();
    }
    let resumed = op
        .json(&app, &pull_args(parts_str, &["--limit", "3", "--resume"]))
        .await;
    assert_eq!(resumed["records"], RECORDS);
    assert_eq!(resumed["complete"], true);
    exactly_once(&jsonl_ids(&parts), &ids);

    // Resuming a complete pull writes nothing.
    let again = op.json(&app, &pull_args(parts_str, &["--resume"])).await;
    assert_eq!(again["records_this_run"], 0);
    exactly_once(&jsonl_ids(&parts), &ids);
    app.stop().await;
}

on_both_backends!(pull_writes_every_record_once_and_a_killed_pull_resumes);

/// Everything from a `--profile` file (no connection flag, no environment), with an age
/// identity: the answers come sealed and the output holds the same records as a plain pull.
#[tokio::test]
async fn a_profile_with_an_age_identity_pulls_sealed_answers_in_clear() {
    use age::secrecy::ExposeSecret;
    let (app, civil, ids) = hub_with_residents(Backend::Sqlite).await;
    let plain = Operator::new(&civil);
    let whole = plain.path("plain.jsonl");
    plain
        .json(&app, &pull_args(whole.to_str().unwrap(), &["--limit", "4"]))
        .await;
    let (sealed, identity) = app
        .register_sealed_client("civil-sealed", "civil-affairs")
        .await;
    let op = Operator::new(&sealed);
    std::fs::write(
        op.path("identity.txt"),
        identity.to_string().expose_secret(),
    )
    .unwrap();
    let profile = op.path("profile.toml");
    let quoted = |p: PathBuf| toml::Value::from(p.display().to_string()).to_string();
    std::fs::write(
        &profile,
        format!(
            "url = {}\nca = {}\ncert = {}\nkey = {}\nstate_file = {}\nage_identity = {}\n",
            toml::Value::from(app.base.clone()),
            quoted(app.data_dir.path().join("pki/ca.pem")),
            quoted(op.path("client.pem")),
            quoted(op.path("client-key.pem")),
            quoted(op.path("state.json")),
            quoted(op.path("identity.txt")),
        ),
    )
    .unwrap();
    let out_file = op.path("sealed.jsonl");
    let mut args = vec!["--profile", profile.to_str().unwrap()];
    args.extend(pull_args(out_file.to_str().unwrap(), &["--limit", "4"]));
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GRIDHUB_CLIENT_") {
            command.env_remove(key);
        }
    }
    let out = command.args(&args).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["records"], RECORDS);
    exactly_once(&jsonl_ids(&out_file), &ids);
    let lines = |path: &Path| -> BTreeSet<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        lines(&out_file),
        lines(&whole),
        "the same records, in clear"
    );
    // A flag wins over the profile: the profile's URL made unreachable, `--url` given.
    let text = std::fs::read_to_string(&profile).unwrap();
    let first = text.lines().next().unwrap().to_owned();
    std::fs::write(
        &profile,
        text.replace(&first, "url = \"https://127.0.0.1:9\""),
    )
    .unwrap();
    let again = op.path("again.jsonl");
    let mut args = vec!["--profile", profile.to_str().unwrap()];
    let unreachable = Command::new(BIN)
        .args(&args)
        .args(pull_args(again.to_str().unwrap(), &[]))
        .output()
        .await
        .unwrap();
    assert!(!unreachable.status.success(), "the profile's URL is used");
    args.extend(["--url", app.base.as_str()]);
    args.extend(pull_args(again.to_str().unwrap(), &[]));
    let out = Command::new(BIN).args(&args).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&again), lines(&whole));
    // The answers really came sealed: with another identity they cannot be opened.
    std::fs::write(
        op.path("identity.txt"),
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret(),
    )
    .unwrap();
    let third = op.path("third.jsonl");
    let mut args = vec!["--profile", profile.to_str().unwrap(), "--url", &app.base];
    args.extend(pull_args(third.to_str().unwrap(), &[]));
    let out = Command::new(BIN).args(&args).output().await.unwrap();
    assert!(!out.status.success(), "a wrong identity opened the answers");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_verify_passes_then_catches_a_rewritten_ledger_with_both_notes() {
    let (app, civil, _) = hub_with_residents(Backend::Sqlite).await;
    let op = Operator::new(&civil);
    op.json(
        &app,
        &pull_args(op.path("a.jsonl").to_str().unwrap(), &["--limit", "10"]),
    )
    .await;
    let verified = op.json(&app, &["checkpoint", "verify"]).await;
    let size = verified["size"].as_u64().unwrap();
    assert!(size > 0);
    assert_eq!(verified["cosignatures"], 0);
    let state: Value =
        serde_json::from_slice(&std::fs::read(op.path("state.json")).unwrap()).unwrap();
    let trusted = state["checkpoint"].as_str().unwrap().to_owned();
    assert!(trusted.contains(&format!("\n{size}\n")));

    let app = rewrite_ledger(app, FORK).await;
    let out = op.run(&app, &["checkpoint", "verify"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("INCONSISTENT"), "{err}");
    assert!(err.contains(&trusted), "the trusted note is printed: {err}");
    let presented = err
        .split("-- checkpoint the hub presented --\n")
        .nth(1)
        .unwrap()
        .trim();
    assert!(presented.starts_with("gridhub"), "{err}");
    assert_ne!(presented, trusted.trim());

    // The same evidence to a file; the state file still holds the checkpoint from before.
    let evidence = op.path("evidence.txt");
    let out = op
        .run_with(
            &app,
            &["--evidence", evidence.to_str().unwrap()],
            &["checkpoint", "verify"],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let written = std::fs::read_to_string(&evidence).unwrap();
    assert!(written.contains(&trusted) && written.contains(presented));
    let state: Value =
        serde_json::from_slice(&std::fs::read(op.path("state.json")).unwrap()).unwrap();
    assert_eq!(state["checkpoint"].as_str(), Some(trusted.as_str()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_witness_key_is_made_registered_and_cosigns() {
    let (app, civil, _) = hub_with_residents(Backend::Sqlite).await;
    let op = Operator::new(&civil);
    let key = op.path("witness.key");
    let out = Command::new(BIN)
        .args([
            "witness",
            "keygen",
            "--name",
            "civil-affairs.example/witness",
            "--out",
        ])
        .arg(&key)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(vkey.starts_with("civil-affairs.example/witness+"), "{vkey}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/clients/civil-sys/witness",
            &json!({"vkey": vkey}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let witnessed = op
        .json(&app, &["witness", "--key", key.to_str().unwrap()])
        .await;
    assert_eq!(witnessed["key_name"], "civil-affairs.example/witness");
    let size = witnessed["size"].as_u64().unwrap();
    assert!(size > 0);
    // The hub serves the cosigned checkpoint with the cosignature (the newest one may already
    // be larger: handing a cosignature in is itself recorded), and a client requiring the
    // witness accepts it.
    let served = app
        .client
        .get(app.url("/v1/audit/checkpoint?min_cosignatures=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        served.contains("— civil-affairs.example/witness "),
        "{served}"
    );
    assert!(served.contains(&format!("\n{size}\n")), "{served}");
    // (The witness options from the environment, as an operator would set them.)
    let out = op
        .command(&app, &["checkpoint", "verify"])
        .env("GRIDHUB_CLIENT_WITNESS", &vkey)
        .env("GRIDHUB_CLIENT_MIN_WITNESSES", "1")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let strict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(strict["size"], size);
    assert_eq!(strict["cosignatures"], 1);
    // A witness nobody cosigned with is a verification failure.
    let stranger = op.path("stranger.key");
    let out = Command::new(BIN)
        .args([
            "witness",
            "keygen",
            "--name",
            "stranger.example/witness",
            "--out",
        ])
        .arg(&stranger)
        .output()
        .await
        .unwrap();
    let stranger_vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = op
        .run_with(
            &app,
            &["--witness", &stranger_vkey],
            &["checkpoint", "verify"],
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_explanations_grants_and_exit_codes() {
    let (app, civil, ids) = hub_with_residents(Backend::Sqlite).await;
    let op = Operator::new(&civil);
    let grant = op.path("grant.json");
    std::fs::write(
        &grant,
        serde_json::to_vec(&json!({
            "grantee": "civil-affairs",
            "purpose": "population-registration",
            "category": "person",
            "fields": {"name": "clear", "phone": "clear"},
            "scope": ["330110.001"],
            "valid_from": crate::grants::rfc3339(-3600),
            "valid_until": crate::grants::rfc3339(86_400),
        }))
        .unwrap(),
    )
    .unwrap();
    let requested = op
        .json(
            &app,
            &["grants", "request", "--file", grant.to_str().unwrap()],
        )
        .await;
    assert_eq!(requested["status"], "requested");
    let id = requested["id"].as_str().unwrap();
    let resp = app
        .post(
            &app.dpo_token,
            &format!("/v1/grants/{id}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let status = op.json(&app, &["grants", "status", id]).await;
    assert_eq!(
        (status["id"].as_str(), status["status"].as_str()),
        (Some(id), Some("approved"))
    );

    // The same kind of request from flags.
    let (from, until) = (
        crate::grants::rfc3339(-3600),
        crate::grants::rfc3339(86_400),
    );
    let flagged = op
        .json(
            &app,
            &[
                "grants",
                "request",
                "--grantee",
                "civil-affairs",
                "--purpose",
                "population-registration",
                "--category",
                "person",
                "--field",
                "name=masked",
                "--scope",
                "330110.001",
                "--valid-from",
                &from,
                "--valid-until",
                &until,
            ],
        )
        .await;
    assert_eq!(flagged["status"], "requested");

    let explained = op
        .json(
            &app,
            &[
                "explain",
                "--category",
                "person",
                "--purpose",
                "population-registration",
            ],
        )
        .await;
    assert_eq!(explained["allowed"], true);
    assert!(explained["fields"]["phone"].is_object());

    let found = op
        .json(
            &app,
            &[
                "lookup",
                "--category",
                "person",
                "--purpose",
                "population-registration",
                "--key",
                "phone=13812340007",
            ],
        )
        .await;
    let records = found["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert!(ids.contains(records[0]["id"].as_str().unwrap()));
    assert_eq!(records[0]["fields"]["phone"], "13812340007");
    assert!(
        found["checkpoint_size"].as_u64().unwrap() > found["receipt"]["index"].as_u64().unwrap()
    );

    // The hub's refusal: exit 3 with the code and the request id, never the looked-up value.
    let out = op
        .run(
            &app,
            &[
                "lookup",
                "--category",
                "person",
                "--purpose",
                "court-execution",
                "--key",
                "phone=13812340007",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("code=no_grant") && err.contains("request_id="),
        "{err}"
    );
    assert!(!err.contains("13812340007"), "{err}");
    let out = op.run(&app, &["grants", "status", "no-such-grant"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("code=not_found"));

    // Usage and configuration: exit 2.
    let out = Command::new(BIN)
        .env_remove("GRIDHUB_CLIENT_URL")
        .args(["checkpoint", "verify"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--url"));
    let out = op
        .run(
            &app,
            &[
                "lookup",
                "--category",
                "person",
                "--purpose",
                "x",
                "--key",
                "novalue",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(2));
    app.stop().await;
}
