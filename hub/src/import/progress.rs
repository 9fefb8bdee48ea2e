//! Resuming and showing progress. The progress file (`FILE.import-progress`) holds the input's
//! fingerprint (size, mtime, SHA-256 of its first MiB) and the last line whose batch committed;
//! a re-run of the same file skips up to that line. It may lag the database (a kill between
//! the commit and its update): the upsert by key is what keeps a re-written row from becoming
//! a second record. The bar shows rows, rate and ETA over input bytes (or sheet rows).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use anyhow::Context;
use base64::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::Summary;

const HEAD: u64 = 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct State {
    fingerprint: String,
    committed_line: u64,
}

/// `size:mtime-ns:sha256(first MiB)` of `file`.
pub fn fingerprint(file: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut head = Vec::new();
    std::fs::File::open(file)?
        .take(HEAD)
        .read_to_end(&mut head)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &head);
    let hash = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref());
    Ok(format!("{}:{mtime}:{hash}", meta.len()))
}

/// The last committed line of an earlier run over the same file (0: start at the top).
pub fn committed_line(path: &Path, fingerprint: &str) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<State>(&bytes).ok())
        .filter(|s| s.fingerprint == fingerprint)
        .map_or(0, |s| s.committed_line)
}

/// Record that every row up to `line` is committed (written aside, then renamed over).
pub fn record(path: &Path, fingerprint: &str, line: u64) -> anyhow::Result<()> {
    let state = State {
        fingerprint: fingerprint.to_owned(),
        committed_line: line,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, serde_json::to_vec(&state)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The progress bar (on a terminal only).
pub struct Progress {
    bar: ProgressBar,
    read: Arc<AtomicU64>,
}

impl Progress {
    pub fn new(total: u64, read: Arc<AtomicU64>) -> Progress {
        let bar = ProgressBar::new(total.max(1));
        let style = ProgressStyle::with_template(
            "{bar:40} {percent:>3}% {msg} [{elapsed_precise}, ETA {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Progress { bar, read }
    }

    pub fn tick(&self, s: &Summary) {
        if s.read.is_multiple_of(256) {
            self.bar.set_position(self.read.load(Ordering::Relaxed));
            let secs = self.bar.elapsed().as_secs_f64().max(0.001);
            self.bar.set_message(format!(
                "{} rows, {:.0} rows/s",
                s.read,
                s.read as f64 / secs
            ));
        }
    }

    pub fn finish(&self, s: &Summary) {
        self.bar.set_position(self.read.load(Ordering::Relaxed));
        self.bar.finish_with_message(format!("{} rows", s.read));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "姓名\n张三\n").expect("write");
        let fp = fingerprint(&file).expect("fingerprint");
        let progress = dir.path().join("a.csv.import-progress");
        record(&progress, &fp, 7).expect("record");
        assert_eq!(committed_line(&progress, &fp), 7);
        std::fs::write(&file, "姓名\n李四\n王五\n").expect("write");
        let changed = fingerprint(&file).expect("fingerprint");
        assert_ne!(fp, changed);
        assert_eq!(committed_line(&progress, &changed), 0);
    }
}
