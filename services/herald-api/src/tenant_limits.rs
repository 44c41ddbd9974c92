//! Per-tenant ingest limits (docs/DESIGN.md, "Tenant ingest limits"): how many notifications per
//! second, and per UTC day, one tenant may submit, counted across every API replica in Redis, so
//! that one tenant flooding the API is refused with 429 and `Retry-After` instead of taking the
//! commit batches, the database and the topic from everyone else, and a tenant's plan holds.
//!
//! The rate is `ingest.tenant_notifications_per_second`, the quota
//! `ingest.tenant_notifications_per_day` (0: none, for each), both overridden per tenant by an
//! operator (`herald-api set-ingest-limit`, the `tenant_ingest_limits` table, reloaded every
//! [`RELOAD_EVERY`]). A tenant with neither costs nothing: no Redis call.
//!
//! The rate's algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! timestamp): a tenant's "theoretical arrival time" moves forward by `cost / rate` per admitted
//! request; a request is refused while that would put it more than the burst ahead of now. The
//! burst is a second's worth of the rate; a request bigger than the burst (a full batch under a
//! small limit) is admitted only when the bucket is full, and then pays its whole cost: the average
//! rate holds. It runs on Redis's clock (replicas' clocks never matter).
//!
//! The quota is one counter per tenant and UTC day (the replica's date: clocks kept by NTP differ by
//! far less than a day's count notices), kept two days. A request of `cost` notifications is
//! admitted only if the day's count plus its cost stays within the quota; the refusal waits until
//! the next UTC midnight, when the count starts again.
//!
//! One Lua script decides both and records both, atomically: a request either refuses costs
//! nothing of the other (one over the quota spends no rate, one over the rate does not count toward
//! the day). The quota is tested first: when both refuse, its wait (until midnight) is the one
//! that holds.
//!
//! Redis unavailable: each replica decides alone with the same functions in process (so a tenant
//! gets up to its rate, and its quota, per replica), counted in
//! `herald_tenant_rate_limit_fallbacks_total`; what was counted in process is not added to Redis's
//! count when it answers again. Ingest never fails because Redis did.
//!
//! Why not a crate: `governor` implements the same GCRA, but keeps its state in process; the count
//! here must be one for every replica, so it lives in Redis, and the few lines of the in-process
//! fallback are the same functions ([`admission_wait`], [`fits_in_quota`]) the script is.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use herald_store::cache::{Redis, RedisUnavailable};
use herald_store::tenants::IngestLimitOverrides;
use herald_store::Database;
use once_cell::sync::Lazy;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics;

/// How often every replica reloads the operators' per-tenant limits.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The longest the hot path waits for Redis before deciding in process.
const REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// How long Redis keeps a tenant's count of one day: past the day, so that a replica whose clock
/// is a little behind still finds it.
const DAY_COUNT_KEPT: Duration = Duration::from_secs(2 * 24 * 3600);
/// Tenants the in-process fallback remembers before it forgets those whose state no longer matters.
const LOCAL_TENANTS_KEPT: usize = 100_000;

/// [`LocalCounts::decide`] in Redis, recording the admission; answers `(verdict, value)` as
/// [`Verdict::from_script`] reads it.
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

/// Whether `cost` more notifications fit in a quota of `quota_per_day` with `used_today` already
/// admitted. The Lua script tests the same.
fn fits_in_quota(used_today: u64, cost: u64, quota_per_day: u64) -> bool {
    used_today.saturating_add(cost) <= quota_per_day
}

/// From `now` until the next UTC midnight, when every tenant's daily count starts again.
fn until_next_utc_midnight(now: DateTime<Utc>) -> Duration {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(NaiveDate::MAX);
    let next_midnight = tomorrow.and_time(NaiveTime::MIN).and_utc();
    (next_midnight - now).to_std().unwrap_or(Duration::ZERO)
}

/// Why [`TenantLimits::admit`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestRefusal {
    /// Over the tenant's notifications per second: admitted after `retry_after`.
    RateLimited { retry_after: Duration },
    /// The request does not fit in what is left of the tenant's notifications of the UTC day; the
    /// count starts again at the next UTC midnight, after `retry_after`.
    QuotaExceeded {
        quota_per_day: u64,
        used_today: u64,
        retry_after: Duration,
    },
}

