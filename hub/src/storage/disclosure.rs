//! Reading records for a disclosure: one page of live records of a category, pushed down to
//! SQL by the grants' scopes (grid subtrees), an optional grid filter, an optional set of record
//! ids (a case's subjects) and an id cursor, with the sealed fields and blind-index tokens of
//! exactly those records. Cost follows the page, not the table. Grid codes and ids are always
//! bound parameters, never spliced into the statement.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};

use super::{Store, on_read};
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
}

/// A candidate record with what a disclosure needs.
pub struct PageRecord {
    pub id: String,
    pub grid: String,
    pub plain_fields: String,
    pub wrapped: WrappedDek,
    pub sealed: Vec<SealedField>,
    /// (field, token) of its indexed fields.
    pub tokens: Vec<(String, Vec<u8>)>,
}

fn decode_error(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored record has a bad {what}").into())
}

/// `(grid = $c OR grid LIKE $c.%)` for each code, joined by OR (a macro: the builder's type
/// differs per backend).
macro_rules! push_subtrees {
    ($qb:expr, $codes:expr) => {{
        $qb.push("(");
        for (i, code) in $codes.iter().enumerate() {
            if i > 0 {
                $qb.push(" OR ");
            }
            $qb.push("grid = ");
            $qb.push_bind(code.clone());
            $qb.push(" OR grid LIKE ");
            // Grid codes hold only [0-9A-Za-z-.], so `%` and `_` cannot occur in them.
            $qb.push_bind(format!("{code}.%"));
        }
        $qb.push(")");
    }};
}

impl Store {
    /// One page of candidate records, in id order, with their sealed fields and tokens.
    pub async fn disclosure_page(&self, q: &PageQuery<'_>) -> Result<Vec<PageRecord>, sqlx::Error> {
        if q.scopes.is_empty() || q.only.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        on_read!(self, |pool| {
            let mut qb = QueryBuilder::new(
                "SELECT id, grid, plain_fields, kek_version, wrapped_dek FROM records \
                 WHERE erased_at IS NULL AND category = ",
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
                qb.push(" AND id IN (");
                let mut ids = qb.separated(", ");
                for id in only {
                    ids.push_bind(id.clone());
                }
                qb.push(")");
            }
            if let Some((field, token)) = q.token {
                qb.push(" AND id IN (SELECT record_id FROM blind_index WHERE category = ");
                qb.push_bind(q.category.to_owned());
                qb.push(" AND field = ");
                qb.push_bind(field.to_owned());
                qb.push(" AND token = ");
                qb.push_bind(token.to_vec());
                qb.push(")");
            }
            if let Some(after) = q.after {
                qb.push(" AND id > ");
                qb.push_bind(after.to_owned());
            }
            qb.push(" ORDER BY id LIMIT ");
            qb.push_bind(q.limit);
            let rows = qb.build().fetch_all(pool).await?;
            let mut records = Vec::with_capacity(rows.len());
            let mut position = HashMap::with_capacity(rows.len());
            for r in &rows {
                let kek_version: Option<i64> = r.try_get("kek_version")?;
                let bytes: Option<Vec<u8>> = r.try_get("wrapped_dek")?;
                let (Some(kek_version), Some(bytes)) = (kek_version, bytes) else {
                    continue;
                };
                let id: String = r.try_get("id")?;
                position.insert(id.clone(), records.len());
                records.push(PageRecord {
                    id,
                    grid: r.try_get("grid")?,
                    plain_fields: r.try_get("plain_fields")?,
                    wrapped: WrappedDek {
                        kek_version: u32::try_from(kek_version)
                            .map_err(|_| decode_error("key version"))?,
                        bytes,
                    },
                    sealed: Vec::new(),
                    tokens: Vec::new(),
                });
            }
            if records.is_empty() {
                return Ok(records);
            }
            let mut qb = QueryBuilder::new(
                "SELECT record_id, field, kek_version, sealed FROM record_fields WHERE record_id IN (",
            );
            let mut ids = qb.separated(", ");
            for r in &records {
                ids.push_bind(r.id.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(pool).await? {
                let id: String = row.try_get("record_id")?;
                let v: i64 = row.try_get("kek_version")?;
                if let Some(at) = position.get(&id).copied()
                    && let Some(record) = records.get_mut(at)
                {
                    record.sealed.push(SealedField {
                        field: row.try_get("field")?,
                        kek_version: u32::try_from(v).map_err(|_| decode_error("key version"))?,
                        sealed: row.try_get("sealed")?,
                    });
                }
            }
            let mut qb = QueryBuilder::new(
                "SELECT record_id, field, token FROM blind_index WHERE record_id IN (",
            );
            let mut ids = qb.separated(", ");
            for r in &records {
                ids.push_bind(r.id.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(pool).await? {
                let id: String = row.try_get("record_id")?;
                if let Some(at) = position.get(&id).copied()
                    && let Some(record) = records.get_mut(at)
                {
                    record
                        .tokens
                        .push((row.try_get("field")?, row.try_get("token")?));
                }
            }
            Ok(records)
        })
    }
}
