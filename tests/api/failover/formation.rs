//! A `pg_auto_failover` formation of the test's own: a monitor, a primary and a synchronous
//! secondary, built by `pg_autoctl` (as the `postgres` user, each service in a process group of
//! its own) in a temporary directory, on free ports; every process is stopped when it is
//! dropped. It never touches the shared server on 5432.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridhub_tests::process::wait_bounded;
use serde_json::Value;

use super::leftovers::{Leftovers, node_processes};
use crate::faults::postgres::{free_port, pg_bin, postgres_command};

/// Bound on each wait for the formation to reach a state: a hang guard, not a timing assertion.
const FORMATION_BOUND: Duration = Duration::from_secs(90);

/// The monitor's failure detection, shortened from its defaults (a 5 s health check period,
/// 20 s before a node counts as unhealthy, 30 s before a silent primary counts as demoted) so that
/// the failover takes seconds.
const MONITOR_SETTINGS: &str = "\
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 500
pgautofailover.node_considered_unhealthy_timeout = 2000
pgautofailover.primary_demote_timeout = 2000
pgautofailover.startup_grace_period = 2000
";

/// One `pg_autoctl` service (the monitor or a node): started through `runuser` in a process
/// group of its own, which holds `runuser`, `pg_autoctl` with its services and the postmaster
/// (whose children leave it: `leftovers::node_processes`).
pub(super) struct Service {
    name: &'static str,
    pgdata: PathBuf,
    pub(super) port: u16,
    /// Invariant: the process group's id is this child's pid.
    child: Option<Child>,
}

/// A monitor and two nodes; every process is stopped and the directory removed when dropped.
pub(super) struct Formation {
    dir: tempfile::TempDir,
    monitor: Service,
    nodes: Vec<Service>,
}

/// Fail (not skip) when pg_auto_failover is not installed.
fn require_pg_auto_failover() {
    let version = pg_bin()
        .parent()
        .and_then(Path::file_name)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap();
    let package = format!("postgresql-{version}-auto-failover");
    let autoctl = Command::new("pg_autoctl").arg("--version").output();
    assert!(
        autoctl.is_ok_and(|o| o.status.success()),
        "pg_autoctl is not installed: install Debian's {package} (.ci/run does)"
    );
    let extension = PathBuf::from(format!(
        "/usr/share/postgresql/{version}/extension/pgautofailover.control"
    ));
    assert!(
        extension.exists(),
        "the pgautofailover extension for PostgreSQL {version} is missing: install {package}"
    );
}

