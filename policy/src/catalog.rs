//! The data catalog (资源目录): categories, their fields and each field's protection rules.
//! Invariant: every `Catalog` has passed `validate` — personal and sensitive fields are
//! encrypted, only encrypted fields are indexed, masks and generalisations fit the field type,
//! and names are unique and well formed; serde deserialisation goes through the same check.

mod validate;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use validate::CatalogError;

/// The catalog shipped with the product.
const DEFAULT_CATALOG_TOML: &str = include_str!("../catalog/default.toml");

/// How much harm disclosure can do (PIPL art. 28 for `Sensitive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Public,
    Personal,
    Sensitive,
}

/// Government data-sharing class of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareClass {
    /// Shared with any department that has a grant.
    Unconditional,
    /// Shared under a grant with a stated purpose and scope.
    Conditional,
    /// Never shared; a grant naming it is refused.
    None,
}

/// The type of a field's values, with its constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldType {
    /// Trimmed, non-empty text of at most `max_chars` characters, no control characters.
    Text { max_chars: usize },
    /// GB 11643-1999 resident identity number.
    IdNumber,
    /// Mainland mobile number, 11 digits.
    Phone,
    /// Calendar date, `YYYY-MM-DD`.
    Date,
    /// Exactly one of `values`.
    Enum { values: Vec<String> },
    /// A set of zero or more of `values`.
    TagSet { values: Vec<String> },
    /// A whole number in `min..=max`.
    Integer { min: i64, max: i64 },
}

/// How a `masked` disclosure hides characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MaskRule {
    /// Keep the first `n` characters (`张三丰` → `张**`).
    KeepFirstChars { n: usize },
    /// Keep the first `first` and last `last` characters (`13812345678` → `138****5678`).
    KeepEnds { first: usize, last: usize },
}

/// What a `generalized` disclosure reveals instead of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneralizeRule {
    /// The year of a date.
    Year,
    /// The grid code of the record.
    GridCode,
}

/// One field of a category and its protection rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Invariant (validated catalog): `[a-z][a-z0-9_]*`, unique in its category.
    pub name: String,
    #[serde(flatten, deserialize_with = "validate::strict_field_type")]
    pub ty: FieldType,
    pub sensitivity: Sensitivity,
    pub share: ShareClass,
    /// Invariant (validated catalog): true for personal and sensitive fields.
    pub encrypted: bool,
    /// Blind index for exact lookup. Invariant (validated catalog): only on encrypted fields.
    pub indexed: bool,
    #[serde(default)]
    pub required: bool,
    /// Invariant (validated catalog): only on text, id_number and phone fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskRule>,
    /// Invariant (validated catalog): `Year` only on date fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generalize: Option<GeneralizeRule>,
    #[serde(default)]
    pub description: String,
}

/// A category of records (`person`, `household`, …) and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDef {
    /// Invariant (validated catalog): `[a-z][a-z0-9_]*`, unique in the catalog.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The department that publishes this category and whose consent every grant on it needs;
    /// `None`: the grid side (grid workers write it, a DPO's approval suffices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub fields: Vec<FieldDef>,
}

impl CategoryDef {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// What replacing this definition with `next` would do to stored records: `Err` names the
    /// first change that stored data could not survive (a field removed, retyped to a narrower
    /// type, or its encryption or blind index changed; the owner changed). Adding fields,
    /// widening a type (more enum or tag values, a longer text, a wider integer range) and
    /// changing descriptions, sensitivity, share class, masks or generalisations are safe.
    pub fn evolution(&self, next: &CategoryDef) -> Result<Evolution, String> {
        if self.owner != next.owner {
            return Err("the owner of a category that holds records cannot change".to_owned());
        }
        for old in &self.fields {
            let Some(new) = next.field(&old.name) else {
                return Err(format!(
                    "field `{}` holds data and cannot be removed",
                    old.name
                ));
            };
            if !widens(&old.ty, &new.ty) {
                return Err(format!(
                    "field `{}` holds data and can only be widened (more values, more characters, a wider range)",
                    old.name
                ));
            }
            if old.encrypted != new.encrypted || old.indexed != new.indexed {
                return Err(format!(
                    "field `{}` holds data: its encryption and blind index cannot change",
                    old.name
                ));
            }
        }
        let added = next
            .fields
            .iter()
            .filter(|f| self.field(&f.name).is_none())
            .map(|f| f.name.clone())
            .collect();
        Ok(Evolution { added })
    }
}

/// A safe change of a category (`CategoryDef::evolution`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evolution {
    /// Fields the new definition adds.
    pub added: Vec<String>,
}

