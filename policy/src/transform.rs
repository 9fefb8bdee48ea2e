//! Disclosure transforms for `masked` and `generalized` fields. Invariant: they work on
//! characters, never bytes, and a mask never reveals a whole non-empty value — a value too short
//! to hide anything comes back entirely as `*`.

use time::Date;

use crate::catalog::MaskRule;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
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
