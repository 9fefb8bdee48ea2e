//! The hub's decision index: approved grants, jurisdictions and open responsibilities from the
//! database, compiled into `policy::DecisionIndex` and kept current.
//!
//! Freshness: `decision_state.version` is bumped in the same transaction as every change a
//! decision depends on. Before each decision the hub compares it with the version its index was
//! built at and rebuilds on a difference (another replica changed something). A change made by
//! this replica is applied in place at once when it is the very next version, so approving,
//! revoking, reassigning or closing takes effect on the next request without a rebuild.
//!
//! Row filters are compiled for the index with their literals turned into what a stored record
//! can be compared with without decrypting: blind-index tokens for indexed fields (`t:` + token)
//! and canonical text for unencrypted fields (`p:` + text).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use policy::{
    Catalog, CategoryDef, DecisionIndex, FieldType, GrantStatus, GridCode, LiveGrant,
    Responsibility, RowFilter, RowView,
};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::storage::{GrantRow, Store};
use crate::vault::Vault;

/// A change this replica committed, waiting for the versions before it.
type Change = Box<dyn FnOnce(&mut DecisionIndex) + Send + Sync>;

/// Changes held for versions not yet reached: beyond this, they are dropped and the next
/// request's version check rebuilds instead.
const MAX_PENDING: usize = 10_000;

/// How long a request waits for this replica's own changes to fill a gap before it rebuilds:
/// a change between its commit and its `apply` is microseconds away.
const LOCAL_GAP_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

struct Loaded {
    version: i64,
    index: DecisionIndex,
    /// The catalog in force: the built-in one with the stored categories over it.
    catalog: &'static Catalog,
    /// Changes of this replica for versions after `version + 1` (committed concurrently and
    /// applied out of order), applied once the versions before them are.
    pending: std::collections::BTreeMap<i64, Change>,
}

impl Loaded {
    /// Apply the pending changes that follow `version` with no gap; drop those it covers.
    fn drain(&mut self) {
        self.pending = self.pending.split_off(&(self.version + 1));
        while let Some(change) = self.pending.remove(&(self.version + 1)) {
            change(&mut self.index);
            self.version += 1;
        }
        if self.pending.len() > MAX_PENDING {
            self.pending.clear();
        }
    }
}

pub struct Decisions {
    store: Store,
    vault: Arc<Vault>,
    loaded: RwLock<Loaded>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
    /// Woken whenever a change of this replica moved the version on.
    applied: tokio::sync::Notify,
}

fn poisoned<T>(_: T) -> Error {
    Error::Internal("the decision index lock is poisoned".to_owned())
}

impl Decisions {
    /// Build the index (and the catalog) from the database.
    pub async fn load(store: Store, vault: Arc<Vault>) -> Result<Decisions, Error> {
        let loaded = build(&store, &vault, None).await?;
        Ok(Decisions {
            store,
            vault,
            loaded: RwLock::new(loaded),
            rebuilding: tokio::sync::Mutex::new(()),
            applied: tokio::sync::Notify::new(),
        })
    }

