//! Disclosure transforms: what a department receives for a field at each `Disclosure` level.
//! Invariants: masks work on characters, never bytes, and never reveal a whole non-empty value
//! (a value too short to hide anything comes back entirely as `*`); a level the field has no
//! rule for yields nothing rather than the clear value (fail closed).

use serde_json::Value;
use time::Date;

use crate::catalog::{FieldDef, GeneralizeRule, MaskRule};
use crate::disclosure::Disclosure;
use crate::grid::GridCode;
use crate::value::FieldValue;

/// The character that replaces each hidden character.
const HIDDEN: char = '*';

/// Replaces every character the rule hides with `*`, keeping the character count.
///
/// `张三丰` with `KeepFirstChars { n: 1 }` → `张**`; `13812345678` with
/// `KeepEnds { first: 3, last: 4 }` → `138****5678`.
pub fn mask(rule: &MaskRule, value: &str) -> String {
    let count = value.chars().count();
    let (first, last) = match *rule {
        MaskRule::KeepFirstChars { n } => (n, 0),
        MaskRule::KeepEnds { first, last } => (first, last),
    };
    // Keeping `first + last` of `count` characters must leave at least one to hide.
    if first.saturating_add(last) >= count {
        return HIDDEN.to_string().repeat(count);
    }
    let hidden_end = count - last;
    value
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i < first || i >= hidden_end {
                c
            } else {
                HIDDEN
            }
        })
        .collect()
}

/// The year of a date, `YYYY` (`1990-01-01` → `1990`).
pub fn generalize_year(date: Date) -> String {
    format!("{:04}", date.year())
}

/// The value a department receives for `value` of field `def` at `level`, for a record in
/// `grid`. `pseudonym` turns the value's canonical text into the grantee's pseudonym (an HMAC
/// under the grantee's key, which lives in the hub's vault). `None` when the field has no rule
/// for the level: the field is then withheld, never sent in clear.
pub fn disclose(
    def: &FieldDef,
    level: Disclosure,
    value: &FieldValue,
    grid: &GridCode,
    pseudonym: impl FnOnce(&str) -> String,
) -> Option<Value> {
    match level {
        Disclosure::Clear => Some(value.to_json()),
        Disclosure::Pseudonym => Some(Value::String(pseudonym(&canonical_text(value)))),
        Disclosure::Masked => {
            let rule = def.mask.as_ref()?;
            let text = match value {
                FieldValue::Text(s) => s.as_str(),
                FieldValue::IdNumber(id) => id.as_str(),
                FieldValue::Phone(p) => p.as_str(),
                _ => return None,
            };
            Some(Value::String(mask(rule, text)))
        }
        Disclosure::Generalized => match (def.generalize?, value) {
            (GeneralizeRule::Year, FieldValue::Date(d)) => Some(Value::String(generalize_year(*d))),
            (GeneralizeRule::Year, _) => None,
            (GeneralizeRule::GridCode, _) => Some(Value::String(grid.as_str().to_owned())),
        },
    }
}

/// Does disclosing `def` at `level` need the value? Not for a grid-code generalisation, which
/// reveals only the record's grid (so nothing is decrypted for it).
pub fn needs_value(def: &FieldDef, level: Disclosure) -> bool {
    !(level == Disclosure::Generalized && def.generalize == Some(GeneralizeRule::GridCode))
}

