//! The files in `deploy/` checked against the code they deploy: the config loads under the real
//! `Settings`, the ConfigMap embeds the same text, every `gridhub` command line, flag and
//! `GRIDHUB_*` variable is one the binary accepts, and ports, paths and stop timeouts agree with
//! the config. The container image itself is not built here (no container engine in CI).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gridhub::config::{Overrides, Settings};
use gridhub_tests::client_for;
use gridhub_tests::process::{signal, wait_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
const CONFIG: &str = "config/gridhub.toml";
/// Files whose `command:` (compose) or `args:` (Kubernetes) lines are `gridhub` arguments, written
/// as JSON-style flow sequences. A Kubernetes `command:` replaces the entrypoint, so is not one.
const ARG_LIST_FILES: [(&str, &str); 3] = [
    ("compose.yaml", "command:"),
    ("k8s/deployment.yaml", "args:"),
    ("k8s/init-job.yaml", "args:"),
];
/// Every deploy file that may name a `GRIDHUB_*` variable.
const VARIABLE_FILES: [&str; 8] = [
    "Dockerfile",
    "compose.yaml",
    "systemd/gridhub.service",
    "systemd/gridhub.env.example",
    "k8s/deployment.yaml",
    "k8s/init-job.yaml",
    "k8s/configmap.yaml",
    "k8s/secret.example.yaml",
];

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn deploy(rel: &str) -> String {
    let p = path(&format!("deploy/{rel}"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Non-comment lines of a file, trimmed.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The value of the first non-comment line starting with `prefix`.
fn value_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    lines(text)
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with `{prefix}`"))
        .trim()
}

fn load(overrides: Overrides) -> Settings {
    Settings::load(Some(&path(&format!("deploy/{CONFIG}"))), overrides)
        .unwrap_or_else(|e| panic!("deploy/{CONFIG}: {e}"))
}

/// The settings keys the code knows, read from the error `deny_unknown_fields` gives for an
/// unknown key (it lists the expected ones).
fn settings_keys() -> BTreeSet<String> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("probe.toml");
    std::fs::write(&file, "zz_not_a_setting = 1\n").unwrap();
    let err = Settings::load(Some(&file), Overrides::default())
        .unwrap_err()
        .to_string();
    // "unknown field: found `zz_not_a_setting`, expected `one of `data_dir`, `listen`, …``"
    let (_, expected) = err.split_once("expected").expect("the expected keys");
    let keys: BTreeSet<String> = expected
        .split('`')
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter(|w| *w != "zz_not_a_setting")
        .map(str::to_owned)
        .collect();
    assert!(keys.contains("listen") && keys.len() > 3, "{err}");
    keys
}

/// Every `gridhub` argument list in the deploy files, with the file it came from.
fn invocations() -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let docker = deploy("Dockerfile");
    let entrypoint: Vec<String> =
        serde_json::from_str(value_after(&docker, "ENTRYPOINT ")).unwrap();
    assert_eq!(entrypoint, ["gridhub"], "Dockerfile ENTRYPOINT");
    let cmd = serde_json::from_str(value_after(&docker, "CMD ")).unwrap();
    found.push(("Dockerfile".to_owned(), cmd));

    let unit = deploy("systemd/gridhub.service");
    let mut exec = value_after(&unit, "ExecStart=").split_whitespace();
    assert!(
        exec.next().unwrap().ends_with("/gridhub"),
        "ExecStart runs gridhub"
    );
    found.push((
        "systemd/gridhub.service".to_owned(),
        exec.map(str::to_owned).collect(),
    ));

    for (file, key) in ARG_LIST_FILES {
        let text = deploy(file);
        let before = found.len();
        for line in lines(&text) {
            if let Some(list) = line.strip_prefix(key).map(str::trim) {
                let argv = serde_json::from_str(list)
                    .unwrap_or_else(|e| panic!("{file}: `{line}` is not a flow list: {e}"));
                found.push((file.to_owned(), argv));
            }
        }
        assert!(found.len() > before, "{file} has no gridhub command line");
    }
    found
}

/// The subcommand path of an argument list: its leading non-flag words.
fn subcommand(argv: &[String]) -> Vec<&str> {
    argv.iter()
        .map(String::as_str)
        .take_while(|a| !a.starts_with('-'))
        .collect()
}

fn help(path: &[&str]) -> String {
    let out = Command::new(BIN).args(path).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "`gridhub {} --help` failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `GRIDHUB_*` variables the CLI reads (`[env: NAME]` in the help of every subcommand).
fn cli_variables(path: &mut Vec<String>, into: &mut BTreeSet<String>) {
    let text = help(&path.iter().map(String::as_str).collect::<Vec<_>>());
    for part in text.split("[env: ").skip(1) {
        into.insert(
            part.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect(),
        );
    }
    let commands = text.split("Commands:\n").nth(1).unwrap_or_default();
    for line in commands.lines().take_while(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name != "help" {
            path.push(name.to_owned());
            cli_variables(path, into);
            path.pop();
        }
    }
}

/// The value following `flag` in an argument list.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    let at = argv.iter().position(|a| a == flag)?;
    argv.get(at + 1).map(String::as_str)
}

#[test]
fn deploy_config_loads_under_the_real_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = load(Overrides {
        data_dir: Some(tmp.path().to_path_buf()),
        listen: None,
        database_url: None,
    });
    assert_eq!(
        settings.data_dir,
        tmp.path(),
        "--data-dir wins over the file"
    );
    assert_eq!(settings.instance, "gridhub-prod");
    assert_eq!(settings.log_format, gridhub::config::LogFormat::Json);
    assert_eq!(
        settings.listen,
        "0.0.0.0:8443".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn deploy_config_sets_every_setting_except_the_database_url() {
    let text = deploy(CONFIG);
    // Top-level keys, and tables (`[webhooks]`) as their key; the keys inside a table are the
    // table's own (checked by loading the file under the real settings).
    let top = text.split("\n[").next().unwrap_or_default();
    let set: BTreeSet<String> = lines(top)
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .chain(
            lines(&text)
                .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
                .map(str::to_owned),
        )
        .collect();
    let mut expected = settings_keys();
    assert!(expected.remove("database_url"), "database_url is a setting");
    // The NATS publisher is off unless its table is given: documented commented out.
    assert!(expected.remove("nats"), "nats is a setting");
    assert!(
        text.contains("\n# [nats]\n"),
        "deploy/{CONFIG} documents [nats]"
    );
    // Optional paths: documented as a commented-out example, since the file must exist if set.
    // The metrics token is a secret: documented commented out, given from the environment.
    for key in ["client_ca_file", "calendar_file", "metrics_token"] {
        assert!(expected.remove(key), "{key} is a setting");
        assert!(
            text.contains(&format!("\n# {key} = ")),
            "deploy/{CONFIG} documents {key}"
        );
    }
    assert_eq!(set, expected, "keys in deploy/{CONFIG}");
}

#[test]
fn configmap_embeds_exactly_the_deploy_config() {
    let configmap = deploy("k8s/configmap.yaml");
    let (_, block) = configmap
        .split_once("  gridhub.toml: |\n")
        .expect("a `gridhub.toml: |` block scalar");
    let indent = "    ";
    let mut embedded = String::new();
    for line in block.lines() {
        if line.is_empty() {
            embedded.push('\n');
        } else if let Some(rest) = line.strip_prefix(indent) {
            embedded.push_str(rest);
            embedded.push('\n');
        } else {
            break; // the block ends at the first less-indented line
        }
    }
    assert_eq!(
        embedded.trim_end(),
        deploy(CONFIG).trim_end(),
        "k8s/configmap.yaml and deploy/{CONFIG} differ"
    );
}

#[test]
fn every_gridhub_command_line_in_deploy_is_accepted_by_the_cli() {
    let all = invocations();
    let commands: BTreeSet<_> = all
        .iter()
        .map(|(_, argv)| subcommand(argv).join(" "))
        .collect();
    assert!(
        commands.contains("serve") && commands.contains("init"),
        "{commands:?}"
    );
    for (file, argv) in &all {
        let path = subcommand(argv);
        assert!(!path.is_empty(), "{file}: `{argv:?}` has no subcommand");
        let text = help(&path);
        let words: BTreeSet<&str> = text
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']'))
            .collect();
        for flag in argv.iter().filter(|a| a.starts_with("--")) {
            let name = flag.split('=').next().unwrap_or_default();
            assert!(
                words.contains(name),
                "{file}: `gridhub {}` has no flag `{name}`",
                path.join(" ")
            );
        }
    }
}

