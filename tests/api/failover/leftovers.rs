//! What a node killed with SIGKILL leaves outside its data directory, found in `/proc` while it
//! runs and removed once it is gone (only what no living process still uses).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// `(pid, state, ppid, pgrp)` of every process, from `/proc/PID/stat`.
fn processes() -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces, so split after its `)`.
        let Some((pid, rest)) = stat.split_once(' ') else {
            continue;
        };
        let Some((_, fields)) = rest.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = fields.split_whitespace().take(3).collect();
        if let [state, ppid, pgrp] = fields[..] {
            out.push((
                pid.to_owned(),
                state.to_owned(),
                ppid.to_owned(),
                pgrp.to_owned(),
            ));
        }
    }
    out
}

/// The pids of a node: its process group (`runuser`, `pg_autoctl` and its services, the
/// postmaster) and the postmaster's children, which leave the group (every one calls `setsid`).
pub(super) fn node_processes(group: u32, postmaster: &str) -> Vec<String> {
    let group = group.to_string();
    processes()
        .into_iter()
        .filter(|(_, _, ppid, pgrp)| *pgrp == group || ppid == postmaster)
        .map(|(pid, ..)| pid)
        .collect()
}

/// Every file under `/dev/shm` that a running process maps, with the pids mapping it.
fn shm_mappings() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (pid, state, ..) in processes() {
        if state == "Z" {
            continue;
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
            if path.starts_with("/dev/shm/") {
                out.push((path.to_owned(), pid.clone()));
            }
        }
    }
    out
}

/// What a node killed with SIGKILL leaves outside its data directory: the postmaster's System V
/// segment (line 7 of `postmaster.pid`: key and id), the shared memory files its processes map
/// (`/dev/shm/PostgreSQL.N`; and under libfaketime, as CI runs the suite, the clock's own
/// segment, which a process of the `postgres` user makes when it may not open root's), and
/// the Unix socket with the socket's lock file.
pub(super) struct Leftovers {
    postmaster: String,
    shmid: Option<String>,
    shm_files: BTreeSet<String>,
    socket: String,
}

impl Leftovers {
    pub(super) fn of(pid_file: &str, port: u16, pids: &[String]) -> Leftovers {
        let lines: Vec<&str> = pid_file.lines().collect();
        Leftovers {
            postmaster: lines.first().copied().unwrap_or_default().to_owned(),
            shmid: lines
                .get(6)
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned),
            shm_files: shm_mappings()
                .into_iter()
                .filter(|(_, pid)| pids.contains(pid))
                .map(|(path, _)| path)
                .collect(),
            socket: format!("/var/run/postgresql/.s.PGSQL.{port}"),
        }
    }

    /// Once `pids` are gone (bounded wait), remove what no living process uses.
    pub(super) fn remove(self, pids: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && processes()
                .iter()
                .any(|(pid, state, ..)| pids.contains(pid) && state != "Z")
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(shmid) = &self.shmid {
            let _ = Command::new("ipcrm").args(["-m", shmid]).output();
        }
        let mapped: BTreeSet<String> = shm_mappings().into_iter().map(|(path, _)| path).collect();
        for path in self.shm_files.difference(&mapped) {
            let _ = std::fs::remove_file(path);
        }
        let lock = format!("{}.lock", self.socket);
        if std::fs::read_to_string(&lock)
            .is_ok_and(|t| t.lines().next() == Some(self.postmaster.as_str()))
        {
            let _ = std::fs::remove_file(&self.socket);
            let _ = std::fs::remove_file(&lock);
        }
    }
}