impl Formation {
    /// Create the monitor, then `n1` (the primary) and `n2` (its synchronous secondary), and
    /// wait until the monitor reports them so.
    pub(super) fn start() -> Formation {
        require_pg_auto_failover();
        let dir = tempfile::tempdir().unwrap();
        for sub in ["config", "data", "run"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        assert!(
            !root || chown.is_ok_and(|s| s.success()),
            "chown of the formation's directory"
        );
        let service = |name| Service {
            name,
            pgdata: dir.path().join(name),
            port: free_port(),
            child: None,
        };
        let mut formation = Formation {
            monitor: service("monitor"),
            nodes: vec![service("n1"), service("n2")],
            dir,
        };

        let monitor = &formation.monitor;
        let out = formation
            .autoctl(&[
                "create",
                "monitor",
                "--pgdata",
                monitor.pgdata.to_str().unwrap(),
                "--pgport",
                &monitor.port.to_string(),
                "--pgctl",
                pg_bin().join("pg_ctl").to_str().unwrap(),
                "--hostname",
                "127.0.0.1",
                "--auth",
                "trust",
                "--no-ssl",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_autoctl create monitor failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        use std::io::Write;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(monitor.pgdata.join("postgresql.conf"))
            .unwrap();
        conf.write_all(MONITOR_SETTINGS.as_bytes()).unwrap();
        let pgdata = monitor.pgdata.to_str().unwrap().to_owned();
        formation.monitor.child = Some(formation.spawn("monitor", &["run", "--pgdata", &pgdata]));
        formation.wait_for("the monitor to answer", |state| state.is_some());

        for i in 0..formation.nodes.len() {
            let node = &formation.nodes[i];
            let args = [
                "create",
                "postgres",
                "--pgdata",
                node.pgdata.to_str().unwrap(),
                "--pgport",
                &node.port.to_string(),
                "--pgctl",
                pg_bin().join("pg_ctl").to_str().unwrap(),
                "--monitor",
                &format!(
                    "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
                    formation.monitor.port
                ),
                "--hostname",
                "127.0.0.1",
                "--name",
                node.name,
                "--auth",
                "trust",
                "--no-ssl",
                "--run",
            ]
            .map(str::to_owned);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = formation.spawn(node.name, &args);
            formation.nodes[i].child = Some(child);
            let want: &[(&str, &str)] = if i == 0 {
                &[("n1", "single")]
            } else {
                &[("n1", "primary"), ("n2", "secondary")]
            };
            formation.wait_for_states(want);
        }
        formation
    }

    /// `pg_autoctl ARGS` as the `postgres` user, with its configuration and state in the
    /// formation's directory.
    fn autoctl(&self, args: &[&str]) -> Command {
        let mut command = postgres_command(Path::new("pg_autoctl"), args);
        command
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    pg_bin().to_str().unwrap()
                ),
            );
        command
    }

    /// Start a long-running `pg_autoctl` in a process group of its own, logging to `NAME.log`.
    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        use std::os::unix::process::CommandExt;
        let log = File::create(self.log_path(name)).unwrap();
        self.autoctl(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// The last lines of every service's log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["monitor", "n1", "n2"] {
            let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("\n--- {name}.log ---\n{tail}"));
        }
        out
    }

    /// The monitor's view: `pg_autoctl show state --json`, or None while it does not answer.
    fn state(&self) -> Option<Vec<Value>> {
        let out = self
            .autoctl(&[
                "show",
                "state",
                "--pgdata",
                self.monitor.pgdata.to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Some(Vec::new());
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.as_array().cloned())
    }

    /// Poll the monitor until `done` holds for its view, at most `FORMATION_BOUND`.
    pub(super) fn wait_for(
        &self,
        what: &str,
        done: impl Fn(Option<&[Value]>) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + FORMATION_BOUND;
        loop {
            let state = self.state();
            if done(state.as_deref()) {
                return state.unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "waited {FORMATION_BOUND:?} for {what}; the monitor says {state:?}{}",
                self.logs()
            );
            // Polling the monitor's state with a deadline, not a sleep standing in for
            // synchronisation.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until each named node is reported in, and assigned, the given state.
    fn wait_for_states(&self, want: &[(&str, &str)]) -> Vec<Value> {
        self.wait_for(&format!("the states {want:?}"), |state| {
            let Some(nodes) = state else { return false };
            want.iter().all(|(name, goal)| {
                nodes.iter().any(|n| {
                    n["nodename"] == *name
                        && n["current_group_state"] == *goal
                        && n["assigned_group_state"] == *goal
                })
            })
        })
    }

    pub(super) fn node(&self, name: &str) -> &Service {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    pub(super) fn admin_url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.node(name).port
        )
    }

    /// SIGKILL every process of a node at once, as if its machine died: `pg_autoctl` with its
    /// keeper (which would otherwise start Postgres again), the postmaster and every backend.
    /// Then remove what they leave behind outside the formation's directory.
    pub(super) fn kill(&mut self, name: &str) {
        let node = self.nodes.iter_mut().find(|n| n.name == name).unwrap();
        let pid_file = std::fs::read_to_string(node.pgdata.join("postmaster.pid")).unwrap();
        let child = node.child.take().unwrap();
        let postmaster = pid_file.lines().next().unwrap().to_owned();
        let pids = node_processes(child.id(), &postmaster);
        let leftovers = Leftovers::of(&pid_file, node.port, &pids);
        let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        let status = wait_bounded(child);
        assert!(!status.success(), "{name} was killed: {status:?}");
        leftovers.remove(&pids);
    }
}

/// Send `sig` to the process group led by `child` (`kill -SIG -- -PGID`).
fn signal_group(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{}", child.id()))
        .status();
}

impl Drop for Formation {
    /// SIGTERM each group (`pg_autoctl` stops its Postgres, fast), nodes before the monitor;
    /// SIGKILL what is still running after a bounded wait.
    fn drop(&mut self) {
        let services = self
            .nodes
            .iter_mut()
            .chain(std::iter::once(&mut self.monitor));
        let mut running: Vec<Child> = services.filter_map(|s| s.child.take()).collect();
        for child in &running {
            signal_group(child, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for child in &mut running {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                signal_group(child, "KILL");
                let _ = child.wait();
            }
        }
    }
}