/// A tenant's limits now, its overrides or else the settings; `None` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    per_second: Option<u32>,
    per_day: Option<u64>,
}

impl Limits {
    fn none(&self) -> bool {
        self.per_second.is_none() && self.per_day.is_none()
    }
}

/// What the script, or the in-process fallback, decided about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Admitted,
    OverRate { wait_ms: f64 },
    OverQuota { used_today: u64 },
}

impl Verdict {
    /// The script's answer. An answer this version does not know admits: the limits never fail
    /// ingest.
    fn from_script(verdict: u8, value: u64) -> Verdict {
        match verdict {
            1 => Verdict::OverRate {
                wait_ms: value as f64,
            },
            2 => Verdict::OverQuota { used_today: value },
            _ => Verdict::Admitted,
        }
    }
}

pub struct TenantLimits {
    redis: Redis,
    default_per_second: u32,
    default_per_day: u64,
    /// Operators' overrides, reloaded every [`RELOAD_EVERY`].
    overrides: RwLock<HashMap<Uuid, IngestLimitOverrides>>,
    /// The counts while Redis is unavailable, in process.
    local: Mutex<LocalCounts>,
    started: Instant,
}

impl TenantLimits {
    pub fn new(redis: Redis, default_per_second: u32, default_per_day: u64) -> TenantLimits {
        TenantLimits {
            redis,
            default_per_second,
            default_per_day,
            overrides: RwLock::new(HashMap::new()),
            local: Mutex::new(LocalCounts::default()),
            started: Instant::now(),
        }
    }

    /// The tenant's limit in notifications per second; `None` for none.
    pub fn limit_of(&self, tenant_id: Uuid) -> Option<u32> {
        self.limits_of(tenant_id).per_second
    }

    /// The tenant's quota in notifications per UTC day; `None` for none.
    pub fn quota_of(&self, tenant_id: Uuid) -> Option<u64> {
        self.limits_of(tenant_id).per_day
    }

    fn limits_of(&self, tenant_id: Uuid) -> Limits {
        let overrides = self
            .overrides
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant_id)
            .copied()
            .unwrap_or_default();
        let per_second = overrides
            .notifications_per_second
            .unwrap_or(self.default_per_second);
        let per_day = overrides
            .notifications_per_day
            .unwrap_or(self.default_per_day);
        Limits {
            per_second: (per_second > 0).then_some(per_second),
            per_day: (per_day > 0).then_some(per_day),
        }
    }

    /// Admits `notifications` of the tenant's, or says why not and how long to wait.
    pub async fn admit(&self, tenant_id: Uuid, notifications: usize) -> Result<(), IngestRefusal> {
        let limits = self.limits_of(tenant_id);
        if limits.none() || notifications == 0 {
            return Ok(());
        }
        let now = Utc::now();
        let (cost, day) = (notifications as u64, now.date_naive());
        let verdict = match self.decide_in_redis(tenant_id, limits, cost, day).await {
            Ok(verdict) => verdict,
            Err(unavailable) => {
                metrics::TENANT_RATE_LIMIT_FALLBACKS.inc();
                tracing::debug!(error = %unavailable.0, "tenant ingest limits in process: Redis unavailable");
                self.decide_locally(tenant_id, limits, cost, day)
            }
        };
        refusal_of(verdict, limits, now)
    }

    async fn decide_in_redis(
        &self,
        tenant_id: Uuid,
        limits: Limits,
        cost: u64,
        day: NaiveDate,
    ) -> Result<Verdict, RedisUnavailable> {
        let rate = limits.per_second.unwrap_or(0);
        // A second's worth.
        let burst = rate;
        let quota = limits.per_day.unwrap_or(0);
        let rate_key = format!("herald:ingest-rate:{tenant_id}");
        let day_key = format!("herald:ingest-day:{tenant_id}:{day}");
        let (verdict, value) = self
            .redis
            .call_within(REDIS_TIMEOUT, |mut connection| async move {
                ADMIT_SCRIPT
                    .key(rate_key)
                    .key(day_key)
                    .arg(rate)
                    .arg(burst)
                    .arg(cost)
                    .arg(quota)
                    .arg(DAY_COUNT_KEPT.as_secs())
                    .invoke_async::<(u8, u64)>(&mut connection)
                    .await
            })
            .await?;
        Ok(Verdict::from_script(verdict, value))
    }

    /// The same decision in process, for this replica alone.
    fn decide_locally(
        &self,
        tenant_id: Uuid,
        limits: Limits,
        cost: u64,
        day: NaiveDate,
    ) -> Verdict {
        let now_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .decide(tenant_id, limits, cost, now_ms, day)
    }

    fn replace_overrides(&self, limits: Vec<(Uuid, IngestLimitOverrides)>) {
        *self
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner) = limits.into_iter().collect();
    }
}

