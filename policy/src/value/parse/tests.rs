#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::catalog::Catalog;

fn category(name: &str) -> &'static CategoryDef {
    Catalog::default_catalog().category(name).unwrap()
}

fn person() -> &'static CategoryDef {
    category("person")
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("test input is an object"),
    }
}

/// The problems as `(field, problem)` pairs, sorted.
fn problems(result: Result<impl std::fmt::Debug, Vec<FieldProblem>>) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = result
        .unwrap_err()
        .into_iter()
        .map(|p| (p.field, p.problem))
        .collect();
    pairs.sort();
    pairs
}

fn pair(field: &str, problem: &str) -> (String, String) {
    (field.to_owned(), problem.to_owned())
}

#[test]
fn a_valid_person_parses_into_normalised_values() {
    let fields = map(json!({
        "name": "  张三丰 ",
        "id_number": "11010519491231002x",
        "gender": "female",
        "birth_date": "1949-12-31",
        "phone": "+86 138-1234-5678",
        "tags": ["minor", "disabled", "minor"],
        "household_id": "H-001",
    }));
    let values = person().parse_fields(&fields).unwrap();
    assert_eq!(values["name"], FieldValue::Text("张三丰".into()));
    assert_eq!(values["id_number"].to_json(), json!("11010519491231002X"));
    assert_eq!(values["phone"].to_json(), json!("13812345678"));
    assert_eq!(values["tags"].to_json(), json!(["disabled", "minor"]));
    assert_eq!(values.len(), 7);
}

#[test]
fn every_problem_is_collected_and_named_by_path() {
    let fields = map(json!({
        "nickname": "x",
        "id_number": "110105194912310021",
        "gender": "blue",
        "birth_date": "1949-02-30",
        "phone": 13812345678u64,
        "tags": ["minor", "rich"],
        "worker_notes": "line one\nline two",
        "address": null,
    }));
    assert_eq!(
        problems(person().parse_fields(&fields)),
        [
            pair("fields.address", "must not be null"),
            pair("fields.birth_date", "not a valid date (YYYY-MM-DD)"),
            pair("fields.gender", "not one of: male, female"),
            pair(
                "fields.id_number",
                "identity number check character does not match"
            ),
            pair("fields.name", "required"),
            pair("fields.nickname", "unknown field"),
            pair("fields.phone", "expected a string"),
            pair(
                "fields.tags",
                "not one of: elderly_alone, disabled, low_income, key_person, minor, veteran"
            ),
            pair("fields.worker_notes", "contains a control character"),
        ]
    );
}

#[test]
fn a_required_field_sent_as_null_is_reported_as_required() {
    let fields = map(json!({"name": null}));
    assert_eq!(
        problems(person().parse_fields(&fields)),
        [pair("fields.name", "required")]
    );
}

#[test]
fn birth_date_and_gender_must_agree_with_the_identity_number() {
    let fields = map(json!({
        "name": "张三",
        "id_number": "11010519491231002X",
        "gender": "male",
        "birth_date": "1949-12-30",
    }));
    assert_eq!(
        problems(person().parse_fields(&fields)),
        [
            pair("fields.birth_date", "does not match id_number"),
            pair("fields.gender", "does not match id_number"),
        ]
    );
}

#[test]
fn text_is_trimmed_and_limited_in_characters() {
    let name = person().field("name").unwrap();
    assert_eq!(name.parse_value(&json!("   ")), Err(ValueProblem::Empty));
    assert_eq!(
        name.parse_value(&json!("张\u{7}三")),
        Err(ValueProblem::ControlCharacter)
    );
    // 64 three-byte characters (192 bytes) fit; 65 do not.
    let fits = "张".repeat(64);
    assert_eq!(
        name.parse_value(&json!(fits)),
        Ok(FieldValue::Text(fits.clone()))
    );
    assert_eq!(
        name.parse_value(&json!(format!("{fits}张"))),
        Err(ValueProblem::TooLong { max: 64 })
    );
    assert_eq!(
        name.parse_value(&json!(7)),
        Err(ValueProblem::ExpectedString)
    );
}

#[test]
fn integers_must_be_whole_and_in_range() {
    let size = category("household").field("size").unwrap();
    assert_eq!(size.parse_value(&json!(30)), Ok(FieldValue::Integer(30)));
    let out = Err(ValueProblem::OutOfRange { min: 1, max: 30 });
    assert_eq!(size.parse_value(&json!(0)), out);
    assert_eq!(size.parse_value(&json!(u64::MAX)), out);
    assert_eq!(
        size.parse_value(&json!(2.0)),
        Err(ValueProblem::ExpectedInteger)
    );
    assert_eq!(
        size.parse_value(&json!("3")),
        Err(ValueProblem::ExpectedInteger)
    );
}

#[test]
fn tags_must_be_an_array_of_known_strings() {
    let tags = person().field("tags").unwrap();
    assert_eq!(
        tags.parse_value(&json!([])),
        Ok(FieldValue::Tags(BTreeSet::new()))
    );
    assert_eq!(
        tags.parse_value(&json!("minor")),
        Err(ValueProblem::ExpectedStringArray)
    );
    assert_eq!(
        tags.parse_value(&json!([1])),
        Err(ValueProblem::ExpectedStringArray)
    );
}

