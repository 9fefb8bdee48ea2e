//! Refusals of anonymous callers (the entry would name no user or client: no token, a token
//! that does not verify, an unknown username, a throttled login) are bounded in the ledger. Per
//! source address, action and one-minute window of the injected clock, the first refusal is
//! written at once as an entry of its own (with its address); the rest are counted here and
//! written as ONE summary entry, `<action>.refusals`, when the window has closed (the flusher
//! task) or at graceful shutdown. Refusals that name a user or client are not handled here:
//! they stay one entry each.
//!
//! Invariants:
//! - Fail closed: a refusal is counted only once a refusal of the same window, source and
//!   action is durable in the ledger (`anchor`); until then `admit` answers `Record` and the
//!   caller writes its own entry (and answers `audit_unavailable` if it cannot).
//! - Exactly once: every refusal is either an entry of its own or in one summary's `count`.
//!   A summary that cannot be written is put back and tried again on the next tick.
//! - Bounded memory: at most `MAX_SOURCES` addresses are tracked; refusals from further
//!   addresses share one overflow bucket per window and action (`source: "overflow"`).
//!
//! A SIGKILL loses the counts not yet written: at most the current window's (and, for up to one
//! flush period, the previous one's); each of those windows' first refusal is already durable.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ledger::{Actor, Decision, EntryDraft, Ledger, RefusalCount};
use crate::time::{Clock, rfc3339_millis};

/// The length of a counting window.
pub const WINDOW_MS: i64 = 60_000;
/// Addresses tracked at most (over the windows not yet written).
pub const MAX_SOURCES: usize = 4096;
/// How often the flusher looks for closed windows (real time; windows are on the clock).
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// `source` of the summary of refusals from addresses beyond `MAX_SOURCES`.
pub const OVERFLOW: &str = "overflow";
/// The action of a summary entry: the refused action with this suffix.
pub const SUMMARY_SUFFIX: &str = ".refusals";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Address(IpAddr),
    Overflow,
}

impl Source {
    fn text(self) -> String {
        match self {
            Source::Address(ip) => ip.to_string(),
            Source::Overflow => OVERFLOW.to_owned(),
        }
    }
}

/// One window of one source's refusals of one action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    window_start: i64,
    action: String,
    source: Source,
}

/// What was counted under a key since its first refusal was written.
#[derive(Debug, Default)]
struct Bucket {
    count: u64,
    first_request_id: String,
    last_request_id: String,
    reasons: BTreeMap<String, u64>,
}

impl Bucket {
    fn add(&mut self, reason: &str, request_id: &str) {
        if self.count == 0 {
            request_id.clone_into(&mut self.first_request_id);
        }
        self.count += 1;
        request_id.clone_into(&mut self.last_request_id);
        *self.reasons.entry(reason.to_owned()).or_default() += 1;
    }

    /// `other` (counted later) added to this one.
    fn merge(&mut self, other: Bucket) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.first_request_id = other.first_request_id;
        }
        self.count += other.count;
        self.last_request_id = other.last_request_id;
        for (reason, n) in other.reasons {
            *self.reasons.entry(reason).or_default() += n;
        }
    }
}

/// What the caller must do with a refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted; it will be in the summary of its window. Answer the refusal.
    Counted,
    /// Write it as an entry of its own (with its address); once that is durable, `anchor` the
    /// key so that the next refusals under it are counted.
    Record(Key),
}

/// The buckets, without a clock or a ledger (the counting rules, unit-tested below).
#[derive(Debug, Default)]
struct Tally {
    /// Anchored keys only: a key is here once a refusal under it is in the ledger.
    buckets: HashMap<Key, Bucket>,
    /// Keys of `buckets` with an address source. Invariant: at most `MAX_SOURCES`.
    addresses: usize,
}

impl Tally {
    fn admit(
        &mut self,
        now: i64,
        action: &str,
        source: IpAddr,
        reason: &str,
        request_id: &str,
    ) -> Admission {
        let window_start = now - now.rem_euclid(WINDOW_MS);
        let mut key = key(window_start, action, Source::Address(source));
        if !self.buckets.contains_key(&key) && self.addresses >= MAX_SOURCES {
            key.source = Source::Overflow;
        }
        match self.buckets.get_mut(&key) {
            Some(bucket) => {
                bucket.add(reason, request_id);
                Admission::Counted
            }
            None => Admission::Record(key),
        }
    }

    fn anchor(&mut self, key: Key) {
        if self.buckets.contains_key(&key) {
            return;
        }
        if key.source != Source::Overflow {
            if self.addresses >= MAX_SOURCES {
                return;
            }
            self.addresses += 1;
        }
        self.buckets.insert(key, Bucket::default());
    }