/// The refusal a verdict stands for, counted; `Ok` when it admits.
fn refusal_of(verdict: Verdict, limits: Limits, now: DateTime<Utc>) -> Result<(), IngestRefusal> {
    match verdict {
        Verdict::Admitted => Ok(()),
        Verdict::OverRate { wait_ms } => {
            metrics::TENANT_RATE_LIMITED
                .with_label_values(&[metrics::TENANT_OVER_RATE])
                .inc();
            Err(IngestRefusal::RateLimited {
                retry_after: Duration::from_millis(wait_ms.ceil() as u64),
            })
        }
        Verdict::OverQuota { used_today } => {
            metrics::TENANT_RATE_LIMITED
                .with_label_values(&[metrics::TENANT_OVER_QUOTA])
                .inc();
            Err(IngestRefusal::QuotaExceeded {
                // Only a tenant with a quota is refused by it.
                quota_per_day: limits.per_day.unwrap_or_default(),
                used_today,
                retry_after: until_next_utc_midnight(now),
            })
        }
    }
}

/// The counts of the in-process fallback, for this replica alone: each tenant's theoretical arrival
/// time (milliseconds on the [`TenantLimits`]' own clock) and its count of one UTC day.
#[derive(Default)]
struct LocalCounts {
    arrival_times: HashMap<Uuid, f64>,
    day_counts: HashMap<Uuid, DayCount>,
}

#[derive(Debug, Clone, Copy)]
struct DayCount {
    day: NaiveDate,
    used: u64,
}

impl LocalCounts {
    /// The Lua script's decision: the quota first, then the rate; an admitted request is recorded
    /// in both, a refused one in neither.
    fn decide(
        &mut self,
        tenant_id: Uuid,
        limits: Limits,
        cost: u64,
        now_ms: f64,
        day: NaiveDate,
    ) -> Verdict {
        self.forget_stale(now_ms, day);
        let used_today = self.used_on(tenant_id, day);
        if let Some(quota) = limits.per_day {
            if !fits_in_quota(used_today, cost, quota) {
                return Verdict::OverQuota { used_today };
            }
        }
        let next_arrival = match limits.per_second {
            None => None,
            Some(rate) => match self.next_arrival(tenant_id, rate, cost, now_ms) {
                Ok(next_arrival) => Some(next_arrival),
                Err(wait_ms) => return Verdict::OverRate { wait_ms },
            },
        };
        if let Some(next_arrival) = next_arrival {
            self.arrival_times.insert(tenant_id, next_arrival);
        }
        if limits.per_day.is_some() {
            let used = used_today + cost;
            self.day_counts.insert(tenant_id, DayCount { day, used });
        }
        Verdict::Admitted
    }

    /// The tenant's theoretical arrival time once `cost` more are admitted at `rate`, or the wait
    /// in milliseconds until they may be.
    fn next_arrival(&self, tenant_id: Uuid, rate: u32, cost: u64, now_ms: f64) -> Result<f64, f64> {
        let interval_ms = 1000.0 / f64::from(rate);
        // A second's worth.
        let burst_ms = f64::from(rate) * interval_ms;
        let tat = self
            .arrival_times
            .get(&tenant_id)
            .copied()
            .unwrap_or(now_ms)
            .max(now_ms);
        let cost_ms = cost as f64 * interval_ms;
        let wait_ms = admission_wait(tat, now_ms, cost_ms, burst_ms);
        if wait_ms > 0.0 {
            return Err(wait_ms);
        }
        Ok(tat + cost_ms)
    }

    fn used_on(&self, tenant_id: Uuid, day: NaiveDate) -> u64 {
        match self.day_counts.get(&tenant_id) {
            Some(count) if count.day == day => count.used,
            _ => 0,
        }
    }

