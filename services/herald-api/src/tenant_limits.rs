//! Per-tenant ingest rate limits (docs/DESIGN.md, "Tenant ingest limits"): how many notifications
//! per second one tenant may submit, counted across every API replica in Redis, so that one tenant
//! flooding the API is refused with 429 and `Retry-After` instead of taking the commit batches,
//! the database and the topic from everyone else.
//!
//! The limit is `ingest.tenant_notifications_per_second` (0: none), overridden per tenant by an
//! operator (`herald-api set-ingest-limit`, the `tenant_ingest_limits` table, reloaded every
//! [`RELOAD_EVERY`]). A tenant without a limit costs nothing: no Redis call.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp):
//! a tenant's "theoretical arrival time" moves forward by `cost / rate` per admitted request; a
//! request is refused while that would put it more than the burst ahead of now. The burst is a
//! second's worth of the rate; a request bigger than the burst (a full batch under a small limit)
//! is admitted only when the bucket is full, and then pays its whole cost: the average rate holds.
//! One Lua script does it atomically in Redis, with Redis's clock (replicas' clocks never matter).
//!
//! Redis unavailable: each replica limits alone with the same algorithm in process (so a tenant
//! gets up to the limit per replica), counted in `herald_tenant_rate_limit_fallbacks_total`;
//! ingest never fails because Redis did.
//!
//! Why not a crate: `governor` implements the same GCRA, but keeps its state in process; the count
//! here must be one for every replica, so it lives in Redis, and the few lines of the in-process
//! fallback are the same function ([`admission_wait`]) the script is.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use herald_store::cache::Redis;
use herald_store::Database;
use once_cell::sync::Lazy;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics;

/// How often every replica reloads the operators' per-tenant limits.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The longest the hot path waits for Redis before limiting in process.
const REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// [`admission_wait`] in Redis, with Redis's clock, recording the admission; answers the wait in
/// milliseconds (0: admitted).
static ADMIT_SCRIPT: Lazy<redis::Script> =
    Lazy::new(|| redis::Script::new(include_str!("tenant_limits.lua")));

/// How long a request of `cost_ms` must wait, given the tenant's theoretical arrival time `tat` and
/// `now` (milliseconds) and the burst in milliseconds; 0 to admit it now. The Lua script is the
/// same function: a full bucket (`tat <= now`) admits anything, else the request must fit within
/// the burst, and the wait is until it does (or until the bucket is full, if sooner).
fn admission_wait(tat: f64, now: f64, cost_ms: f64, burst_ms: f64) -> f64 {
    if tat <= now || tat + cost_ms - now <= burst_ms {
        return 0.0;
    }
    (tat - now).min(tat + cost_ms - burst_ms - now)
}

/// Refused: the tenant may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
}

pub struct TenantLimits {
    redis: Redis,
    default_per_second: u32,
    /// Operators' overrides (0: no limit), reloaded every [`RELOAD_EVERY`].
    overrides: RwLock<HashMap<Uuid, u32>>,
    /// Each tenant's theoretical arrival time while Redis is unavailable, in process.
    local: Mutex<HashMap<Uuid, Instant>>,
    started: Instant,
}

