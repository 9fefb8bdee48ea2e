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

struct Loaded {
    version: i64,
    index: DecisionIndex,
    /// The catalog in force: the built-in one with the stored categories over it.
    catalog: &'static Catalog,
}

pub struct Decisions {
    store: Store,
    vault: Arc<Vault>,
    loaded: RwLock<Loaded>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
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
        if self.version()? == current {
            return Ok(());
        }
        let _one = self.rebuilding.lock().await;
        if self.version()? >= current {
            return Ok(());
        }
        let previous = self.catalog()?;
        let fresh = build(&self.store, &self.vault, Some(previous)).await?;
        let mut loaded = self.loaded.write().map_err(poisoned)?;
        if fresh.version > loaded.version {
            *loaded = fresh;
        }
        Ok(())
    }

    fn version(&self) -> Result<i64, Error> {
        Ok(self.loaded.read().map_err(poisoned)?.version)
    }

    /// Run `f` on the current index (synchronously, under a read lock).
    pub fn with_index<T>(&self, f: impl FnOnce(&DecisionIndex) -> T) -> Result<T, Error> {
        let loaded = self.loaded.read().map_err(poisoned)?;
        Ok(f(&loaded.index))
    }

    /// A change this replica committed as decision version `version`: applied in place when
    /// it is the next version; otherwise the next `refresh` rebuilds.
    pub fn apply(
        &self,
        version: i64,
        change: impl FnOnce(&mut DecisionIndex),
    ) -> Result<(), Error> {
        let mut loaded = self.loaded.write().map_err(poisoned)?;
        if loaded.version + 1 == version {
            change(&mut loaded.index);
            loaded.version = version;
        }
        Ok(())
    }

    /// A grant row as the index takes it (row filter compiled to tokens).
    pub fn live_grant(&self, row: &GrantRow) -> Result<LiveGrant, Error> {
        live_grant(&self.vault, self.catalog()?, row)
    }

    /// A case's current responsibility, applied after a local change.
    pub fn set_case(&self, version: i64, case: &Responsibility) -> Result<(), Error> {
        self.apply(version, |index| index.set_case(case))
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
