//! PostgreSQL under faults, on a throw-away cluster of the test's own (`initdb` in a temporary
//! directory, its own port; the shared server on 5432 is never touched): the cluster's disk
//! fills up under load, and the cluster is stopped and started again under load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gridhub_tests::{Backend, SpawnOptions, TestApp, spawn_app_with};

use super::mounts::{Filler, Mount};
use super::{
    Load, assert_refusals_are_clean, assert_unready_while_full, audit_verify, check_nothing_lost,
    puller,
};

const RECOVERY: Duration = Duration::from_secs(60);

/// A PostgreSQL cluster made for one test; stopped (immediately) when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The newest PostgreSQL server's `bin` directory (`/usr/lib/postgresql/VERSION/bin`).
pub(crate) fn pg_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("PostgreSQL server binaries not found in {root:?}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.pop().unwrap().join("bin")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run a PostgreSQL tool as the `postgres` user when we are root (the server refuses root).
pub(crate) fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    postgres_command(program, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?}: {e}"))
}

/// `program args` as the `postgres` user when we are root (through `runuser`, which keeps the
/// environment), as the current user otherwise.
pub(crate) fn postgres_command(program: &Path, args: &[&str]) -> Command {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = if root {
        let mut runuser = Command::new("runuser");
        runuser.args(["-u", "postgres", "--"]).arg(program);
        runuser
    } else {
        Command::new(program)
    };
    command.args(args);
    command
}

impl Cluster {
    /// `initdb` a cluster under `parent` (a small tmpfs, or a plain temporary directory).
    fn create(parent: &Path) -> Cluster {
        let dir = tempfile::tempdir_in(parent).unwrap();
        let data = dir.path().join("pgdata");
        std::fs::create_dir(&data).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .output();
        let bin = pg_bin();
        let out = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--wal-segsize=1",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        cluster.start();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["-D", self.data.to_str().unwrap()];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all)
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
             -c max_wal_size=32MB -c min_wal_size=4MB",
            self.port
        );
        let log = self.data.join("server.log");
        let out = self.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "start",
        ]);
        assert!(
            out.status.success(),
            "the test cluster did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn running(&self) -> bool {
        self.pg_ctl(&["status"]).status.success()
    }

    fn stop(&self) {
        let out = self.pg_ctl(&["-w", "-m", "fast", "stop"]);
        assert!(
            out.status.success(),
            "stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A hub whose database lives on this cluster.
    async fn app(&self) -> TestApp {
        spawn_app_with(
            Backend::Postgres,
            SpawnOptions {
                pg_admin_url: Some(self.admin_url()),
                ..SpawnOptions::default()
            },
        )
        .await
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

/// The cluster's disk fills up under writes and pulls: clean 503s while it is full; once space
/// is freed (and PostgreSQL, if it stopped itself, is started again) the hub serves again
/// without a restart, and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_out_of_space_loses_nothing_and_recovers_by_itself() {
    let mount = Mount::tmpfs(160);
    let cluster = Cluster::create(&mount.dir);
    let app = cluster.app().await;
    let dept = puller(&app).await;
    let load = Load::start(&app, Some(&dept), 3, 4).await;
    load.until_acknowledged(30).await;

    let mut filler = Filler::fill(&mount.dir);
    load.until_refused(50).await;
    assert_unready_while_full(&app, &mut filler).await;

    filler.remove();
    if !cluster.running() {
        // PostgreSQL stops itself when it cannot write its WAL; the operator starts it again.
        cluster.start();
    }
    app.wait_ready(RECOVERY).await;
    load.until_acknowledged(30).await;
    let outcomes = load.stop().await;
    assert_refusals_are_clean(&outcomes);
    let checked = check_nothing_lost(&app, &outcomes).await;
    eprintln!(
        "PostgreSQL out of space: {checked:?}, refused {:?}",
        outcomes.refused
    );
    let app = app.restart().await;
    check_nothing_lost(&app, &outcomes).await;
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}

/// PostgreSQL is stopped under load and started again: clean 503s (and a failing `/readyz`)
/// while it is down, service again without a restart of the hub, nothing acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_under_load_loses_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let cluster = Cluster::create(parent.path());
    let app = cluster.app().await;
    let dept = puller(&app).await;
    let load = Load::start(&app, Some(&dept), 3, 5).await;
    load.until_acknowledged(30).await;

    cluster.stop();
    load.until_refused(20).await;
    let started = std::time::Instant::now();
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    eprintln!(
        "/readyz answered 503 in {:?} with the database down",
        started.elapsed()
    );

    let down = std::time::Instant::now();
    cluster.start();
    let started = down.elapsed();
    app.wait_ready(RECOVERY).await;
    let ready = down.elapsed();
    load.until_acknowledged(30).await;
    eprintln!(
        "PostgreSQL started in {started:?}; /readyz 200 after {ready:?}; 30 more answers \
         acknowledged after {:?}",
        down.elapsed()
    );
    let outcomes = load.stop().await;
    assert_refusals_are_clean(&outcomes);
    let checked = check_nothing_lost(&app, &outcomes).await;
    eprintln!(
        "PostgreSQL restarted: {checked:?}, refused {:?}",
        outcomes.refused
    );
    audit_verify(app.data_dir.path());
    drop(app.stop().await);
}
