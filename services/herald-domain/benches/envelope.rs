//! The Kafka record's envelope: the API encodes one per (notification, recipient) on the fast path
//! and the relay, the worker decodes one per record it admits. `cargo bench -p herald-domain
//! --bench envelope`.
//!
//! The envelope is the one production writes: a UUIDv7 notification id, a tenant id and a typical
//! recipient id (the trace context travels in a record header, not in the envelope).

use std::hint::black_box;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_domain::{NotificationEnvelope, Priority};
use uuid::Uuid;

/// A realistic recipient id: tenants name users by their own ids, often an email-like string.
const USER_ID: &str = "customer-42817@example.com";

fn typical_envelope() -> NotificationEnvelope<'static> {
    NotificationEnvelope::new(
        Uuid::now_v7(),
        Uuid::now_v7(),
        USER_ID,
        Priority::Normal,
        Utc::now(),
    )
}

fn encode(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("envelope_encode");
    group.throughput(Throughput::Elements(1));
    let envelope = typical_envelope();
    group.bench_function("plain", |bencher| {
        bencher.iter(|| black_box(&envelope).encode())
    });
    group.finish();
}

fn decode(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("envelope_decode");
    group.throughput(Throughput::Elements(1));
    let envelope = typical_envelope();
    let bytes = envelope.encode();
    // The bench must measure a successful decode of what encode wrote, not an error path.
    assert_eq!(NotificationEnvelope::decode(&bytes).as_ref(), Ok(&envelope));
    group.bench_function("plain", |bencher| {
        bencher.iter(|| {
            NotificationEnvelope::decode(black_box(&bytes)).map(|decoded| decoded.notification_id)
        })
    });
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
