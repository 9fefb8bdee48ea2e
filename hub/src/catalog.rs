//! The catalog service (资源目录): the built-in categories and those admins change or add
//! (`PUT /v1/catalog/{category}`), each optionally published by a department (`owner`) whose
//! clients write its records and whose consent every grant on it needs.
//!
//! Guarantees: only `catalog:write` changes the catalog (audited either way); a category
//! that holds records changes only in ways its records survive (`CategoryDef::evolution`, else
//! 409 naming the field); a new category has its KEK in the keyring file before anything can be
//! sealed under it; the change is in the ledger before it is stored, and stored with a
//! decision-version bump, so every replica serves the new catalog on its next request.

use std::sync::Arc;

use policy::{Catalog, CategoryDef, FieldDef};

use crate::auth::permissions::NO_GRID;
use crate::auth::{Access, Principal};
use crate::decisions::Decisions;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::{EntryFilter, Store, Transitioned};
use crate::time::now_ms;
use crate::vault::Vault;
use crate::vault::keyring::AgeFileStore;

/// Most ledger entries one page of a category's slice scans.
const SLICE_SCAN: i64 = 10_000;

/// A page of the ledger entries that name one category.
pub struct Slice {
    /// `(index, canonical text)` of each entry naming the category, by index.
    pub entries: Vec<(i64, String)>,
    /// Where the next page starts; `None` at the end of the ledger.
    pub next_start: Option<i64>,
}

/// What a `put` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Created,
    /// Changed; the fields it added.
    Changed {
        added: Vec<String>,
    },
    /// The definition was already in force; nothing was written.
    Unchanged,
}