    /// The buckets of `due` keys, removed; those with nothing counted are dropped.
    fn take(&mut self, due: impl Fn(&Key) -> bool) -> Vec<(Key, Bucket)> {
        let keys: Vec<Key> = self.buckets.keys().filter(|k| due(k)).cloned().collect();
        keys.into_iter()
            .filter_map(|k| self.remove(&k))
            .filter(|(_, bucket)| bucket.count > 0)
            .collect()
    }

    fn remove(&mut self, key: &Key) -> Option<(Key, Bucket)> {
        let removed = self.buckets.remove_entry(key)?;
        if key.source != Source::Overflow {
            self.addresses = self.addresses.saturating_sub(1);
        }
        Some(removed)
    }

    /// A bucket that could not be written goes back, merged with what was counted since (it
    /// may exceed `MAX_SOURCES` by the buckets put back; they were tracked before).
    fn put_back(&mut self, key: Key, bucket: Bucket) {
        let mut earlier = bucket;
        if let Some((_, later)) = self.remove(&key) {
            earlier.merge(later);
        }
        if key.source != Source::Overflow {
            self.addresses += 1;
        }
        self.buckets.insert(key, earlier);
    }
}

/// The counter of anonymous refusals, with the clock its windows follow and the ledger its
/// summaries go to.
pub struct Refusals {
    clock: Arc<dyn Clock>,
    ledger: Ledger,
    tally: Mutex<Tally>,
}

impl Refusals {
    pub fn new(clock: Arc<dyn Clock>, ledger: Ledger) -> Refusals {
        Refusals {
            clock,
            ledger,
            tally: Mutex::new(Tally::default()),
        }
    }

    /// Count a refusal of `action` from `source`, or say that it must be written.
    pub fn admit(&self, action: &str, source: IpAddr, reason: &str, request_id: &str) -> Admission {
        let now = self.clock.now_ms();
        match self.tally.lock() {
            Ok(mut tally) => tally.admit(now, action, source, reason, request_id),
            // A poisoned lock means a panic elsewhere: write every refusal (fail closed).
            Err(_) => Admission::Record(key(
                now - now.rem_euclid(WINDOW_MS),
                action,
                Source::Address(source),
            )),
        }
    }

    /// A refusal under `key` is durable: count the next ones. Beyond `MAX_SOURCES` an address
    /// is not tracked (its next refusal goes to the overflow bucket).
    pub fn anchor(&self, key: Key) {
        if let Ok(mut tally) = self.tally.lock() {
            tally.anchor(key);
        }
    }

    /// Write the summaries of the windows that have closed on the clock.
    pub async fn flush_closed(&self) {
        let now = self.clock.now_ms();
        self.flush(|key| key.window_start + WINDOW_MS <= now).await;
    }

    /// Write every summary, closed window or not (graceful shutdown).
    pub async fn flush_all(&self) {
        self.flush(|_| true).await;
        let left = self.pending();
        if left > 0 {
            tracing::error!(
                count = left,
                "refusal counts could not be written before stopping"
            );
        }
    }

    async fn flush(&self, due: impl Fn(&Key) -> bool) {
        let taken = match self.tally.lock() {
            Ok(mut tally) => tally.take(due),
            Err(_) => return,
        };
        for (key, bucket) in taken {
            if let Err(e) = self.ledger.append(summary(&key, &bucket)).await {
                tracing::warn!(error = %e, count = bucket.count, "cannot write a refusal summary yet");
                if let Ok(mut tally) = self.tally.lock() {
                    tally.put_back(key, bucket);
                }
            }
        }
    }

    /// Refusals counted and not yet written.
    pub fn pending(&self) -> u64 {
        self.tally
            .lock()
            .map(|t| t.buckets.values().map(|bucket| bucket.count).sum())
            .unwrap_or(0)
    }

    /// Write closed windows every `FLUSH_EVERY` until the process ends.
    pub fn spawn_flusher(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.flush_closed().await;
            }
        });
    }
}

fn key(window_start: i64, action: &str, source: Source) -> Key {
    Key {
        window_start,
        action: action.to_owned(),
        source,
    }
}

