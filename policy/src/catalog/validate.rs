//! Catalog validation. Owns `CatalogError`; `catalog` is the single check every `Catalog`
//! constructor runs, so no unvalidated catalog exists.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer};

use super::{CategoryDef, FieldDef, FieldType, GeneralizeRule, Sensitivity};

/// Why a catalog document was refused. Names are the catalog's own (never personal data).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid toml: {0}")]
    Toml(#[from] toml::de::Error),
    #[error(
        "`{name}` is not a valid name (a lowercase letter, then lowercase letters, digits or `_`)"
    )]
    InvalidName { name: String },
    #[error("category `{category}` is defined twice")]
    DuplicateCategory { category: String },
    #[error("category `{category}` has no fields")]
    NoFields { category: String },
    #[error("field `{category}.{field}` is defined twice")]
    DuplicateField { category: String, field: String },
    #[error("field `{category}.{field}` is personal or sensitive and must be encrypted")]
    NotEncrypted { category: String, field: String },
    #[error("field `{category}.{field}` is indexed but not encrypted")]
    IndexedNotEncrypted { category: String, field: String },
    #[error(
        "field `{category}.{field}` has a mask, but masks apply only to text, id_number and phone fields"
    )]
    MaskNotAllowed { category: String, field: String },
    #[error("field `{category}.{field}` generalizes to a year, but only date fields can")]
    YearNotAllowed { category: String, field: String },
    #[error("field `{category}.{field}` has an invalid type: {reason}")]
    InvalidType {
        category: String,
        field: String,
        reason: &'static str,
    },
}

/// Reads a `FieldType` refusing unknown keys. `FieldType`'s own derive cannot: serde ignores
/// extra keys beside the tag of a unit variant (`type = "phone"`, `maks = …` would pass), so the
/// document is read through this mirror with empty struct variants instead.
pub(super) fn strict_field_type<'de, D: Deserializer<'de>>(d: D) -> Result<FieldType, D::Error> {
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
    enum Strict {
        Text { max_chars: usize },
        IdNumber {},
        Phone {},
        Date {},
        Enum { values: Vec<String> },
        TagSet { values: Vec<String> },
        Integer { min: i64, max: i64 },
    }
    Ok(match Strict::deserialize(d)? {
        Strict::Text { max_chars } => FieldType::Text { max_chars },
        Strict::IdNumber {} => FieldType::IdNumber,
        Strict::Phone {} => FieldType::Phone,
        Strict::Date {} => FieldType::Date,
        Strict::Enum { values } => FieldType::Enum { values },
        Strict::TagSet { values } => FieldType::TagSet { values },
        Strict::Integer { min, max } => FieldType::Integer { min, max },
    })
}

/// Checks every rule of the module documentation of `catalog`.
pub(super) fn catalog(categories: &[CategoryDef]) -> Result<(), CatalogError> {
    let mut seen = BTreeSet::new();
    for category in categories {
        check_name(&category.name)?;
        if !seen.insert(category.name.as_str()) {
            return Err(CatalogError::DuplicateCategory {
                category: category.name.clone(),
            });
        }
        check_category(category)?;
    }
    Ok(())
}

fn check_category(category: &CategoryDef) -> Result<(), CatalogError> {
    if category.fields.is_empty() {
        return Err(CatalogError::NoFields {
            category: category.name.clone(),
        });
    }
    let mut seen = BTreeSet::new();
    for field in &category.fields {
        check_name(&field.name)?;
        if !seen.insert(field.name.as_str()) {
            return Err(CatalogError::DuplicateField {
                category: category.name.clone(),
                field: field.name.clone(),
            });
        }
        check_field(&category.name, field)?;
    }
    Ok(())
}

fn check_field(category: &str, field: &FieldDef) -> Result<(), CatalogError> {
    let at = || (category.to_owned(), field.name.clone());
    if field.sensitivity != Sensitivity::Public && !field.encrypted {
        let (category, field) = at();
        return Err(CatalogError::NotEncrypted { category, field });
    }
    if field.indexed && !field.encrypted {
        let (category, field) = at();
        return Err(CatalogError::IndexedNotEncrypted { category, field });
    }
    let maskable = matches!(
        field.ty,
        FieldType::Text { .. } | FieldType::IdNumber | FieldType::Phone
    );
    if field.mask.is_some() && !maskable {
        let (category, field) = at();
        return Err(CatalogError::MaskNotAllowed { category, field });
    }
    if field.generalize == Some(GeneralizeRule::Year) && field.ty != FieldType::Date {
        let (category, field) = at();
        return Err(CatalogError::YearNotAllowed { category, field });
    }
    if let Some(reason) = type_problem(&field.ty) {
        let (category, field) = at();
        return Err(CatalogError::InvalidType {
            category,
            field,
            reason,
        });
    }
    Ok(())
}

