//! Calendar dates in the one text form Gridhub uses, `YYYY-MM-DD`. Invariant: `parse` accepts
//! only real calendar dates written with exactly four, two and two ASCII digits.

use time::{Date, Month};

/// Parses `YYYY-MM-DD` (years 0001..=9999).
pub(crate) fn parse(text: &str) -> Option<Date> {
    let (year, rest) = text.split_once('-')?;
    let (month, day) = rest.split_once('-')?;
    from_digits(year, month, day).filter(|date| date.year() >= 1)
}

/// Builds a date from fixed-width ASCII digit fields (`YYYY`, `MM`, `DD`).
pub(super) fn from_digits(year: &str, month: &str, day: &str) -> Option<Date> {
    let year = u16::try_from(digits(year, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(month, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(day, 2)?).ok()?;
    Date::from_calendar_date(i32::from(year), month, day).ok()
}

/// `YYYY-MM-DD`.
pub(crate) fn format(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The value of exactly `width` ASCII digits.
fn digits(text: &str, width: usize) -> Option<u32> {
    if text.len() != width || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_real_dates_in_the_exact_form_parse() {
        assert_eq!(
            parse("2024-02-29"),
            Some(time::macros::date!(2024 - 02 - 29))
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-01 ",
            "+2024-01-01",
            "2024/01/01",
            "20240101",
            "0000-01-01",
            "２０２４-01-01",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn format_and_parse_roundtrip(days in 0i32..3_000_000) {
            let date = Date::from_julian_day(1_721_426 + days).unwrap();
            prop_assume!(date.year() <= 9999);
            prop_assert_eq!(parse(&format(date)), Some(date));
        }
    }
}
