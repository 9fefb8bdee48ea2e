//! Where `gridhub audit verify` reads a ledger from: the database of a data directory, or a
//! running hub over HTTPS (entries page by page, the latest signed checkpoint).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use std::collections::HashMap;

use super::TILE_LEVELS;
use super::merkle::{Hash, NodeId};
use super::verify::{JoinedTexts, LedgerSource, Page, SourceEntry};
use crate::storage::Store;

type PageTask = tokio::task::JoinHandle<Result<(Page, Option<StoredNodes>), String>>;

/// Pages read ahead, each on its own read connection, while the verifier hashes.
const READ_AHEAD: i64 = 2;

/// The stored tree nodes completed by the leaves `from..to`, read with their page.
struct StoredNodes {
    from: u64,
    to: u64,
    nodes: HashMap<NodeId, Hash>,
}

/// A database. While the verifier hashes one page, the next ones are already being read, with
/// the stored tree nodes that their leaves complete.
pub struct StoreSource {
    store: Store,
    prefetch: std::collections::VecDeque<(i64, PageTask)>,
    /// Nodes read ahead with pages that `verify` has not asked for yet (a few at most).
    nodes: std::collections::VecDeque<StoredNodes>,
}

/// Stored interior nodes (levels 4, 8, …) whose last leaf lies in `from..to`.
async fn read_nodes(store: &Store, from: u64, to: u64) -> Result<HashMap<NodeId, Hash>, String> {
    let mut out = HashMap::new();
    let mut level = TILE_LEVELS;
    while level < 64 && (1u64 << level) <= to {
        let first = (from + 1).div_ceil(1 << level).saturating_sub(1);
        let end = to >> level;
        if first < end {
            for (index, hash) in store
                .ledger_level(level, first, end)
                .await
                .map_err(|e| format!("cannot read tree nodes: {e}"))?
            {
                out.insert(NodeId { level, index }, hash);
            }
        }
        level += TILE_LEVELS;
    }
    Ok(out)
}

impl StoreSource {
    pub fn new(store: &Store) -> StoreSource {
        StoreSource {
            store: store.clone(),
            prefetch: std::collections::VecDeque::new(),
            nodes: std::collections::VecDeque::new(),
        }
    }

    /// Read a page and then the stored nodes its leaves complete (if that fails, `verify`
    /// asks again through `stored_nodes`, which reports the error).
    fn fetch(&self, from: i64, limit: i64) -> PageTask {
        let store = self.store.clone();
        tokio::spawn(async move {
            let page = Self::read_page(&store, from, limit).await?;
            let nodes = match u64::try_from(from) {
                Ok(from) if !page.is_empty() => {
                    let to = from + page.len() as u64;
                    read_nodes(&store, from, to)
                        .await
                        .ok()
                        .map(|nodes| StoredNodes { from, to, nodes })
                }
                _ => None,
            };
            Ok((page, nodes))
        })
    }

    async fn read_page(store: &Store, from: i64, limit: i64) -> Result<Page, String> {
        // Fast path: the whole page in one query, a few dozen entries per row, the texts
        // lent as bytes. `verify` accepts it only if every entry sits at the index it
        // claims, and reads any other page again row by row (`stored_leaves`) for exact
        // diagnostics. The stored leaf hashes are not read here: `verify` checks the stored
        // tree nodes, and the stored leaf hashes only where a node or checkpoint disagrees,
        // or in the last, incomplete tile. A chunk that finds nothing may lie in a gap: the
        // row-by-row read below tells the end of the log from a gap (it returns the entries
        // after one).
        if let Ok(Some(chunk)) = store.ledger_chunk(from, limit).await {
            return Ok(Page::joined(chunk.first, Box::new(chunk)));
        }
        Ok(Page::Entries(entries(store, from, limit).await?))
    }
}

/// Up to `limit` entries from `from`, row by row, with their stored leaf hashes.
async fn entries(store: &Store, from: i64, limit: i64) -> Result<Vec<SourceEntry>, String> {
    let rows = store
        .ledger_page(from, limit)
        .await
        .map_err(|e| format!("cannot read entries: {e}"))?;
    Ok(rows
        .into_iter()
        .map(|r| SourceEntry {
            index: r.index,
            canonical: r.canonical,
            leaf_hash: Some(r.leaf_hash),
        })
        .collect())
}

impl JoinedTexts for crate::storage::LedgerChunk {
    fn pieces(&self) -> Vec<&[u8]> {
        crate::storage::LedgerChunk::pieces(self)
    }
}

impl LedgerSource for StoreSource {
    async fn key_transitions(&mut self) -> Result<Vec<String>, String> {
        self.store
            .key_transitions()
            .await
            .map_err(|e| format!("cannot read the key transitions: {e}"))
    }

