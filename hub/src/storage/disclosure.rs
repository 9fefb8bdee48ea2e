//! Reading records for a disclosure: one page of live records of a category, pushed down to
//! SQL by the grants' scopes (grid subtrees), an optional grid filter, an optional set of record
//! ids (a case's subjects) and an id cursor. The page is one index walk over `records`, whose
//! rows carry their sealed fields (`sealed_fields`); of those, only what the plan can use is
//! taken (`FieldNeeds`): ciphertexts of fields that may be disclosed from their value, the mere
//! presence of fields disclosed only as a grid code. Tokens are read (a second statement) only
//! for fields a row filter compares. Cost follows the page, not the table. Grid codes, ids and
//! field names are always bound parameters, never spliced into the statement.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};

use super::{Store, on_read, sealed_fields};
use crate::vault::{SealedField, WrappedDek};

/// Which records a page may hold.
pub struct PageQuery<'a> {
    pub category: &'a str,
    /// Grid subtrees: a record is a candidate if its grid is one of these or beneath one.
    pub scopes: &'a [String],
    /// Only these record ids (a case's subjects), when given.
    pub only: Option<&'a [String]>,
    /// Only this grid subtree (the caller's `grid=` filter), when given.
    pub within: Option<&'a str>,
    /// Only records with this blind-index token of this field (a lookup).
    pub token: Option<(&'a str, &'a [u8])>,
    /// Records with ids after this one (the cursor); ids are UUIDv7, so roughly by creation.
    pub after: Option<&'a str>,
    pub limit: i64,
    /// What to read of each record besides its row.
    pub needs: &'a FieldNeeds,
}

/// What a page's plan can use of its records' encrypted fields and blind-index tokens.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldNeeds {
    /// Encrypted fields read with their ciphertexts: some grant may disclose them at a level
    /// computed from the value.
    pub values: Vec<String>,
    /// Encrypted fields whose presence is read but not their ciphertexts: disclosed only at a
    /// level that needs no value (a grid code).
    pub present: Vec<String>,
    /// Encrypted fields whose blind-index tokens are read: a row filter compares them.
    pub tokens: Vec<String>,
}

impl FieldNeeds {
    /// What a page's records must carry for the plan of `candidates`. Any record's level is at
    /// most the candidates' ceiling, so an encrypted field is read with its ciphertext only if
    /// the ceiling's level needs the value, and only for its presence if it is disclosed as a
    /// grid code at most; tokens are read for the encrypted fields the row filters compare.
    /// Withheld fields are not read at all.
    pub fn of(category: &policy::CategoryDef, candidates: &policy::Candidates) -> FieldNeeds {
        let mut needs = FieldNeeds::default();
        for (def, plan) in category.fields.iter().zip(candidates.ceiling()) {
            match plan.level() {
                Some(level) if def.encrypted => {
                    if policy::transform::needs_value(def, level) {
                        needs.values.push(def.name.clone());
                    } else {
                        needs.present.push(def.name.clone());
                    }
                }
                _ => {}
            }
        }
        let filtered = candidates.filter_fields();
        needs.tokens = category
            .fields
            .iter()
            .filter(|d| d.encrypted && filtered.contains(&d.name.as_str()))
            .map(|d| d.name.clone())
            .collect();
        needs
    }
}

/// A candidate record with what a disclosure needs.
pub struct PageRecord {
    pub id: String,
    pub grid: String,
    pub plain_fields: String,
    pub wrapped: WrappedDek,
    /// Its stored ciphertexts of `FieldNeeds::values`.
    pub sealed: Vec<SealedField>,
    /// Which of `FieldNeeds::present` it has (ciphertexts not read).
    pub present: Vec<String>,
    /// (field, token) of `FieldNeeds::tokens`.
    pub tokens: Vec<(String, Vec<u8>)>,
}

impl PageRecord {
    /// Does the record hold encrypted field `field` (read with or without its ciphertext)?
    pub fn has_sealed(&self, field: &str) -> bool {
        self.present.iter().any(|f| f == field) || self.sealed.iter().any(|s| s.field == field)
    }
}

fn decode_error(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored record has a bad {what}").into())
}

/// `(r.grid = $c OR r.grid LIKE $c.%)` for each code, joined by OR (a macro: the builder's type
/// differs per backend).
macro_rules! push_subtrees {
    ($qb:expr, $codes:expr) => {{
        $qb.push("(");
        for (i, code) in $codes.iter().enumerate() {
            if i > 0 {
                $qb.push(" OR ");
            }
            $qb.push("r.grid = ");
            $qb.push_bind(code.clone());
            $qb.push(" OR r.grid LIKE ");
            // Grid codes hold only [0-9A-Za-z-.], so `%` and `_` cannot occur in them.
            $qb.push_bind(format!("{code}.%"));
        }
        $qb.push(")");
    }};
}

