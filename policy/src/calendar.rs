//! Working days (工作日) in China Standard Time: Monday to Friday, less the public holidays the
//! State Council announces each year, plus the weekend days worked in exchange for them (调休).
//! Every deadline counted in working days (a grant's answer, a case's reply) is counted here.
//!
//! Invariant: no date is both a holiday and a workday, and every workday is a Saturday or a
//! Sunday (a listed Monday is a mistake in the file, not a make-up day). `WorkingCalendar::parse`
//! and `Default` (plain Monday–Friday) are the only constructors.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::{Date, Weekday};

use crate::value::date;

/// China Standard Time is UTC+8 all year (no daylight saving).
pub const CST_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Which days are working days. `Default` is plain Monday–Friday.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    /// Days off that would otherwise be working days (holidays on a weekend are kept too: the
    /// State Council's notices give whole ranges). Invariant: disjoint from `workdays`.
    holidays: BTreeSet<Date>,
    /// Saturdays and Sundays worked in exchange. Invariant: weekend days only.
    workdays: BTreeSet<Date>,
}

/// Why a calendar file was refused. Lines count from 1; dates are the file's own text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("{message}")]
    Toml { message: String },
    #[error("line {line}: `{value}` is not a date (YYYY-MM-DD)")]
    NotADate { line: usize, value: String },
    #[error("line {line}: `{date}` is a workday but also a holiday (line {holiday_line})")]
    HolidayAndWorkday {
        line: usize,
        date: String,
        holiday_line: usize,
    },
    #[error(
        "line {line}: `{date}` is a {weekday}, a working day anyway; `workdays` lists the \
         weekend days worked in exchange for a holiday (调休)"
    )]
    WorkdayNotWeekend {
        line: usize,
        date: String,
        weekday: Weekday,
    },
}

/// The file: `holidays = ["2026-01-01", …]`, `workdays = ["2026-01-04", …]` (strings or TOML
/// dates), both optional, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarDoc {
    #[serde(default)]
    holidays: Vec<toml::Spanned<toml::Value>>,
    #[serde(default)]
    workdays: Vec<toml::Spanned<toml::Value>>,
}

impl WorkingCalendar {
    /// Monday to Friday, no holidays.
    pub fn weekdays() -> WorkingCalendar {
        WorkingCalendar::default()
    }

    /// Parses a calendar file (see `CalendarDoc`). Refuses, naming the line: bad TOML, unknown
    /// keys, values that are not `YYYY-MM-DD` dates, a date that is both a holiday and a
    /// workday, a workday that is not a Saturday or a Sunday.
    pub fn parse(text: &str) -> Result<WorkingCalendar, CalendarError> {
        let doc: CalendarDoc = toml::from_str(text).map_err(|e| {
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            match e.span() {
                Some(span) => CalendarError::Syntax {
                    line: line_of(text, span.start),
                    message,
                },
                None => CalendarError::Toml { message },
            }
        })?;
        let holidays = dates(text, &doc.holidays)?;
        let workdays = dates(text, &doc.workdays)?;
        for (day, &line) in &workdays {
            let text = date::format(*day);
            if let Some(&holiday_line) = holidays.get(day) {
                return Err(CalendarError::HolidayAndWorkday {
                    line,
                    date: text,
                    holiday_line,
                });
            }
            if !is_weekend(*day) {
                return Err(CalendarError::WorkdayNotWeekend {
                    line,
                    date: text,
                    weekday: day.weekday(),
                });
            }
        }
        Ok(WorkingCalendar {
            holidays: holidays.into_keys().collect(),
            workdays: workdays.into_keys().collect(),
        })
    }

    /// Is `day` a working day?
    pub fn is_working_day(&self, day: Date) -> bool {
        if self.holidays.contains(&day) {
            return false;
        }
        self.workdays.contains(&day) || !is_weekend(day)
    }

    /// The years the file names a holiday or a workday in (an operator checks the coming year
    /// is there).
    pub fn years(&self) -> Vec<i32> {
        let mut years: Vec<i32> = self
            .holidays
            .iter()
            .chain(&self.workdays)
            .map(|d| d.year())
            .collect();
        years.sort_unstable();
        years.dedup();
        years
    }

