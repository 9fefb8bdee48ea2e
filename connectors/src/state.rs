//! The SDK's state file: the pinned ledger verifier key, the ledger key transitions followed
//! from it, and the last verified checkpoint (its signed note), as JSON. Invariant: every change is a compare-and-swap under an exclusive
//! lock on a sidecar lock file — re-read, decide, write a temporary file, fsync, rename, fsync
//! the directory — so processes sharing the file never lose each other's updates, and a reader
//! sees the old or the new file, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The ledger's C2SP verifier key, pinned on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vkey: Option<String>,
    /// The last verified checkpoint: its signed note, as the hub served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The ledger key transitions followed from the pinned key (signed notes, oldest first;
    /// absent until the hub first rotates its key, and from files of older SDKs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<String>,
}

/// A state file at a path (and its lock file beside it, `<path>.lock`).
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::StateFile(format!("{what} `{}`: {e}", path.display()))
}

impl StateFile {
    /// The state file at `path` (created on the first update).
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the state (empty if the file does not exist yet). Blocking.
    pub fn load(&self) -> Result<State> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::StateFile(format!(
                    "`{}` is not a state file: {e}",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io("cannot read", &self.path, e)),
        }
    }

    /// Compare-and-swap: under the exclusive lock, read the current state and hand it to
    /// `decide`; if it returns a new state, write it durably. Returns the state now stored.
    /// Blocking (call it from `spawn_blocking` in async code).
    pub fn update<F>(&self, decide: F) -> Result<State>
    where
        F: FnOnce(&State) -> Result<Option<State>>,
    {
        let lock_path = self.sidecar("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("cannot open the lock file", &lock_path, e))?;
        lock.lock().map_err(|e| io("cannot lock", &lock_path, e))?;
        // INVARIANT (cas): everything from here to the unlock happens under the lock.
        let result = self.load().and_then(|current| match decide(&current)? {
            Some(next) if next != current => {
                self.write(&next)?;
                Ok(next)
            }
            _ => Ok(current),
        });
        lock.unlock()
            .map_err(|e| io("cannot unlock", &lock_path, e))?;
        result
    }

    fn sidecar(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        PathBuf::from(name)
    }

    /// Write durably: temporary file, fsync, rename, fsync the directory.
    fn write(&self, state: &State) -> Result<()> {
        let tmp = self.sidecar(&format!("tmp.{}", std::process::id()));
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::StateFile(format!("cannot encode the state: {e}")))?;
        let mut file = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("cannot write", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(|e| io("cannot replace", &self.path, e))?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("cannot sync the directory", &dir, e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn note(n: u64) -> String {
        format!("checkpoint {n}")
    }

    fn size(state: &State) -> u64 {
        state
            .checkpoint
            .as_deref()
            .and_then(|c| c.strip_prefix("checkpoint "))
            .map_or(0, |n| n.parse().unwrap())
    }

    #[test]
    fn a_missing_file_is_an_empty_state_and_an_update_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("state.json"));
        assert_eq!(file.load().unwrap(), State::default());
        let stored = file
            .update(|_| {
                Ok(Some(State {
                    vkey: Some("k".into()),
                    checkpoint: Some(note(1)),
                    transitions: vec!["t".into()],
                }))
            })
            .unwrap();
        assert_eq!(file.load().unwrap(), stored);
        // Declining to change leaves it as it was.
        assert_eq!(file.update(|_| Ok(None)).unwrap(), stored);
    }

    #[test]
    fn a_file_written_before_key_transitions_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, br#"{"vkey":"k","checkpoint":"c"}"#).unwrap();
        let file = StateFile::new(&path);
        let state = file.load().unwrap();
        assert_eq!(
            state,
            State {
                vkey: Some("k".into()),
                checkpoint: Some("c".into()),
                transitions: Vec::new(),
            }
        );
        // Written back without transitions, it is the same file an older SDK reads.
        file.update(|s| {
            Ok(Some(State {
                checkpoint: Some("d".into()),
                ..s.clone()
            }))
        })
        .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"vkey": "k", "checkpoint": "d"}));
    }

    #[test]
    fn a_corrupt_file_is_a_state_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            StateFile::new(&path).load(),
            Err(Error::StateFile(_))
        ));
        fs::write(&path, br#"{"vkey":"k","extra":1}"#).unwrap();
        assert!(matches!(
            StateFile::new(&path).load(),
            Err(Error::StateFile(_))
        ));
    }

    #[test]
    fn concurrent_compare_and_swap_updates_never_lose_the_largest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let file = StateFile::new(&path);
                std::thread::spawn(move || {
                    for i in 0..25u64 {
                        let mine = i * 8 + t + 1;
                        file.update(|current| {
                            Ok((size(current) < mine).then(|| State {
                                checkpoint: Some(note(mine)),
                                ..current.clone()
                            }))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(size(&StateFile::new(&path).load().unwrap()), 200);
    }
}