#[test]
fn kubernetes_runs_the_same_command_lines_as_compose() {
    let all = invocations();
    let by = |file: &str| -> Vec<&Vec<String>> {
        all.iter()
            .filter(|(f, _)| f == file)
            .map(|(_, a)| a)
            .collect()
    };
    let compose = by("compose.yaml");
    for file in ["k8s/deployment.yaml", "k8s/init-job.yaml"] {
        for argv in by(file) {
            assert!(
                compose.contains(&argv),
                "{file}: {argv:?} is not in compose.yaml"
            );
        }
    }
}

#[test]
fn every_gridhub_variable_in_deploy_is_a_setting_or_a_cli_variable() {
    let mut known: BTreeSet<String> = settings_keys()
        .iter()
        .map(|k| format!("GRIDHUB_{}", k.to_ascii_uppercase()))
        .collect();
    cli_variables(&mut Vec::new(), &mut known);
    assert!(known.contains("GRIDHUB_ADMIN_PASSWORD"), "{known:?}");
    let telemetry = std::fs::read_to_string(path("hub/src/telemetry.rs")).unwrap();
    assert!(
        telemetry.contains("\"GRIDHUB_LOG\""),
        "the log filter variable"
    );
    known.insert("GRIDHUB_LOG".to_owned());
    for file in VARIABLE_FILES {
        let text = deploy(file);
        for part in text.split("GRIDHUB_").skip(1) {
            let suffix: String = part
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if suffix.is_empty() {
                continue; // prose such as `GRIDHUB_<KEY>`
            }
            let name = format!("GRIDHUB_{suffix}");
            assert!(known.contains(&name), "{file}: `{name}` is read by nothing");
        }
    }
    assert!(deploy("compose.yaml").contains("GRIDHUB_DATABASE_URL"));
}

