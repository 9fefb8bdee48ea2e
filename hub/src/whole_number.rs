//! Integers in request bodies as JSON Schema counts them: `type: integer` admits any number
//! with a zero fractional part, so `2631.0` is the integer 2631 (JSON Schema 2020-12 §6.1.1;
//! schema-driven clients and fuzzers send it). serde alone refuses it; these accept it and
//! still refuse `2631.5`, non-finite values and anything out of the target type's range.
//!
//! Use on optional fields: `#[serde(default, deserialize_with = "whole_number::optional")]`.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// `null` or absent → `None`; a whole number in `T`'s range → `Some`.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    deserializer.deserialize_option(OptionalWhole(PhantomData))
}

struct OptionalWhole<T>(PhantomData<T>);

impl<'de, T: TryFrom<i128>> Visitor<'de> for OptionalWhole<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_any(Whole(PhantomData)).map(Some)
    }
}

struct Whole<T>(PhantomData<T>);

impl<T: TryFrom<i128>> Whole<T> {
    fn fit<E: de::Error>(n: i128) -> Result<T, E> {
        T::try_from(n).map_err(|_| E::custom("invalid value: out of range"))
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for Whole<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::fit(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::fit(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // 2^63 and beyond cannot be an i64 or u32; larger floats are out of every target's range.
        const LIMIT: f64 = 9.223_372_036_854_776e18;
        if !v.is_finite() || v.fract() != 0.0 {
            return Err(E::invalid_type(de::Unexpected::Float(v), &self));
        }
        if v.abs() >= LIMIT {
            return Err(E::custom("invalid value: out of range"));
        }
        #[allow(clippy::cast_possible_truncation)] // Whole and below 2^63 in magnitude: exact.
        Self::fit(v as i64 as i128)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(default, deserialize_with = "optional")]
        days: Option<u32>,
        #[serde(default, deserialize_with = "optional")]
        version: Option<i64>,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_floats_are_integers() {
        assert_eq!(
            parse(r#"{"days": 2631.0, "version": -7.0}"#).unwrap(),
            Body {
                days: Some(2631),
                version: Some(-7)
            }
        );
        assert_eq!(
            parse(r#"{"days": 5, "version": null}"#).unwrap(),
            Body {
                days: Some(5),
                version: None
            }
        );
        assert_eq!(
            parse("{}").unwrap(),
            Body {
                days: None,
                version: None
            }
        );
    }

    #[test]
    fn fractions_out_of_range_and_other_types_are_refused() {
        for bad in [
            r#"{"days": 2631.5}"#,
            r#"{"days": -1}"#,
            r#"{"days": 4294967296}"#,
            r#"{"days": 1e300}"#,
            r#"{"version": 9223372036854775808}"#,
            r#"{"version": 9.3e18}"#,
            r#"{"days": "5"}"#,
            r#"{"days": true}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
