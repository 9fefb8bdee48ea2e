//! Opening the tree at start-up, whatever a crash or a failed write left behind. The entries'
//! canonical texts are the truth (they are what checkpoints sign and what `audit verify`
//! checks); interior nodes are derived from them. If stored nodes are missing, or the tree they
//! make disagrees with the newest signed checkpoint, the nodes are rebuilt from the texts. Only
//! a real inconsistency stops the start: a signed checkpoint covering entries that are not
//! stored, a gap in the entries, or texts that do not hash to a signed root.

use super::merkle::{self, Frontier, Hash, NodeId};
use super::{Head, LedgerError, TILE_LEVELS, load_head, resolve_nodes};
use crate::storage::Store;

/// Entries read per page while rebuilding.
const PAGE: i64 = 10_000;

/// Load the head, repairing derived nodes if needed, and check it against the newest signed
/// checkpoint.
pub(super) async fn open_head(store: &Store) -> Result<Head, LedgerError> {
    let latest = store.latest_checkpoint().await?;
    let signed = latest
        .as_ref()
        .map(|c| (u64::try_from(c.size).unwrap_or(0), c.root.as_slice()));
    let head = match load_head(store).await {
        Ok(head) => head,
        Err(LedgerError::Integrity(why)) => {
            tracing::warn!(%why, "ledger tree nodes are missing; rebuilding them from the entries");
            rebuild_nodes(store, signed).await?;
            return load_head(store).await;
        }
        Err(e) => return Err(e),
    };
    let Some((size, root)) = signed else {
        return Ok(head);
    };
    let held = head.frontier.size();
    if size > held {
        return Err(LedgerError::Integrity(format!(
            "a signed checkpoint covers {size} entries but the ledger holds {held}: entry \
             {held} is missing"
        )));
    }
    if root_at(store, size)
        .await
        .is_ok_and(|stored| stored[..] == *root)
    {
        return Ok(head);
    }
    tracing::warn!(
        size,
        "the stored tree disagrees with the newest signed checkpoint; rebuilding its nodes from \
         the entries"
    );
    rebuild_nodes(store, signed).await?;
    load_head(store).await
}

/// The root of the first `size` entries, from stored nodes.
async fn root_at(store: &Store, size: u64) -> Result<Hash, LedgerError> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    let wanted = merkle::nodes_for(&[(0, size)]);
    let nodes = resolve_nodes(store, &wanted).await?;
    merkle::range_hash(0, size, &|id: NodeId| nodes.get(&id).copied())
        .map_err(|e| LedgerError::Integrity(e.to_string()))
}

