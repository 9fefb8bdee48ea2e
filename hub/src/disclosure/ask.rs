//! What a pull or a lookup asks, parsed once at the edge into typed values: the category (from
//! the catalog), purpose, case, grid, cursor, page size, the looked-up key, the idempotency key
//! and how the answer is to be delivered. Nothing downstream re-checks these.

use policy::{Catalog, CategoryDef, FieldType, GridCode};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::idempotency::IdempotencyKey;
use crate::vault::Vault;

/// Records per page unless `limit` says otherwise, and the most `limit` may ask.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

/// Which disclosure: the ledger action and the role permission's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /v1/data/{category}`: ledger `data.read`, permission `data:read`.
    Pull,
    /// `POST /v1/data/{category}/lookup`: ledger `data.lookup`, permission `data:lookup`.
    Lookup,
}

impl Kind {
    pub fn action(self) -> &'static str {
        match self {
            Kind::Pull => "data.read",
            Kind::Lookup => "data.lookup",
        }
    }

    /// The role permission (`data`, this) the caller needs.
    pub fn permission(self) -> &'static str {
        match self {
            Kind::Pull => "read",
            Kind::Lookup => "lookup",
        }
    }
}

/// Records per page. Invariant: 1–500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    /// `limit`: 1–500, default 100.
    pub fn parse(asked: Option<u32>) -> Result<PageLimit, Error> {
        let limit = asked.unwrap_or(DEFAULT_LIMIT);
        if (1..=MAX_LIMIT).contains(&limit) {
            Ok(PageLimit(limit))
        } else {
            Err(Error::validation("limit", "1 to 500"))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where a page resumes: the id of the last record the previous page looked at. Invariant: the
/// text form of a UUID (36 characters of hex digits and dashes), so nothing else reaches SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, Error> {
        if text.len() == 36 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            Ok(Cursor(text.to_owned()))
        } else {
            Err(Error::validation("cursor", "not a cursor this hub issued"))
        }
    }

    /// The cursor after record `id` (an id the hub stored).
    pub(super) fn after(id: String) -> Cursor {
        Cursor(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A lookup's key: one `indexed` field and the blind-index token of the value looked up (the
/// value itself is not kept).
pub struct LookupKey {
    pub field: String,
    pub token: Vec<u8>,
}

impl LookupKey {
    /// `key`: exactly one indexed field of `category` and a valid value of it, turned into its
    /// blind-index token at once.
    pub fn parse(
        vault: &Vault,
        category: &CategoryDef,
        key: &Map<String, Value>,
    ) -> Result<LookupKey, Error> {
        let mut entries = key.iter();
        let (Some((field, value)), None) = (entries.next(), entries.next()) else {
            return Err(Error::validation("key", "name exactly one indexed field"));
        };
        let path = format!("key.{field}");
        let def = category
            .field(field)
            .filter(|d| d.indexed)
            .ok_or_else(|| Error::validation(&path, "not an indexed field of this category"))?;
        let term = match (&def.ty, value) {
            (FieldType::TagSet { values }, Value::String(tag)) if values.contains(tag) => {
                tag.clone()
            }
            (FieldType::TagSet { .. }, _) => {
                return Err(Error::validation(&path, "not one of the field's tags"));
            }
            _ => def
                .parse_value(value)
                .ok()
                .and_then(|v| v.index_terms().into_iter().next())
                .ok_or_else(|| Error::validation(&path, "not a valid value of this field"))?,
        };
        Ok(LookupKey {
            field: field.clone(),
            token: vault.blind_token(&category.name, field, &term),
        })
    }
}

/// How the answer is to leave, as the request asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// JSON.
    Plain,
    /// The same JSON sealed with `age` to the client's registered recipient
    /// (`Accept: application/age`).
    Sealed,
}

/// One disclosure request, parsed.
pub struct Ask {
    pub kind: Kind,
    pub category: &'static CategoryDef,
    pub purpose: String,
    pub case: Option<String>,
    /// Only records in this grid subtree.
    pub within: Option<GridCode>,
    pub cursor: Option<Cursor>,
    pub limit: PageLimit,
    /// A lookup's key; `None` for a pull.
    pub key: Option<LookupKey>,
    pub idempotency: Option<IdempotencyKey>,
    pub delivery: Delivery,
}

/// A catalog category by name, or 404.
pub fn category(catalog: &'static Catalog, name: &str) -> Result<&'static CategoryDef, Error> {
    catalog.category(name).ok_or(Error::NotFound("category"))
}

/// `grid`: a grid code, if given.
pub fn within(grid: Option<&str>) -> Result<Option<GridCode>, Error> {
    grid.map(|g| GridCode::parse(g).map_err(|_| Error::validation("grid", "not a grid code")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_outside_one_to_five_hundred_are_refused() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 100);
        assert_eq!(PageLimit::parse(Some(500)).unwrap().get(), 500);
        assert!(PageLimit::parse(Some(0)).is_err());
        assert!(PageLimit::parse(Some(501)).is_err());
    }

    #[test]
    fn only_uuid_shaped_cursors_are_taken() {
        assert!(Cursor::parse("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").is_ok());
        assert!(Cursor::parse("' OR 1=1 --").is_err());
        assert!(Cursor::parse("").is_err());
    }
}
