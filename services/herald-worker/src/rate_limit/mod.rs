//! A provider's rate limit, shared by every worker replica through Redis (docs/DESIGN.md, "Rate
//! limits"): the configured `requests_per_second` is what the provider sees from all of them.
//!
//! - **Fast path.** A lane takes each token from what Redis granted it ([`LocalGrant`]): no round
//!   trip. Used up, it asks for a grant window's worth of the rate at once: [`GRANT_WINDOW`], or
//!   twice the round trip Redis has been taking when that is longer (up to [`MAX_GRANT_WINDOW`]),
//!   so that a slow Redis does not throttle the lane below its rate (refills are one at a time: at
//!   a 150 ms round trip, 25 ms grants ran a lane at a sixth of its rate). Unused tokens expire
//!   after twice the window ([`GRANT_LIFETIME`] at the shortest), and Redis's tolerance is the
//!   window plus the round trip, so the replicas together never send more than
//!   rate × (interval + 4 × window) + 1 in any interval. The effective-rate metric
//!   is the lower of the shared rate and what the round trips allow.
//! - **Adaptive.** A 429 cuts the shared rate and its `Retry-After` pauses every replica
//!   (`shared.rs`, `penalize.lua`); the lane that saw it pauses at once, before Redis knows. Only
//!   where a 429 speaks for the whole provider account ([`RateLimitScope`]): a recipient's
//!   webhook that answers 429 slows its own deliveries, never another tenant's.
//! - **Redis unavailable** (an error, or no answer within [`REDIS_TIMEOUT`]): the lane uses a local
//!   limiter at `fallback_share` of the rate for [`FALLBACK_FOR`], then asks Redis again. Counted
//!   in `herald_provider_rate_limit_fallbacks_total`.

pub mod local_grant;
pub mod shared;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use herald_channels::kind::RateLimitScope;
use herald_channels::SendOutcome;
use herald_config::RateLimitConfig;
use herald_domain::ProviderId;
use herald_store::cache::Redis;
use tokio::time::Instant;

use crate::metrics;
pub use local_grant::LocalGrant;
pub use shared::{state_key, Grant, Penalty, SharedRate};

/// A lane asks Redis for this long's worth of its rate at once, and may take that much as a burst.
pub const GRANT_WINDOW: Duration = Duration::from_millis(25);
/// Granted tokens not used within this are dropped (see the module documentation); a longer
/// window lives twice as long.
pub const GRANT_LIFETIME: Duration = Duration::from_millis(50);
/// The longest grant window, whatever the round trip.
pub const MAX_GRANT_WINDOW: Duration = Duration::from_millis(500);
/// The longest a lane waits for Redis before it falls back to its local limiter: well below the
/// cache's timeout, since every send of the lane waits on it.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a lane stays on its local limiter after Redis failed it, before asking again.
pub const FALLBACK_FOR: Duration = Duration::from_secs(1);
/// A lane told to wait asks again at least this often (Redis state may have been reset).
const LONGEST_WAIT: Duration = Duration::from_secs(1);

/// What every lane's limiter shares: the worker's Redis, its consumer group (the key namespace)
/// and the settings.
#[derive(Clone)]
pub struct SharedRateLimits {
    pub redis: Redis,
    pub group_id: String,
    pub config: RateLimitConfig,
}

pub struct ProviderRateLimiter {
    provider: ProviderId,
    scope: RateLimitScope,
    requests_per_second: u32,
    /// Tokens asked of Redis at once, at the shortest window.
    chunk: u32,
    /// Redis's round trip for a grant, smoothed: it sizes the grant window.
    round_trip: Mutex<Duration>,
    shared: Option<SharedRate>,
    grant: LocalGrant,
    /// One refill at a time: the lane's loop is the only caller, but nothing breaks if not.
    refilling: tokio::sync::Mutex<()>,
    /// Used while Redis is unavailable (or not configured), at `fallback_per_second`.
    fallback: DefaultDirectRateLimiter,
    fallback_per_second: f64,
    fallback_until: Mutex<Option<Instant>>,
    in_fallback: AtomicBool,
    /// A 429's `Retry-After` seen by this lane: it pauses before Redis has it.
    paused_until: Mutex<Option<Instant>>,
    max_pause: Duration,
}

