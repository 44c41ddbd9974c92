//! Routing rules: what a worker does per notification of a tenant with rules (docs/DESIGN.md,
//! "Routing rules"). Ten rules of three conditions each, where only the last matches, so every
//! rule is evaluated: the time per rule is the figure (the target is under a microsecond). Beside
//! it, in the same run, one rule and no rule at all as the reference. `cargo bench -p
//! herald-domain --bench routing`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_domain::routing::RuleSet;
use serde_json::{json, Value};

const RULES: usize = 10;

/// `count` rules that fail on their last condition (a threshold the data is under), then one
/// that matches: conditions of every kind, on nested fields.
fn rules(count: usize) -> RuleSet {
    if count == 0 {
        return RuleSet::default();
    }
    let mut rules: Vec<Value> = (0..count.saturating_sub(1))
        .map(|index| {
            json!({
                "name": format!("rule-{index}"),
                "channels": ["sms", "email"],
                "when": [
                    {"field": "severity", "op": "in", "value": ["critical", "high", "medium"]},
                    {"field": "host.region", "op": "ne", "value": "ap-south"},
                    {"field": "metrics.cpu", "op": "gte", "value": 90 + index},
                ]
            })
        })
        .collect();
    rules.push(json!({
        "name": "fallback",
        "channels": ["email"],
        "when": [
            {"field": "severity", "op": "eq", "value": "medium"},
            {"field": "metrics.latency_ms", "op": "between", "value": [100, 5000]},
            {"field": "host.name", "op": "exists", "value": true},
        ]
    }));
    serde_json::from_value(json!({ "rules": rules })).unwrap()
}

/// A monitoring alert's data: a dozen fields, two levels deep.
fn alert_data() -> Value {
    json!({
        "severity": "medium",
        "title": "Latency above target",
        "host": {"name": "api-7", "region": "eu-west", "zone": "b", "role": "api"},
        "metrics": {"cpu": 42.5, "memory": 71, "latency_ms": 840, "errors": 3},
        "service": "checkout",
        "runbook": "https://runbooks.example.com/latency",
    })
}

fn decide(criterion: &mut Criterion) {
    let data = alert_data();
    let mut group = criterion.benchmark_group("routing_decide");
    for (name, count) in [("no_rules", 0), ("one_rule", 1), ("ten_rules", RULES)] {
        let compiled = rules(count).compile().unwrap();
        assert_eq!(
            compiled
                .decide(&data)
                .map(|decision| decision.rule.as_str()),
            (count > 0).then_some("fallback"),
            "every rule is evaluated, the last one matches"
        );
        // Per rule evaluated: the figure the target is about.
        group.throughput(Throughput::Elements(count.max(1) as u64));
        group.bench_function(name, |bencher| {
            bencher.iter(|| black_box(&compiled).decide(black_box(&data)).is_some())
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("routing_compile");
    let set = rules(RULES);
    group.bench_function("ten_rules", |bencher| {
        bencher.iter(|| black_box(&set).compile().unwrap())
    });
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