    /// `working_days` working days after `at` (Unix ms), at the same time of day in China
    /// Standard Time: the `working_days`-th working day after `at`'s own CST date, whatever day
    /// `at` falls on. Zero working days is `at` itself. `None` only outside years 1–9999.
    pub fn after_working_days(&self, at: i64, working_days: u32) -> Option<i64> {
        let local = at.checked_add(CST_OFFSET_MS)?;
        let time_of_day = local.rem_euclid(DAY_MS);
        let mut day = cst_date(at)?;
        let mut left = working_days;
        while left > 0 {
            // INVARIANT (finite holidays): past the last listed holiday every Monday is a
            // working day, so this loop ends.
            day = day.next_day()?;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        let days = i64::from(day.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
        days.checked_mul(DAY_MS)?
            .checked_add(time_of_day)?
            .checked_sub(CST_OFFSET_MS)
    }
}

/// The China Standard Time date of `at` (Unix ms); `None` outside years 1–9999.
pub fn cst_date(at: i64) -> Option<Date> {
    let days = at.checked_add(CST_OFFSET_MS)?.div_euclid(DAY_MS);
    let julian = i32::try_from(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
    Date::from_julian_day(julian).ok().filter(|d| d.year() >= 1)
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    before.matches('\n').count() + 1
}

/// The dates of one list, each with the line it was first given on (for error messages). A
/// date given twice in one list is harmless.
fn dates(
    text: &str,
    values: &[toml::Spanned<toml::Value>],
) -> Result<BTreeMap<Date, usize>, CalendarError> {
    let mut out = BTreeMap::new();
    for value in values {
        let line = line_of(text, value.span().start);
        let written = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            // A bare TOML local date (`2026-01-01`) displays as the same text.
            toml::Value::Datetime(d) => d.to_string(),
            other => other.to_string(),
        };
        let Some(day) = date::parse(&written) else {
            return Err(CalendarError::NotADate {
                line,
                value: written,
            });
        };
        out.entry(day).or_insert(line);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    /// Unix ms of a China Standard Time wall-clock time.
    fn cst(day: Date, hour: i64, minute: i64) -> i64 {
        let days = i64::from(day.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
        days * DAY_MS + (hour * 60 + minute) * 60_000 - CST_OFFSET_MS
    }

    /// Unix ms of a UTC wall-clock time.
    fn utc(day: Date, hour: i64, minute: i64) -> i64 {
        cst(day, hour, minute) + CST_OFFSET_MS
    }

    /// The part of the State Council's 2026 notice these tests lean on.
    const SPRING_AND_NATIONAL_DAY_2026: &str = r#"
# Spring Festival: 15–23 February off; Saturdays 14 and 28 February worked.
holidays = [
  "2026-02-15", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19",
  "2026-02-20", "2026-02-21", "2026-02-22", "2026-02-23",
  # National Day: 1–7 October off.
  "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05",
  "2026-10-06", "2026-10-07",
]
workdays = ["2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"]
"#;

    #[test]
    fn five_working_days_from_each_day_of_the_week() {
        // The week of Monday 23 November 2026 has no holiday; 5 working days from any day of it
        // end on a weekday of the next week, at the same China Standard Time of day.
        let plain = WorkingCalendar::weekdays();
        let cases = [
            // (from, in China Standard Time unless said) → due, China Standard Time
            (
                "Mon 10:00",
                cst(date!(2026 - 11 - 23), 10, 0),
                cst(date!(2026 - 11 - 30), 10, 0),
            ),
            (
                "Mon 23:30",
                cst(date!(2026 - 11 - 23), 23, 30),
                cst(date!(2026 - 11 - 30), 23, 30),
            ),
            (
                "Tue 10:00",
                cst(date!(2026 - 11 - 24), 10, 0),
                cst(date!(2026 - 12 - 01), 10, 0),
            ),
            (
                "Tue 23:30",
                cst(date!(2026 - 11 - 24), 23, 30),
                cst(date!(2026 - 12 - 01), 23, 30),
            ),
            (
                "Wed 10:00",
                cst(date!(2026 - 11 - 25), 10, 0),
                cst(date!(2026 - 12 - 02), 10, 0),
            ),
            (
                "Wed 23:30",
                cst(date!(2026 - 11 - 25), 23, 30),
                cst(date!(2026 - 12 - 02), 23, 30),
            ),
            (
                "Thu 10:00",
                cst(date!(2026 - 11 - 26), 10, 0),
                cst(date!(2026 - 12 - 03), 10, 0),
            ),
            (
                "Thu 23:30",
                cst(date!(2026 - 11 - 26), 23, 30),
                cst(date!(2026 - 12 - 03), 23, 30),
            ),
            (
                "Fri 10:00",
                cst(date!(2026 - 11 - 27), 10, 0),
                cst(date!(2026 - 12 - 04), 10, 0),
            ),
            (
                "Fri 23:30",
                cst(date!(2026 - 11 - 27), 23, 30),
                cst(date!(2026 - 12 - 04), 23, 30),
            ),
            (
                "Sat 10:00",
                cst(date!(2026 - 11 - 28), 10, 0),
                cst(date!(2026 - 12 - 04), 10, 0),
            ),
            (
                "Sat 23:30",
                cst(date!(2026 - 11 - 28), 23, 30),
                cst(date!(2026 - 12 - 04), 23, 30),
            ),
            (
                "Sun 10:00",
                cst(date!(2026 - 11 - 29), 10, 0),
                cst(date!(2026 - 12 - 04), 10, 0),
            ),
            (
                "Sun 23:30",
                cst(date!(2026 - 11 - 29), 23, 30),
                cst(date!(2026 - 12 - 04), 23, 30),
            ),
            // Still Sunday in UTC, already Monday 00:30 in Beijing: counted from Monday.
            (
                "Sun 16:30 UTC",
                utc(date!(2026 - 11 - 29), 16, 30),
                cst(date!(2026 - 12 - 07), 0, 30),
            ),
            // Still Friday in UTC, already Saturday 00:30 in Beijing: counted from Saturday.
            (
                "Fri 16:30 UTC",
                utc(date!(2026 - 11 - 27), 16, 30),
                cst(date!(2026 - 12 - 04), 0, 30),
            ),
            // Monday 07:00 in Beijing is still Sunday in UTC: counted from Monday.
            (
                "Sun 23:00 UTC",
                utc(date!(2026 - 11 - 29), 23, 0),
                cst(date!(2026 - 12 - 07), 7, 0),
            ),
        ];
        for (from, at, due) in cases {
            assert_eq!(plain.after_working_days(at, 5), Some(due), "from {from}");
        }
    }

    #[test]
    fn zero_working_days_is_the_same_moment() {
        let at = utc(date!(2026 - 11 - 28), 3, 17) + 123;
        assert_eq!(
            WorkingCalendar::weekdays().after_working_days(at, 0),
            Some(at)
        );
    }

    #[test]
    fn holidays_are_skipped_and_make_up_weekends_count() {
        let calendar = WorkingCalendar::parse(SPRING_AND_NATIONAL_DAY_2026).unwrap();
        let plain = WorkingCalendar::weekdays();
        // Friday 13 February: Saturday 14th is worked, 15–23 are off, then Tue 24 … Fri 27.
        let friday = cst(date!(2026 - 02 - 13), 10, 0);
        assert_eq!(
            calendar.after_working_days(friday, 1),
            Some(cst(date!(2026 - 02 - 14), 10, 0)),
            "the make-up Saturday counts"
        );
        assert_eq!(
            calendar.after_working_days(friday, 5),
            Some(cst(date!(2026 - 02 - 27), 10, 0))
        );
        assert_eq!(
            plain.after_working_days(friday, 5),
            Some(cst(date!(2026 - 02 - 20), 10, 0))
        );
        // Wednesday 30 September + 1 is Thursday 8 October; + 2 the make-up Saturday 10th.
        let before = cst(date!(2026 - 09 - 30), 18, 0);
        assert_eq!(
            calendar.after_working_days(before, 1),
            Some(cst(date!(2026 - 10 - 08), 18, 0))
        );
        assert_eq!(
            calendar.after_working_days(before, 3),
            Some(cst(date!(2026 - 10 - 10), 18, 0))
        );
        assert!(
            calendar.is_working_day(date!(2026 - 09 - 20)),
            "a Sunday worked"
        );
        assert!(
            !calendar.is_working_day(date!(2026 - 02 - 16)),
            "a Monday off"
        );
        assert!(
            !calendar.is_working_day(date!(2026 - 02 - 21)),
            "a Saturday off"
        );
        assert!(calendar.is_working_day(date!(2026 - 03 - 02)));
        assert!(!calendar.is_working_day(date!(2026 - 03 - 01)));
        assert_eq!(calendar.years(), [2026]);
    }

    #[test]
    fn bad_files_are_refused_naming_the_line() {
        let err = |text: &str| WorkingCalendar::parse(text).unwrap_err().to_string();
        assert_eq!(
            err("holidays = [\n  \"2026-01-01\",\n  \"2026-02-30\",\n]\n"),
            "line 3: `2026-02-30` is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            err("workdays = [\"2026-1-4\"]"),
            "line 1: `2026-1-4` is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            err("holidays = [\"2026-01-01\", 7]"),
            "line 1: `7` is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            err("holidays = [\"2026-10-10\"]\n\nworkdays = [\"2026-10-10\"]\n"),
            "line 3: `2026-10-10` is a workday but also a holiday (line 1)"
        );
        assert_eq!(
            err("workdays = [\n\"2026-01-04\",\n\"2026-01-05\"]"),
            "line 3: `2026-01-05` is a Monday, a working day anyway; `workdays` lists the \
             weekend days worked in exchange for a holiday (调休)"
        );
        let unknown = err("# 2026\nholiday = [\"2026-01-01\"]\n");
        assert!(
            unknown.starts_with("line 2: unknown field `holiday`"),
            "{unknown}"
        );
        let syntax = err("holidays = [\"2026-01-01\"\nworkdays = []\n");
        assert!(syntax.starts_with("line 2: "), "{syntax}");
        // A bare TOML date is a date too; the empty file is plain Monday–Friday.
        let bare = WorkingCalendar::parse("holidays = [2026-01-01]").unwrap();
        assert!(!bare.is_working_day(date!(2026 - 01 - 01)));
        assert!(err("holidays = [2026-01-01T08:00:00]").contains("is not a date"));
        assert_eq!(
            WorkingCalendar::parse("").unwrap(),
            WorkingCalendar::weekdays()
        );
    }

    /// A calendar of holidays and make-up weekend days within `span` days of `first`.
    fn calendar_near(first: Date) -> impl Strategy<Value = WorkingCalendar> {
        (
            proptest::collection::btree_set(0i64..120, 0..40),
            proptest::collection::btree_set(0i64..120, 0..10),
        )
            .prop_map(move |(off, on)| {
                let day = |n: i64| first + time::Duration::days(n);
                let holidays: BTreeSet<Date> = off.iter().map(|&n| day(n)).collect();
                let workdays = on
                    .iter()
                    .map(|&n| day(n))
                    .filter(|d| is_weekend(*d) && !holidays.contains(d))
                    .collect();
                WorkingCalendar { holidays, workdays }
            })
    }

    /// Some moment in 2000–2099.
    fn moment() -> impl Strategy<Value = i64> {
        946_684_800_000i64..4_102_444_800_000
    }

    proptest! {
        #[test]
        fn the_deadline_is_later_on_a_working_day_with_exactly_n_working_days_up_to_it(
            (at, calendar) in moment().prop_flat_map(|at| {
                let first = cst_date(at).unwrap();
                (Just(at), calendar_near(first))
            }),
            n in 1u32..30,
        ) {
            let due = calendar.after_working_days(at, n).unwrap();
            prop_assert!(due > at);
            prop_assert_eq!(due.rem_euclid(DAY_MS), at.rem_euclid(DAY_MS), "same time of day");
            let (start, end) = (cst_date(at).unwrap(), cst_date(due).unwrap());
            prop_assert!(calendar.is_working_day(end));
            let mut counted = 0;
            let mut day = start;
            while day < end {
                day = day.next_day().unwrap();
                counted += u32::from(calendar.is_working_day(day));
            }
            prop_assert_eq!(counted, n);
        }

        #[test]
        fn any_set_of_dates_written_out_parses_back(calendar in calendar_near(date!(2026 - 01 - 01))) {
            let list = |m: &BTreeSet<Date>| {
                m.iter().map(|d| format!("  \"{}\",\n", date::format(*d))).collect::<String>()
            };
            let text = format!(
                "holidays = [\n{}]\nworkdays = [\n{}]\n",
                list(&calendar.holidays),
                list(&calendar.workdays)
            );
            prop_assert_eq!(WorkingCalendar::parse(&text).unwrap(), calendar);
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,200}") {
            let _ = WorkingCalendar::parse(&text);
        }
    }
}