/// Field definitions as the API and the console send them (`{name, type, …}` objects, each
/// with the label its problems are filed under), or every problem they have. Only the shape is
/// checked here; `CatalogService::put` checks the category as a whole.
pub fn parse_fields(
    fields: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> Result<Vec<FieldDef>, Error> {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    for (label, field) in fields {
        match serde_json::from_value::<FieldDef>(field) {
            Ok(f) => parsed.push(f),
            Err(e) => problems.push(policy::FieldProblem {
                field: label,
                problem: e.to_string(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(Error::Validation(problems))
    }
}

pub struct CatalogService {
    access: Access,
    store: Store,
    vault: Arc<Vault>,
    decisions: Arc<Decisions>,
    /// Where new categories' KEKs are saved.
    keyring: AgeFileStore,
}

impl CatalogService {
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        decisions: Arc<Decisions>,
        keyring: AgeFileStore,
    ) -> CatalogService {
        CatalogService {
            access,
            store,
            vault,
            decisions,
            keyring,
        }
    }

    /// The catalog in force (`catalog:read`).
    pub async fn current(&self, who: &Principal) -> Result<&'static Catalog, Error> {
        self.access
            .authorize(who, "catalog", "read", None, "catalog.read")
            .await?;
        self.decisions.catalog_at(who.versions.decision).await
    }

    /// The ledger entries that name `category` (disclosures, statistics answers, grant and
    /// record actions, refusals), from index `start`, at most `limit`: the publishing
    /// department's view of who reads its data, also open to `audit:read`. Scans at most
    /// `SLICE_SCAN` entries per page; `next_start` continues.
    pub async fn audit_slice(
        &self,
        who: &Principal,
        category: &str,
        start: i64,
        limit: i64,
    ) -> Result<Slice, Error> {
        let catalog = self.decisions.catalog_at(who.versions.decision).await?;
        let def = catalog
            .category(category)
            .ok_or(Error::NotFound("category"))?;
        let owner = def.owner.is_some() && def.owner == who.department;
        if !owner && !self.access.permits(who, NO_GRID, "audit", "read").await {
            let why = "only the publishing department and auditors read a category's entries";
            let error = Error::Forbidden(why.to_owned());
            return Err(self
                .access
                .deny(who.actor(), "catalog.audit", why, error)
                .await);
        }
        let size = i64::try_from(self.access.ledger().size()).unwrap_or(i64::MAX);
        let end = start.saturating_add(SLICE_SCAN).min(size);
        let mut entries = Vec::new();
        let mut from = start;
        while from < end && (entries.len() as i64) < limit {
            let rows = self
                .store
                .ledger_entries(&EntryFilter {
                    start: from,
                    end,
                    actor: None,
                    purpose: None,
                    case_id: None,
                    decision: None,
                    action: None,
                    since_ms: None,
                    until_ms: None,
                    limit: 1000,
                })
                .await?;
            let Some(last) = rows.last().map(|(i, _)| *i) else {
                from = end;
                break;
            };
            from = last + 1;
            for (index, canonical) in rows {
                let names = serde_json::from_str::<serde_json::Value>(&canonical)
                    .ok()
                    .is_some_and(|e| e.get("category").and_then(|c| c.as_str()) == Some(category));
                if names {
                    entries.push((index, canonical));
                    if entries.len() as i64 == limit {
                        from = index + 1;
                        break;
                    }
                }
            }
        }
        Ok(Slice {
            entries,
            next_start: (from < size).then_some(from),
        })
    }

    /// Does the caller's role permit changing the catalog? Refused: 403, audited. The route
    /// calls it before parsing the fields; `put` checks it again.
    pub async fn admit_write(&self, who: &Principal) -> Result<(), Error> {
        self.access
            .authorize(who, "catalog", "write", None, "catalog.put")
            .await
    }

    /// Create or change category `name` (`catalog:write`).
    pub async fn put(
        &self,
        who: &Principal,
        name: &str,
        definition: CategoryDef,
    ) -> Result<Put, Error> {
        self.access
            .authorize(who, "catalog", "write", None, "catalog.put")
            .await?;
        if definition.name != name {
            return Err(Error::validation(
                "category",
                "must be the category named in the path",
            ));
        }
        if let Some(owner) = &definition.owner
            && self.store.department(owner).await?.is_none()
        {
            return Err(Error::validation("owner", "unknown department"));
        }
        let catalog = self.decisions.catalog_at(who.versions.decision).await?;
        catalog
            .with_category(definition.clone())
            .map_err(|e| Error::validation("fields", e.to_string()))?;
        let outcome = match catalog.category(name) {
            None => Put::Created,
            Some(old) if *old == definition => return Ok(Put::Unchanged),
            Some(old) => {
                let added = if self.store.count_records(name).await? > 0 {
                    old.evolution(&definition).map_err(Error::Conflict)?.added
                } else {
                    definition
                        .fields
                        .iter()
                        .filter(|f| old.field(&f.name).is_none())
                        .map(|f| f.name.clone())
                        .collect()
                };
                Put::Changed { added }
            }
        };
        if let Some(old) = catalog.category(name)
            && old.owner != definition.owner
        {
            let open = self
                .store
                .grants(None, None, Some(name))
                .await?
                .iter()
                .any(|g| !g.status.is_final());
            if open {
                return Err(Error::Conflict(
                    "the category has grants that are not final; its owner decides who must consent to them, so it cannot change until they end".to_owned(),
                ));
            }
        }
        let expected = self
            .store
            .stored_categories()
            .await?
            .into_iter()
            .find(|c| c.definition.name == name)
            .map(|c| c.version);
        let now = now_ms();
        self.vault
            .add_category(&self.keyring, name, now)
            .map_err(|e| Error::Internal(format!("cannot add a key for the category: {e}")))?;
        let reason = match (&outcome, &definition.owner) {
            (Put::Created, Some(owner)) => format!("category created, published by {owner}"),
            (Put::Created, None) => "category created".to_owned(),
            (Put::Changed { added }, _) if added.is_empty() => "category changed".to_owned(),
            (Put::Changed { added }, _) => {
                format!("category changed; fields added: {}", added.join(", "))
            }
            (Put::Unchanged, _) => "unchanged".to_owned(),
        };
        let draft = EntryDraft::new(
            who.actor(),
            "catalog.put",
            Decision::Allow,
            current_request_id(),
        )
        .category(name)
        .reason(&reason);
        self.access.record(draft).await?;
        match self
            .store
            .put_category(&definition, expected, &who.subject(), now)
            .await?
        {
            Transitioned::Done { version } => {
                self.decisions.refresh_to(version).await?;
                tracing::info!(category = %name, "catalog changed");
                Ok(outcome)
            }
            Transitioned::Stale => Err(Error::Conflict(
                "the category changed meanwhile; read the catalog and try again".to_owned(),
            )),
        }
    }
}
