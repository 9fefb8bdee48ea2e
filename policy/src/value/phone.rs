//! Mainland mobile numbers. Invariant: a `Phone` is exactly 11 ASCII digits starting `13`–`19`;
//! `parse` is the only constructor.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueProblem;

/// A mainland mobile number, normalised to 11 digits. Its `Debug` is that of a personal value:
/// do not log it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses a mobile number, accepting an optional `+86` prefix and spaces or hyphens between
    /// digits (`+86 138-1234-5678` → `13812345678`).
    pub fn parse(input: &str) -> Result<Phone, ValueProblem> {
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = compact.strip_prefix("+86").unwrap_or(&compact);
        let valid = digits.len() == 11
            && digits.bytes().all(|b| b.is_ascii_digit())
            && matches!(digits.as_bytes(), [b'1', b'3'..=b'9', ..]);
        if valid {
            Ok(Phone(digits.to_owned()))
        } else {
            Err(ValueProblem::PhoneFormat)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = ValueProblem;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Phone::parse(&text)
    }
}

impl From<Phone> for String {
    fn from(phone: Phone) -> String {
        phone.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decorated_numbers_are_normalised() {
        for input in [
            "13812345678",
            "+8613812345678",
            "+86 138 1234 5678",
            "138-1234-5678",
        ] {
            assert_eq!(
                Phone::parse(input).unwrap().as_str(),
                "13812345678",
                "{input}"
            );
        }
    }

    #[test]
    fn other_numbers_are_rejected() {
        for input in [
            "",
            "1381234567",
            "138123456789",
            "12812345678",
            "23812345678",
            "8613812345678",
            "+1 3812345678",
            "0571-87654321",
            "138123456７8",
            "13812345678\n",
            "+86",
        ] {
            assert_eq!(
                Phone::parse(input),
                Err(ValueProblem::PhoneFormat),
                "{input:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn parse_roundtrips_and_strips_decoration(
            digits in "1[3-9][0-9]{9}",
            prefix in prop::bool::ANY,
            separators in proptest::collection::vec("[ -]{0,2}", 11),
        ) {
            let mut decorated = if prefix { "+86 ".to_owned() } else { String::new() };
            for (c, sep) in digits.chars().zip(&separators) {
                decorated.push(c);
                decorated.push_str(sep);
            }
            let phone = Phone::parse(&decorated).unwrap();
            prop_assert_eq!(phone.as_str(), digits.as_str());
            prop_assert_eq!(Phone::parse(&phone.to_string()).unwrap(), phone);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,20}") {
            let _ = Phone::parse(&text);
        }
    }
}
