//! Anomalies (`GET /v1/audit/anomalies`): patterns a DPO should look at, computed from the
//! audit ledger (DESIGN.md §6), each with the ledger indexes of the entries behind it:
//!
//! - `bulk_pull`: one client received at least `BULK_RECORDS` records within 60 minutes;
//! - `off_hours`: disclosures recorded outside 07:00–20:00 China Standard Time;
//! - `repeated_denials`: one actor was denied at least `DENIALS` times within 60 minutes;
//! - `lookup_without_case`: lookups of a subject made without naming a case.
//!
//! The window defaults to the last 24 hours; at most `MAX_SCANNED` entries are examined (the
//! answer says when it stopped early). The request is audited.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::Oversight;
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::entry::{CanonicalEntry, parse_canonical};
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::storage::EntryFilter;
use crate::time::{now_ms, parse_rfc3339, rfc3339};

/// Records one client may receive within an hour before it is flagged.
pub const BULK_RECORDS: usize = 1000;
/// Denials of one actor within an hour before they are flagged.
pub const DENIALS: usize = 5;
/// Working hours in China Standard Time: `[07:00, 20:00)`.
const WORK_HOURS: std::ops::Range<i64> = 7..20;
const MAX_SCANNED: usize = 200_000;
const PAGE: i64 = 10_000;
const HOUR_MS: i64 = 3_600_000;
const CST_OFFSET_MS: i64 = 8 * HOUR_MS;

