//! Standard Webhooks signing, as the webhook provider does it once per call: HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` keyed by the recipient's `whsec_` secret (decoded on
//! every call, as `sign` does), of a typical event as `Webhook::request_body` renders it.
//! `cargo bench -p herald-worker --bench signature`.

mod common;

use std::hint::black_box;

use chrono::Utc;
use common::{BodySize, WEBHOOK_SECRET};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_channels::webhook::{sign, Webhook};

fn signing(criterion: &mut Criterion) {
    let webhook = Webhook::new(reqwest::Client::new(), false);
    let mut group = criterion.benchmark_group("webhook_signature");
    for size in BodySize::ALL {
        let message = common::message(common::webhook_contact(), size);
        let now = Utc::now();
        let body = webhook
            .request_body(&message, now)
            .unwrap_or_else(|outcome| panic!("the event renders: {outcome:?}"));
        let id = message.delivery_id.to_string();
        // What is measured must be a signature a receiver accepts, checked by the reference
        // library's own verifier.
        let signed =
            sign(WEBHOOK_SECRET, &id, now.timestamp(), &body).expect("the secret is valid");
        verify_once(&id, now.timestamp(), &signed.signature, &body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(size.name(), |bencher| {
            bencher.iter(|| {
                sign(
                    black_box(WEBHOOK_SECRET),
                    black_box(&id),
                    black_box(now.timestamp()),
                    black_box(&body),
                )
            })
        });
    }
    group.finish();
}

fn verify_once(id: &str, timestamp: i64, signature: &str, body: &[u8]) {
    let verifier = standardwebhooks::Webhook::new(WEBHOOK_SECRET).expect("the secret is valid");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    verifier
        .verify(body, &headers)
        .expect("the reference verifier accepts the signature");
}

criterion_group!(benches, signing);
criterion_main!(benches);
