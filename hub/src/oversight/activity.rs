//! Activity figures (`GET /v1/audit/activity`, the console's charts): disclosures per
//! department per China Standard Time day, denials per day, the top consumers by records
//! disclosed, over the last `days` Beijing days up to today; and the open and overdue cases per
//! department now.
//!
//! A disclosure is an allowed pull or lookup (`data.read`, `data.lookup`), as for anomalies; a
//! denial is any entry with decision `deny` (a summary of counted anonymous refusals is one
//! entry). Bounded: the window is an index range of the ledger (times never decrease with the
//! index), and at most `MAX_WINDOW` entries of it are examined, the newest; `truncated` says so,
//! and then the oldest days are incomplete. The request is audited (`audit.activity`).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::Oversight;
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::entry::parse_canonical;
use crate::ledger::{Decision, EntryDraft};
use crate::time::{cst_day, rfc3339};

/// Entries of the ledger one activity answer examines at most.
const MAX_WINDOW: i64 = 200_000;
/// Entries read per disclosure query.
const CHUNK: i64 = 20_000;
/// Consumers listed.
const TOP: usize = 10;
/// Longest window, in days.
pub const MAX_DAYS: u32 = 31;
const CST_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// One department's disclosures, a figure per day of `Activity::days`.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct DepartmentDays {
    pub department: String,
    /// Allowed pulls and lookups per day.
    pub disclosures: Vec<u64>,
    /// Records they disclosed, per day.
    pub records: Vec<u64>,
}

/// A client (or user) that received records.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Consumer {
    /// `client:<id>` or `user:<id>`.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    pub records: u64,
    pub disclosures: u64,
}

/// Open and overdue cases assigned to one department now.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct DepartmentCases {
    pub department: String,
    pub open: u64,
    /// Past the assignment's deadline without a reply.
    pub overdue: u64,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Activity {
    /// The days, `YYYY-MM-DD` in China Standard Time, oldest first; every per-day list has
    /// one figure per day, in this order.
    pub days: Vec<String>,
    /// Start of the first day and end of the last (RFC 3339).
    pub since: String,
    pub until: String,
    /// Departments with at least one disclosure in the window, by name.
    pub departments: Vec<DepartmentDays>,
    /// Denied entries per day.
    pub denials: Vec<u64>,
    /// The clients that received the most records, most first (at most 10).
    pub top_consumers: Vec<Consumer>,
    /// Departments with open cases, by name.
    pub cases: Vec<DepartmentCases>,
    /// Entries of the window examined.
    pub scanned: u64,
    /// The window held more entries than are examined: the oldest days are incomplete.
    pub truncated: bool,
}

/// Days since the epoch of `ms` in China Standard Time.
fn day_number(ms: i64) -> i64 {
    (ms + CST_MS).div_euclid(DAY_MS)
}

impl Oversight {
    /// The activity of the last `days` Beijing days up to the day of `now_ms` (the hub's clock),
    /// and the case load at `now_ms` (role permission `audit:read`; audited).
    pub async fn activity(
        &self,
        who: &Principal,
        days: u32,
        now_ms: i64,
    ) -> Result<Activity, Error> {
        self.access
            .authorize(who, "audit", "read", None, "audit.activity")
            .await?;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::validation("days", "between 1 and 31"));
        }
        let today = day_number(now_ms);
        let first_day = today - i64::from(days) + 1;
        let since = first_day * DAY_MS - CST_MS;
        let until = (today + 1) * DAY_MS - CST_MS;
        let n = usize::try_from(days).unwrap_or(0);
        let day_names: Vec<String> = (0..i64::from(days))
            .map(|d| cst_day((first_day + d) * DAY_MS - CST_MS))
            .collect();

        let size = i64::try_from(self.access.ledger().size()).unwrap_or(i64::MAX);
        let lo = self
            .store
            .ledger_first_index_at(since)
            .await?
            .unwrap_or(size);
        let hi = self
            .store
            .ledger_first_index_at(until)
            .await?
            .unwrap_or(size);
        let (lo, truncated) = if hi - lo > MAX_WINDOW {
            (hi - MAX_WINDOW, true)
        } else {
            (lo, false)
        };

        let mut departments: BTreeMap<String, DepartmentDays> = BTreeMap::new();
        let mut consumers: BTreeMap<String, Consumer> = BTreeMap::new();
        let mut from = lo;
        while from < hi {
            let to = (from + CHUNK).min(hi);
            for row in self.store.disclosures_between(from, to).await? {
                let e = parse_canonical(&row.canonical).map_err(|why| {
                    Error::Integrity(format!("ledger entry {}: {why}", row.index))
                })?;
                let Some(slot) = usize::try_from(day_number(row.time_ms) - first_day)
                    .ok()
                    .filter(|s| *s < n)
                else {
                    continue;
                };
                let records = e.records.len() as u64;
                let department = e.actor.department.clone().unwrap_or_else(|| "-".to_owned());
                let d = departments
                    .entry(department.clone())
                    .or_insert_with(|| DepartmentDays {
                        department,
                        disclosures: vec![0; n],
                        records: vec![0; n],
                    });
                if let (Some(c), Some(r)) = (d.disclosures.get_mut(slot), d.records.get_mut(slot)) {
                    *c += 1;
                    *r += records;
                }
                let actor = match (&e.actor.client, &e.actor.user) {
                    (Some(c), _) => format!("client:{c}"),
                    (None, Some(u)) => format!("user:{u}"),
                    (None, None) => "system".to_owned(),
                };
                let c = consumers.entry(actor.clone()).or_insert_with(|| Consumer {
                    actor,
                    department: e.actor.department.clone(),
                    records: 0,
                    disclosures: 0,
                });
                c.records += records;
                c.disclosures += 1;
            }
            from = to;
        }

        let mut denials = vec![0u64; n];
        for (day, count) in self.store.denials_by_day(lo, hi).await? {
            if let Some(slot) = usize::try_from(day - first_day)
                .ok()
                .and_then(|s| denials.get_mut(s))
            {
                *slot += u64::try_from(count).unwrap_or(0);
            }
        }

        let mut top: Vec<Consumer> = consumers.into_values().collect();
        top.sort_by(|a, b| {
            b.records
                .cmp(&a.records)
                .then_with(|| a.actor.cmp(&b.actor))
        });
        top.truncate(TOP);

        let cases = self
            .store
            .case_load(now_ms)
            .await?
            .into_iter()
            .map(|c| DepartmentCases {
                department: c.department,
                open: u64::try_from(c.open).unwrap_or(0),
                overdue: u64::try_from(c.overdue).unwrap_or(0),
            })
            .collect();

        let scanned = u64::try_from(hi - lo).unwrap_or(0);
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "audit.activity",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("activity of {days} days over {scanned} entries")),
            )
            .await?;
        Ok(Activity {
            days: day_names,
            since: rfc3339(since),
            until: rfc3339(until),
            departments: departments.into_values().collect(),
            denials,
            top_consumers: top,
            cases,
            scanned,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_turn_at_beijing_midnight() {
        // 2026-11-24T15:59:59.999Z is 23:59:59.999 in Beijing; a millisecond later it is the 25th.
        let before = 1_795_535_999_999;
        assert_eq!(day_number(before) + 1, day_number(before + 1));
        assert_eq!(cst_day(day_number(before) * DAY_MS - CST_MS), "2026-11-24");
        assert_eq!(
            cst_day((day_number(before) + 1) * DAY_MS - CST_MS - 1),
            "2026-11-24"
        );
    }
}
