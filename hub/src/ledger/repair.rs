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
    let mut rebuilt = false;
    let head = match load_head(store).await {
        Ok(head) => head,
        Err(LedgerError::Integrity(why)) => {
            tracing::warn!(%why, "ledger tree nodes are missing; rebuilding them from the entries");
            rebuild_nodes(store).await?;
            rebuilt = true;
            load_head(store).await?
        }
        Err(e) => return Err(e),
    };
    let Some(checkpoint) = store.latest_checkpoint().await? else {
        return Ok(head);
    };
    let size = head.frontier.size();
    let signed = u64::try_from(checkpoint.size).unwrap_or(0);
    if signed > size {
        return Err(LedgerError::Integrity(format!(
            "a signed checkpoint covers {signed} entries but the ledger holds {size}: entry \
             {size} is missing"
        )));
    }
    if root_at(store, signed)
        .await
        .is_ok_and(|root| root[..] == checkpoint.root[..])
    {
        return Ok(head);
    }
    if !rebuilt {
        tracing::warn!(
            size = signed,
            "the stored tree disagrees with the newest signed checkpoint; rebuilding its nodes \
             from the entries"
        );
        rebuild_nodes(store).await?;
        if root_at(store, signed).await?[..] == checkpoint.root[..] {
            return load_head(store).await;
        }
    }
    Err(LedgerError::Integrity(format!(
        "entries 0..{signed} do not hash to the root of the signed checkpoint of size \
         {signed}; `gridhub audit verify` names the first entry that differs"
    )))
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

/// Recompute every stored interior node from the entries' texts and replace the stored ones in
/// one transaction. Fails, naming the index, if an entry is missing.
async fn rebuild_nodes(store: &Store) -> Result<(), LedgerError> {
    let mut frontier = Frontier::new();
    let mut nodes = Vec::new();
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
            nodes.extend(
                frontier
                    .push(leaf)
                    .into_iter()
                    .filter(|(id, _)| id.level > 0 && id.level % TILE_LEVELS == 0),
            );
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
