//! The watermark: the `(updated_at, key)` of the last source row whose batch the hub committed,
//! kept in a state file beside the config (`source.toml.state`).
//!
//! Invariants: the file is replaced whole (written aside, fsynced, renamed over, directory
//! fsynced), so a crash leaves the old watermark or the new one, never a torn file; it is saved
//! only after the batch's upsert committed, so it may lag the hub (a kill between the two) but
//! never run ahead of it — and a lagging watermark only re-sends rows that upsert by key onto
//! the records they already made. The file holds a digest of the source (never its URL) and is
//! readable by its owner only, since the source key it holds could be personal if the operator
//! chose an identity number as the source key.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A position in the source's `(updated_at, key)` order, both as the database prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub updated_at: String,
    pub key: String,
}

#[derive(Serialize, Deserialize)]
struct State {
    /// `Config::fingerprint` of the source the watermark belongs to.
    source: String,
    watermark: Watermark,
}

/// Where the state of the connector configured by `config` lives.
pub fn path_for(config: &Path) -> PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(".state");
    PathBuf::from(name)
}

/// The saved watermark of `source`: `None` if there is no state file or it belongs to another
/// source (the config changed: start over, which the upserts make harmless). A file that
/// cannot be read or parsed is an error: starting over silently could re-send a whole table.
pub fn load(path: &Path, source: &str) -> anyhow::Result<Option<Watermark>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let state: State = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: not a connector state file (delete it to start over)",
            path.display()
        )
    })?;
    Ok((state.source == source).then_some(state.watermark))
}

/// Replace the saved watermark (temp file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, source: &str, watermark: &Watermark) -> anyhow::Result<()> {
    let state = State {
        source: source.to_owned(),
        watermark: watermark.clone(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&serde_json::to_vec(&state)?)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(t: &str, k: &str) -> Watermark {
        Watermark {
            updated_at: t.into(),
            key: k.into(),
        }
    }

    #[test]
    fn a_saved_watermark_reads_back_for_its_source_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path_for(&dir.path().join("source.toml"));
        assert_eq!(load(&path, "a").expect("no file"), None);
        save(&path, "a", &mark("2026-01-01 00:00:00", "7")).expect("save");
        save(&path, "a", &mark("2026-01-02 00:00:00", "3")).expect("save");
        assert_eq!(
            load(&path, "a").expect("load"),
            Some(mark("2026-01-02 00:00:00", "3"))
        );
        assert_eq!(load(&path, "b").expect("load"), None);
        assert!(!dir.path().join("source.toml.state.tmp").exists());
    }

    #[test]
    fn a_damaged_state_file_stops_the_connector() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.state");
        std::fs::write(&path, "{").expect("write");
        assert!(load(&path, "a").is_err());
    }
}