/// The summary entry of `bucket`.
fn summary(key: &Key, bucket: &Bucket) -> EntryDraft {
    EntryDraft::new(
        Actor::default(),
        &format!("{}{SUMMARY_SUFFIX}", key.action),
        Decision::Deny,
        "-".to_owned(),
    )
    .reason("refusals of callers that named no user or client, counted in one window")
    .source(Some(key.source.text()))
    .refusals(RefusalCount {
        count: bucket.count,
        first_request_id: bucket.first_request_id.clone(),
        last_request_id: bucket.last_request_id.clone(),
        reasons: bucket.reasons.clone(),
        window_end: rfc3339_millis(key.window_start + WINDOW_MS),
        window_start: rfc3339_millis(key.window_start),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const T0: i64 = 1_795_535_940_000; // a minute boundary

    fn record(admission: Admission) -> Key {
        match admission {
            Admission::Record(key) => key,
            Admission::Counted => panic!("expected Record"),
        }
    }

    #[test]
    fn nothing_is_counted_until_the_first_refusal_is_anchored() {
        let mut t = Tally::default();
        let key = record(t.admit(T0, "auth.token", A, "invalid token", "r1"));
        // The first write is in flight (or failed): the next one is written too.
        let again = record(t.admit(T0 + 1, "auth.token", A, "invalid token", "r2"));
        assert_eq!(key, again);
        t.anchor(key);
        for i in 3..=5 {
            let id = format!("r{i}");
            assert_eq!(
                t.admit(T0 + 2, "auth.token", A, "no bearer token", &id),
                Admission::Counted
            );
        }
        let taken = t.take(|_| true);
        assert_eq!(taken.len(), 1);
        let (_, bucket) = taken.first().unwrap();
        assert_eq!(bucket.count, 3);
        assert_eq!(
            (
                bucket.first_request_id.as_str(),
                bucket.last_request_id.as_str()
            ),
            ("r3", "r5")
        );
        assert_eq!(bucket.reasons.get("no bearer token"), Some(&3));
    }

    #[test]
    fn windows_sources_and_actions_are_counted_apart() {
        let mut t = Tally::default();
        for (now, action, source) in [
            (T0, "auth.token", A),
            (T0 + WINDOW_MS, "auth.token", A),
            (T0, "auth.login", A),
            (T0, "auth.token", B),
        ] {
            let first = record(t.admit(now, action, source, "x", "r"));
            t.anchor(first);
        }
        assert_eq!(t.buckets.len(), 4);
        assert_eq!(
            t.admit(T0 + WINDOW_MS - 1, "auth.token", A, "x", "r"),
            Admission::Counted
        );
        // Only the closed window is due at its end.
        let closed = t.take(|k| k.window_start + WINDOW_MS <= T0 + WINDOW_MS);
        assert_eq!(closed.len(), 1, "empty buckets are dropped, not written");
        assert_eq!(t.buckets.len(), 1);
        assert_eq!(t.addresses, 1);
    }

    #[test]
    fn addresses_beyond_the_maximum_share_the_overflow_bucket() {
        let mut t = Tally::default();
        for i in 0..MAX_SOURCES {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(u128::try_from(i).unwrap()));
            let first = record(t.admit(T0, "auth.token", ip, "x", "r"));
            t.anchor(first);
        }
        assert_eq!(t.addresses, MAX_SOURCES);
        let shared = record(t.admit(T0, "auth.token", A, "x", "first"));
        assert_eq!(shared.source, Source::Overflow);
        t.anchor(shared);
        assert_eq!(t.admit(T0, "auth.token", B, "x", "r2"), Admission::Counted);
        assert_eq!(t.admit(T0, "auth.token", A, "x", "r3"), Admission::Counted);
        assert_eq!(t.buckets.len(), MAX_SOURCES + 1);
        // An address anchored late (its write raced the others) is not tracked past the cap.
        t.anchor(key(T0, "auth.token", Source::Address(B)));
        assert_eq!(t.addresses, MAX_SOURCES);
        let overflow = t.take(|k| k.source == Source::Overflow);
        assert_eq!(overflow.first().map(|(_, b)| b.count), Some(2));
    }

    #[test]
    fn a_summary_put_back_keeps_what_was_counted_since() {
        let mut t = Tally::default();
        let first = record(t.admit(T0, "auth.token", A, "x", "r1"));
        t.anchor(first);
        t.admit(T0, "auth.token", A, "x", "r2");
        let (key, bucket) = t.take(|_| true).pop().unwrap();
        t.anchor(key.clone());
        t.admit(T0, "auth.token", A, "y", "r3");
        t.put_back(key, bucket);
        let (_, merged) = t.take(|_| true).pop().unwrap();
        assert_eq!(merged.count, 2);
        assert_eq!(
            (
                merged.first_request_id.as_str(),
                merged.last_request_id.as_str()
            ),
            ("r2", "r3")
        );
        assert_eq!(t.addresses, 0);
    }
}