    /// Bounded: past many tenants, forgets those whose bucket is full again and the counts of
    /// other days.
    fn forget_stale(&mut self, now_ms: f64, day: NaiveDate) {
        if self.arrival_times.len() > LOCAL_TENANTS_KEPT {
            self.arrival_times.retain(|_, tat| *tat > now_ms);
        }
        if self.day_counts.len() > LOCAL_TENANTS_KEPT {
            self.day_counts.retain(|_, count| count.day == day);
        }
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

    proptest::proptest! {
        /// Whatever the arrivals, what a tenant's rate admits within any window of time is at
        /// most the rate over that window plus one second's burst; and a refused request asked
        /// again after the wait it was told is admitted.
        #[test]
        fn the_rate_admits_at_most_its_rate_plus_the_burst_in_any_window(
            rate in 1u32..60,
            requests in proptest::collection::vec((1u64..60, 0.0f64..300.0), 1..120),
        ) {
            let limits = Limits { per_second: Some(rate), per_day: None };
            let tenant = Uuid::from_u128(1);
            let mut counts = LocalCounts::default();
            let mut now_ms = 0.0;
            let mut admitted: Vec<(f64, u64)> = Vec::new();
            for (cost, gap_ms) in requests {
                // At most a burst at once: a full bucket admits a bigger one whole.
                let cost = cost.min(u64::from(rate));
                now_ms += gap_ms;
                match counts.decide(tenant, limits, cost, now_ms, day(TODAY)) {
                    Verdict::Admitted => admitted.push((now_ms, cost)),
                    Verdict::OverRate { wait_ms } => {
                        proptest::prop_assert!(wait_ms > 0.0);
                        now_ms += wait_ms + 0.001;
                        let again = counts.decide(tenant, limits, cost, now_ms, day(TODAY));
                        proptest::prop_assert_eq!(again, Verdict::Admitted, "after {} ms", wait_ms);
                        admitted.push((now_ms, cost));
                    }
                    Verdict::OverQuota { .. } => proptest::prop_assert!(false, "no quota"),
                }
            }
            for (first, (window_start, _)) in admitted.iter().enumerate() {
                let mut within = 0;
                for (at, cost) in &admitted[first..] {
                    within += cost;
                    let bound = f64::from(rate) * (at - window_start) / 1000.0 + f64::from(rate);
                    proptest::prop_assert!(
                        within as f64 <= bound + 1e-6,
                        "{} admitted in {} ms at {} per second", within, at - window_start, rate
                    );
                }
            }
        }
    }

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

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn quota_only(per_day: u64) -> Limits {
        Limits {
            per_second: None,
            per_day: Some(per_day),
        }
    }

    #[test]
    fn the_wait_runs_until_the_next_utc_midnight_whatever_the_time_of_day() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            until_next_utc_midnight(at("2026-12-05T23:59:59.250Z")),
            Duration::from_millis(750)
        );
        assert_eq!(
            until_next_utc_midnight(at("2026-12-06T00:00:00Z")),
            Duration::from_secs(86_400),
            "at midnight the day has just started"
        );
        assert_eq!(
            until_next_utc_midnight(at("2026-12-06T12:00:00Z")),
            Duration::from_secs(43_200)
        );
        // 23:30 at UTC+2 is 21:30 UTC: two and a half hours left, not half an hour.
        assert_eq!(
            until_next_utc_midnight(at("2026-12-06T23:30:00+02:00")),
            Duration::from_secs(9_000)
        );
    }

    /// Submits each `(notifications, now in ms, day)` of the tenant's in turn and checks the
    /// verdict of each.
    fn assert_verdicts(
        counts: &mut LocalCounts,
        tenant: Uuid,
        limits: Limits,
        steps: &[(u64, f64, &str, Verdict)],
    ) {
        for (index, (cost, now_ms, today, expected)) in steps.iter().enumerate() {
            let verdict = counts.decide(tenant, limits, *cost, *now_ms, day(today));
            assert_eq!(
                verdict, *expected,
                "step {index}: {cost} at {now_ms} ms on {today}"
            );
        }
    }

    const TODAY: &str = "2026-12-06";

    #[test]
    fn a_quota_admits_up_to_itself_and_a_refused_request_does_not_count() {
        let mut counts = LocalCounts::default();
        let limits = quota_only(7);
        assert_verdicts(
            &mut counts,
            Uuid::new_v4(),
            limits,
            &[
                (1, 0.0, TODAY, Verdict::Admitted),
                (3, 0.0, TODAY, Verdict::Admitted),
                // A batch that does not fit is refused whole, and costs nothing.
                (4, 0.0, TODAY, Verdict::OverQuota { used_today: 4 }),
                (3, 0.0, TODAY, Verdict::Admitted),
                (1, 0.0, TODAY, Verdict::OverQuota { used_today: 7 }),
            ],
        );
        let another_tenant = [(7, 0.0, TODAY, Verdict::Admitted)];
        assert_verdicts(&mut counts, Uuid::new_v4(), limits, &another_tenant);
    }

    #[test]
    fn a_new_utc_day_starts_the_count_again() {
        assert_verdicts(
            &mut LocalCounts::default(),
            Uuid::new_v4(),
            quota_only(5),
            &[
                (5, 0.0, TODAY, Verdict::Admitted),
                (1, 0.0, TODAY, Verdict::OverQuota { used_today: 5 }),
                (5, 0.0, "2026-12-07", Verdict::Admitted),
            ],
        );
    }

    #[test]
    fn a_request_one_limit_refuses_costs_nothing_of_the_other() {
        // 10 per second (a burst of 10), 12 per day.
        let limits = Limits {
            per_second: Some(10),
            per_day: Some(12),
        };
        assert_verdicts(
            &mut LocalCounts::default(),
            Uuid::new_v4(),
            limits,
            &[
                (10, 0.0, TODAY, Verdict::Admitted),
                (1, 0.0, TODAY, Verdict::OverRate { wait_ms: 100.0 }),
                // The refusal by the rate did not count toward the day: 10 used, not 11.
                (3, 1000.0, TODAY, Verdict::OverQuota { used_today: 10 }),
                // The refusal by the quota spent no rate: the bucket is full again after a second.
                (2, 1000.0, TODAY, Verdict::Admitted),
                (1, 5000.0, TODAY, Verdict::OverQuota { used_today: 12 }),
            ],
        );
    }

    /// Limits whose Redis never answers: every decision is made in process.
    fn without_redis(default_per_second: u32, default_per_day: u64) -> TenantLimits {
        let unreachable =
            herald_config::RedisSettings::new("redis://127.0.0.1:1".to_owned().into(), 50);
        let redis = Redis::new(&unreachable).unwrap();
        TenantLimits::new(redis, default_per_second, default_per_day)
    }

    #[tokio::test]
    async fn without_redis_each_replica_counts_the_quota_in_process() {
        let limits = without_redis(0, 3);
        let tenant = Uuid::new_v4();
        let fallbacks = metrics::TENANT_RATE_LIMIT_FALLBACKS.get();
        assert_eq!(limits.admit(tenant, 2).await, Ok(()));
        let refusal = limits.admit(tenant, 2).await.unwrap_err();
        let IngestRefusal::QuotaExceeded {
            quota_per_day,
            used_today,
            retry_after,
        } = refusal
        else {
            panic!("{refusal:?}");
        };
        assert_eq!((quota_per_day, used_today), (3, 2));
        assert!(
            retry_after <= Duration::from_secs(86_400),
            "{retry_after:?}"
        );
        assert_eq!(limits.admit(tenant, 1).await, Ok(()));
        assert_eq!(limits.admit(Uuid::new_v4(), 3).await, Ok(()));
        assert!(metrics::TENANT_RATE_LIMIT_FALLBACKS.get() >= fallbacks + 4);
    }

    #[tokio::test]
    async fn each_override_replaces_its_own_setting_and_zero_lifts_it() {
        let limits = without_redis(100, 1000);
        let (quota_only, unlimited, plain) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        limits.replace_overrides(vec![
            (
                quota_only,
                IngestLimitOverrides {
                    notifications_per_second: None,
                    notifications_per_day: Some(7),
                },
            ),
            (
                unlimited,
                IngestLimitOverrides {
                    notifications_per_second: Some(0),
                    notifications_per_day: Some(0),
                },
            ),
        ]);
        let limits_of = |tenant| (limits.limit_of(tenant), limits.quota_of(tenant));
        assert_eq!(limits_of(quota_only), (Some(100), Some(7)));
        assert_eq!(limits_of(unlimited), (None, None));
        assert_eq!(limits_of(plain), (Some(100), Some(1000)));
        // Nothing to count: admitted whatever the size, Redis or not.
        assert_eq!(limits.admit(unlimited, 1_000_000).await, Ok(()));
    }
}
