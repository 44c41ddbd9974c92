//! What a lane checks before every provider call, on its fast path: a token of the provider's
//! rate limit (from the chunk Redis granted: no round trip), a permit of the provider's closed
//! circuit breaker, recorded as a success, and (twice) whether the delivery's notification was
//! cancelled. `cargo bench -p herald-worker --bench lane_checks`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use governor::{Quota, RateLimiter};
use herald_domain::ProviderId;
use herald_store::cancellation::Cancellation;
use herald_worker::cancellations::{CancelledNotifications, MAX_REMEMBERED};
use herald_worker::circuit_breaker::{CallOutcome, CircuitBreaker, CircuitBreakerSettings};
use herald_worker::rate_limit::LocalGrant;
use tokio::time::Instant;
use uuid::Uuid;

fn rate_limiter_check(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("rate_limiter_check");
    // A chunk that never runs out or expires during the run: only the take is measured.
    let grant = LocalGrant::default();
    grant.refill(u32::MAX, Instant::now() + Duration::from_secs(24 * 3600));
    group.bench_function("local_grant", |bencher| {
        bencher.iter(|| assert!(grant.try_take(black_box(Instant::now()))))
    });
    // For comparison: the per-process token bucket lanes used before the limit was shared.
    let governor = RateLimiter::direct(Quota::per_second(NonZeroU32::MAX));
    group.bench_function("governor_direct", |bencher| {
        bencher.iter(|| black_box(governor.check().is_ok()))
    });
    group.finish();
}

fn circuit_breaker_check(criterion: &mut Criterion) {
    let breaker = CircuitBreaker::new(ProviderId::Twilio, CircuitBreakerSettings::default());
    criterion.bench_function("circuit_breaker_check", |bencher| {
        bencher.iter(|| {
            let permit = breaker
                .try_acquire()
                .expect("a circuit that only sees successes stays closed");
            black_box(permit.record(CallOutcome::Success))
        })
    });
}

fn cancelled_check(criterion: &mut Criterion) {
    // As many cancellations as a worker remembers, and a delivery of a notification not among them
    // (the common case: the whole set is probed).
    let cancelled = CancelledNotifications::new();
    let now = Utc::now();
    let remembered: Vec<Cancellation> = (0..MAX_REMEMBERED)
        .map(|_| Cancellation {
            notification_id: Uuid::now_v7(),
            cancelled_at: now,
        })
        .collect();
    cancelled.learn(&remembered, now);
    let not_cancelled = Uuid::now_v7();
    criterion.bench_function("cancelled_check", |bencher| {
        bencher.iter(|| assert!(!cancelled.contains(black_box(not_cancelled))))
    });
}

criterion_group!(
    benches,
    rate_limiter_check,
    circuit_breaker_check,
    cancelled_check
);
criterion_main!(benches);