#[test]
fn deploy_files_agree_with_the_config_on_port_paths_and_instance() {
    let settings = load(Overrides::default());
    let port = settings.listen.port();
    let data_dir = settings.data_dir.to_str().unwrap().to_owned();
    assert!(lines(&deploy("Dockerfile")).any(|l| l == format!("EXPOSE {port}")));
    assert!(deploy("Dockerfile").contains(&format!("VOLUME [\"{data_dir}\"]")));
    assert!(deploy("compose.yaml").contains(&format!("\"{port}:{port}\"")));
    assert!(deploy("k8s/deployment.yaml").contains(&format!("containerPort: {port}")));
    assert!(deploy("k8s/service.yaml").contains(&format!("port: {port}")));
    assert!(deploy("k8s/deployment.yaml").contains(&format!("mountPath: {data_dir}\n")));
    let unit = deploy("systemd/gridhub.service");
    let state_dir = value_after(&unit, "StateDirectory=");
    assert_eq!(format!("/var/lib/{state_dir}"), data_dir);
    let compose = deploy("compose.yaml");
    for (file, argv) in invocations() {
        assert_eq!(
            flag_value(&argv, "--data-dir"),
            Some(data_dir.as_str()),
            "{file}"
        );
        if let Some(listen) = flag_value(&argv, "--listen") {
            assert_eq!(
                listen.parse::<SocketAddr>().unwrap(),
                settings.listen,
                "{file}"
            );
        }
        if let Some(instance) = flag_value(&argv, "--instance") {
            assert_eq!(instance, settings.instance, "{file}");
        }
        if let Some(config) = flag_value(&argv, "--config") {
            assert_eq!(config, "/etc/gridhub/gridhub.toml", "{file}");
            if file == "compose.yaml" {
                assert!(compose.contains(&format!("./{CONFIG}:{config}:ro")));
            }
        }
    }
}

