//! Retry delays: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
//! Backoff And Jitter"): the delay after failed attempt `n` (from 0) is uniform in
//! [0, min(cap, base × 2^n)]. Invariant: never more than `cap`, never negative.

use std::time::Duration;

/// The retry policy of the delivery worker (`[webhooks]` settings).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// A row is dead after this many failed attempts.
    pub max_attempts: u32,
}

impl Backoff {
    /// The ceiling of the delay after failed attempt `attempt` (0 for the first).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay after failed attempt `attempt`, drawn with `unit` in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// As `delay`, with a random draw.
    pub fn jittered(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }

    /// Whether a row that has now failed `attempts` times in all is dead.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            base: Duration::from_secs(60),
            cap: Duration::from_secs(8 * 3600),
            max_attempts: 12,
        }
    }

    #[test]
    fn delays_double_until_the_cap_and_jitter_stays_below_the_ceiling() {
        let b = policy();
        assert_eq!(b.ceiling(0), Duration::from_secs(60));
        assert_eq!(b.ceiling(3), Duration::from_secs(480));
        assert_eq!(b.ceiling(20), Duration::from_secs(8 * 3600));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(8 * 3600));
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(240));
        for attempt in 0..40 {
            assert!(b.jittered(attempt) <= b.ceiling(attempt));
        }
    }

    #[test]
    fn the_default_policy_spans_about_a_day_and_ends_dead() {
        let b = policy();
        let worst: Duration = (0..b.max_attempts - 1).map(|n| b.ceiling(n)).sum();
        assert!(worst > Duration::from_secs(20 * 3600) && worst < Duration::from_secs(36 * 3600));
        assert!(!b.exhausted(11));
        assert!(b.exhausted(12));
    }
}
