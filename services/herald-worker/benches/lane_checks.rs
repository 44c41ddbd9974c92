//! What a lane checks before every provider call, on its fast path: a token of the provider's
//! rate limit (from the chunk Redis granted: no round trip), and a permit of the provider's closed
//! circuit breaker, recorded as a success. `cargo bench -p herald-worker --bench lane_checks`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use governor::{Quota, RateLimiter};
use herald_worker::circuit_breaker::{CallOutcome, CircuitBreaker, CircuitBreakerSettings};
use herald_worker::rate_limit::LocalGrant;
use tokio::time::Instant;

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
    let breaker = CircuitBreaker::new("bench", CircuitBreakerSettings::default());
    criterion.bench_function("circuit_breaker_check", |bencher| {
        bencher.iter(|| {
            let permit = breaker
                .try_acquire()
                .expect("a circuit that only sees successes stays closed");
            black_box(permit.record(CallOutcome::Success))
        })
    });
}

criterion_group!(benches, rate_limiter_check, circuit_breaker_check);
criterion_main!(benches);