#[test]
fn stop_timeouts_leave_room_for_the_shutdown_grace() {
    let settings = load(Overrides::default());
    assert!(
        settings.request_timeout_secs <= settings.shutdown_grace_secs,
        "a request running at SIGTERM can finish within the grace"
    );
    let seconds = |v: &str| v.trim_end_matches('s').parse::<u64>().unwrap();
    let timeouts = [
        (
            "systemd",
            seconds(value_after(
                &deploy("systemd/gridhub.service"),
                "TimeoutStopSec=",
            )),
        ),
        (
            "compose",
            seconds(value_after(&deploy("compose.yaml"), "stop_grace_period:")),
        ),
        (
            "k8s",
            seconds(value_after(
                &deploy("k8s/deployment.yaml"),
                "terminationGracePeriodSeconds:",
            )),
        ),
    ];
    for (what, secs) in timeouts {
        assert!(
            secs > settings.shutdown_grace_secs,
            "{what} stop timeout {secs}s does not exceed shutdown_grace_secs"
        );
    }
}

#[test]
fn dockerfile_copies_every_workspace_member_and_builds_the_hub_binary() {
    let docker = deploy("Dockerfile");
    let workspace = std::fs::read_to_string(path("Cargo.toml")).unwrap();
    let members = value_after(&workspace, "members =");
    for member in members.trim_matches(['[', ']']).split(',') {
        let member = member.trim().trim_matches('"');
        assert!(
            lines(&docker).any(|l| l == format!("COPY {member} {member}")),
            "Dockerfile does not COPY workspace member `{member}`"
        );
    }
    let build: Vec<&str> = lines(&docker)
        .find(|l| l.contains("cargo build"))
        .unwrap()
        .split_whitespace()
        .collect();
    let after = |flag: &str| build.iter().skip_while(|w| **w != flag).nth(1).copied();
    let hub = std::fs::read_to_string(path("hub/Cargo.toml")).unwrap();
    assert!(hub.contains(&format!("name = \"{}\"", after("-p").unwrap())));
    assert!(hub.contains(&format!("[[bin]]\nname = \"{}\"", after("--bin").unwrap())));
    assert!(build.contains(&"--locked"));
    let version = |v: &str| -> (u32, u32) {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let image = value_after(&docker, "FROM rust:");
    let builder = image.split('-').next().unwrap();
    let needed = value_after(&workspace, "rust-version =").trim_matches('"');
    assert!(
        version(builder) >= version(needed),
        "builder rust:{builder} is older than rust-version {needed}"
    );
}

/// Run a compose command line with the container paths mapped into `dir`.
fn compose_command(argv: &[String], dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for arg in argv {
        match arg.as_str() {
            "/var/lib/gridhub" => cmd.arg(dir),
            "/etc/gridhub/gridhub.toml" => cmd.arg(path(&format!("deploy/{CONFIG}"))),
            "0.0.0.0:8443" => cmd.arg("127.0.0.1:0"),
            other => cmd.arg(other),
        };
    }
    // Only what the command line and the deploy config say; nothing from this shell.
    for key in settings_keys() {
        cmd.env_remove(format!("GRIDHUB_{}", key.to_ascii_uppercase()));
    }
    cmd.env_remove("GRIDHUB_ADMIN_PASSWORD")
        .env("GRIDHUB_LOG", "info");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_command_lines_initialise_and_serve_with_the_deploy_config() {
    let compose: Vec<Vec<String>> = invocations()
        .into_iter()
        .filter(|(f, _)| f == "compose.yaml")
        .map(|(_, a)| a)
        .collect();
    let find = |name: &str| compose.iter().find(|a| subcommand(a) == [name]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = compose_command(find("init"), &dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = compose_command(find("serve"), &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("listening");
        if line.contains("listening on https://") {
            break line;
        }
    };
    let log: serde_json::Value = serde_json::from_str(&line).expect("log_format = json");
    let addr: SocketAddr = log["fields"]["addr"].as_str().unwrap().parse().unwrap();

    let client = client_for(&dir.join("pki/ca.pem"));
    let deployment = deploy("k8s/deployment.yaml");
    let probes: BTreeSet<&str> = lines(&deployment)
        .filter_map(|l| l.strip_prefix("path: "))
        .collect();
    assert_eq!(probes, BTreeSet::from(["/healthz", "/readyz"]));
    for probe in probes {
        let url = format!("https://localhost:{}{probe}", addr.port());
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "probe {probe}");
    }
    signal(&child, "TERM");
    let status = wait_bounded(child);
    assert!(status.success(), "exit status {status:?}");
}
