//! Turning validated field values into stored records and back. This is the one place where a
//! record's plaintext meets the vault: encrypted fields are sealed one by one, `indexed` fields
//! get blind-index tokens, public fields stay in clear; a read in clear (`open_all`) and a
//! disclosure (`disclose`) open them again. Plaintext buffers are zeroized on drop. Nothing here
//! checks permissions or writes the ledger: `Records` and `crate::disclosure` do that first.

use std::collections::BTreeMap;

use policy::{
    CategoryDef, Disclosure, FieldPlan, FieldProblem, FieldValue, GridCode, RecordPlan, transform,
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::storage::{BlindEntry, NewRecord, PageRecord, RecordUpdate, StoredRecord};
use crate::vault::{Pseudonyms, Vault};

/// What a caller asked to store, after its shape (not its values) was parsed.
pub struct RecordDraft<'a> {
    pub category: &'a CategoryDef,
    pub grid: GridCode,
    pub purpose: String,
    pub legal_basis: Option<String>,
    /// Unix ms.
    pub retention_until: Option<i64>,
    pub collector: String,
    pub values: BTreeMap<String, FieldValue>,
}

fn new_record_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn to_bytes(value: &FieldValue) -> Result<Zeroizing<Vec<u8>>, Error> {
    serde_json::to_vec(&value.to_json())
        .map(Zeroizing::new)
        .map_err(|e| Error::Internal(format!("cannot encode a field value: {e}")))
}

/// Blind-index entries of one field value, if the field is `indexed`.
fn index_entries(
    vault: &Vault,
    category: &CategoryDef,
    field: &str,
    value: &FieldValue,
) -> Vec<BlindEntry> {
    match category.field(field) {
        Some(def) if def.indexed => value
            .index_terms()
            .iter()
            .map(|term| BlindEntry {
                field: field.to_owned(),
                token: vault.blind_token(&category.name, field, term),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn is_encrypted(category: &CategoryDef, field: &str) -> bool {
    category.field(field).is_some_and(|d| d.encrypted)
}

/// Seal a draft into a row ready for insertion.
pub fn seal(vault: &Vault, draft: RecordDraft<'_>) -> Result<NewRecord, Error> {
    seal_as(vault, draft, new_record_id())
}

/// Seal a draft as the whole new content of record `id`, under a fresh data key (an upsert
/// replacing a record's content; the old key is overwritten with the row).
pub fn seal_as(vault: &Vault, draft: RecordDraft<'_>, id: String) -> Result<NewRecord, Error> {
    let category = draft.category;
    let mut plain = Map::new();
    let mut secret: Vec<(&str, Zeroizing<Vec<u8>>)> = Vec::new();
    let mut index = Vec::new();
    for (name, value) in &draft.values {
        if is_encrypted(category, name) {
            secret.push((name.as_str(), to_bytes(value)?));
            index.extend(index_entries(vault, category, name, value));
        } else {
            plain.insert(name.clone(), value.to_json());
        }
    }
    let refs: Vec<(&str, &[u8])> = secret.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let (wrapped, sealed) = vault.seal_new_record(&category.name, &id, &refs)?;
    Ok(NewRecord {
        id,
        category: category.name.clone(),
        grid: draft.grid.as_str().to_owned(),
        purpose: draft.purpose,
        legal_basis: draft.legal_basis,
        retention_until: draft.retention_until,
        collector: draft.collector,
        plain_fields: Value::Object(plain).to_string(),
        wrapped,
        sealed,
        index,
    })
}

/// Decrypt every field of a stored record (the grid worker's view). Fails closed: one field
/// that does not authenticate fails the whole read.
pub fn open_all(
    vault: &Vault,
    category: &CategoryDef,
    stored: &StoredRecord,
) -> Result<Map<String, Value>, Error> {
    let mut fields = plain_fields(stored)?;
    let key = vault.record_key(&category.name, &stored.id, &stored.wrapped)?;
    for sealed in &stored.sealed {
        let plain = key
            .open_field(sealed)
            .map_err(|e| Error::Integrity(format!("record `{}`: {e}", stored.id)))?;
        let def = category.field(&sealed.field).ok_or_else(|| {
            Error::Integrity(format!(
                "record holds a field `{}` its category does not define",
                sealed.field
            ))
        })?;
        let json: Value = serde_json::from_slice(&plain)
            .map_err(|_| Error::Integrity(format!("field `{}` does not decode", sealed.field)))?;
        let value = def
            .decode_stored(&json)
            .map_err(|_| Error::Integrity(format!("field `{}` does not decode", sealed.field)))?;
        fields.insert(sealed.field.clone(), value.to_json());
    }
    Ok(fields)
}

fn plain_fields(stored: &StoredRecord) -> Result<Map<String, Value>, Error> {
    public_fields(&stored.id, &stored.plain_fields)
}

/// Build the update for a PATCH: changed encrypted fields are re-sealed under the record's own
/// DEK (after proving it unwraps), removed ones deleted, indexed ones re-tokenised.
pub fn patch(
    vault: &Vault,
    category: &CategoryDef,
    stored: &StoredRecord,
    changes: &BTreeMap<String, Option<FieldValue>>,
) -> Result<RecordUpdate, Error> {
    let mut plain = plain_fields(stored)?;
    let key = vault.record_key(&category.name, &stored.id, &stored.wrapped)?;
    let mut secret: Vec<(&str, Zeroizing<Vec<u8>>)> = Vec::new();
    let mut remove = Vec::new();
    let mut reindex = Vec::new();
    for (name, change) in changes {
        let indexed = category.field(name).is_some_and(|d| d.indexed);
        match (is_encrypted(category, name), change) {
            (true, Some(value)) => {
                secret.push((name.as_str(), to_bytes(value)?));
                if indexed {
                    let tokens = index_entries(vault, category, name, value)
                        .into_iter()
                        .map(|e| e.token)
                        .collect();
                    reindex.push((name.clone(), tokens));
                }
            }
            (true, None) => {
                remove.push(name.clone());
                if indexed {
                    reindex.push((name.clone(), Vec::new()));
                }
            }
            (false, Some(value)) => {
                plain.insert(name.clone(), value.to_json());
            }
            (false, None) => {
                plain.remove(name);
            }
        }
    }
    let refs: Vec<(&str, &[u8])> = secret.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let upsert = key.seal_fields(&refs)?;
    Ok(RecordUpdate {
        id: stored.id.clone(),
        category: category.name.clone(),
        expected_version: stored.version,
        plain_fields: Value::Object(plain).to_string(),
        upsert,
        remove,
        reindex,
    })
}

/// A stored record's public fields (its JSON object). Fails closed as an integrity error, never
/// as an empty record.
pub fn public_fields(record_id: &str, text: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Integrity(format!(
            "record `{record_id}` has malformed public fields"
        ))),
    }
}

/// What `disclose` is given of a page record besides the record: its parsed grid and public
/// fields (parsed once per record, also for the row filters) and the grantee's pseudonym key
/// (derived once per page).
pub struct DiscloseInput<'a> {
    pub grid: &'a GridCode,
    pub public: &'a Map<String, Value>,
    pub pseudonyms: &'a Pseudonyms,
}

/// One field `disclose` gives of a record: its position in the category (= in the plan), the
/// level, and the candidate grant credited with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub position: usize,
    pub level: Disclosure,
    pub grant: u32,
}