    /// The catalog in force at decision version `current` (refreshed first, as `refresh_to`).
    pub async fn catalog_at(&self, current: i64) -> Result<&'static Catalog, Error> {
        self.refresh_to(current).await?;
        self.catalog()
    }

    /// The catalog as this replica last loaded it.
    pub fn catalog(&self) -> Result<&'static Catalog, Error> {
        Ok(self.loaded.read().map_err(poisoned)?.catalog)
    }

    /// Bring the index up to decision version `current`, which the request read
    /// (`Store::versions`): a rebuild only when another replica changed something. Call before
    /// every decision.
    pub async fn refresh_to(&self, current: i64) -> Result<(), Error> {
        if self.version()? >= current || self.own_changes_reach(current).await? {
            return Ok(());
        }
        let _one = self.rebuilding.lock().await;
        if self.version()? >= current {
            return Ok(());
        }
        let previous = self.catalog()?;
        let mut fresh = build(&self.store, &self.vault, Some(previous)).await?;
        let mut loaded = self.loaded.write().map_err(poisoned)?;
        if fresh.version > loaded.version {
            // Changes committed after the rebuild read its version still apply on top of it.
            fresh.pending = std::mem::take(&mut loaded.pending);
            fresh.drain();
            *loaded = fresh;
        }
        Ok(())
    }

    /// Whether this replica's own changes bring the index to `current` shortly: a change
    /// after `current` is already pending, so the versions up to it were committed too, most
    /// likely here, between their commit and their `apply`. Waits at most `LOCAL_GAP_WAIT`.
    async fn own_changes_reach(&self, current: i64) -> Result<bool, Error> {
        let deadline = tokio::time::Instant::now() + LOCAL_GAP_WAIT;
        loop {
            let woken = self.applied.notified();
            {
                let loaded = self.loaded.read().map_err(poisoned)?;
                if loaded.version >= current {
                    return Ok(true);
                }
                if loaded
                    .pending
                    .last_key_value()
                    .is_none_or(|(v, _)| *v < current)
                {
                    return Ok(false);
                }
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Ok(false);
            }
        }
    }

    fn version(&self) -> Result<i64, Error> {
        Ok(self.loaded.read().map_err(poisoned)?.version)
    }

    /// Run `f` on the current index (synchronously, under a read lock).
    pub fn with_index<T>(&self, f: impl FnOnce(&DecisionIndex) -> T) -> Result<T, Error> {
        let loaded = self.loaded.read().map_err(poisoned)?;
        Ok(f(&loaded.index))
    }

    /// A change this replica committed as decision version `version`: applied in place once
    /// every version before it is (changes committed concurrently arrive out of order and wait
    /// for each other); a version another replica made is filled by the next rebuild.
    pub fn apply(
        &self,
        version: i64,
        change: impl FnOnce(&mut DecisionIndex) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        let mut loaded = self.loaded.write().map_err(poisoned)?;
        if version <= loaded.version {
            return Ok(());
        }
        loaded.pending.insert(version, Box::new(change));
        let before = loaded.version;
        loaded.drain();
        if loaded.version > before {
            self.applied.notify_waiters();
        }
        Ok(())
    }

    /// A grant row as the index takes it (row filter compiled to tokens).
    pub fn live_grant(&self, row: &GrantRow) -> Result<LiveGrant, Error> {
        live_grant(&self.vault, self.catalog()?, row)
    }

    /// A case's current responsibility, applied after a local change.
    pub fn set_case(&self, version: i64, case: &Responsibility) -> Result<(), Error> {
        let case = case.clone();
        self.apply(version, move |index| index.set_case(&case))
    }
}

/// The catalog in force: the built-in one with every stored category over it. A catalog equal
/// to `previous` is `previous`; a changed one is leaked to give it the `'static` lifetime the
/// services hand around, so each catalog change (an admin's `PUT`, rare) keeps a few KB for the
/// life of the process, and nothing else does.
async fn load_catalog(
    store: &Store,
    previous: Option<&'static Catalog>,
) -> Result<&'static Catalog, Error> {
    let mut catalog = Catalog::default_catalog().clone();
    for stored in store.stored_categories().await? {
        catalog = catalog
            .with_category(stored.definition)
            .map_err(|e| Error::Internal(format!("a stored category is invalid: {e}")))?;
    }
    if &catalog == Catalog::default_catalog() {
        return Ok(Catalog::default_catalog());
    }
    match previous {
        Some(previous) if *previous == catalog => Ok(previous),
        _ => Ok(Box::leak(Box::new(catalog))),
    }
}

