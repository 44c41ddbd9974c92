//! Two runs side by side: per endpoint in both, the change of each latency percentile, the error
//! rate and the throughput, judged against a noise band. A latency is a regression when it grew
//! by more than the band (percent) and by more than a floor in milliseconds (a fast endpoint's
//! 0.3 ms to 0.4 ms is noise, not a 33% regression); an error rate when it grew by more than half a
//! percentage point; a throughput when it fell by more than the band.

use crate::results::{EndpointResult, RunResults};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseBand {
    pub percent: f64,
    pub floor_ms: f64,
}

impl Default for NoiseBand {
    fn default() -> Self {
        NoiseBand {
            percent: 10.0,
            floor_ms: 1.0,
        }
    }
}

/// Error rates may grow by this many percentage points before it counts.
const ERROR_RATE_BAND_POINTS: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Regression,
    Improvement,
    WithinNoise,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `p50`, `p95`, `p99` (ms), `error rate` (%), `throughput` (req/s).
    pub figure: &'static str,
    pub before: f64,
    pub after: f64,
    pub verdict: Verdict,
}

impl Change {
    /// The change in percent of `before` (for the error rate: in percentage points).
    pub fn delta_percent(&self) -> f64 {
        if self.figure == "error rate" {
            return self.after - self.before;
        }
        if self.before == 0.0 {
            return 0.0;
        }
        (self.after - self.before) / self.before * 100.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointComparison {
    pub endpoint: String,
    pub changes: Vec<Change>,
}

impl EndpointComparison {
    pub fn regressed(&self) -> bool {
        self.changes
            .iter()
            .any(|change| change.verdict == Verdict::Regression)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub endpoints: Vec<EndpointComparison>,
    /// Endpoints in only one of the runs: not compared.
    pub only_before: Vec<String>,
    pub only_after: Vec<String>,
    pub band: NoiseBand,
}

impl Comparison {
    pub fn regressions(&self) -> Vec<&EndpointComparison> {
        self.endpoints
            .iter()
            .filter(|endpoint| endpoint.regressed())
            .collect()
    }
}

pub fn compare(before: &RunResults, after: &RunResults, band: NoiseBand) -> Comparison {
    let endpoints = after
        .endpoints
        .iter()
        .filter_map(|now| {
            let then = before.endpoint(&now.name)?;
            Some(EndpointComparison {
                endpoint: now.name.clone(),
                changes: changes(then, now, band),
            })
        })
        .collect();
    let names = |run: &RunResults, other: &RunResults| {
        run.endpoints
            .iter()
            .filter(|endpoint| other.endpoint(&endpoint.name).is_none())
            .map(|endpoint| endpoint.name.clone())
            .collect()
    };
    Comparison {
        endpoints,
        only_before: names(before, after),
        only_after: names(after, before),
        band,
    }
}

fn changes(then: &EndpointResult, now: &EndpointResult, band: NoiseBand) -> Vec<Change> {
    let mut changes = Vec::new();
    for (figure, before, after) in [
        ("p50", then.latency.p50, now.latency.p50),
        ("p95", then.latency.p95, now.latency.p95),
        ("p99", then.latency.p99, now.latency.p99),
    ] {
        let (Some(before), Some(after)) = (before, after) else {
            continue;
        };
        let beyond_band = (after - before).abs() > before * band.percent / 100.0
            && (after - before).abs() > band.floor_ms;
        let verdict = match (beyond_band, after > before) {
            (false, _) => Verdict::WithinNoise,
            (true, true) => Verdict::Regression,
            (true, false) => Verdict::Improvement,
        };
        changes.push(Change {
            figure,
            before,
            after,
            verdict,
        });
    }
    if let (Some(before), Some(after)) = (then.error_rate, now.error_rate) {
        let (before, after) = (before * 100.0, after * 100.0);
        let verdict = if after - before > ERROR_RATE_BAND_POINTS {
            Verdict::Regression
        } else if before - after > ERROR_RATE_BAND_POINTS {
            Verdict::Improvement
        } else {
            Verdict::WithinNoise
        };
        changes.push(Change {
            figure: "error rate",
            before,
            after,
            verdict,
        });
    }
    if let (Some(before), Some(after)) = (then.throughput_rps, now.throughput_rps) {
        let beyond_band = (after - before).abs() > before * band.percent / 100.0;
        let verdict = match (beyond_band, after < before) {
            (false, _) => Verdict::WithinNoise,
            (true, true) => Verdict::Regression,
            (true, false) => Verdict::Improvement,
        };
        changes.push(Change {
            figure: "throughput",
            before,
            after,
            verdict,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Latency;

    fn run(p99: f64, p50: f64, error_rate: f64, throughput: f64) -> RunResults {
        let mut endpoint = EndpointResult::new("single");
        endpoint.latency = Latency {
            p50: Some(p50),
            p99: Some(p99),
            ..Latency::default()
        };
        endpoint.error_rate = Some(error_rate);
        endpoint.throughput_rps = Some(throughput);
        RunResults {
            endpoints: vec![endpoint],
            ..RunResults::default()
        }
    }

    fn verdicts(comparison: &Comparison) -> Vec<(&'static str, Verdict)> {
        comparison.endpoints[0]
            .changes
            .iter()
            .map(|change| (change.figure, change.verdict))
            .collect()
    }

    #[test]
    fn a_change_is_judged_only_beyond_the_band_and_the_floor() {
        let band = NoiseBand::default();
        let same = compare(
            &run(100.0, 0.3, 0.001, 1000.0),
            &run(109.0, 0.4, 0.004, 910.0),
            band,
        );
        assert!(same.regressions().is_empty(), "{same:?}");
        let worse = compare(
            &run(100.0, 0.3, 0.001, 1000.0),
            &run(112.0, 0.3, 0.007, 880.0),
            band,
        );
        assert_eq!(
            verdicts(&worse),
            vec![
                ("p50", Verdict::WithinNoise),
                ("p99", Verdict::Regression),
                ("error rate", Verdict::Regression),
                ("throughput", Verdict::Regression),
            ]
        );
        let better = compare(
            &run(100.0, 10.0, 0.02, 1000.0),
            &run(50.0, 5.0, 0.0, 2000.0),
            band,
        );
        assert!(verdicts(&better)
            .iter()
            .all(|(_, verdict)| *verdict == Verdict::Improvement));
    }
}
