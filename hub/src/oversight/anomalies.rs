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

/// A pattern worth a look. Computed from the ledger, never stored: `id` names it stably
/// (`anomaly_id`), and its review steps are stored under that id (`anomaly_reviews`).
#[derive(Serialize, ToSchema, Clone)]
pub struct Anomaly {
    /// `<first entry>-<16 hex digits>`: the ledger index of its first entry and a digest of
    /// its kind, who it is about and that index. Stable while the entries stay in the window.
    pub id: String,
    /// `bulk_pull`, `off_hours`, `repeated_denials` or `lookup_without_case`.
    pub kind: &'static str,
    #[schema(value_type = Object)]
    pub actor: Actor,
    /// Records (bulk pulls) or entries (the other kinds).
    pub count: usize,
    pub first: String,
    pub last: String,
    /// Ledger indexes of the entries behind it.
    pub entries: Vec<u64>,
    /// Where a DPO's review of it stands (`open` until acknowledged or resolved).
    pub review: Review,
    /// `client:<id>`, `user:<id>` or `system`: whom it is about.
    #[serde(skip)]
    pub actor_key: String,
    #[serde(skip)]
    pub first_ms: i64,
    #[serde(skip)]
    pub last_ms: i64,
}

/// A review's state and its steps, oldest first.
#[derive(Serialize, ToSchema, Clone, Default)]
pub struct Review {
    /// `open`, `acknowledged` or `resolved`.
    pub state: &'static str,
    pub steps: Vec<ReviewStep>,
}

/// One step of a review.
#[derive(Serialize, ToSchema, Clone)]
pub struct ReviewStep {
    /// `acknowledged` or `resolved`.
    pub state: String,
    /// `user:<id>` of the officer who took it.
    pub by: String,
    pub at: String,
    #[serde(skip)]
    pub at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The ledger entry that recorded it.
    pub entry: u64,
}

#[derive(Serialize, ToSchema)]
pub struct AnomalyReport {
    pub since: String,
    pub until: String,
    pub scanned: usize,
    /// More entries were in the window than were examined.
    pub truncated: bool,
    pub anomalies: Vec<Anomaly>,
    #[serde(skip)]
    pub since_ms: i64,
    #[serde(skip)]
    pub until_ms: i64,
}

/// The stable id of an anomaly: the index of its first entry (so it can be found again, see
/// `Oversight::anomaly`) and a digest of kind, actor key and that index.
pub fn anomaly_id(kind: &str, actor_key: &str, first_entry: u64) -> String {
    let text = format!("{kind}\u{0}{actor_key}\u{0}{first_entry}");
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex = crate::hex::encode(digest.as_ref());
    format!("{first_entry}-{}", hex.get(..16).unwrap_or(&hex))
}

/// The first entry an anomaly id names, if it is one's.
pub fn first_entry_of(id: &str) -> Option<u64> {
    let (first, digest) = id.split_once('-')?;
    let valid = digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| first.parse().ok()).flatten()
}