/// One text per value, whatever its type (tags joined in their sorted order), for pseudonyms.
fn canonical_text(value: &FieldValue) -> String {
    value.index_terms().join("\u{1f}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::value::{IdNumber, Phone};
    use proptest::prelude::*;
    use time::macros::date;

    const NAME: MaskRule = MaskRule::KeepFirstChars { n: 1 };
    const ID_NUMBER: MaskRule = MaskRule::KeepEnds { first: 6, last: 4 };
    const PHONE: MaskRule = MaskRule::KeepEnds { first: 3, last: 4 };

    #[test]
    fn the_api_masking_examples_hold() {
        assert_eq!(mask(&NAME, "张三丰"), "张**");
        assert_eq!(mask(&ID_NUMBER, "330102199001011234"), "330102********1234");
        assert_eq!(mask(&PHONE, "13812345678"), "138****5678");
    }

    #[test]
    fn masks_count_characters_not_bytes() {
        assert_eq!(mask(&NAME, "欧阳娜娜"), "欧***");
        assert_eq!(
            mask(&MaskRule::KeepEnds { first: 1, last: 1 }, "上海市西湖区"),
            "上****区"
        );
        assert_eq!(mask(&NAME, "Zoë Ågren"), "Z********");
    }

    #[test]
    fn values_too_short_to_hide_anything_are_fully_hidden() {
        assert_eq!(mask(&NAME, "张"), "*");
        assert_eq!(mask(&PHONE, "1381234"), "*******");
        assert_eq!(mask(&PHONE, "13812345"), "138*2345");
        assert_eq!(mask(&ID_NUMBER, "张三丰"), "***");
        assert_eq!(mask(&NAME, ""), "");
        let huge = MaskRule::KeepEnds {
            first: usize::MAX,
            last: usize::MAX,
        };
        assert_eq!(mask(&huge, "王五"), "**");
    }

    #[test]
    fn a_date_generalizes_to_its_year() {
        assert_eq!(generalize_year(date!(1990 - 01 - 01)), "1990");
        assert_eq!(generalize_year(date!(0999 - 12 - 31)), "0999");
    }

    fn person(field: &str) -> &'static FieldDef {
        Catalog::default_catalog()
            .category("person")
            .unwrap()
            .field(field)
            .unwrap()
    }

    fn grid() -> GridCode {
        GridCode::parse("330110.003.012").unwrap()
    }

    fn fake_pseudonym(text: &str) -> String {
        format!("p({})", text.chars().count())
    }

    #[test]
    fn every_level_of_the_default_person_fields() {
        let name = FieldValue::Text("欧阳娜娜".into());
        let id = FieldValue::IdNumber(IdNumber::parse("11010519491231002X").unwrap());
        let phone = FieldValue::Phone(Phone::parse("13812345678").unwrap());
        let born = FieldValue::Date(date!(1949 - 12 - 31));
        let address = FieldValue::Text("浙江省杭州市西湖区文三路 90 号".into());
        let disclose =
            |f: &str, level, v: &FieldValue| disclose(person(f), level, v, &grid(), fake_pseudonym);
        assert_eq!(
            disclose("name", Disclosure::Masked, &name),
            Some(Value::from("欧***"))
        );
        assert_eq!(
            disclose("name", Disclosure::Clear, &name),
            Some(Value::from("欧阳娜娜"))
        );
        // The pseudonym function sees the value's characters, not its bytes.
        assert_eq!(
            disclose("name", Disclosure::Pseudonym, &name),
            Some(Value::from("p(4)"))
        );
        assert_eq!(
            disclose("id_number", Disclosure::Masked, &id),
            Some(Value::from("110105********002X"))
        );
        assert_eq!(
            disclose("phone", Disclosure::Masked, &phone),
            Some(Value::from("138****5678"))
        );
        assert_eq!(
            disclose("birth_date", Disclosure::Generalized, &born),
            Some(Value::from("1949"))
        );
        assert_eq!(
            disclose("address", Disclosure::Generalized, &address),
            Some(Value::from("330110.003.012"))
        );
        let tags = FieldValue::Tags(["minor", "disabled"].map(String::from).into());
        assert_eq!(
            disclose("tags", Disclosure::Clear, &tags),
            Some(serde_json::json!(["disabled", "minor"]))
        );
    }

    #[test]
    fn a_level_without_its_rule_discloses_nothing() {
        let gender = FieldValue::Enum("female".into());
        assert_eq!(
            disclose(
                person("gender"),
                Disclosure::Masked,
                &gender,
                &grid(),
                fake_pseudonym
            ),
            None
        );
        assert_eq!(
            disclose(
                person("name"),
                Disclosure::Generalized,
                &FieldValue::Text("张三".into()),
                &grid(),
                fake_pseudonym
            ),
            None
        );
    }

    proptest! {
        #[test]
        fn a_mask_keeps_length_and_never_reveals_the_whole_value(
            value in "\\PC{1,30}",
            first in 0usize..8,
            last in 0usize..8,
        ) {
            let rule = MaskRule::KeepEnds { first, last };
            let masked = mask(&rule, &value);
            prop_assert_eq!(masked.chars().count(), value.chars().count());
            prop_assert!(masked.contains(HIDDEN));
            prop_assume!(!value.contains(HIDDEN));
            prop_assert_ne!(masked, value);
        }
    }
}