    async fn checkpoints(&mut self) -> Result<Vec<String>, String> {
        let all = self
            .store
            .checkpoints()
            .await
            .map_err(|e| format!("cannot read checkpoints: {e}"))?;
        Ok(all.into_iter().map(|c| c.note).collect())
    }

    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, String> {
        // Read-ahead assumes contiguous indexes; after a gap it starts over from `from`.
        let task = match self.prefetch.pop_front() {
            Some((at, task)) if at == from => task,
            _ => {
                for (_, stale) in self.prefetch.drain(..) {
                    stale.abort();
                }
                self.fetch(from, limit)
            }
        };
        let mut next = self
            .prefetch
            .back()
            .map_or(from + limit, |(at, _)| at + limit);
        while (self.prefetch.len() as i64) < READ_AHEAD {
            self.prefetch.push_back((next, self.fetch(next, limit)));
            next += limit;
        }
        let (page, nodes) = task
            .await
            .map_err(|e| format!("page reader failed: {e}"))??;
        if let Some(nodes) = nodes {
            if self.nodes.len() >= 4 {
                self.nodes.pop_front();
            }
            self.nodes.push_back(nodes);
        }
        Ok(page)
    }

    async fn stored_nodes(
        &mut self,
        from: u64,
        to: u64,
    ) -> Result<Option<HashMap<NodeId, Hash>>, String> {
        let ready = self
            .nodes
            .iter()
            .position(|n| n.from == from && n.to == to)
            .and_then(|at| self.nodes.remove(at));
        match ready {
            Some(ready) => Ok(Some(ready.nodes)),
            None => read_nodes(&self.store, from, to).await.map(Some),
        }
    }

    async fn stored_leaves(
        &mut self,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<SourceEntry>>, String> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::try_from(to).unwrap_or(i64::MAX).saturating_sub(from);
        entries(&self.store, from, limit).await.map(Some)
    }
}

/// A remote hub: `GET /v1/audit/checkpoint` and `GET /v1/audit/entries` with a DPO token.
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Checkpoints fetched apart (a witnessed one) that verification also checks.
    extra: Vec<String>,
}

impl HttpSource {
    pub fn new(base: &str, ca: Option<&Path>, token: Option<String>) -> anyhow::Result<HttpSource> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca {
            for cert in CertificateDer::pem_file_iter(ca)? {
                roots.add(cert?)?;
            }
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .build()?;
        Ok(HttpSource {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            extra: Vec::new(),
        })
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, String> {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("GET {path}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {path}: HTTP {}", resp.status()));
        }
        Ok(resp)
    }

    /// `GET /v1/audit/checkpoint?min_cosignatures=K`: the newest checkpoint with at least
    /// `min` witness cosignatures, or `None` if the hub has none.
    pub async fn cosigned_checkpoint(&self, min: usize) -> Result<Option<String>, String> {
        let path = format!("/v1/audit/checkpoint?min_cosignatures={min}");
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("GET {path}: {e}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(format!("GET {path}: HTTP {}", resp.status()));
        }
        resp.text().await.map(Some).map_err(|e| e.to_string())
    }

    /// Also check `note` (a checkpoint fetched apart) against the tree the entries rebuild.
    pub fn also_check(&mut self, note: String) {
        self.extra.push(note);
    }

    /// The hub's published ledger key (C2SP verifier string).
    pub async fn verifier_key(&self) -> Result<String, String> {
        let v: serde_json::Value = self
            .get("/v1/audit/public-key")
            .await?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        v.get("verifier")
            .unwrap_or(&serde_json::Value::Null)
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no verifier in /v1/audit/public-key".to_owned())
    }
}

