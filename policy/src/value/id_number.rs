//! Resident identity numbers (GB 11643-1999). Invariant: an `IdNumber` is 18 ASCII characters —
//! an area code whose first digit is 1–8, a real birth date in 1900..=2100, a 3-digit sequence and
//! the ISO 7064 MOD 11-2 check character (`X` always uppercase); `parse` is the only constructor.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use super::{ValueProblem, date};

/// Weights of the first 17 digits: 2^(17 - i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each weighted sum mod 11.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// An 18-character resident identity number. Its `Debug` is that of a personal value: do not
/// log it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber {
    /// Invariant: see the module documentation.
    text: String,
    /// Invariant: the date encoded in characters 7..=14 of `text`.
    birth_date: Date,
}

impl IdNumber {
    /// Parses an identity number; surrounding whitespace is ignored and a lowercase `x` check
    /// character becomes `X`.
    pub fn parse(input: &str) -> Result<IdNumber, ValueProblem> {
        let text = input.trim().to_ascii_uppercase();
        let (first17, check) = text
            .split_at_checked(17)
            .filter(|(first17, check)| {
                first17.bytes().all(|b| b.is_ascii_digit())
                    && matches!(check.as_bytes(), [b'0'..=b'9' | b'X'])
            })
            .ok_or(ValueProblem::IdNumberFormat)?;
        if !matches!(first17.as_bytes().first(), Some(b'1'..=b'8')) {
            return Err(ValueProblem::IdNumberArea);
        }
        let birth_date = first17
            .get(6..14)
            .and_then(|d| date::from_digits(d.get(0..4)?, d.get(4..6)?, d.get(6..8)?))
            .filter(|d| (1900..=2100).contains(&d.year()))
            .ok_or(ValueProblem::IdNumberBirthDate)?;
        if check_char(first17).map(String::from).as_deref() != Some(check) {
            return Err(ValueProblem::IdNumberCheck);
        }
        Ok(IdNumber { text, birth_date })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// The 17th digit (the last of the sequence code) is odd for men.
    pub fn is_male(&self) -> bool {
        // INVARIANT (module): byte 16 is an ASCII digit; '0' is even, so parity of the byte is
        // parity of the digit.
        self.text.as_bytes().get(16).is_some_and(|b| b % 2 == 1)
    }

    /// The ISO 7064 MOD 11-2 check character for 17 ASCII digits, or `None` for anything else.
    pub fn check_char(first17: &str) -> Option<char> {
        check_char(first17)
    }
}

/// The ISO 7064 MOD 11-2 check character for 17 ASCII digits, or `None` for anything else.
fn check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (b, weight) in first17.bytes().zip(WEIGHTS) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * weight;
    }
    CHECK_CHARS.get(usize::try_from(sum % 11).ok()?).copied()
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for IdNumber {
    type Error = ValueProblem;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        IdNumber::parse(&text)
    }
}

impl From<IdNumber> for String {
    fn from(id: IdNumber) -> String {
        id.text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    /// Appends the right check character.
    fn complete(first17: &str) -> String {
        format!("{first17}{}", check_char(first17).unwrap())
    }

    #[test]
    fn a_known_number_parses_and_normalises_x() {
        let id = IdNumber::parse(" 11010519491231002x ").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert!(!id.is_male());
        assert_eq!(check_char("11010519491231002"), Some('X'));
        assert_eq!(IdNumber::check_char("11010519491231002"), Some('X'));
    }

    #[test]
    fn the_seventeenth_digit_gives_the_gender() {
        assert!(
            IdNumber::parse(&complete("33010219900101123"))
                .unwrap()
                .is_male()
        );
        assert!(
            !IdNumber::parse(&complete("33010219900101124"))
                .unwrap()
                .is_male()
        );
    }

    #[test]
    fn each_kind_of_error_is_named() {
        use ValueProblem::*;
        let cases = [
            ("1101051949123100", IdNumberFormat),
            ("110105194912310021X", IdNumberFormat),
            ("11010519491231002Y", IdNumberFormat),
            ("1101051949123100２X", IdNumberFormat),
            ("", IdNumberFormat),
            (&complete("01010519491231002"), IdNumberArea),
            (&complete("91010519491231002"), IdNumberArea),
            (&complete("11010519490230002"), IdNumberBirthDate),
            (&complete("11010518991231002"), IdNumberBirthDate),
            (&complete("11010521010101002"), IdNumberBirthDate),
            ("110105194912310021", IdNumberCheck),
        ];
        for (input, expected) in cases {
            assert_eq!(IdNumber::parse(input), Err(expected), "{input:?}");
        }
        assert!(IdNumber::parse(&complete("11010521001231002")).is_ok());
    }

    #[test]
    fn check_char_refuses_non_digits_and_wrong_lengths() {
        assert_eq!(check_char("1101051949123100"), None);
        assert_eq!(check_char("1101051949123100a"), None);
        assert_eq!(check_char("110105194912310021"), None);
    }

    #[test]
    fn serde_goes_through_parse() {
        let id: IdNumber = serde_json::from_str("\"11010519491231002x\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"11010519491231002X\""
        );
        assert!(serde_json::from_str::<IdNumber>("\"110105194912310021\"").is_err());
    }

    /// 17 digits with a valid area code and birth date.
    fn valid_first17() -> impl Strategy<Value = String> {
        (1u32..=8, 0u32..100_000, 0u32..=73_413, 0u32..1000).prop_map(|(a, b, days, seq)| {
            let birth = date!(1900 - 01 - 01) + time::Duration::days(i64::from(days));
            let birth = date::format(birth).replace('-', "");
            format!("{a}{b:05}{birth}{seq:03}")
        })
    }

    proptest! {
        #[test]
        fn any_valid_digits_with_their_check_char_parse(first17 in valid_first17()) {
            let full = complete(&first17);
            let id = IdNumber::parse(&full).unwrap();
            prop_assert_eq!(id.as_str(), full.as_str());
            prop_assert_eq!(date::format(id.birth_date()).replace('-', ""), &first17[6..14]);
        }

        #[test]
        fn any_single_digit_change_is_rejected(
            first17 in valid_first17(),
            position in 0usize..17,
            delta in 1u8..10,
        ) {
            let mut bytes = complete(&first17).into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(IdNumber::parse(&changed).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,24}") {
            let _ = IdNumber::parse(&text);
        }
    }
}
