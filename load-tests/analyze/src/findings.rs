//! Bottlenecks: each endpoint's figures against its target, in three kinds.
//! - **Latency** over a percentile's target: CRITICAL beyond 1.5 × the target, WARNING up to it.
//! - **Error rate** over its target (1% by the SLA): CRITICAL. Throughput under its minimum:
//!   CRITICAL under half of it, WARNING otherwise.
//! - **High variance**: the slowest request at least 3 × P99 and 250 ms beyond it: WARNING. A few
//!   requests far slower than the rest point at pauses (a saturated core, a lock, a stalled
//!   dependency) rather than steady load.

use std::fmt;

use crate::results::{EndpointResult, RunResults};
use crate::targets::Targets;

/// A latency this much over its target is CRITICAL.
const CRITICAL_LATENCY_FACTOR: f64 = 1.5;
/// High variance: max ≥ this × P99 …
const VARIANCE_FACTOR: f64 = 3.0;
/// … and at least this far beyond it (fast endpoints' maxima are noise in milliseconds).
const VARIANCE_MIN_GAP_MS: f64 = 250.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P95,
    P99,
}

impl fmt::Display for Percentile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Percentile::P50 => "P50",
            Percentile::P95 => "P95",
            Percentile::P99 => "P99",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FindingKind {
    Latency(Percentile),
    ErrorRate,
    Throughput,
    Variance,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub endpoint: String,
    pub kind: FindingKind,
    /// What was measured, in the unit of `target` (ms, percent, req/s).
    pub figure: f64,
    /// What it was held to; for variance, the P99 it is compared with.
    pub target: f64,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Finding {
            severity,
            endpoint,
            figure,
            target,
            ..
        } = self;
        match self.kind {
            FindingKind::Latency(percentile) => write!(
                formatter,
                "{severity}: {endpoint} {percentile} latency {figure:.1} ms exceeds its {target:.0} ms target"
            ),
            FindingKind::ErrorRate => write!(
                formatter,
                "{severity}: {endpoint} error rate {figure:.2}% exceeds its {target}% target"
            ),
            FindingKind::Throughput => write!(
                formatter,
                "{severity}: {endpoint} throughput {figure:.1} req/s is under its {target:.0} req/s minimum"
            ),
            FindingKind::Variance => write!(
                formatter,
                "{severity}: {endpoint} has high variance (max {figure:.0} ms vs P99 {target:.0} ms)"
            ),
        }
    }
}

/// Every finding of `run`, the most severe first, then by endpoint.
pub fn find(run: &RunResults, targets: &Targets) -> Vec<Finding> {
    let mut findings: Vec<Finding> = run
        .endpoints
        .iter()
        .filter(|endpoint| !endpoint.is_reference)
        .flat_map(|endpoint| endpoint_findings(endpoint, targets))
        .collect();
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    findings
}

fn endpoint_findings(endpoint: &EndpointResult, targets: &Targets) -> Vec<Finding> {
    let target = targets.of(endpoint);
    let mut findings = Vec::new();
    let finding = |severity, kind, figure, target| Finding {
        severity,
        endpoint: endpoint.name.clone(),
        kind,
        figure,
        target,
    };
    let latency = &endpoint.latency;
    for (percentile, figure, limit) in [
        (Percentile::P50, latency.p50, target.p50_ms),
        (Percentile::P95, latency.p95, target.p95_ms),
        (Percentile::P99, latency.p99, target.p99_ms),
    ] {
        let (Some(figure), Some(limit)) = (figure, limit) else {
            continue;
        };
        if figure > limit {
            let severity = if figure > limit * CRITICAL_LATENCY_FACTOR {
                Severity::Critical
            } else {
                Severity::Warning
            };
            findings.push(finding(
                severity,
                FindingKind::Latency(percentile),
                figure,
                limit,
            ));
        }
    }
    if let (Some(rate), Some(limit)) = (endpoint.error_rate, target.error_rate_percent) {
        let percent = rate * 100.0;
        if percent > limit {
            findings.push(finding(
                Severity::Critical,
                FindingKind::ErrorRate,
                percent,
                limit,
            ));
        }
    }
    if let (Some(throughput), Some(minimum)) = (endpoint.throughput_rps, target.min_throughput_rps)
    {
        if throughput < minimum {
            let severity = if throughput < minimum / 2.0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            findings.push(finding(
                severity,
                FindingKind::Throughput,
                throughput,
                minimum,
            ));
        }
    }
    if let (Some(max), Some(p99)) = (latency.max, latency.p99) {
        if max >= p99 * VARIANCE_FACTOR && max - p99 >= VARIANCE_MIN_GAP_MS {
            findings.push(finding(Severity::Warning, FindingKind::Variance, max, p99));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Latency;

    fn endpoint(name: &str, p95: f64, p99: f64, max: f64, error_rate: f64) -> EndpointResult {
        let mut endpoint = EndpointResult::new(name);
        endpoint.latency = Latency {
            p50: Some(p95 / 2.0),
            p95: Some(p95),
            p99: Some(p99),
            max: Some(max),
            mean: None,
        };
        endpoint.error_rate = Some(error_rate);
        endpoint
    }

    #[test]
    fn each_rule_fires_at_its_threshold_and_not_below_it() {
        let run = RunResults {
            endpoints: vec![
                endpoint("fine", 100.0, 500.0, 1499.0, 0.01),
                endpoint("slow", 120.0, 800.0, 900.0, 0.0),
                endpoint("failing", 10.0, 20.0, 30.0, 0.025),
                endpoint("spiky", 40.0, 1200.0, 5000.0, 0.0),
            ],
            ..RunResults::default()
        };
        let findings = find(&run, &Targets::default());
        let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "CRITICAL: failing error rate 2.50% exceeds its 1% target",
                "CRITICAL: slow P99 latency 800.0 ms exceeds its 500 ms target",
                "CRITICAL: spiky P99 latency 1200.0 ms exceeds its 500 ms target",
                "WARNING: slow P95 latency 120.0 ms exceeds its 100 ms target",
                "WARNING: spiky has high variance (max 5000 ms vs P99 1200 ms)",
            ]
        );
    }

    #[test]
    fn the_same_runs_reference_is_never_judged() {
        let mut reference = endpoint("ingest.bare_handler", 900.0, 950.0, 5000.0, 0.5);
        reference.is_reference = true;
        let run = RunResults {
            endpoints: vec![reference],
            ..RunResults::default()
        };
        assert!(find(&run, &Targets::default()).is_empty());
    }
}
