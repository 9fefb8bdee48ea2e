//! Typed field values, parsed at the boundary. Invariant: a `FieldValue` of a field has passed
//! that field's type check (`FieldDef::parse_value`), and no `ValueProblem` or `FieldProblem`
//! message ever contains the value it describes.

pub(crate) mod date;
mod id_number;
mod parse;
mod phone;

use std::collections::BTreeSet;

use serde::Serialize;

pub use id_number::IdNumber;
pub use phone::Phone;

/// A value of one catalog field, of the shape its `FieldType` demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Invariant: trimmed, non-empty, within the field's `max_chars`, no control characters.
    Text(String),
    IdNumber(IdNumber),
    Phone(Phone),
    Date(time::Date),
    /// Invariant: one of the field's `values`.
    Enum(String),
    /// Invariant: each one of the field's `values`.
    Tags(BTreeSet<String>),
    /// Invariant: within the field's `min..=max`.
    Integer(i64),
}

impl FieldValue {
    /// The JSON form: dates as `YYYY-MM-DD`, tags as a sorted array, the rest as their canonical
    /// string or number. `FieldDef::decode_stored` reads it back.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            FieldValue::Text(s) | FieldValue::Enum(s) => Value::String(s.clone()),
            FieldValue::IdNumber(id) => Value::String(id.as_str().to_owned()),
            FieldValue::Phone(phone) => Value::String(phone.as_str().to_owned()),
            FieldValue::Date(date) => Value::String(date::format(*date)),
            FieldValue::Tags(tags) => tags.iter().cloned().map(Value::String).collect(),
            FieldValue::Integer(n) => Value::from(*n),
        }
    }

    /// Normalised terms for a blind index: the canonical string, or one term per tag.
    pub fn index_terms(&self) -> Vec<String> {
        match self {
            FieldValue::Text(s) | FieldValue::Enum(s) => vec![s.clone()],
            FieldValue::IdNumber(id) => vec![id.as_str().to_owned()],
            FieldValue::Phone(phone) => vec![phone.as_str().to_owned()],
            FieldValue::Date(date) => vec![date::format(*date)],
            FieldValue::Tags(tags) => tags.iter().cloned().collect(),
            FieldValue::Integer(n) => vec![n.to_string()],
        }
    }
}

/// What is wrong with a submitted value. Messages are lowercase and never contain the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("unknown field")]
    UnknownField,
    #[error("required")]
    Required,
    #[error("must not be null")]
    Null,
    #[error("expected a string")]
    ExpectedString,
    #[error("expected an integer")]
    ExpectedInteger,
    #[error("expected an array of strings")]
    ExpectedStringArray,
    #[error("must not be empty")]
    Empty,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains a control character")]
    ControlCharacter,
    /// `allowed` is the catalog's list, joined with `, ` — never the submitted value.
    #[error("not one of: {allowed}")]
    NotOneOf { allowed: String },
    #[error("not between {min} and {max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("not a valid date (YYYY-MM-DD)")]
    InvalidDate,
    #[error("identity number must be 18 characters: 17 digits, then a digit or X")]
    IdNumberFormat,
    #[error("identity number area code is not valid")]
    IdNumberArea,
    #[error("identity number birth date is not a valid date between 1900 and 2100")]
    IdNumberBirthDate,
    #[error("identity number check character does not match")]
    IdNumberCheck,
    #[error("not a mainland mobile number (11 digits starting 13 to 19)")]
    PhoneFormat,
    /// `field` is a catalog field name.
    #[error("does not match {field}")]
    DoesNotMatch { field: String },
}

/// One problem with one submitted field, for a `validation_failed` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// A path such as `fields.phone`.
    pub field: String,
    /// Human text; never the submitted value.
    pub problem: String,
}

impl FieldProblem {
    /// A problem with the submitted field `name`, reported at `fields.<name>`.
    pub fn new(name: &str, problem: impl std::fmt::Display) -> FieldProblem {
        FieldProblem {
            field: format!("fields.{name}"),
            problem: problem.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_index_terms_use_canonical_forms() {
        let date = FieldValue::Date(time::macros::date!(1949 - 12 - 31));
        assert_eq!(date.to_json(), json!("1949-12-31"));
        assert_eq!(date.index_terms(), ["1949-12-31"]);

        let tags = FieldValue::Tags(["minor", "disabled"].map(String::from).into());
        assert_eq!(tags.to_json(), json!(["disabled", "minor"]));
        assert_eq!(tags.index_terms(), ["disabled", "minor"]);

        let id = FieldValue::IdNumber(IdNumber::parse("11010519491231002x").unwrap());
        assert_eq!(id.to_json(), json!("11010519491231002X"));
        assert_eq!(id.index_terms(), ["11010519491231002X"]);

        let phone = FieldValue::Phone(Phone::parse("+86 138-1234-5678").unwrap());
        assert_eq!(phone.index_terms(), ["13812345678"]);

        assert_eq!(FieldValue::Integer(-3).to_json(), json!(-3));
        assert_eq!(FieldValue::Integer(-3).index_terms(), ["-3"]);
        assert_eq!(FieldValue::Text("张三".into()).to_json(), json!("张三"));
    }

    #[test]
    fn field_problems_serialize_with_a_path() {
        let problem = FieldProblem::new("phone", ValueProblem::PhoneFormat);
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            json!({
                "field": "fields.phone",
                "problem": "not a mainland mobile number (11 digits starting 13 to 19)"
            })
        );
    }
}