/// Recompute every interior node from the entries' texts and, if the texts hash to the root of
/// the newest signed checkpoint (`signed`: its size and root), replace the stored nodes in one
/// transaction. Nothing is written otherwise, so the stored evidence stays as it was. Fails
/// naming the index of a missing entry, or of the first entry whose text no longer matches its
/// stored leaf hash.
async fn rebuild_nodes(store: &Store, signed: Option<(u64, &[u8])>) -> Result<(), LedgerError> {
    let mut frontier = Frontier::new();
    let mut nodes = Vec::new();
    let mut first_altered = None;
    let mut root_at_signed = (signed.map(|(size, _)| size) == Some(0)).then(merkle::empty_root);
    loop {
        let from = i64::try_from(frontier.size()).unwrap_or(i64::MAX);
        let page = store.ledger_page(from, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let expected = frontier.size();
            if u64::try_from(row.index).ok() != Some(expected) {
                return Err(LedgerError::Integrity(format!(
                    "entry {expected} is missing (the next stored entry is {})",
                    row.index
                )));
            }
            let leaf = merkle::leaf_hash(row.canonical.as_bytes());
            if first_altered.is_none() && row.leaf_hash[..] != leaf[..] {
                first_altered = Some(expected);
            }
            nodes.extend(
                frontier
                    .push(leaf)
                    .into_iter()
                    .filter(|(id, _)| id.level > 0 && id.level % TILE_LEVELS == 0),
            );
            if signed.map(|(size, _)| size) == Some(frontier.size()) {
                root_at_signed = Some(frontier.root());
            }
        }
    }
    if let Some((size, root)) = signed {
        if size > frontier.size() {
            return Err(LedgerError::Integrity(format!(
                "a signed checkpoint covers {size} entries but the ledger holds {}: entry {} is \
                 missing",
                frontier.size(),
                frontier.size()
            )));
        }
        if root_at_signed.is_none_or(|r| r[..] != *root) {
            return Err(LedgerError::Integrity(match first_altered {
                Some(index) => format!(
                    "entry {index} was altered: its text no longer matches its leaf hash, and \
                     entries 0..{size} do not hash to the root of the signed checkpoint of \
                     size {size}"
                ),
                None => format!(
                    "entries 0..{size} do not hash to the root of the signed checkpoint of size \
                     {size}; `gridhub audit verify` names the first entry that differs"
                ),
            }));
        }
    }
    store.replace_ledger_nodes(&nodes).await?;
    tracing::info!(
        entries = frontier.size(),
        nodes = nodes.len(),
        "ledger tree nodes rebuilt from the entries"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;
    use sqlx::Connection;

    use super::*;
    use crate::config::DatabaseLocation;
    use crate::ledger::note::NoteSigner;
    use crate::ledger::{Actor, Decision, EntryDraft, Ledger};

    const ENTRIES: u64 = 100;

    async fn open(path: &Path, pkcs8: &[u8]) -> Result<Ledger, LedgerError> {
        let store = Store::open(&DatabaseLocation::Sqlite(path.to_path_buf()))
            .await
            .unwrap();
        Ledger::open(
            store,
            NoteSigner::from_pkcs8("test", pkcs8).unwrap(),
            "test".into(),
        )
        .await
    }

    /// A ledger of `ENTRIES` entries and a signed checkpoint over all of them; returns the
    /// signing key and the checkpoint.
    async fn written(path: &Path) -> (Vec<u8>, String) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec();
        let ledger = open(path, &pkcs8).await.unwrap();
        for i in 0..ENTRIES {
            let draft = EntryDraft::new(Actor::system(), "test.entry", Decision::Allow, "-".into())
                .reason(&format!("entry {i}"));
            ledger.append(draft).await.unwrap();
        }
        let note = ledger.checkpoint().await.unwrap();
        (pkcs8, note)
    }

    async fn sql(path: &Path, statement: &str) {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    /// After a repair the ledger is whole: same size, same checkpoint, and proofs verify.
    async fn assert_whole(ledger: &Ledger, note: &str) {
        assert_eq!(ledger.size(), ENTRIES);
        assert_eq!(ledger.checkpoint().await.unwrap(), note);
        let (_, root) = {
            let h = ledger.inner.head.read().unwrap();
            (h.frontier.size(), h.frontier.root())
        };
        for index in [0, 17, ENTRIES - 1] {
            let (leaf, proof) = ledger.inclusion_proof(index, ENTRIES).await.unwrap();
            merkle::verify_inclusion(index, ENTRIES, &leaf, &proof, &root).unwrap();
        }
    }

    #[tokio::test]
    async fn missing_tree_nodes_are_rebuilt_from_the_entries_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let (pkcs8, note) = written(&path).await;
        sql(&path, "DELETE FROM ledger_nodes WHERE idx % 2 = 0").await;
        let ledger = open(&path, &pkcs8).await.unwrap();
        assert_whole(&ledger, &note).await;
    }

    #[tokio::test]
    async fn a_wrong_tree_node_is_rebuilt_from_the_entries_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let (pkcs8, note) = written(&path).await;
        sql(
            &path,
            "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 0",
        )
        .await;
        let ledger = open(&path, &pkcs8).await.unwrap();
        assert_whole(&ledger, &note).await;
    }

    #[tokio::test]
    async fn a_checkpoint_over_missing_entries_stops_the_start_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let (pkcs8, _) = written(&path).await;
        sql(&path, "DELETE FROM ledger_entries WHERE idx >= 90").await;
        let Err(LedgerError::Integrity(why)) = open(&path, &pkcs8).await else {
            panic!("a ledger shorter than its signed checkpoint opened")
        };
        assert!(why.contains("entry 90 is missing"), "{why}");
    }

    #[tokio::test]
    async fn an_altered_entry_under_a_missing_node_stops_the_start_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let (pkcs8, _) = written(&path).await;
        // An altered text is found by `audit verify`, not at every start (the stored tiles
        // still give the signed root). It stops the start when a repair needs the texts: here
        // the tile above it is missing as well.
        sql(
            &path,
            "UPDATE ledger_entries SET canonical = replace(canonical, 'entry 5\"', 'entry 6\"') \
             WHERE idx = 5; DELETE FROM ledger_nodes WHERE level = 4 AND idx = 0",
        )
        .await;
        let nodes = "SELECT group_concat(hex(hash)) FROM ledger_nodes ORDER BY level, idx";
        let before = {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let v: String = sqlx::query_scalar(nodes).fetch_one(&mut c).await.unwrap();
            c.close().await.unwrap();
            v
        };
        // The texts do not hash to the signed root: the repair writes nothing.
        let Err(LedgerError::Integrity(why)) = open(&path, &pkcs8).await else {
            panic!("a ledger with an altered entry opened")
        };
        assert!(why.starts_with("entry 5 was altered"), "{why}");
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let after: String = sqlx::query_scalar(nodes).fetch_one(&mut c).await.unwrap();
        assert_eq!(before, after, "the stored nodes were left as they were");
    }
}