async fn build(
    store: &Store,
    vault: &Vault,
    previous: Option<&'static Catalog>,
) -> Result<Loaded, Error> {
    // The version first: data read afterwards is at least this new, so a change that lands in
    // between is seen again on the next refresh, never missed.
    let version = store.decision_version().await?;
    let catalog = load_catalog(store, previous).await?;
    let mut index = DecisionIndex::new(catalog.clone());
    for department in store.departments().await? {
        let grids = department
            .jurisdiction
            .iter()
            .filter_map(|g| GridCode::parse(g).ok())
            .collect();
        index.set_jurisdiction(&department.id, grids);
    }
    for row in store.approved_grants().await? {
        if !row.in_record_index() {
            continue;
        }
        let live = live_grant(vault, catalog, &row)?;
        index
            .upsert_grant(&live, GrantStatus::Approved)
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    for case in store.open_responsibilities().await? {
        index.set_case(&case);
    }
    Ok(Loaded {
        version,
        index,
        catalog,
        pending: std::collections::BTreeMap::new(),
    })
}

fn live_grant(
    vault: &Vault,
    catalog: &policy::Catalog,
    row: &GrantRow,
) -> Result<LiveGrant, Error> {
    let filter = match &row.terms.row_filter {
        None => None,
        Some(text) => {
            let category = catalog.category(&row.terms.category).ok_or_else(|| {
                Error::Internal(format!("grant {} names an unknown category", row.id))
            })?;
            let parsed = RowFilter::parse(text, category)
                .map_err(|e| Error::Internal(format!("grant {}: stored filter: {e}", row.id)))?;
            Some(
                compile_filter(vault, category, &parsed)
                    .map_err(|p| Error::Internal(format!("grant {}: {p}", row.id)))?,
            )
        }
    };
    Ok(LiveGrant {
        id: row.id.clone(),
        terms: row.terms.clone(),
        filter,
    })
}

/// Turn a parsed filter's literals into what `StoredRow` compares. `Err` names the field whose
/// literal is not a valid value (never the literal).
pub fn compile_filter(
    vault: &Vault,
    category: &CategoryDef,
    filter: &RowFilter,
) -> Result<RowFilter<String>, String> {
    filter.map_literals(&mut |field, literal: &String| {
        let def = category
            .field(field)
            .ok_or_else(|| format!("field `{field}` is unknown"))?;
        let term = match &def.ty {
            FieldType::TagSet { .. } | FieldType::Enum { .. } => literal.clone(),
            _ => def
                .parse_value(&Value::String(literal.clone()))
                .ok()
                .and_then(|v| v.index_terms().into_iter().next())
                .ok_or_else(|| format!("field `{field}`: the value is not valid for this field"))?,
        };
        Ok(if def.encrypted {
            format!(
                "t:{}",
                URL_SAFE_NO_PAD.encode(vault.blind_token(&category.name, field, &term))
            )
        } else {
            format!("p:{term}")
        })
    })
}

/// A stored record as row filters see it: its blind-index tokens and its unencrypted fields.
pub struct StoredRow {
    /// Field → its tokens (`t:` + base64url).
    tokens: HashMap<String, HashSet<String>>,
    plain: Map<String, Value>,
}

impl StoredRow {
    /// `plain` is the record's public fields, parsed (`records::public_fields`).
    pub fn new(tokens: &[(String, Vec<u8>)], plain: Map<String, Value>) -> StoredRow {
        let mut by_field: HashMap<String, HashSet<String>> = HashMap::new();
        for (field, token) in tokens {
            by_field
                .entry(field.clone())
                .or_default()
                .insert(format!("t:{}", URL_SAFE_NO_PAD.encode(token)));
        }
        StoredRow {
            tokens: by_field,
            plain,
        }
    }

    /// The record's public fields.
    pub fn plain(&self) -> &Map<String, Value> {
        &self.plain
    }

    fn plain_has(&self, field: &str, term: &str) -> bool {
        match self.plain.get(field) {
            Some(Value::String(s)) => s == term,
            Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(term)),
            Some(Value::Number(n)) => n.to_string() == term,
            _ => false,
        }
    }
}

impl RowView<String> for StoredRow {
    fn has(&self, field: &str, value: &String) -> bool {
        match value.strip_prefix("p:") {
            Some(term) => self.plain_has(field, term),
            None => self.tokens.get(field).is_some_and(|t| t.contains(value)),
        }
    }

    fn equals(&self, field: &str, value: &String) -> bool {
        self.has(field, value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::DatabaseLocation;
    use crate::vault::keyring::KeyringFile;

    async fn decisions(dir: &std::path::Path) -> Decisions {
        let store = Store::open(&DatabaseLocation::Sqlite(dir.join("d.db")))
            .await
            .unwrap();
        let vault = Vault::from_keyring(&KeyringFile::generate(["person"], 0).unwrap()).unwrap();
        Decisions::load(store, Arc::new(vault)).await.unwrap()
    }

    #[tokio::test]
    async fn changes_committed_out_of_order_are_applied_in_version_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = decisions(dir.path()).await;
        let base = d.version().unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = |v: i64| {
            let order = Arc::clone(&order);
            move |_: &mut DecisionIndex| order.lock().unwrap().push(v)
        };
        // Three transactions committed as base+1..=base+3 report back as 3, 1, 2.
        d.apply(base + 3, record(base + 3)).unwrap();
        assert_eq!(d.version().unwrap(), base, "nothing applies across a gap");
        d.apply(base + 1, record(base + 1)).unwrap();
        assert_eq!(d.version().unwrap(), base + 1);
        d.apply(base + 2, record(base + 2)).unwrap();
        assert_eq!(d.version().unwrap(), base + 3);
        assert_eq!(*order.lock().unwrap(), vec![base + 1, base + 2, base + 3]);
        // A version already reached is not applied again.
        d.apply(base + 2, record(-1)).unwrap();
        assert_eq!(order.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_request_waits_for_this_replicas_own_change_instead_of_rebuilding() {
        let dir = tempfile::tempdir().unwrap();
        let d = decisions(dir.path()).await;
        let base = d.version().unwrap();
        // base+2 is pending; base+1 is this replica's change between its commit and its apply:
        // the wait starts first (join! polls in order), the apply lands while it waits.
        d.apply(base + 2, |_| {}).unwrap();
        let (reached, ()) = tokio::join!(d.own_changes_reach(base + 2), async {
            tokio::task::yield_now().await;
            d.apply(base + 1, |_| {}).unwrap();
        });
        assert!(reached.unwrap(), "the own change filled the gap");
        assert_eq!(d.version().unwrap(), base + 2);
        // A version no change of this replica is pending beyond: another replica's, so rebuild.
        assert!(!d.own_changes_reach(base + 5).await.unwrap());
    }
}
