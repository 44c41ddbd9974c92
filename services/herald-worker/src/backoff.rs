//! When to try a failed delivery again: exponential from `base`, capped at `max`, with full
//! jitter in the upper half so a provider outage does not end in a thundering herd.

use std::time::Duration;

use rand::Rng;

/// A provider's rate limit (429) says "later", not "broken": it may take this many times
/// `max_attempts` before a delivery gives up, so a 429 storm slows delivery down instead of
/// failing it, and a provider that answers nothing but 429 still ends in a bounded time.
pub const RATE_LIMITED_ATTEMPTS_FACTOR: i32 = 10;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, or `None` when `attempt` was the last allowed.
    /// A provider's `Retry-After` is a floor; `max` caps everything, so no arithmetic downstream
    /// can overflow.
    pub fn delay_after(&self, attempt: i32, retry_after: Option<Duration>) -> Option<Duration> {
        debug_assert!(attempt >= 1, "attempts are numbered from 1");
        if attempt >= self.max_attempts {
            return None;
        }
        Some(self.backoff(attempt, retry_after))
    }

    /// Like [`RetryPolicy::delay_after`] for a rate-limited answer (429), whose attempts may run
    /// to `max_attempts × RATE_LIMITED_ATTEMPTS_FACTOR`.
    pub fn delay_after_rate_limit(
        &self,
        attempt: i32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        debug_assert!(attempt >= 1, "attempts are numbered from 1");
        if attempt
            >= self
                .max_attempts
                .saturating_mul(RATE_LIMITED_ATTEMPTS_FACTOR)
        {
            return None;
        }
        Some(self.backoff(attempt, retry_after))
    }

    fn backoff(&self, attempt: i32, retry_after: Option<Duration>) -> Duration {
        let exponent = (attempt - 1).clamp(0, 30) as u32;
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        let jittered = ceiling.mul_f64(rand::rng().random_range(0.5..=1.0));
        jittered.max(retry_after.unwrap_or_default()).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base: Duration::from_secs(1),
        max: Duration::from_secs(5),
    };

    #[test]
    fn delays_grow_exponentially_within_jitter_and_cap() {
        for _ in 0..100 {
            let first = POLICY.delay_after(1, None).unwrap();
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let second = POLICY.delay_after(2, None).unwrap();
            assert!(second >= Duration::from_secs(1) && second <= Duration::from_secs(2));
            let third = POLICY.delay_after(3, None).unwrap();
            assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
        }
    }

    #[test]
    fn the_last_attempt_gets_no_retry() {
        assert_eq!(POLICY.delay_after(4, None), None);
    }

    #[test]
    fn a_rate_limit_allows_more_attempts_but_not_endless_ones() {
        assert_eq!(POLICY.delay_after(4, None), None);
        let rate_limited = POLICY
            .delay_after_rate_limit(4, Some(Duration::from_secs(2)))
            .unwrap();
        assert!(rate_limited >= Duration::from_secs(2) && rate_limited <= POLICY.max);
        let last = POLICY.max_attempts * RATE_LIMITED_ATTEMPTS_FACTOR;
        assert!(POLICY.delay_after_rate_limit(last - 1, None).is_some());
        assert_eq!(POLICY.delay_after_rate_limit(last, None), None);
    }

    #[test]
    fn retry_after_is_a_floor_within_the_cap() {
        let delay = POLICY.delay_after(1, Some(Duration::from_secs(3))).unwrap();
        assert_eq!(delay, Duration::from_secs(3));
        let huge = POLICY.delay_after(1, Some(Duration::MAX)).unwrap();
        assert_eq!(
            huge, POLICY.max,
            "a huge Retry-After is capped, never overflows"
        );
    }
}
