//! The terminal summary: the endpoints' table, the bottlenecks, the plan, the cache advice and
//! the comparison.

use std::fmt::Write;

use crate::analysis::Analysis;
use crate::compare::Verdict;
use crate::findings::Severity;

fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.decimals$}"))
}

pub fn render(analysis: &Analysis) -> String {
    let mut out = String::new();
    let run = &analysis.run;
    let _ = writeln!(
        out,
        "herald-analyze: {} endpoint(s) from {}{}",
        run.endpoints.len(),
        run.sources.join(", "),
        run.duration_seconds
            .map_or(String::new(), |seconds| format!(" ({seconds:.0} s)"))
    );
    let label = |endpoint: &crate::results::EndpointResult| {
        if endpoint.is_reference {
            format!("{} (reference)", endpoint.name)
        } else {
            endpoint.name.clone()
        }
    };
    // As wide as the longest name (the bench's run lists are long), and a little more.
    let width = run
        .endpoints
        .iter()
        .map(|endpoint| label(endpoint).chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(10);
    let _ = writeln!(
        out,
        "{:<width$}{:>10}{:>11}{:>9}{:>9}{:>9}{:>9}{:>8}{:>13}",
        "endpoint",
        "requests",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "target p99"
    );
    for endpoint in &run.endpoints {
        let target = analysis.targets.of(endpoint);
        let _ = writeln!(
            out,
            "{:<width$}{:>10}{:>11}{:>9}{:>9}{:>9}{:>9}{:>8}{:>13}",
            label(endpoint),
            endpoint
                .requests
                .map_or("-".to_owned(), |requests| requests.to_string()),
            figure(endpoint.throughput_rps, 1),
            figure(endpoint.latency.p50, 1),
            figure(endpoint.latency.p95, 1),
            figure(endpoint.latency.p99, 1),
            figure(endpoint.latency.max, 0),
            endpoint
                .error_rate
                .map_or("-".to_owned(), |rate| format!("{:.2}%", rate * 100.0)),
            if endpoint.is_reference {
                "-".to_owned()
            } else {
                figure(target.p99_ms, 0)
            },
        );
    }
    if let Some(reference) = run.reference().and_then(|reference| reference.latency.p99) {
        let _ = writeln!(out, "(P99 of the same-run reference: {reference:.1} ms; above it, Herald's own cost and the machine's)");
    }

    let _ = writeln!(
        out,
        "\nBottlenecks: {} CRITICAL, {} WARNING",
        analysis.count(Severity::Critical),
        analysis.count(Severity::Warning)
    );
    for finding in &analysis.findings {
        let _ = writeln!(out, "  {finding}");
    }
    if !analysis.plan.is_empty() {
        let _ = writeln!(out, "\nPlan:");
        for (tier, actions) in analysis.plan_by_tier() {
            let _ = writeln!(out, "  {}", tier.title());
            for action in actions {
                let settings = if action.settings.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", action.settings.join(", "))
                };
                let _ = writeln!(
                    out,
                    "    - {}{settings}\n      expect: {}; for {}",
                    action.action,
                    action.expected_effect,
                    action.endpoints.join(", ")
                );
            }
        }
    }
    if !analysis.cache.is_empty() {
        let _ = writeln!(out, "\nCaches (from the metrics scraped during the run):");
        for advice in &analysis.cache {
            let _ = writeln!(
                out,
                "  {:<20} hit rate {:>7}  {:>10} lookups{}  {}",
                advice.kind,
                advice
                    .lookups
                    .hit_rate()
                    .map_or("-".to_owned(), |rate| format!("{:.2}%", rate * 100.0)),
                advice.lookups.total() as u64,
                advice
                    .lookups_per_second
                    .map_or(String::new(), |rate| format!(" ({rate:.1}/s)")),
                advice.reason
            );
        }
        match analysis.recommended_ttl_seconds {
            Some(ttl) => {
                let _ = writeln!(out, "  recommended: cache.ttl_seconds = {ttl}");
            }
            None => {
                let _ = writeln!(out, "  recommended: keep cache.ttl_seconds");
            }
        }
    }
    if let Some(comparison) = &analysis.comparison {
        let baseline = analysis
            .baseline
            .as_ref()
            .map_or(String::new(), |baseline| baseline.sources.join(", "));
        let _ = writeln!(
            out,
            "\nCompared with {baseline} (noise band ±{}%, latency floor {} ms):",
            comparison.band.percent, comparison.band.floor_ms
        );
        for endpoint in &comparison.endpoints {
            let changes: Vec<String> = endpoint
                .changes
                .iter()
                .map(|change| {
                    let mark = match change.verdict {
                        Verdict::Regression => " REGRESSION",
                        Verdict::Improvement => " better",
                        Verdict::WithinNoise => "",
                    };
                    if change.figure == "error rate" {
                        format!("errors {:.2}%→{:.2}%{mark}", change.before, change.after)
                    } else {
                        format!(
                            "{} {:.1}→{:.1} ({:+.1}%){mark}",
                            change.figure,
                            change.before,
                            change.after,
                            change.delta_percent()
                        )
                    }
                })
                .collect();
            let _ = writeln!(out, "  {:<26} {}", endpoint.endpoint, changes.join("; "));
        }
        for name in &comparison.only_before {
            let _ = writeln!(out, "  {name:<26} only in the baseline");
        }
        for name in &comparison.only_after {
            let _ = writeln!(out, "  {name:<26} only in this run");
        }
        let regressions = comparison.regressions().len();
        let _ = writeln!(out, "  {regressions} endpoint(s) regressed");
    }
    out
}