#[derive(Serialize, ToSchema)]
pub struct Anomaly {
    /// `bulk_pull`, `off_hours`, `repeated_denials` or `lookup_without_case`.
    kind: &'static str,
    #[schema(value_type = Object)]
    actor: Actor,
    /// Records (bulk pulls) or entries (the other kinds).
    count: usize,
    first: String,
    last: String,
    /// Ledger indexes of the entries behind it.
    entries: Vec<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct AnomalyReport {
    since: String,
    until: String,
    scanned: usize,
    /// More entries were in the window than were examined.
    truncated: bool,
    anomalies: Vec<Anomaly>,
}

fn is_disclosure(e: &CanonicalEntry) -> bool {
    e.decision == Decision::Allow && (e.action == "data.read" || e.action == "data.lookup")
}

/// Who an anomaly is about: the client (and its department), else the user.
fn key_of(actor: &Actor) -> String {
    match (&actor.client, &actor.user) {
        (Some(c), _) => format!("client:{c}"),
        (None, Some(u)) => format!("user:{u}"),
        (None, None) => "system".to_owned(),
    }
}

/// Accumulates the entries of one (kind, actor) group.
struct Group {
    actor: Actor,
    /// (time, weight, ledger index), in ledger order (times never go backwards).
    hits: Vec<(i64, usize, u64)>,
}

type Groups = BTreeMap<(&'static str, String), Group>;

fn add(groups: &mut Groups, kind: &'static str, e: &CanonicalEntry, time: i64, weight: usize) {
    groups
        .entry((kind, key_of(&e.actor)))
        .or_insert_with(|| Group {
            actor: e.actor.clone(),
            hits: Vec::new(),
        })
        .hits
        .push((time, weight, e.index));
}

/// The 60-minute window with the greatest total weight: (total, first hit, last hit).
fn busiest_hour(hits: &[(i64, usize, u64)]) -> (usize, usize, usize) {
    let mut best = (0, 0, 0);
    let mut left = 0;
    let mut sum = 0;
    for (right, (time, weight, _)) in hits.iter().enumerate() {
        sum += weight;
        while let Some((t, w, _)) = hits.get(left)
            && time - t >= HOUR_MS
        {
            sum -= w;
            left += 1;
        }
        if sum > best.0 {
            best = (sum, left, right);
        }
    }
    best
}

/// An anomaly of `hits[from..=to]`.
fn anomaly(kind: &'static str, actor: Actor, count: usize, hits: &[(i64, usize, u64)]) -> Anomaly {
    let first = hits.first().map_or(0, |h| h.0);
    let last = hits.last().map_or(0, |h| h.0);
    Anomaly {
        kind,
        actor,
        count,
        first: rfc3339(first),
        last: rfc3339(last),
        entries: hits.iter().map(|h| h.2).collect(),
    }
}

impl Oversight {
    /// Anomalies in the ledger between `since` (default 24 hours before `until`) and `until`
    /// (default now), Unix ms (role permission `audit:read`; audited).
    pub async fn anomalies(
        &self,
        who: &Principal,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<AnomalyReport, Error> {
        self.access
            .authorize(who, "audit", "read", None, "audit.anomalies")
            .await?;
        let until = until.unwrap_or_else(now_ms);
        let since = since.unwrap_or(until - 24 * HOUR_MS);
        if since >= until {
            return Err(Error::validation("since", "must be before until"));
        }
        let size = i64::try_from(self.access.ledger().size()).unwrap_or(i64::MAX);
        let mut groups: Groups = BTreeMap::new();
        let mut start = 0;
        let mut scanned = 0;
        let mut truncated = false;
        loop {
            let rows = self
                .store
                .ledger_entries(&EntryFilter {
                    start,
                    end: size,
                    actor: None,
                    purpose: None,
                    case_id: None,
                    decision: None,
                    action: None,
                    since_ms: Some(since),
                    until_ms: Some(until),
                    limit: PAGE,
                })
                .await?;
            let Some((last, _)) = rows.last() else {
                break;
            };
            start = last + 1;
            let full = rows.len() as i64 == PAGE;
            for (index, canonical) in rows {
                let e = parse_canonical(&canonical)
                    .map_err(|why| Error::Integrity(format!("ledger entry {index}: {why}")))?;
                let Some(time) = parse_rfc3339(&e.time) else {
                    continue;
                };
                scanned += 1;
                if is_disclosure(&e) {
                    add(&mut groups, "bulk_pull", &e, time, e.records.len());
                    if is_off_hours(time) {
                        add(&mut groups, "off_hours", &e, time, 1);
                    }
                    if e.action == "data.lookup" && e.case.is_none() {
                        add(&mut groups, "lookup_without_case", &e, time, 1);
                    }
                }
                if e.decision == Decision::Deny {
                    // A summary of counted refusals stands for `count` of them.
                    let denials = e
                        .refusals
                        .as_ref()
                        .map_or(1, |r| usize::try_from(r.count).unwrap_or(usize::MAX));
                    add(&mut groups, "repeated_denials", &e, time, denials);
                }
            }
            if scanned >= MAX_SCANNED {
                truncated = full;
                break;
            }
            if !full {
                break;
            }
        }
        let mut anomalies = Vec::new();
        for ((kind, _), g) in groups {
            let threshold = match kind {
                "bulk_pull" => BULK_RECORDS,
                "repeated_denials" => DENIALS,
                _ => {
                    let count = g.hits.len();
                    anomalies.push(anomaly(kind, g.actor, count, &g.hits));
                    continue;
                }
            };
            let (total, from, to) = busiest_hour(&g.hits);
            if total >= threshold {
                anomalies.push(anomaly(
                    kind,
                    g.actor,
                    total,
                    g.hits.get(from..=to).unwrap_or(&[]),
                ));
            }
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "audit.anomalies",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!(
                    "{} anomalies over {scanned} entries",
                    anomalies.len()
                )),
            )
            .await?;
        Ok(AnomalyReport {
            since: rfc3339(since),
            until: rfc3339(until),
            scanned,
            truncated,
            anomalies,
        })
    }
}

/// Is `time` (Unix ms) outside working hours in China Standard Time?
fn is_off_hours(time: i64) -> bool {
    let local_hour = (time + CST_OFFSET_MS).rem_euclid(24 * HOUR_MS) / HOUR_MS;
    !WORK_HOURS.contains(&local_hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_hours_are_counted_in_china_standard_time() {
        // 2026-11-24T00:00:00Z is 08:00 in Beijing.
        let midnight_utc = 1_795_478_400_000;
        let beijing = |h: i64, m: i64| midnight_utc + (h - 8) * HOUR_MS + m * MIN;
        assert!(is_off_hours(beijing(6, 59)));
        assert!(!is_off_hours(beijing(7, 0)));
        assert!(!is_off_hours(beijing(19, 59)));
        assert!(is_off_hours(beijing(20, 0)));
        assert!(is_off_hours(beijing(23, 30)));
        // 22:00 UTC the day before is 06:00 the next morning in Beijing; 03:00 UTC is 11:00.
        assert!(is_off_hours(midnight_utc - 2 * HOUR_MS));
        assert!(!is_off_hours(midnight_utc + 3 * HOUR_MS));
        assert!(
            is_off_hours(midnight_utc - 8 * HOUR_MS - 1),
            "23:59:59.999 the day before"
        );
    }

    const MIN: i64 = 60_000;

    #[test]
    fn the_busiest_hour_slides_over_bucket_edges() {
        // 600 records at 10:59 and 500 at 11:01: one 60-minute window holds 1 100.
        let hits = [(59 * MIN, 600, 1), (61 * MIN, 500, 2), (200 * MIN, 10, 3)];
        assert_eq!(busiest_hour(&hits), (1100, 0, 1));
        // Exactly 60 minutes apart: not the same window.
        let hits = [(0, 600, 1), (60 * MIN, 500, 2)];
        assert_eq!(busiest_hour(&hits), (600, 0, 0));
        assert_eq!(busiest_hour(&[]), (0, 0, 0));
    }
}