/// What the anomaly scan found: anomalies without their reviews, entries examined, whether it
/// stopped early.
struct Scan {
    anomalies: Vec<Anomaly>,
    scanned: usize,
    truncated: bool,
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
fn anomaly(
    kind: &'static str,
    actor_key: String,
    actor: Actor,
    count: usize,
    hits: &[(i64, usize, u64)],
) -> Anomaly {
    let first = hits.first().map_or(0, |h| h.0);
    let last = hits.last().map_or(0, |h| h.0);
    let first_entry = hits.first().map_or(0, |h| h.2);
    Anomaly {
        id: anomaly_id(kind, &actor_key, first_entry),
        kind,
        actor,
        count,
        first: rfc3339(first),
        last: rfc3339(last),
        entries: hits.iter().map(|h| h.2).collect(),
        review: Review {
            state: "open",
            steps: Vec::new(),
        },
        actor_key,
        first_ms: first,
        last_ms: last,
    }
}

impl Oversight {
    /// Anomalies in the ledger between `since` (default 24 hours before `until`) and `until`
    /// (default now), Unix ms, each with its review (role permission `audit:read`; audited).
    /// "Now" is the ledger's own clock (the wall clock its entries are dated by).
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
        let Scan {
            mut anomalies,
            scanned,
            truncated,
        } = self.scan(since, until).await?;
        self.attach_reviews(&mut anomalies).await?;
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
            since_ms: since,
            until_ms: until,
        })
    }

    /// The anomalies of the last 24 hours by the ledger's clock (the API's default window),
    /// without reviews and not audited: the hub's own reading for the webhook sweep
    /// (`anomaly.flagged`), not a person's.
    pub async fn recent_anomalies(&self) -> Result<Vec<Anomaly>, Error> {
        let until = now_ms();
        Ok(self.scan(until - 24 * HOUR_MS, until).await?.anomalies)
    }

    /// The anomaly `id` names, found again without a window: its first entry's time starts a
    /// one-hour scan, which holds every kind's group from that entry on (a busiest hour spans
    /// less than an hour; the other kinds group from their first entry in the window). `None`:
    /// no such anomaly. Not audited (the caller's step is).
    pub(super) async fn anomaly(&self, id: &str) -> Result<Option<Anomaly>, Error> {
        let Some(first) = first_entry_of(id) else {
            return Ok(None);
        };
        let Ok(start) = i64::try_from(first) else {
            return Ok(None);
        };
        let rows = self
            .store
            .ledger_entries(&EntryFilter {
                start,
                end: start.saturating_add(1),
                actor: None,
                purpose: None,
                case_id: None,
                decision: None,
                action: None,
                since_ms: None,
                until_ms: None,
                limit: 1,
            })
            .await?;
        let Some((_, canonical)) = rows.first() else {
            return Ok(None);
        };
        let e = parse_canonical(canonical)
            .map_err(|why| Error::Integrity(format!("ledger entry {first}: {why}")))?;
        let Some(time) = parse_rfc3339(&e.time) else {
            return Ok(None);
        };
        let scan = self.scan(time, time + HOUR_MS).await?;
        let mut found = scan.anomalies.into_iter().find(|a| a.id == id);
        if let Some(a) = found.as_mut() {
            self.attach_reviews(std::slice::from_mut(a)).await?;
        }
        Ok(found)
    }

    /// Each anomaly's review, from its stored steps.
    async fn attach_reviews(&self, anomalies: &mut [Anomaly]) -> Result<(), Error> {
        let ids: Vec<String> = anomalies.iter().map(|a| a.id.clone()).collect();
        let rows = self.store.anomaly_reviews(&ids).await?;
        for a in anomalies.iter_mut() {
            a.review =
                super::anomaly_reviews::review_of(rows.iter().filter(|r| r.anomaly_id == a.id));
        }
        Ok(())
    }

    /// The anomalies of entries dated in `since..until`, without reviews.
    async fn scan(&self, since: i64, until: i64) -> Result<Scan, Error> {
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
        for ((kind, key), g) in groups {
            let threshold = match kind {
                "bulk_pull" => BULK_RECORDS,
                "repeated_denials" => DENIALS,
                _ => {
                    let count = g.hits.len();
                    anomalies.push(anomaly(kind, key, g.actor, count, &g.hits));
                    continue;
                }
            };
            let (total, from, to) = busiest_hour(&g.hits);
            if total >= threshold {
                anomalies.push(anomaly(
                    kind,
                    key,
                    g.actor,
                    total,
                    g.hits.get(from..=to).unwrap_or(&[]),
                ));
            }
        }
        Ok(Scan {
            anomalies,
            scanned,
            truncated,
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
    fn anomaly_ids_name_their_first_entry_and_nothing_else_parses() {
        let id = anomaly_id("bulk_pull", "client:civil-sys", 42);
        assert_eq!(first_entry_of(&id), Some(42));
        assert_ne!(id, anomaly_id("off_hours", "client:civil-sys", 42));
        assert_ne!(id, anomaly_id("bulk_pull", "client:health-sys", 42));
        assert_eq!(
            id,
            anomaly_id("bulk_pull", "client:civil-sys", 42),
            "stable"
        );
        for bad in [
            "",
            "42",
            "x-0123456789abcdef",
            "42-0123",
            "42-0123456789abcdeg",
        ] {
            assert_eq!(first_entry_of(bad), None, "{bad}");
        }
    }

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