fn type_problem(ty: &FieldType) -> Option<&'static str> {
    match ty {
        FieldType::Text { max_chars: 0 } => Some("max_chars must be at least 1"),
        FieldType::Enum { values } | FieldType::TagSet { values } => {
            if values.is_empty() {
                return Some("values must not be empty");
            }
            if values.iter().any(|v| v.trim().is_empty()) {
                return Some("values must not be blank");
            }
            let distinct: BTreeSet<&String> = values.iter().collect();
            (distinct.len() != values.len()).then_some("values must be distinct")
        }
        FieldType::Integer { min, max } if min > max => Some("min must not exceed max"),
        _ => None,
    }
}

/// `[a-z][a-z0-9_]*`
fn check_name(name: &str) -> Result<(), CatalogError> {
    let mut bytes = name.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(CatalogError::InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::super::{Catalog, MaskRule, ShareClass};
    use super::*;

    fn field(name: &str, ty: FieldType) -> FieldDef {
        FieldDef {
            name: name.into(),
            ty,
            sensitivity: Sensitivity::Personal,
            share: ShareClass::Conditional,
            encrypted: true,
            indexed: false,
            required: false,
            mask: None,
            generalize: None,
            description: String::new(),
        }
    }

    fn with_fields(fields: Vec<FieldDef>) -> Result<Catalog, CatalogError> {
        Catalog::from_categories(vec![CategoryDef {
            name: "thing".into(),
            description: String::new(),
            owner: None,
            fields,
        }])
    }

    fn text() -> FieldType {
        FieldType::Text { max_chars: 10 }
    }

    #[test]
    fn a_plain_valid_category_is_accepted() {
        assert!(with_fields(vec![field("a", text()), field("b_2", FieldType::Date)]).is_ok());
    }

    #[test]
    fn personal_and_sensitive_fields_must_be_encrypted() {
        for sensitivity in [Sensitivity::Personal, Sensitivity::Sensitive] {
            let mut f = field("a", text());
            f.sensitivity = sensitivity;
            f.encrypted = false;
            assert!(matches!(
                with_fields(vec![f]),
                Err(CatalogError::NotEncrypted { .. })
            ));
        }
        let mut public = field("a", text());
        public.sensitivity = Sensitivity::Public;
        public.encrypted = false;
        assert!(with_fields(vec![public]).is_ok());
    }

    #[test]
    fn only_encrypted_fields_may_be_indexed() {
        let mut f = field("a", text());
        f.sensitivity = Sensitivity::Public;
        f.encrypted = false;
        f.indexed = true;
        assert!(matches!(
            with_fields(vec![f]),
            Err(CatalogError::IndexedNotEncrypted { .. })
        ));
    }

    #[test]
    fn masks_only_on_text_id_number_and_phone() {
        let mask = Some(MaskRule::KeepFirstChars { n: 1 });
        for ty in [text(), FieldType::IdNumber, FieldType::Phone] {
            let mut f = field("a", ty);
            f.mask = mask;
            assert!(with_fields(vec![f]).is_ok());
        }
        let mut f = field("a", FieldType::Date);
        f.mask = mask;
        assert!(matches!(
            with_fields(vec![f]),
            Err(CatalogError::MaskNotAllowed { .. })
        ));
    }

    #[test]
    fn year_generalization_only_on_dates() {
        let mut f = field("a", text());
        f.generalize = Some(GeneralizeRule::Year);
        assert!(matches!(
            with_fields(vec![f]),
            Err(CatalogError::YearNotAllowed { .. })
        ));
        let mut f = field("a", text());
        f.generalize = Some(GeneralizeRule::GridCode);
        assert!(with_fields(vec![f]).is_ok());
    }

    #[test]
    fn names_must_be_unique_and_well_formed() {
        let dup = with_fields(vec![field("a", text()), field("a", FieldType::Date)]);
        assert!(matches!(dup, Err(CatalogError::DuplicateField { .. })));
        for bad in ["", "A", "1a", "a-b", "a b", "名字", "_a"] {
            let result = with_fields(vec![field(bad, text())]);
            assert!(
                matches!(result, Err(CatalogError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        let category = CategoryDef {
            name: "thing".into(),
            description: String::new(),
            owner: None,
            fields: vec![field("a", text())],
        };
        let twice = Catalog::from_categories(vec![category.clone(), category]);
        assert!(matches!(twice, Err(CatalogError::DuplicateCategory { .. })));
    }

    #[test]
    fn degenerate_types_are_rejected() {
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for ty in [
            FieldType::Text { max_chars: 0 },
            FieldType::Enum { values: vec![] },
            FieldType::TagSet {
                values: values(&["a", "a"]),
            },
            FieldType::Enum {
                values: values(&["a", " "]),
            },
            FieldType::Integer { min: 2, max: 1 },
        ] {
            let result = with_fields(vec![field("a", ty.clone())]);
            assert!(
                matches!(result, Err(CatalogError::InvalidType { .. })),
                "{ty:?}"
            );
        }
        assert!(matches!(
            with_fields(vec![]),
            Err(CatalogError::NoFields { .. })
        ));
    }

    #[test]
    fn error_messages_are_lowercase_and_name_the_field() {
        let mut f = field("phone", FieldType::Phone);
        f.encrypted = false;
        let message = with_fields(vec![f]).unwrap_err().to_string();
        assert_eq!(
            message,
            "field `thing.phone` is personal or sensitive and must be encrypted"
        );
    }
}
