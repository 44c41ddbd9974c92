//! Routing rules: what a worker does per notification of a tenant with rules (docs/DESIGN.md,
//! "Routing rules"). Ten rules of three conditions each, where only the last matches, so every
//! rule is evaluated: the time per rule is the figure (the target is under a microsecond). Beside
//! it, in the same run, one rule and no rule at all as the reference. `cargo bench -p
//! herald-domain --bench routing`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_domain::routing::{RuleSet, MAX_CONDITIONS, MAX_FIELD_SEGMENTS, MAX_RULES};
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

const DEEP_FIELD: &str = "a.b.c.d.e.f.g.h";

fn hostile_rules() -> RuleSet {
    assert_eq!(DEEP_FIELD.split('.').count(), MAX_FIELD_SEGMENTS);
    let rules: Vec<Value> = (0..MAX_RULES)
        .map(|index| {
            // `exists`, then `in` lists of 100 values, then a threshold that fails.
            let when: Vec<Value> = std::iter::once(
                json!({"field": DEEP_FIELD, "op": "exists", "value": true}),
            )
            .chain((2..MAX_CONDITIONS).map(
                |_| json!({"field": DEEP_FIELD, "op": "in", "value": (0..100).collect::<Vec<_>>()}),
            ))
            .chain(std::iter::once(
                json!({"field": DEEP_FIELD, "op": "gt", "value": 1000}),
            ))
            .collect();
            assert_eq!(when.len(), MAX_CONDITIONS);
            json!({"name": format!("hostile-{index}"), "channels": ["sms"], "when": when})
        })
        .collect();
    serde_json::from_value(json!({ "rules": rules })).unwrap()
}

/// Data where every `in` finds its value last in the list, and the final threshold fails.
fn hostile_data() -> Value {
    json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 99}}}}}}}})
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
    // The most a tenant can make a worker do per notification: every rule at its bounds, eight
    // levels deep, none matching until its last condition.
    let hostile = hostile_rules().compile().unwrap();
    let hostile_data = hostile_data();
    assert!(hostile.decide(&hostile_data).is_none());
    group.throughput(Throughput::Elements(MAX_RULES as u64));
    group.bench_function("hostile_fifty_rules_of_ten_conditions", |bencher| {
        bencher.iter(|| {
            black_box(&hostile)
                .decide(black_box(&hostile_data))
                .is_some()
        })
    });
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
