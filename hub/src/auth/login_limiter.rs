//! Login throttling: failed attempts are counted per username and per client address in a
//! sliding window; once either count reaches its limit, further attempts for that username or
//! from that address are refused with 429 until the oldest failure leaves the window. A success
//! clears the username's count (not the address's: one address guessing many accounts stays
//! throttled). State is per process; several replicas each enforce the limit.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most (oldest windows are dropped first when exceeded).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

pub struct LoginLimiter {
    per_user: usize,
    per_address: usize,
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(per_user: u32, per_address: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            per_user: usize::try_from(per_user).unwrap_or(usize::MAX),
            per_address: usize::try_from(per_address).unwrap_or(usize::MAX),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, address: IpAddr) -> [(Key, bool); 2] {
        [
            (Key::User(username.to_owned()), true),
            (Key::Address(address), false),
        ]
    }

    /// `Err(retry_after)` when this attempt must be refused without checking the password.
    pub fn check(&self, username: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.failures.lock() else {
            // A poisoned lock means a panic elsewhere: refuse rather than allow unthrottled.
            return Err(self.window);
        };
        let mut wait = None::<Duration>;
        for (key, is_user) in Self::keys(username, address) {
            let limit = if is_user {
                self.per_user
            } else {
                self.per_address
            };
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    let left = self.window.saturating_sub(now.duration_since(*oldest));
                    wait = Some(wait.map_or(left, |w| w.max(left)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    pub fn failed(&self, username: &str, address: IpAddr, now: Instant) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for (key, _) in Self::keys(username, address) {
            let times = map.entry(key).or_default();
            times.push_back(now);
            // Never more than needed to decide.
            while times.len() > self.per_user.max(self.per_address) {
                times.pop_front();
            }
        }
    }

    pub fn succeeded(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&Key::User(username.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_user_is_throttled_after_its_limit_and_released_when_the_window_passes() {
        let l = LoginLimiter::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check("alice", A, t0).is_ok(), "attempt {i}");
            l.failed("alice", A, t0);
        }
        let wait = l
            .check("alice", B, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            l.check("bob", B, t0).is_ok(),
            "other users are not affected"
        );
        assert!(l.check("alice", A, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn an_address_is_throttled_across_usernames() {
        let l = LoginLimiter::new(100, 4, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..4 {
            l.failed(&format!("user{i}"), A, t0);
        }
        assert!(l.check("someone-else", A, t0).is_err());
        assert!(l.check("someone-else", B, t0).is_ok());
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let l = LoginLimiter::new(2, 3, Duration::from_secs(60));
        let t0 = Instant::now();
        l.failed("alice", A, t0);
        l.failed("alice", A, t0);
        assert!(l.check("alice", B, t0).is_err());
        l.succeeded("alice");
        assert!(l.check("alice", B, t0).is_ok());
        l.failed("carol", A, t0);
        assert!(
            l.check("dave", A, t0).is_err(),
            "address count kept: 3 failures from A"
        );
    }
}