/// What `disclose` gives of `record` under `plan`, known without decrypting anything: the
/// fields the plan discloses that the record holds and that the catalog has a rule for at their
/// level. The ledger entry of a disclosure is built from this before any value is opened, and
/// `disclose` gives exactly these fields, so the entry and the answer cannot disagree.
pub fn releases(
    category: &CategoryDef,
    record: &PageRecord,
    public: &Map<String, Value>,
    plan: &RecordPlan,
) -> Vec<Release> {
    category
        .fields
        .iter()
        .zip(plan.fields())
        .enumerate()
        .filter_map(|(position, (def, field))| {
            let FieldPlan::Disclosed { level, grant } = *field else {
                return None;
            };
            let present = if def.encrypted {
                record.has_sealed(&def.name)
            } else {
                public.contains_key(&def.name)
            };
            let rule = match level {
                Disclosure::Clear | Disclosure::Pseudonym => true,
                Disclosure::Masked => def.mask.is_some(),
                Disclosure::Generalized => def.generalize.is_some(),
            };
            (present && rule).then_some(Release {
                position,
                level,
                grant,
            })
        })
        .collect()
}

/// The fields of a record as its plan gives them to a department: exactly the fields
/// `releases` names, each transformed to its level. Only fields whose level needs the value are
/// decrypted (a grid-code generalisation needs none); withheld fields are never opened. Fails
/// closed on any field that does not authenticate.
pub fn disclose(
    vault: &Vault,
    category: &CategoryDef,
    record: &PageRecord,
    input: &DiscloseInput<'_>,
    plan: &RecordPlan,
) -> Result<Map<String, Value>, Error> {
    let mut key = None;
    let mut out = Map::new();
    for release in releases(category, record, input.public, plan) {
        let Some(def) = category.fields.get(release.position) else {
            return Err(Error::Internal(
                "a released field is not in its category".to_owned(),
            ));
        };
        let level = release.level;
        if !transform::needs_value(def, level) {
            out.insert(
                def.name.clone(),
                Value::String(input.grid.as_str().to_owned()),
            );
            continue;
        }
        let json: Value = if def.encrypted {
            let Some(sealed) = record.sealed.iter().find(|s| s.field == def.name) else {
                // The page was read without this ciphertext (`FieldNeeds`), yet the plan needs it.
                return Err(Error::Internal(format!(
                    "field `{}` was planned from its value but not read",
                    def.name
                )));
            };
            if key.is_none() {
                key = Some(vault.record_key(&category.name, &record.id, &record.wrapped)?);
            }
            let Some(key) = &key else {
                return Err(Error::Internal("record key missing".to_owned()));
            };
            let bytes = key
                .open_field(sealed)
                .map_err(|e| Error::Integrity(format!("record `{}`: {e}", record.id)))?;
            serde_json::from_slice(&bytes)
                .map_err(|_| Error::Integrity(format!("field `{}` does not decode", def.name)))?
        } else {
            input.public.get(&def.name).cloned().unwrap_or(Value::Null)
        };
        let value = def
            .decode_stored(&json)
            .map_err(|_| Error::Integrity(format!("field `{}` does not decode", def.name)))?;
        let disclosed = transform::disclose(def, level, &value, input.grid, |text| {
            input.pseudonyms.of(&category.name, &def.name, text)
        });
        // A rule that does not fit the stored value's type (a catalog changed under a grant):
        // withheld, never clear. The entry then names a field the answer lacks, never the
        // reverse.
        if let Some(disclosed) = disclosed {
            out.insert(def.name.clone(), disclosed);
        }
    }
    Ok(out)
}

/// Prefix every problem's field path (`records[3].` for batch items).
pub fn prefix_problems(prefix: &str, problems: Vec<FieldProblem>) -> Vec<FieldProblem> {
    problems
        .into_iter()
        .map(|p| FieldProblem {
            field: format!("{prefix}{}", p.field),
            problem: p.problem,
        })
        .collect()
}