#[test]
fn category_parse_value_refuses_unknown_fields() {
    assert_eq!(
        person().parse_value("nickname", &json!("x")),
        Err(ValueProblem::UnknownField)
    );
    assert_eq!(
        person().parse_value("phone", &json!("13812345678")),
        Ok(FieldValue::Phone(Phone::parse("13812345678").unwrap()))
    );
}

#[test]
fn a_patch_may_remove_optional_fields_but_not_required_ones() {
    let fields = map(json!({"phone": null, "gender": "male"}));
    let changes = person().parse_patch(&fields).unwrap();
    assert_eq!(changes["phone"], None);
    assert_eq!(changes["gender"], Some(FieldValue::Enum("male".into())));

    let fields = map(json!({"name": null, "id_number": "11010519491231002X", "gender": "male"}));
    assert_eq!(
        problems(person().parse_patch(&fields)),
        [
            pair("fields.gender", "does not match id_number"),
            pair("fields.name", "required"),
        ]
    );
}

#[test]
fn cross_check_is_silent_without_an_identity_number() {
    let values = person()
        .parse_fields(&map(
            json!({"name": "李四", "gender": "male", "birth_date": "2000-01-01"}),
        ))
        .unwrap();
    assert!(person().cross_check(&values).is_empty());
}

#[test]
fn stored_json_decodes_back_to_the_same_values() {
    let fields = map(json!({
        "name": "王五",
        "id_number": "11010519491231002X",
        "birth_date": "1949-12-31",
        "phone": "13912345678",
        "tags": ["veteran"],
        "residence": "floating",
    }));
    let values = person().parse_fields(&fields).unwrap();
    for (name, value) in &values {
        let def = person().field(name).unwrap();
        assert_eq!(
            &def.decode_stored(&value.to_json()).unwrap(),
            value,
            "{name}"
        );
    }
    let employees = category("organization").field("employees").unwrap();
    assert_eq!(
        employees.decode_stored(&json!(0)),
        Ok(FieldValue::Integer(0))
    );
}

/// Every message `parse_fields` can produce for the default catalog, to skip random strings
/// that happen to be a piece of fixed wording (e.g. `than`).
fn message_vocabulary() -> String {
    use ValueProblem::*;
    let mut all: Vec<ValueProblem> = vec![
        UnknownField,
        Required,
        Null,
        ExpectedString,
        ExpectedInteger,
        ExpectedStringArray,
        Empty,
        ControlCharacter,
        InvalidDate,
        IdNumberFormat,
        IdNumberArea,
        IdNumberBirthDate,
        IdNumberCheck,
        PhoneFormat,
        DoesNotMatch {
            field: ID_NUMBER.into(),
        },
    ];
    for category in Catalog::default_catalog().categories() {
        for field in &category.fields {
            match &field.ty {
                FieldType::Text { max_chars } => all.push(TooLong { max: *max_chars }),
                FieldType::Enum { values } | FieldType::TagSet { values } => all.push(NotOneOf {
                    allowed: values.join(", "),
                }),
                FieldType::Integer { min, max } => all.push(OutOfRange {
                    min: *min,
                    max: *max,
                }),
                FieldType::IdNumber | FieldType::Phone | FieldType::Date => {}
            }
        }
    }
    all.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Random strings, some shaped like the values the parsers look for.
fn submitted_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{4,80}",
        "[0-9Xx]{16,19}",
        "[ +]{0,2}1[0-9 -]{9,12}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "[a-z_]{4,16}",
    ]
}

proptest! {
    #[test]
    fn text_length_is_counted_in_characters(n in 1usize..=100, wide in prop::bool::ANY) {
        let unit = if wide { "网" } else { "a" };
        let value = json!(unit.repeat(n));
        let result = person().field("name").unwrap().parse_value(&value);
        prop_assert_eq!(result.is_ok(), n <= 64);
    }

    #[test]
    fn no_problem_ever_contains_a_submitted_value(
        s in submitted_string(),
        category_index in 0usize..4,
    ) {
        prop_assume!(s.chars().count() >= 4 && !message_vocabulary().contains(s.as_str()));
        let category = &Catalog::default_catalog().categories()[category_index];
        let mut fields = Map::new();
        for field in &category.fields {
            let v = match field.ty {
                FieldType::TagSet { .. } => json!([s]),
                _ => json!(s),
            };
            fields.insert(field.name.clone(), v);
        }
        fields.insert(s.clone(), json!(s));
        let results = [
            category.parse_fields(&fields).err(),
            category.parse_patch(&fields).err(),
        ];
        for problems in results.into_iter().flatten() {
            for problem in problems {
                prop_assert!(
                    !problem.problem.contains(s.as_str()),
                    "{} echoes the value: {}", problem.field, problem.problem
                );
            }
        }
    }
}