impl TenantLimits {
    pub fn new(redis: Redis, default_per_second: u32) -> TenantLimits {
        TenantLimits {
            redis,
            default_per_second,
            overrides: RwLock::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    /// The tenant's limit in notifications per second; `None` for none.
    pub fn limit_of(&self, tenant_id: Uuid) -> Option<u32> {
        let overridden = self
            .overrides
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant_id)
            .copied();
        match overridden.unwrap_or(self.default_per_second) {
            0 => None,
            rate => Some(rate),
        }
    }

    /// Admits `notifications` of the tenant's, or says how long to wait.
    pub async fn admit(&self, tenant_id: Uuid, notifications: usize) -> Result<(), RateLimited> {
        let Some(rate) = self.limit_of(tenant_id) else {
            return Ok(());
        };
        if notifications == 0 {
            return Ok(());
        }
        let burst = rate;
        let key = format!("herald:ingest-rate:{tenant_id}");
        let answer = self
            .redis
            .call_within(REDIS_TIMEOUT, |mut connection| async move {
                ADMIT_SCRIPT
                    .key(key)
                    .arg(rate)
                    .arg(burst)
                    .arg(notifications as u64)
                    .invoke_async::<u64>(&mut connection)
                    .await
            })
            .await;
        let wait_ms = match answer {
            Ok(wait_ms) => wait_ms as f64,
            Err(unavailable) => {
                metrics::TENANT_RATE_LIMIT_FALLBACKS.inc();
                tracing::debug!(error = %unavailable.0, "tenant rate limit in process: Redis unavailable");
                self.admit_locally(tenant_id, rate, burst, notifications)
            }
        };
        if wait_ms <= 0.0 {
            return Ok(());
        }
        metrics::TENANT_RATE_LIMITED.inc();
        Err(RateLimited {
            retry_after: Duration::from_millis(wait_ms.ceil() as u64),
        })
    }

    /// The same algorithm in process, for this replica alone; returns the wait in milliseconds.
    fn admit_locally(&self, tenant_id: Uuid, rate: u32, burst: u32, notifications: usize) -> f64 {
        let interval_ms = 1000.0 / f64::from(rate);
        let now = Instant::now();
        let now_ms = now.duration_since(self.started).as_secs_f64() * 1000.0;
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded: forget the tenants whose bucket is full again.
        if local.len() > 100_000 {
            local.retain(|_, tat| *tat > now);
        }
        let tat = local
            .get(&tenant_id)
            .map(|tat| tat.duration_since(self.started).as_secs_f64() * 1000.0)
            .unwrap_or(now_ms)
            .max(now_ms);
        let cost_ms = notifications as f64 * interval_ms;
        let wait = admission_wait(tat, now_ms, cost_ms, f64::from(burst) * interval_ms);
        if wait <= 0.0 {
            let next = self.started + Duration::from_secs_f64((tat + cost_ms) / 1000.0);
            local.insert(tenant_id, next);
        }
        wait
    }

    fn replace_overrides(&self, limits: Vec<(Uuid, u32)>) {
        *self
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner) = limits.into_iter().collect();
    }
}

/// Reloads the operators' per-tenant limits every [`RELOAD_EVERY`] until `stop`.
pub async fn run_reload(
    limits: std::sync::Arc<TenantLimits>,
    database: Database,
    stop: CancellationToken,
) {
    loop {
        match herald_store::tenants::ingest_limits(&database).await {
            Ok(loaded) => limits.replace_overrides(loaded),
            Err(error) => {
                tracing::warn!(%error, "reloading the tenants' ingest limits failed; keeping the last ones")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RELOAD_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_admits_a_burst_then_the_rate() {
        // 10 per second: 100 ms each, a burst of 10.
        let (interval, burst) = (100.0, 1000.0);
        let mut tat: f64 = 0.0;
        let now: f64 = 0.0;
        for _ in 0..10 {
            assert_eq!(admission_wait(tat.max(now), now, interval, burst), 0.0);
            tat = tat.max(now) + interval;
        }
        let wait = admission_wait(tat, now, interval, burst);
        assert_eq!(wait, 100.0, "the eleventh waits one interval");
        assert_eq!(admission_wait(tat, now + 100.0, interval, burst), 0.0);
    }

    #[test]
    fn a_request_bigger_than_the_burst_waits_for_a_full_bucket_and_pays_its_cost() {
        let (interval, burst) = (100.0, 1000.0);
        // 50 notifications at once (5 s of rate): admitted on a full bucket.
        assert_eq!(admission_wait(0.0, 0.0, 50.0 * interval, burst), 0.0);
        let tat = 50.0 * interval;
        // Then one more waits until it fits within the burst: 5 s − 1 s + 100 ms.
        assert_eq!(admission_wait(tat, 0.0, interval, burst), 4100.0);
        // And another big one waits for the full bucket, no longer.
        assert_eq!(admission_wait(tat, 0.0, 50.0 * interval, burst), 5000.0);
    }
}
