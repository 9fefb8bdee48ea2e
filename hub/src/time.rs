//! The hub's clock and its time formats, in one place: Unix milliseconds inside, RFC 3339 at
//! the edges, and the China Standard Time day that daily quotas renew by.
//!
//! Invariant: every time the hub stores or compares is Unix epoch milliseconds (`i64`); text
//! forms are made and read only here.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

/// China Standard Time (UTC+8, no daylight saving), the clock of quotas and working days.
const CST_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Where the hub reads the time, for the code that is handed one (so tests can move it):
/// `SystemClock` in service, `ManualClock` in tests. Code that predates it reads `now_ms()`.
pub trait Clock: Send + Sync {
    /// Unix epoch milliseconds now.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that stands still until told to move (tests).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(ms))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Unix epoch milliseconds now.
pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn at(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Unix epoch milliseconds as RFC 3339 UTC in its shortest form (`…T08:00:00Z`,
/// `…T08:00:00.5Z`), as the API answers; empty if out of range.
pub fn rfc3339(ms: i64) -> String {
    at(ms)
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Unix epoch milliseconds as RFC 3339 UTC with exactly three fraction digits
/// (`2026-12-06T08:00:00.000Z`): the ledger's canonical entry time, one text per instant.
/// Out of range (never for a real clock) gives the epoch.
pub fn rfc3339_millis(ms: i64) -> String {
    let t = at(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt = ::time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// Unix epoch milliseconds as China Standard Time to the minute, `2026-12-06 16:00`, as the
/// console shows times (its users work on Beijing time); empty if out of range.
pub fn cst_minutes(ms: i64) -> String {
    let fmt = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    at(ms + CST_OFFSET_MS)
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// A `datetime-local` form value (`2026-12-06T16:00`, China Standard Time) as Unix epoch
/// milliseconds.
pub fn parse_cst_local(text: &str) -> Option<i64> {
    let fmt = ::time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let t = ::time::PrimitiveDateTime::parse(text, &fmt).ok()?;
    let utc = t.assume_utc();
    i64::try_from(utc.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .map(|ms| ms - CST_OFFSET_MS)
}

/// An RFC 3339 time as Unix epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
}

/// The day (`YYYY-MM-DD`, China Standard Time) of `ms` (Unix ms).
pub fn cst_day(ms: i64) -> String {
    let days = (ms + CST_OFFSET_MS).div_euclid(DAY_MS);
    OffsetDateTime::from_unix_timestamp(days * 86_400)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

/// Seconds from `ms` until the next midnight in China Standard Time (at least 1).
pub fn seconds_to_cst_midnight(ms: i64) -> u64 {
    let into_day = (ms + CST_OFFSET_MS).rem_euclid(DAY_MS);
    u64::try_from((DAY_MS - into_day + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_times_are_beijing_time_both_ways() {
        // 2026-11-24T15:59Z is 23:59 in Beijing.
        let ms = parse_rfc3339("2026-11-24T15:59:00Z").unwrap();
        assert_eq!(cst_minutes(ms), "2026-11-24 23:59");
        assert_eq!(parse_cst_local("2026-11-24T23:59"), Some(ms));
        assert_eq!(parse_cst_local("yesterday"), None);
    }

    #[test]
    fn quota_days_follow_china_standard_time() {
        // 2026-11-24T15:59:59.999Z is 23:59:59.999 in Beijing; a millisecond later it is the 25th.
        let before = 1_795_535_999_999;
        assert_eq!(cst_day(before), "2026-11-24");
        assert_eq!(cst_day(before + 1), "2026-11-25");
        assert_eq!(seconds_to_cst_midnight(before), 1);
        assert_eq!(seconds_to_cst_midnight(before + 1), 86_400);
    }

    #[test]
    fn ledger_times_always_carry_three_fraction_digits_and_api_times_the_fewest() {
        let ms = 1_795_535_999_500;
        assert_eq!(rfc3339_millis(ms), "2026-11-24T15:59:59.500Z");
        assert_eq!(rfc3339(ms), "2026-11-24T15:59:59.5Z");
        assert_eq!(rfc3339(ms - 500), "2026-11-24T15:59:59Z");
        assert_eq!(parse_rfc3339(&rfc3339_millis(ms)), Some(ms));
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