/// `$a, $b, …` with each item bound; an empty list binds a NULL, which `IN` never matches.
macro_rules! push_list {
    ($qb:expr, $items:expr) => {{
        let mut list = $qb.separated(", ");
        let mut any = false;
        for item in $items {
            list.push_bind(item.clone());
            any = true;
        }
        if !any {
            list.push_bind(None::<String>);
        }
    }};
}

impl Store {
    /// One page of candidate records, in id order, with their sealed fields and tokens.
    pub async fn disclosure_page(&self, q: &PageQuery<'_>) -> Result<Vec<PageRecord>, sqlx::Error> {
        if q.scopes.is_empty() || q.only.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let needs = q.needs;
        on_read!(self, |pool| {
            let mut qb = QueryBuilder::new(
                "SELECT r.id, r.grid, r.plain_fields, r.kek_version, r.wrapped_dek, r.sealed_fields \
                 FROM records r WHERE r.erased_at IS NULL AND r.category = ",
            );
            qb.push_bind(q.category.to_owned());
            qb.push(" AND ");
            push_subtrees!(qb, q.scopes);
            let within = q.within.map(|w| vec![w.to_owned()]);
            if let Some(within) = &within {
                qb.push(" AND ");
                push_subtrees!(qb, within);
            }
            if let Some(only) = q.only {
                qb.push(" AND r.id IN (");
                push_list!(qb, only.iter());
                qb.push(")");
            }
            if let Some((field, token)) = q.token {
                qb.push(" AND r.id IN (SELECT b.record_id FROM blind_index b WHERE b.category = ");
                qb.push_bind(q.category.to_owned());
                qb.push(" AND b.field = ");
                qb.push_bind(field.to_owned());
                qb.push(" AND b.token = ");
                qb.push_bind(token.to_vec());
                qb.push(")");
            }
            if let Some(after) = q.after {
                qb.push(" AND r.id > ");
                qb.push_bind(after.to_owned());
            }
            qb.push(" ORDER BY r.id LIMIT ");
            qb.push_bind(q.limit);
            let rows = qb.build().fetch_all(pool).await?;
            let mut records = Vec::with_capacity(rows.len());
            let mut position = HashMap::with_capacity(rows.len());
            let version = |v: i64| u32::try_from(v).map_err(|_| decode_error("key version"));
            for r in &rows {
                let kek_version: Option<i64> = r.try_get(3)?;
                let bytes: Option<Vec<u8>> = r.try_get(4)?;
                let (Some(kek_version), Some(bytes)) = (kek_version, bytes) else {
                    continue;
                };
                let id: String = r.try_get(0)?;
                // Only the needed ciphertexts are copied out; the others are never decrypted.
                let stored: Option<&[u8]> = r.try_get(5)?;
                let mut sealed = Vec::with_capacity(needs.values.len());
                let mut present = Vec::new();
                for f in sealed_fields::decode(stored).map_err(|_| decode_error("sealed fields"))? {
                    if needs.values.iter().any(|n| n == f.field) {
                        sealed.push(f.to_owned_field());
                    } else if needs.present.iter().any(|n| n == f.field) {
                        present.push(f.field.to_owned());
                    }
                }
                position.insert(id.clone(), records.len());
                records.push(PageRecord {
                    id,
                    grid: r.try_get(1)?,
                    plain_fields: r.try_get(2)?,
                    wrapped: WrappedDek {
                        kek_version: version(kek_version)?,
                        bytes,
                    },
                    sealed,
                    present,
                    tokens: Vec::new(),
                });
            }
            if records.is_empty() {
                return Ok(records);
            }
            if !needs.tokens.is_empty() {
                let mut qb = QueryBuilder::new(
                    "SELECT record_id, field, token FROM blind_index WHERE record_id IN (",
                );
                push_list!(qb, records.iter().map(|r| &r.id));
                qb.push(") AND field IN (");
                push_list!(qb, needs.tokens.iter());
                qb.push(")");
                for row in qb.build().fetch_all(pool).await? {
                    let id: String = row.try_get("record_id")?;
                    if let Some(record) = position.get(&id).and_then(|at| records.get_mut(*at)) {
                        record
                            .tokens
                            .push((row.try_get("field")?, row.try_get("token")?));
                    }
                }
            }
            Ok(records)
        })
    }
}
