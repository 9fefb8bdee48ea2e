//! Department clients as last read, by certificate thumbprint, each tagged with the role
//! permission version it was read at. Every change to a client (registration, roles,
//! revocation) bumps that version in the same transaction, so an entry read at the current
//! version is the row as stored: a request reads the versions once and skips the two client
//! queries when its client's entry is current. Bounded: when full, entries of older versions go
//! first, then all.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::storage::ClientRow;

/// Clients remembered at most.
const CAPACITY: usize = 4_096;

#[derive(Default)]
pub struct KnownClients {
    entries: Mutex<HashMap<String, (i64, ClientRow)>>,
}

impl KnownClients {
    /// The client with certificate `thumbprint` if it was read at policy version `version`.
    pub fn get(&self, thumbprint: &str, version: i64) -> Option<ClientRow> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(thumbprint)
            .filter(|(at, _)| *at == version)
            .map(|(_, row)| row.clone())
    }

    /// Remember `row`, read after policy version `version` was (so it is never older than
    /// that version; a newer row is replaced as soon as requests read the newer version).
    pub fn insert(&self, thumbprint: &str, version: i64, row: &ClientRow) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY && !entries.contains_key(thumbprint) {
            entries.retain(|_, (at, _)| *at >= version);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(thumbprint.to_owned(), (version, row.clone()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(id: &str, active: bool) -> ClientRow {
        ClientRow {
            id: id.to_owned(),
            department: "health".to_owned(),
            thumbprint: format!("thumb-{id}"),
            certificate_pem: String::new(),
            issuer: "hub".to_owned(),
            not_after: 0,
            age_recipient: None,
            active,
            roles: vec!["department".to_owned()],
        }
    }

    #[test]
    fn an_entry_counts_only_at_the_version_it_was_read_at() {
        let known = KnownClients::default();
        assert!(known.get("thumb-a", 7).is_none());
        known.insert("thumb-a", 7, &row("a", true));
        assert!(known.get("thumb-a", 7).unwrap().active);
        // Any later change (a revocation, new roles) bumps the version: the entry is stale.
        assert!(known.get("thumb-a", 8).is_none());
        known.insert("thumb-a", 8, &row("a", false));
        assert!(!known.get("thumb-a", 8).unwrap().active);
        assert!(known.get("thumb-b", 8).is_none());
    }

    #[test]
    fn when_full_older_versions_go_first() {
        let known = KnownClients::default();
        for i in 0..CAPACITY {
            known.insert(
                &format!("t{i}"),
                if i == 0 { 1 } else { 2 },
                &row("x", true),
            );
        }
        known.insert("new", 2, &row("y", true));
        assert!(known.get("t0", 1).is_none());
        assert!(known.get("t1", 2).is_some());
        assert!(known.get("new", 2).is_some());
        for i in 0..CAPACITY {
            known.insert(&format!("u{i}"), 3, &row("x", true));
        }
        assert!(known.get("new", 2).is_none(), "older versions dropped");
        assert_eq!(known.get(&format!("u{}", CAPACITY - 1), 3).unwrap().id, "x");
        // Full of current entries: all go, the new one stays.
        known.insert("extra", 3, &row("z", true));
        assert!(known.get("u0", 3).is_none());
        assert_eq!(known.get("extra", 3).unwrap().id, "z");
    }
}