impl ProviderRateLimiter {
    /// A limiter of this process alone, at the full rate (a lane built without Redis: unit tests).
    pub fn local(provider: ProviderId, requests_per_second: u32) -> ProviderRateLimiter {
        let scope = herald_channels::rate_limit_scope(provider.channel());
        Self::build(
            provider,
            scope,
            requests_per_second,
            None,
            1.0,
            Duration::from_secs(60),
        )
    }

    /// The provider's limiter shared through Redis, with its local fallback.
    pub fn shared(
        provider: ProviderId,
        scope: RateLimitScope,
        requests_per_second: u32,
        limits: &SharedRateLimits,
    ) -> ProviderRateLimiter {
        let shared = SharedRate::new(
            limits.redis.clone(),
            state_key(&limits.group_id, provider.as_str()),
            requests_per_second,
            limits.config,
            REDIS_TIMEOUT,
        );
        Self::build(
            provider,
            scope,
            requests_per_second,
            Some(shared),
            limits.config.fallback_share,
            Duration::from_millis(limits.config.max_pause_ms),
        )
    }

    fn build(
        provider: ProviderId,
        scope: RateLimitScope,
        requests_per_second: u32,
        shared: Option<SharedRate>,
        fallback_share: f64,
        max_pause: Duration,
    ) -> ProviderRateLimiter {
        let requests_per_second = requests_per_second.max(1);
        let chunk = tokens_for(f64::from(requests_per_second), GRANT_WINDOW);
        let fallback_per_second = (f64::from(requests_per_second) * fallback_share).max(0.001);
        let fallback_burst = tokens_for(fallback_per_second, GRANT_WINDOW);
        // A rate beyond a token per nanosecond has no period: no limit to speak of.
        let quota = Quota::with_period(Duration::from_secs_f64(1.0 / fallback_per_second))
            .unwrap_or(Quota::per_second(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::new(fallback_burst).unwrap_or(NonZeroU32::MIN));
        let limiter = ProviderRateLimiter {
            provider,
            scope,
            requests_per_second,
            chunk,
            round_trip: Mutex::new(Duration::ZERO),
            shared,
            grant: LocalGrant::default(),
            refilling: tokio::sync::Mutex::new(()),
            fallback: RateLimiter::direct(quota),
            fallback_per_second,
            fallback_until: Mutex::new(None),
            in_fallback: AtomicBool::new(false),
            paused_until: Mutex::new(None),
            max_pause,
        };
        let starting_rate = match limiter.shared {
            Some(_) => f64::from(requests_per_second),
            None => fallback_per_second,
        };
        limiter.publish_effective(starting_rate);
        limiter
    }

    /// The same provider's limiter, shared through Redis from now on.
    pub fn shared_through(&self, limits: &SharedRateLimits) -> ProviderRateLimiter {
        Self::shared(self.provider, self.scope, self.requests_per_second, limits)
    }

    /// Tokens asked of Redis per round trip at the shortest window.
    pub fn chunk(&self) -> u32 {
        self.chunk
    }

    /// How long a grant lasts: [`GRANT_WINDOW`], or twice the smoothed round trip when longer.
    pub fn grant_window(&self) -> Duration {
        (self.smoothed_round_trip() * 2).clamp(GRANT_WINDOW, MAX_GRANT_WINDOW)
    }

    fn smoothed_round_trip(&self) -> Duration {
        *self
            .round_trip
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn note_round_trip(&self, measured: Duration) {
        let mut round_trip = self
            .round_trip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An exponentially weighted mean (¼ of the newest): one slow answer moves it, not jumps it.
        *round_trip = if round_trip.is_zero() {
            measured
        } else {
            (*round_trip * 3 + measured) / 4
        };
    }

    /// Waits until the lane may make one call.
    pub async fn until_ready(&self) {
        let _refilling = self.refilling.lock().await;
        loop {
            if let Some(pause) = self.pause_left() {
                tokio::time::sleep(pause).await;
                continue;
            }
            if self.grant.try_take(Instant::now()) {
                return;
            }
            let Some(shared) = self.reachable_shared() else {
                self.fallback.until_ready().await;
                return;
            };
            let window = self.grant_window();
            let wanted = tokens_for(f64::from(self.requests_per_second), window);
            // The grant is used a round trip after Redis counted it: the GCRA's tolerance covers
            // both, or each grant would come back short by the round trip's worth.
            let tolerance = (window + self.smoothed_round_trip()).min(MAX_GRANT_WINDOW * 2);
            let asked_at = Instant::now();
            let answer = shared.acquire(wanted, tolerance).await;
            let round_trip = asked_at.elapsed();
            self.note_round_trip(round_trip);
            match answer {
                Ok(Grant::Tokens {
                    count,
                    effective_per_second,
                }) => {
                    self.note_redis_answered();
                    let lifetime = (window * 2).max(GRANT_LIFETIME);
                    self.grant.refill(count, Instant::now() + lifetime);
                    // Refills are one at a time: a grant lasts its window or the next round trip,
                    // whichever is longer. The metric tells what that allows, if less.
                    let cycle = round_trip.max(window).as_secs_f64();
                    self.publish_effective(effective_per_second.min(f64::from(count) / cycle));
                }
                Ok(Grant::Wait {
                    wait,
                    effective_per_second,
                }) => {
                    self.note_redis_answered();
                    self.publish_effective(effective_per_second);
                    tokio::time::sleep(wait.clamp(Duration::from_micros(100), LONGEST_WAIT)).await;
                }
                Err(error) => self.fall_back(&error.to_string()),
            }
        }
    }

    /// The provider answered 429: for an account-wide limit this lane pauses for its
    /// `Retry-After` (capped) at once, and the shared state is cut and paused for every replica
    /// (in the background: the caller has an outcome to record).
    pub fn note_rate_limited(&self, retry_after: Option<Duration>) {
        metrics::RATE_LIMITED
            .with_label_values(&[self.provider.as_str()])
            .inc();
        if self.scope == RateLimitScope::Destination {
            return;
        }
        let pause = retry_after
            .map(|retry_after| retry_after.min(self.max_pause))
            .filter(|pause| !pause.is_zero());
        if let Some(pause) = pause {
            let until = Instant::now() + pause;
            let mut paused_until = self
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *paused_until = Some(paused_until.map_or(until, |current| current.max(until)));
            self.grant.clear();
        }
        let Some(shared) = self.reachable_shared() else {
            return;
        };
        let provider = self.provider.as_str();
        tokio::spawn(async move {
            match shared.penalize(pause).await {
                Ok(penalty) => tracing::info!(
                    provider,
                    share = penalty.share,
                    paused_ms = penalty.paused_for.as_millis() as u64,
                    "the provider rate-limited us: the shared rate is cut"
                ),
                Err(error) => {
                    tracing::warn!(provider, %error, "could not share a provider's 429 through redis")
                }
            }
        });
    }

    fn pause_left(&self) -> Option<Duration> {
        let mut paused_until = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let left = (*paused_until)?.checked_duration_since(Instant::now());
        if left.is_none() {
            *paused_until = None;
        }
        left.filter(|left| !left.is_zero())
    }

    /// The shared state unless there is none or Redis failed us less than [`FALLBACK_FOR`] ago.
    fn reachable_shared(&self) -> Option<SharedRate> {
        let shared = self.shared.as_ref()?;
        let fallback_until = *self
            .fallback_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match fallback_until {
            Some(until) if Instant::now() < until => None,
            _ => Some(shared.clone()),
        }
    }

    fn fall_back(&self, error: &str) {
        *self
            .fallback_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + FALLBACK_FOR);
        metrics::RATE_LIMIT_FALLBACKS
            .with_label_values(&[self.provider.as_str()])
            .inc();
        self.publish_effective(self.fallback_per_second);
        if !self.in_fallback.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                provider = %self.provider,
                error,
                local_per_second = self.fallback_per_second,
                "redis is unavailable: the provider's rate limit falls back to this worker's share"
            );
        }
    }

    fn note_redis_answered(&self) {
        if self.in_fallback.swap(false, Ordering::Relaxed) {
            tracing::info!(
                provider = %self.provider,
                "redis answers again: the provider's rate limit is shared again"
            );
        }
    }

    fn publish_effective(&self, per_second: f64) {
        metrics::RATE_LIMIT_EFFECTIVE
            .with_label_values(&[self.provider.as_str()])
            .set(per_second);
    }
}

