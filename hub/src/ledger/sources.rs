//! Where `gridhub audit verify` reads a ledger from: the database of a data directory, or a
//! running hub over HTTPS (entries page by page, the latest signed checkpoint).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::verify::{LedgerSource, SourceEntry};
use crate::storage::Store;

type PageTask = tokio::task::JoinHandle<Result<Vec<SourceEntry>, String>>;

/// Pages read ahead, each on its own read connection, while the verifier hashes.
const READ_AHEAD: i64 = 2;

/// A database. While the verifier hashes one page, the next ones are already being read.
pub struct StoreSource {
    store: Store,
    prefetch: std::collections::VecDeque<(i64, PageTask)>,
}

impl StoreSource {
    pub fn new(store: &Store) -> StoreSource {
        StoreSource {
            store: store.clone(),
            prefetch: std::collections::VecDeque::new(),
        }
    }

    fn fetch(&self, from: i64, limit: i64) -> PageTask {
        let store = self.store.clone();
        tokio::spawn(async move {
            // Fast path: the whole page in one row, accepted only if every entry sits at the
            // index it claims; anything else is read again row by row for exact diagnostics.
            let chunk = store.ledger_chunk(from, limit).await.ok().flatten();
            if let Some(entries) = chunk.as_ref().and_then(split_chunk) {
                return Ok(entries);
            }
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
        })
    }
}

/// Entries of a chunk whose texts, hashes and claimed indexes all line up; else None.
fn split_chunk(c: &crate::storage::LedgerChunk) -> Option<Vec<SourceEntry>> {
    let count = usize::try_from(c.count).ok()?;
    if c.leaves.len() != count * 32 {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for ((i, text), leaf) in c
        .texts
        .split('\n')
        .enumerate()
        .zip(c.leaves.chunks_exact(32))
    {
        let index = c.first + i64::try_from(i).ok()?;
        let claimed = super::verify::claimed_index(text)?;
        if i64::try_from(claimed).ok()? != index {
            return None;
        }
        out.push(SourceEntry {
            index,
            canonical: text.to_owned(),
            leaf_hash: Some(leaf.to_vec()),
        });
    }
    (out.len() == count).then_some(out)
}

impl LedgerSource for StoreSource {
    async fn checkpoints(&mut self) -> Result<Vec<String>, String> {
        let all = self
            .store
            .checkpoints()
            .await
            .map_err(|e| format!("cannot read checkpoints: {e}"))?;
        Ok(all.into_iter().map(|c| c.note).collect())
    }

    async fn page(&mut self, from: i64, limit: i64) -> Result<Vec<SourceEntry>, String> {
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
        task.await.map_err(|e| format!("page reader failed: {e}"))?
    }
}

/// A remote hub: `GET /v1/audit/checkpoint` and `GET /v1/audit/entries` with a DPO token.
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
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
    async fn checkpoints(&mut self) -> Result<Vec<String>, String> {
        let note = self
            .get("/v1/audit/checkpoint")
            .await?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        Ok(vec![note])
    }

    async fn page(&mut self, from: i64, limit: i64) -> Result<Vec<SourceEntry>, String> {
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
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::storage::LedgerRow;

    /// The one-row fast path must carry leaf hashes with zero bytes intact (SQLite
    /// `group_concat` over blobs), or every page would silently fall back to row-by-row reads.
    #[tokio::test]
    async fn sqlite_chunks_keep_leaf_hashes_with_zero_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DatabaseLocation::Sqlite(dir.path().join("l.db")))
            .await
            .unwrap();
        let rows: Vec<LedgerRow> = (0..5i64)
            .map(|i| {
                let mut leaf = vec![0u8; 32];
                leaf[31] = u8::try_from(i).unwrap() + 1;
                leaf[7] = 0xff;
                LedgerRow {
                    index: i,
                    time_ms: 0,
                    actor: "{}".to_owned(),
                    action: "test".to_owned(),
                    purpose: None,
                    case_id: None,
                    decision: "allow".to_owned(),
                    canonical: format!("{{\"action\":\"test\",\"index\":{i}}}"),
                    leaf_hash: leaf,
                    subjects: vec![],
                }
            })
            .collect();
        store.append_ledger(&rows, &[]).await.unwrap();
        let chunk = store.ledger_chunk(0, 10).await.unwrap().unwrap();
        assert_eq!(chunk.leaves.len(), 5 * 32);
        let entries = split_chunk(&chunk).expect("fast path accepted");
        for (e, r) in entries.iter().zip(&rows) {
            assert_eq!(e.leaf_hash.as_deref(), Some(r.leaf_hash.as_slice()));
            assert_eq!(e.canonical, r.canonical);
        }
    }
}