impl LedgerSource for HttpSource {
    async fn key_transitions(&mut self) -> Result<Vec<String>, String> {
        let v: serde_json::Value = self
            .get("/v1/audit/public-key")
            .await?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok(v.get("transitions")
            .and_then(serde_json::Value::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn checkpoints(&mut self) -> Result<Vec<String>, String> {
        let note = self
            .get("/v1/audit/checkpoint")
            .await?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let mut notes = vec![note];
        notes.extend(self.extra.iter().cloned());
        Ok(notes)
    }

    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, String> {
        let limit = limit.min(1000);
        let v: serde_json::Value = self
            .get(&format!("/v1/audit/entries?start={from}&limit={limit}"))
            .await?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let entries = v
            .get("entries")
            .unwrap_or(&serde_json::Value::Null)
            .as_array()
            .ok_or_else(|| "malformed entries page".to_owned())?;
        entries
            .iter()
            .map(|e| {
                Ok(SourceEntry {
                    index: e
                        .get("index")
                        .unwrap_or(&serde_json::Value::Null)
                        .as_i64()
                        .ok_or_else(|| "entry without index".to_owned())?,
                    canonical: e
                        .get("canonical")
                        .unwrap_or(&serde_json::Value::Null)
                        .as_str()
                        .ok_or_else(|| "entry without canonical text".to_owned())?
                        .to_owned(),
                    leaf_hash: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Page::Entries)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::LedgerRow;

    /// The one-row fast path hands back every entry at its index, and stored nodes are found
    /// by the leaf range that completes them.
    #[tokio::test]
    async fn sqlite_chunks_and_stored_nodes_line_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("l.db")))
            .await
            .unwrap();
        let rows: Vec<LedgerRow> = (0..40i64)
            .map(|i| LedgerRow {
                index: i,
                time_ms: 0,
                actor: "{}".to_owned(),
                action: "test".to_owned(),
                purpose: None,
                case_id: None,
                decision: "allow".to_owned(),
                department: None,
                category: None,
                request_id: "-".to_owned(),
                stream: "system",
                canonical: format!("{{\"action\":\"test\",\"index\":{i}}}"),
                leaf_hash: vec![0; 32],
                subjects: vec![],
            })
            .collect();
        let nodes: Vec<(NodeId, Hash)> = (0..2u64)
            .map(|index| {
                (
                    NodeId { level: 4, index },
                    [u8::try_from(index).unwrap(); 32],
                )
            })
            .collect();
        store.append_ledger(&rows, &nodes).await.unwrap();
        let mut source = StoreSource::new(&store);
        let Page::Joined(page) = source.page(0, 100).await.unwrap() else {
            panic!("fast path refused");
        };
        assert_eq!((page.first(), Page::Joined(page).len()), (0, 40));
        let chunk = store.ledger_chunk(0, 100).await.unwrap().unwrap();
        let texts: Vec<&[u8]> = chunk
            .pieces()
            .into_iter()
            .flat_map(|piece| piece.split(|b| *b == b'\n'))
            .collect();
        let expected: Vec<&[u8]> = rows.iter().map(|r| r.canonical.as_bytes()).collect();
        assert_eq!(texts, expected);
        // Pieces follow aligned runs of indexes; a chunk past the end, or in a gap, is empty,
        // and the page then comes from the row-by-row read, which finds what lies after a gap.
        let chunk = store.ledger_chunk(30, 5).await.unwrap().unwrap();
        assert_eq!(chunk.pieces().len(), 1);
        assert!(store.ledger_chunk(40, 100).await.unwrap().is_none());
        assert!(source.page(40, 100).await.unwrap().is_empty());
        let mut after_gap = rows[0].clone();
        after_gap.index = 500;
        store.append_ledger(&[after_gap], &[]).await.unwrap();
        assert!(store.ledger_chunk(40, 100).await.unwrap().is_none());
        let Page::Entries(entries) = source.page(40, 100).await.unwrap() else {
            panic!("a chunk in a gap was taken");
        };
        assert_eq!(entries.iter().map(|e| e.index).collect::<Vec<_>>(), [500]);
        // Stored nodes come back exactly, whether read packed (contiguous) or row by row.
        let level = |from, to| store.ledger_level(4, from, to);
        assert_eq!(
            level(0, 9).await.unwrap(),
            nodes
                .iter()
                .map(|(id, h)| (id.index, *h))
                .collect::<Vec<_>>()
        );
        assert_eq!(level(1, 2).await.unwrap(), vec![(1, [1; 32])]);
        assert!(level(2, 9).await.unwrap().is_empty());
        store
            .append_ledger(&[], &[(NodeId { level: 4, index: 5 }, [5; 32])])
            .await
            .unwrap();
        assert_eq!(
            level(0, 9).await.unwrap(),
            vec![(0, [0; 32]), (1, [1; 32]), (5, [5; 32])]
        );
        // Node (4, 0) completes with leaf 15, (4, 1) with leaf 31.
        let found = |m: HashMap<NodeId, Hash>| {
            let mut v: Vec<u64> = m.keys().map(|k| k.index).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            found(source.stored_nodes(0, 40).await.unwrap().unwrap()),
            vec![0, 1]
        );
        assert_eq!(
            found(source.stored_nodes(15, 16).await.unwrap().unwrap()),
            vec![0]
        );
        assert_eq!(
            found(source.stored_nodes(16, 31).await.unwrap().unwrap()),
            Vec::<u64>::new()
        );
        assert_eq!(
            found(source.stored_nodes(16, 32).await.unwrap().unwrap()),
            vec![1]
        );
    }
}