/// A 429 answer and its `Retry-After`, if `outcome` is one.
pub fn rate_limited_answer(outcome: &SendOutcome) -> Option<Option<Duration>> {
    match outcome {
        SendOutcome::Retryable {
            http_status: Some(429),
            retry_after,
            ..
        } => Some(*retry_after),
        _ => None,
    }
}

/// Whole tokens of `per_second` over `window`, at least one.
fn tokens_for(per_second: f64, window: Duration) -> u32 {
    let tokens = (per_second * window.as_secs_f64()).ceil();
    if tokens >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (tokens as u32).max(1)
    }
}

#[cfg(test)]
mod tests {
    //! The metrics are the process's and these tests run in parallel: each test that reads a
    //! counter reads it under a provider no other test here counts under (the scope follows the
    //! provider's channel: SendGrid and Twilio are account-wide, webhooks per destination).
    use super::*;

    #[test]
    fn a_chunk_is_the_grant_window_of_the_rate_and_at_least_one_token() {
        assert_eq!(tokens_for(40.0, GRANT_WINDOW), 1);
        assert_eq!(tokens_for(1000.0, GRANT_WINDOW), 25);
        assert_eq!(tokens_for(10_000.0, GRANT_WINDOW), 250);
        assert_eq!(tokens_for(0.5, GRANT_WINDOW), 1);
        assert_eq!(
            ProviderRateLimiter::local(ProviderId::Smtp, 2000).chunk(),
            50
        );
        // The largest configurable rate builds (its fallback has no period to speak of).
        assert_eq!(
            ProviderRateLimiter::local(ProviderId::Smtp, u32::MAX).chunk(),
            107_374_183
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_pauses_the_lane_capped_and_only_once_over() {
        let limiter = ProviderRateLimiter::local(ProviderId::Twilio, 1000);
        limiter.until_ready().await;

        let started = Instant::now();
        limiter.note_rate_limited(Some(Duration::from_secs(2)));
        // A shorter Retry-After later does not shorten the pause.
        limiter.note_rate_limited(Some(Duration::from_millis(10)));
        limiter.until_ready().await;
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(started.elapsed() < Duration::from_millis(2100));

        // An absurd Retry-After is capped (at 60 s for a local limiter).
        let started = Instant::now();
        limiter.note_rate_limited(Some(Duration::from_secs(10 * 365 * 24 * 3600)));
        limiter.until_ready().await;
        assert!(started.elapsed() >= Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(61));

        // A 429 without Retry-After does not pause.
        let started = Instant::now();
        limiter.note_rate_limited(None);
        limiter.until_ready().await;
        assert!(started.elapsed() < Duration::from_millis(10));
        assert_eq!(
            metrics::RATE_LIMITED
                .with_label_values(&[ProviderId::Twilio])
                .get(),
            4
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_never_holds_the_lane_and_each_fallback_is_counted() {
        let limits = SharedRateLimits {
            // Nothing listens on port 1: every call fails at once.
            redis: Redis::new(&herald_config::RedisSettings::new(
                "redis://127.0.0.1:1/0".to_owned().into(),
                1000,
            ))
            .unwrap(),
            group_id: "unit-test".to_owned(),
            config: RateLimitConfig {
                fallback_share: 0.5,
                decrease_factor: 0.5,
                min_share: 0.05,
                recovery_per_second: 0.1,
                max_pause_ms: 1000,
            },
        };
        let limiter = ProviderRateLimiter::local(ProviderId::SendGrid, 400).shared_through(&limits);
        let started = std::time::Instant::now();
        // Ten tokens at the fallback share (200/s, a burst of 5): about 25 ms.
        for _ in 0..10 {
            limiter.until_ready().await;
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            metrics::RATE_LIMIT_FALLBACKS
                .with_label_values(&[ProviderId::SendGrid])
                .get(),
            1,
            "one fallback: Redis is not asked again for a second"
        );
        assert_eq!(
            metrics::RATE_LIMIT_EFFECTIVE
                .with_label_values(&[ProviderId::SendGrid])
                .get(),
            200.0
        );
        // A 429 while falling back pauses this lane all the same.
        limiter.note_rate_limited(Some(Duration::from_millis(300)));
        let paused = std::time::Instant::now();
        limiter.until_ready().await;
        assert!(paused.elapsed() >= Duration::from_millis(290));
    }

    #[tokio::test(start_paused = true)]
    async fn a_destination_429_does_not_pause_the_lane() {
        let limiter = ProviderRateLimiter::local(ProviderId::Webhook, 1000);
        let started = Instant::now();
        limiter.note_rate_limited(Some(Duration::from_secs(30)));
        limiter.until_ready().await;
        assert!(started.elapsed() < Duration::from_millis(10));
        assert_eq!(
            metrics::RATE_LIMITED
                .with_label_values(&[ProviderId::Webhook])
                .get(),
            1,
            "counted all the same"
        );
    }
}
