//! Running the real `gridhub` binary: spawn `serve`, learn its port from the log, stop it with a
//! signal. Waits are bounded so a hung process fails the test instead of hanging CI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound on start-up and shutdown; a deadlock guard, not a performance assertion.
const BOUND: Duration = Duration::from_secs(60);

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: mpsc::Receiver<String>,
}

/// Start `gridhub serve --data-dir DIR --listen 127.0.0.1:0` and wait until it listens.
pub fn start_server(bin: &str, data_dir: &Path) -> Server {
    start_server_with(bin, data_dir, &[])
}

/// As `start_server`, with extra `serve` arguments (e.g. `--insecure-http`).
#[expect(
    clippy::zombie_processes,
    reason = "the child is handed back inside `Server`; its owner signals and waits for it"
)]
pub fn start_server_with(bin: &str, data_dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(bin)
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("GRIDHUB_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gridhub serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(BOUND)
            .expect("server did not report listening");
        let announced = line
            .split("listening on https://")
            .nth(1)
            .or_else(|| line.split("plain HTTP on http://").nth(1));
        if let Some(rest) = announced {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            let port = addr
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .trim_end_matches('"')
                .parse()
                .expect("port");
            return Server {
                child,
                port,
                log: rx,
            };
        }
    }
}

/// Send a signal with `kill(1)` (the workspace forbids `unsafe`, so no direct libc call).
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Wait for the child to exit, failing if it takes longer than the bound.
pub fn wait_bounded(mut child: Child) -> ExitStatus {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(BOUND)
        .expect("process did not exit")
        .expect("wait")
}

/// Everything logged until the process closed its output (call after it exited); gives up
/// after 10 s without a line.
pub fn drain_to_end(log: &mpsc::Receiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = log.recv_timeout(std::time::Duration::from_secs(10)) {
        lines.push(line);
    }
    lines
}
