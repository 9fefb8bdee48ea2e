//! Whether the ledger can write. After a failed append the ledger is *degraded*: it refuses every
//! append at once (callers answer 503 `audit_unavailable`, so nothing is done, disclosed or
//! receipted), and only the prober writes, a `ledger.storage_recovered` entry every
//! `PROBE_EVERY`. The first probe that commits ends the degraded state, and the entry it leaves
//! records the outage for the data protection officers: since when, why, and how many
//! operations were refused.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// How often a degraded ledger tries its storage again.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// Why writes failed, in words an operator can act on. Never carries a value from a request:
/// only the kind of failure, taken from the database's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The disk or the database's storage is full.
    DiskFull,
    /// The database file or filesystem cannot be written.
    ReadOnly,
    /// An input/output error from the disk.
    Io,
    /// The database server cannot be reached or dropped the connection.
    Unreachable,
    /// The database stayed locked by another process.
    Locked,
    /// Stored entries disagree with what this process committed.
    Inconsistent,
    /// Any other database error.
    Other,
}

impl FaultKind {
    /// Classify a database error (SQLite extended result codes, PostgreSQL SQLSTATE classes).
    pub fn of(e: &sqlx::Error) -> FaultKind {
        match e {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // PostgreSQL answers a five-character SQLSTATE; SQLite an extended result code
                // (a number whose low byte is the primary code).
                if code.len() == 5 {
                    match code.as_ref() {
                        c if c.starts_with("53") => FaultKind::DiskFull,
                        "58030" => FaultKind::Io,
                        "25006" => FaultKind::ReadOnly,
                        c if c.starts_with("08") || c.starts_with("57P") => FaultKind::Unreachable,
                        _ => FaultKind::Other,
                    }
                } else {
                    match code.parse::<i32>().map(|n| n & 0xff) {
                        Ok(13) => FaultKind::DiskFull,
                        Ok(8) => FaultKind::ReadOnly,
                        Ok(10) => FaultKind::Io,
                        Ok(5 | 6) => FaultKind::Locked,
                        _ => FaultKind::Other,
                    }
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => FaultKind::Unreachable,
            _ => FaultKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::DiskFull => "disk_full",
            FaultKind::ReadOnly => "read_only",
            FaultKind::Io => "io_error",
            FaultKind::Unreachable => "database_unreachable",
            FaultKind::Locked => "database_locked",
            FaultKind::Inconsistent => "inconsistent",
            FaultKind::Other => "database_error",
        }
    }
}

/// The ledger's write state as `/readyz` and the logs report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    Writable,
    Degraded {
        /// When the first append failed (Unix ms).
        since_ms: i64,
        fault: FaultKind,
        /// Appends refused since then.
        refused: u64,
        /// Probe writes that failed since then.
        failed_probes: u64,
    },
}

/// Shared cell of the ledger's health. Invariant: it turns `Degraded` as soon as an append
/// fails, and `Writable` only after a probe entry committed.
#[derive(Debug)]
pub(super) struct HealthCell(Mutex<Health>);

impl HealthCell {
    pub(super) fn new() -> HealthCell {
        HealthCell(Mutex::new(Health::Writable))
    }

    pub(super) fn get(&self) -> Health {
        // A poisoned lock means a panic while it was held: report the ledger as unwritable.
        self.0
            .lock()
            .map(|h| h.clone())
            .unwrap_or(Health::Degraded {
                since_ms: 0,
                fault: FaultKind::Other,
                refused: 0,
                failed_probes: 0,
            })
    }

    pub(super) fn is_writable(&self) -> bool {
        matches!(self.get(), Health::Writable)
    }

    /// An append failed: degrade (keeping the first failure's time and kind).
    pub(super) fn fail(&self, fault: FaultKind, now_ms: i64) {
        if let Ok(mut h) = self.0.lock()
            && *h == Health::Writable
        {
            tracing::error!(
                fault = fault.as_str(),
                "ledger storage failed: writes and disclosures are refused (503) until a probe \
                 write commits"
            );
            *h = Health::Degraded {
                since_ms: now_ms,
                fault,
                refused: 0,
                failed_probes: 0,
            };
        }
    }

    /// `n` appends were refused while degraded.
    pub(super) fn count_refused(&self, n: u64) {
        if let Ok(mut h) = self.0.lock()
            && let Health::Degraded { refused, .. } = &mut *h
        {
            *refused += n;
        }
    }

    /// A probe write failed.
    pub(super) fn count_failed_probe(&self) {
        if let Ok(mut h) = self.0.lock()
            && let Health::Degraded { failed_probes, .. } = &mut *h
        {
            *failed_probes += 1;
        }
    }

    /// A probe committed: writable again. Returns what the outage was.
    pub(super) fn recover(&self) -> Health {
        match self.0.lock() {
            Ok(mut h) => std::mem::replace(&mut *h, Health::Writable),
            Err(_) => Health::Writable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degraded_cell_keeps_its_first_fault_and_counts_refusals_until_it_recovers() {
        let cell = HealthCell::new();
        assert!(cell.is_writable());
        cell.fail(FaultKind::DiskFull, 10);
        cell.fail(FaultKind::Io, 20);
        cell.count_refused(3);
        cell.count_refused(2);
        cell.count_failed_probe();
        let outage = Health::Degraded {
            since_ms: 10,
            fault: FaultKind::DiskFull,
            refused: 5,
            failed_probes: 1,
        };
        assert_eq!(cell.get(), outage);
        assert!(!cell.is_writable());
        assert_eq!(cell.recover(), outage);
        assert!(cell.is_writable());
        cell.count_refused(1);
        assert_eq!(cell.get(), Health::Writable);
    }
}
