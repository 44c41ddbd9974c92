//! A provider's rate limit state in Redis, shared by every worker replica: the two atomic scripts
//! that grant tokens and cut the rate, on Redis's own clock (`TIME`), so replicas' clocks never
//! matter. See `acquire.lua` and `penalize.lua` for the arithmetic.

use std::sync::Arc;
use std::time::Duration;

use herald_config::RateLimitConfig;
use herald_store::cache::{Redis, RedisUnavailable};

/// At most one cut of the rate per this interval: the 429s answered to one burst of requests are
/// one signal, not many (else a burst of 50 would cut the rate to its floor at once).
const CUT_INTERVAL: Duration = Duration::from_secs(1);
/// How long an untouched provider state outlives its last use beyond the slowest recovery and the
/// longest pause; after that it starts afresh at the full rate.
const IDLE_STATE_TTL: Duration = Duration::from_secs(60);

/// What one grant call answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Grant {
    /// `count` tokens (at least 1), to use right away.
    Tokens {
        count: u32,
        effective_per_second: f64,
    },
    /// None now: the provider is paused or the rate is used up; ask again after `wait`.
    Wait {
        wait: Duration,
        effective_per_second: f64,
    },
}

/// After a 429: the share of the configured rate the replicas now share, and how long they pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalty {
    pub share: f64,
    pub paused_for: Duration,
}

/// One provider's shared state: its Redis key, its configured rate and the scripts.
#[derive(Clone)]
pub struct SharedRate {
    inner: Arc<SharedRateInner>,
}

struct SharedRateInner {
    redis: Redis,
    key: String,
    requests_per_second: u32,
    config: RateLimitConfig,
    /// How long each script call may take before the lane falls back to its local limiter.
    timeout: Duration,
    acquire: redis::Script,
    penalize: redis::Script,
}

/// The key of a provider's state: per consumer group, so that the replicas of one deployment
/// share it and nothing else does (another deployment, or a test, on the same Redis).
pub fn state_key(group_id: &str, provider: &str) -> String {
    format!("herald:rate:{group_id}:{provider}")
}

impl SharedRate {
    pub fn new(
        redis: Redis,
        key: String,
        requests_per_second: u32,
        config: RateLimitConfig,
        timeout: Duration,
    ) -> SharedRate {
        SharedRate {
            inner: Arc::new(SharedRateInner {
                redis,
                key,
                requests_per_second: requests_per_second.max(1),
                config,
                timeout,
                acquire: redis::Script::new(include_str!("acquire.lua")),
                penalize: redis::Script::new(include_str!("penalize.lua")),
            }),
        }
    }

    pub fn redis(&self) -> &Redis {
        &self.inner.redis
    }

    /// Up to `wanted` tokens; the burst a lane may take at once is `tolerance` worth of the
    /// effective rate (plus one token).
    pub async fn acquire(
        &self,
        wanted: u32,
        tolerance: Duration,
    ) -> Result<Grant, RedisUnavailable> {
        let inner = &self.inner;
        let mut invocation = inner.acquire.prepare_invoke();
        invocation
            .key(&inner.key)
            .arg(inner.requests_per_second)
            .arg(wanted.max(1))
            .arg(micros(tolerance))
            .arg(inner.config.recovery_per_second)
            .arg(millis(self.state_ttl()));
        let (granted, wait_micros, effective_millis): (i64, i64, i64) = inner
            .redis
            .call_within(inner.timeout, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        let effective_per_second = effective_millis as f64 / 1000.0;
        Ok(if granted > 0 {
            Grant::Tokens {
                count: u32::try_from(granted).unwrap_or(u32::MAX),
                effective_per_second,
            }
        } else {
            Grant::Wait {
                wait: Duration::from_micros(u64::try_from(wait_micros).unwrap_or(0)),
                effective_per_second,
            }
        })
    }

    /// A 429: cuts the shared rate and pauses every replica for `pause` (already capped), if any.
    pub async fn penalize(&self, pause: Option<Duration>) -> Result<Penalty, RedisUnavailable> {
        let inner = &self.inner;
        let mut invocation = inner.penalize.prepare_invoke();
        invocation
            .key(&inner.key)
            .arg(inner.config.decrease_factor)
            .arg(inner.config.min_share)
            .arg(inner.config.recovery_per_second)
            .arg(pause.map(micros).unwrap_or(0))
            .arg(micros(CUT_INTERVAL))
            .arg(millis(self.state_ttl()));
        let (share_millionths, paused_micros): (i64, i64) = inner
            .redis
            .call_within(inner.timeout, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(Penalty {
            share: share_millionths as f64 / 1_000_000.0,
            paused_for: Duration::from_micros(u64::try_from(paused_micros).unwrap_or(0)),
        })
    }

    /// Long enough that neither a pause nor a recovery in progress is forgotten.
    fn state_ttl(&self) -> Duration {
        let config = &self.inner.config;
        let slowest_recovery = Duration::from_secs_f64(1.0 / config.recovery_per_second);
        Duration::from_millis(config.max_pause_ms) + slowest_recovery + IDLE_STATE_TTL
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
