//! Parsing submitted JSON into `FieldValue`s against the catalog. Invariant: every value returned
//! passed its field's type check, and every problem names a field path and describes the fault
//! without repeating the value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{FieldProblem, FieldValue, IdNumber, Phone, ValueProblem, date};
use crate::catalog::{CategoryDef, FieldDef, FieldType};

/// Field names the identity-number consistency checks look for.
const ID_NUMBER: &str = "id_number";
const BIRTH_DATE: &str = "birth_date";
const GENDER: &str = "gender";

impl FieldDef {
    /// Parses one submitted JSON value into this field's type.
    pub fn parse_value(&self, v: &Value) -> Result<FieldValue, ValueProblem> {
        if v.is_null() {
            return Err(ValueProblem::Null);
        }
        match &self.ty {
            FieldType::Text { max_chars } => text(v, *max_chars).map(FieldValue::Text),
            FieldType::IdNumber => IdNumber::parse(string(v)?).map(FieldValue::IdNumber),
            FieldType::Phone => Phone::parse(string(v)?).map(FieldValue::Phone),
            FieldType::Date => date::parse(string(v)?)
                .map(FieldValue::Date)
                .ok_or(ValueProblem::InvalidDate),
            FieldType::Enum { values } => one_of(string(v)?, values).map(FieldValue::Enum),
            FieldType::TagSet { values } => {
                let items = v.as_array().ok_or(ValueProblem::ExpectedStringArray)?;
                items
                    .iter()
                    .map(|item| {
                        let tag = item.as_str().ok_or(ValueProblem::ExpectedStringArray)?;
                        one_of(tag, values)
                    })
                    .collect::<Result<_, _>>()
                    .map(FieldValue::Tags)
            }
            FieldType::Integer { min, max } => {
                let out_of_range = ValueProblem::OutOfRange {
                    min: *min,
                    max: *max,
                };
                match v.as_i64() {
                    Some(n) if (*min..=*max).contains(&n) => Ok(FieldValue::Integer(n)),
                    Some(_) => Err(out_of_range),
                    None if v.is_u64() => Err(out_of_range),
                    None => Err(ValueProblem::ExpectedInteger),
                }
            }
        }
    }

    /// Reads back a value stored as `FieldValue::to_json` (after decryption). The same checks as
    /// `parse_value`, so a catalog change or a corrupted row cannot smuggle in a bad value.
    pub fn decode_stored(&self, v: &Value) -> Result<FieldValue, ValueProblem> {
        self.parse_value(v)
    }
}

impl CategoryDef {
    /// Parses one submitted value of the field `field`.
    pub fn parse_value(&self, field: &str, v: &Value) -> Result<FieldValue, ValueProblem> {
        self.field(field)
            .ok_or(ValueProblem::UnknownField)?
            .parse_value(v)
    }

    /// Parses the `fields` of a new record, collecting every problem: unknown fields, missing
    /// required fields, `null`s, invalid values and identity-number inconsistencies.
    pub fn parse_fields(
        &self,
        fields: &Map<String, Value>,
    ) -> Result<BTreeMap<String, FieldValue>, Vec<FieldProblem>> {
        let mut values = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, v) in fields {
            let parsed = match self.field(name) {
                None => Err(ValueProblem::UnknownField),
                Some(def) if v.is_null() && def.required => Err(ValueProblem::Required),
                Some(def) => def.parse_value(v),
            };
            match parsed {
                Ok(value) => {
                    values.insert(name.clone(), value);
                }
                Err(problem) => problems.push(FieldProblem::new(name, problem)),
            }
        }
        for def in &self.fields {
            if def.required && !fields.contains_key(&def.name) {
                problems.push(FieldProblem::new(&def.name, ValueProblem::Required));
            }
        }
        problems.extend(self.cross_check(&values));
        if problems.is_empty() {
            Ok(values)
        } else {
            Err(problems)
        }
    }

    /// Parses the `fields` of a change to a record: `null` removes a field (refused for a
    /// required field), absent fields are left alone. Consistency is checked among the fields
    /// present; call `cross_check` on the merged record to check it against stored values.
    pub fn parse_patch(
        &self,
        fields: &Map<String, Value>,
    ) -> Result<BTreeMap<String, Option<FieldValue>>, Vec<FieldProblem>> {
        let mut changes = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, v) in fields {
            let parsed = match self.field(name) {
                None => Err(ValueProblem::UnknownField),
                Some(def) if v.is_null() => {
                    if def.required {
                        Err(ValueProblem::Required)
                    } else {
                        Ok(None)
                    }
                }
                Some(def) => def.parse_value(v).map(Some),
            };
            match parsed {
                Ok(change) => {
                    changes.insert(name.clone(), change);
                }
                Err(problem) => problems.push(FieldProblem::new(name, problem)),
            }
        }
        let present: BTreeMap<String, FieldValue> = changes
            .iter()
            .filter_map(|(name, v)| Some((name.clone(), v.clone()?)))
            .collect();
        problems.extend(self.cross_check(&present));
        if problems.is_empty() {
            Ok(changes)
        } else {
            Err(problems)
        }
    }

    /// Consistency between fields of one record: when `id_number` is present, `birth_date` must
    /// be the date it encodes and a `gender` of `male` or `female` must match its sequence digit.
    pub fn cross_check(&self, values: &BTreeMap<String, FieldValue>) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        let Some(FieldValue::IdNumber(id)) = values.get(ID_NUMBER) else {
            return problems;
        };
        let mismatch = || ValueProblem::DoesNotMatch {
            field: ID_NUMBER.to_owned(),
        };
        if let Some(FieldValue::Date(birth_date)) = values.get(BIRTH_DATE)
            && *birth_date != id.birth_date()
        {
            problems.push(FieldProblem::new(BIRTH_DATE, mismatch()));
        }
        if let Some(FieldValue::Enum(gender)) = values.get(GENDER) {
            let expected = if id.is_male() { "male" } else { "female" };
            if matches!(gender.as_str(), "male" | "female") && gender != expected {
                problems.push(FieldProblem::new(GENDER, mismatch()));
            }
        }
        problems
    }
}

fn string(v: &Value) -> Result<&str, ValueProblem> {
    v.as_str().ok_or(ValueProblem::ExpectedString)
}

/// Trimmed, non-empty, at most `max_chars` characters (not bytes), no control characters.
fn text(v: &Value, max_chars: usize) -> Result<String, ValueProblem> {
    let s = string(v)?.trim();
    if s.is_empty() {
        return Err(ValueProblem::Empty);
    }
    if s.chars().any(char::is_control) {
        return Err(ValueProblem::ControlCharacter);
    }
    if s.chars().count() > max_chars {
        return Err(ValueProblem::TooLong { max: max_chars });
    }
    Ok(s.to_owned())
}

fn one_of(s: &str, allowed: &[String]) -> Result<String, ValueProblem> {
    if allowed.iter().any(|a| a == s) {
        Ok(s.to_owned())
    } else {
        Err(ValueProblem::NotOneOf {
            allowed: allowed.join(", "),
        })
    }
}

// The tests (with the no-echo proptest) would push this file past ~400 lines, so they live in
// `parse/tests.rs`.
#[cfg(test)]
mod tests;
