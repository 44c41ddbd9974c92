//! Unsubscribe links: what a worker adds to each email when links are on (signing a token), and
//! what the API does per one-click POST before any write (verifying it). `cargo bench -p
//! herald-domain --bench unsubscribe`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use herald_domain::unsubscribe::{UnsubscribeLinks, UnsubscribeSigner, UnsubscribeToken};

fn links(criterion: &mut Criterion) {
    let key = [7u8; 48];
    let previous = [9u8; 48];
    let links = UnsubscribeLinks::new(
        "https://herald.example.com",
        UnsubscribeSigner::new(&key, &[&previous]),
    );
    let token = UnsubscribeToken::for_email(
        uuid::Uuid::now_v7(),
        "customer-42817",
        Some("weekly-digest"),
    );
    let signed = links.signer.sign(&token);
    let mut group = criterion.benchmark_group("unsubscribe");
    group.bench_function("link_per_email", |bencher| {
        bencher.iter(|| links.url(black_box(&token)))
    });
    group.bench_function("verify", |bencher| {
        bencher.iter(|| links.signer.verify(black_box(&signed)).unwrap())
    });
    // A forged token is tried against every key (the current and one previous) before refusal.
    let (payload, tag) = signed.split_once('.').unwrap();
    let flipped = if tag.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{payload}.{flipped}{}", &tag[1..]);
    group.bench_function("refuse_forged", |bencher| {
        bencher.iter(|| links.signer.verify(black_box(&forged)).unwrap_err())
    });
    group.finish();
}

criterion_group!(benches, links);
criterion_main!(benches);