/// Does every value valid for `old` stay valid for `new`?
fn widens(old: &FieldType, new: &FieldType) -> bool {
    use FieldType as T;
    match (old, new) {
        (T::Text { max_chars: a }, T::Text { max_chars: b }) => b >= a,
        (T::Enum { values: a }, T::Enum { values: b })
        | (T::TagSet { values: a }, T::TagSet { values: b }) => a.iter().all(|v| b.contains(v)),
        (T::Integer { min: a0, max: a1 }, T::Integer { min: b0, max: b1 }) => b0 <= a0 && b1 >= a1,
        (a, b) => a == b,
    }
}

/// A validated catalog. Built only by `from_toml`, `from_categories`, `with_category` or serde,
/// all of which validate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CatalogDoc")]
pub struct Catalog {
    categories: Vec<CategoryDef>,
}

/// The unvalidated shape of a catalog document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogDoc {
    categories: Vec<CategoryDef>,
}

impl TryFrom<CatalogDoc> for Catalog {
    type Error = CatalogError;

    fn try_from(doc: CatalogDoc) -> Result<Self, Self::Error> {
        Catalog::from_categories(doc.categories)
    }
}

impl Catalog {
    /// The default grid-management catalog compiled into the product.
    pub fn default_catalog() -> &'static Catalog {
        static DEFAULT: OnceLock<Catalog> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            #[expect(
                clippy::expect_used,
                reason = "the file is compiled in and the test \
                          `default_catalog_parses_and_validates` proves it valid"
            )]
            Catalog::from_toml(DEFAULT_CATALOG_TOML).expect("the built-in catalog is valid")
        })
    }

    /// Parses and validates a catalog document (`[[categories]]` tables).
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let doc: CatalogDoc = toml::from_str(text)?;
        Catalog::from_categories(doc.categories)
    }

    /// Validates a list of categories into a catalog.
    pub fn from_categories(categories: Vec<CategoryDef>) -> Result<Catalog, CatalogError> {
        validate::catalog(&categories)?;
        Ok(Catalog { categories })
    }

    /// A copy of this catalog with `category` added, or replacing the category of the same name.
    pub fn with_category(&self, category: CategoryDef) -> Result<Catalog, CatalogError> {
        let mut categories = self.categories.clone();
        match categories.iter_mut().find(|c| c.name == category.name) {
            Some(existing) => *existing = category,
            None => categories.push(category),
        }
        Catalog::from_categories(categories)
    }

    pub fn category(&self, name: &str) -> Option<&CategoryDef> {
        self.categories.iter().find(|c| c.name == name)
    }

    pub fn categories(&self) -> &[CategoryDef] {
        &self.categories
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_parses_and_validates() {
        let catalog = Catalog::from_toml(DEFAULT_CATALOG_TOML).unwrap();
        let names: Vec<&str> = catalog
            .categories()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["person", "household", "place", "organization"]);
        assert_eq!(Catalog::default_catalog(), &catalog);
        for category in catalog.categories() {
            assert!(!category.description.is_empty(), "{}", category.name);
            for field in &category.fields {
                assert!(
                    !field.description.is_empty(),
                    "{}.{}",
                    category.name,
                    field.name
                );
            }
        }
    }

    /// The normative table of API.md, "The default person category".
    #[test]
    fn default_person_category_matches_the_api_table() {
        use GeneralizeRule as G;
        use MaskRule as M;
        use Sensitivity::*;
        use ShareClass::{Conditional, Unconditional};
        type Row = (
            &'static str,
            Sensitivity,
            ShareClass,
            bool,
            Option<M>,
            Option<G>,
        );
        let expected: [Row; 10] = [
            (
                "name",
                Personal,
                Conditional,
                false,
                Some(M::KeepFirstChars { n: 1 }),
                None,
            ),
            (
                "id_number",
                Sensitive,
                Conditional,
                true,
                Some(M::KeepEnds { first: 6, last: 4 }),
                None,
            ),
            ("gender", Personal, Unconditional, false, None, None),
            (
                "birth_date",
                Personal,
                Conditional,
                false,
                None,
                Some(G::Year),
            ),
            (
                "phone",
                Personal,
                Conditional,
                true,
                Some(M::KeepEnds { first: 3, last: 4 }),
                None,
            ),
            (
                "address",
                Personal,
                Conditional,
                false,
                None,
                Some(G::GridCode),
            ),
            ("household_id", Public, Unconditional, false, None, None),
            ("residence", Personal, Conditional, true, None, None),
            ("tags", Sensitive, Conditional, true, None, None),
            (
                "worker_notes",
                Sensitive,
                ShareClass::None,
                false,
                None,
                None,
            ),
        ];
        let person = Catalog::default_catalog().category("person").unwrap();
        assert_eq!(person.fields.len(), expected.len());
        for (field, (name, sensitivity, share, indexed, mask, generalize)) in
            person.fields.iter().zip(expected)
        {
            assert_eq!(field.name, name);
            assert_eq!(field.sensitivity, sensitivity, "{name}");
            assert_eq!(field.share, share, "{name}");
            assert_eq!(field.encrypted, name != "household_id", "{name}");
            assert_eq!(field.indexed, indexed, "{name}");
            assert_eq!(field.mask, mask, "{name}");
            assert_eq!(field.generalize, generalize, "{name}");
        }
        assert_eq!(
            person.field("name").unwrap().ty,
            FieldType::Text { max_chars: 64 }
        );
        assert!(person.field("name").unwrap().required);
        assert_eq!(person.field("id_number").unwrap().ty, FieldType::IdNumber);
        assert_eq!(person.field("phone").unwrap().ty, FieldType::Phone);
        assert_eq!(person.field("birth_date").unwrap().ty, FieldType::Date);
        let tags = FieldType::TagSet {
            values: [
                "elderly_alone",
                "disabled",
                "low_income",
                "key_person",
                "minor",
                "veteran",
            ]
            .map(String::from)
            .to_vec(),
        };
        assert_eq!(person.field("tags").unwrap().ty, tags);
    }

    #[test]
    fn catalog_roundtrips_through_json_and_json_is_validated() {
        let catalog = Catalog::default_catalog();
        let json = serde_json::to_value(catalog).unwrap();
        let phone = &json["categories"][0]["fields"][4];
        assert_eq!(phone["type"], "phone");
        assert_eq!(phone["mask"]["type"], "keep_ends");
        assert!(phone.get("generalize").is_none());
        let back: Catalog = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, catalog);

        let mut broken = json;
        broken["categories"][0]["fields"][4]["encrypted"] = false.into();
        assert!(serde_json::from_value::<Catalog>(broken).is_err());
    }

    #[test]
    fn with_category_replaces_by_name_and_revalidates() {
        let catalog = Catalog::default_catalog();
        let mut place = catalog.category("place").unwrap().clone();
        place.fields.retain(|f| f.name != "risk_level");
        let changed = catalog.with_category(place).unwrap();
        assert_eq!(changed.categories().len(), 4);
        assert!(
            changed
                .category("place")
                .unwrap()
                .field("risk_level")
                .is_none()
        );

        let mut bad = catalog.category("place").unwrap().clone();
        bad.name = "vehicle".into();
        bad.fields[3].encrypted = false;
        assert!(matches!(
            catalog.with_category(bad),
            Err(CatalogError::NotEncrypted { .. })
        ));
    }

    #[test]
    fn evolution_allows_additions_and_widening_only() {
        let place = Catalog::default_catalog()
            .category("place")
            .unwrap()
            .clone();
        let mut next = place.clone();
        let mut extra = next.fields[0].clone();
        extra.name = "opened_on".into();
        extra.required = false;
        next.fields.push(extra);
        assert_eq!(
            place.evolution(&next).unwrap().added,
            vec!["opened_on".to_owned()]
        );
        let mut removed = place.clone();
        removed.fields.pop();
        assert!(place.evolution(&removed).unwrap_err().contains("removed"));
        let mut owned = place.clone();
        owned.owner = Some("health".into());
        assert!(place.evolution(&owned).unwrap_err().contains("owner"));
        // A text field may grow, not shrink or change type.
        let text_at = place
            .fields
            .iter()
            .position(|f| matches!(f.ty, FieldType::Text { .. }))
            .unwrap();
        let FieldType::Text { max_chars } = place.fields[text_at].ty.clone() else {
            unreachable!()
        };
        let mut longer = place.clone();
        longer.fields[text_at].ty = FieldType::Text {
            max_chars: max_chars + 1,
        };
        assert!(place.evolution(&longer).is_ok());
        let mut shorter = place.clone();
        shorter.fields[text_at].ty = FieldType::Text {
            max_chars: max_chars - 1,
        };
        assert!(place.evolution(&shorter).unwrap_err().contains("widened"));
        let mut retyped = place.clone();
        retyped.fields[text_at].ty = FieldType::Date;
        assert!(place.evolution(&retyped).is_err());
        let mut unindexed = place.clone();
        unindexed.fields[text_at].indexed = !unindexed.fields[text_at].indexed;
        assert!(
            place
                .evolution(&unindexed)
                .unwrap_err()
                .contains("blind index")
        );
    }

    #[test]
    fn unknown_keys_in_a_field_are_rejected() {
        let text = r#"
            [[categories]]
            name = "pet"
            description = "a pet"
            [[categories.fields]]
            name = "nickname"
            type = "text"
            max_chars = 10
            max_char = 12
            sensitivity = "public"
            share = "unconditional"
            encrypted = false
            indexed = false
        "#;
        assert!(matches!(
            Catalog::from_toml(text),
            Err(CatalogError::Toml(_))
        ));
        let fixed = text.replace("max_char = 12\n", "");
        assert!(Catalog::from_toml(&fixed).is_ok());
        let unit_variant = fixed.replace("\"text\"", "\"phone\"");
        assert!(matches!(
            Catalog::from_toml(&unit_variant),
            Err(CatalogError::Toml(_))
        ));
    }
}
