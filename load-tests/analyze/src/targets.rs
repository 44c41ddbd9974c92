//! What each endpoint is held to: a TOML file of `[defaults]`, `[delivery_defaults]` and
//! `[endpoints."<name>"]`, each with any of `p50_ms`, `p95_ms`, `p99_ms`, `error_rate_percent`,
//! `min_throughput_rps`. An endpoint's own table overrides its defaults key by key. Requests'
//! defaults default to the SLA in the README (P95 < 100 ms, P99 < 500 ms, errors < 1%); the
//! defaults of accept-to-delivery latencies (the bench's delivery runs) to the bound of the
//! `HeraldAcceptToSentSlow` alert (P95 < 60 s). `load-tests/targets.toml` is Herald's.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::results::{EndpointResult, Stage};

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate_percent: Option<f64>,
    pub min_throughput_rps: Option<f64>,
}

impl Target {
    /// The README's SLA.
    pub const SLA: Target = Target {
        p50_ms: None,
        p95_ms: Some(100.0),
        p99_ms: Some(500.0),
        error_rate_percent: Some(1.0),
        min_throughput_rps: None,
    };

    /// Accept-to-delivery, by the `HeraldAcceptToSentSlow` alert.
    pub const DELIVERY: Target = Target {
        p50_ms: None,
        p95_ms: Some(60_000.0),
        p99_ms: None,
        error_rate_percent: None,
        min_throughput_rps: None,
    };

    fn over(self, defaults: Target) -> Target {
        Target {
            p50_ms: self.p50_ms.or(defaults.p50_ms),
            p95_ms: self.p95_ms.or(defaults.p95_ms),
            p99_ms: self.p99_ms.or(defaults.p99_ms),
            error_rate_percent: self.error_rate_percent.or(defaults.error_rate_percent),
            min_throughput_rps: self.min_throughput_rps.or(defaults.min_throughput_rps),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    defaults: Target,
    delivery_defaults: Target,
    endpoints: BTreeMap<String, Target>,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            defaults: Target::SLA,
            delivery_defaults: Target::DELIVERY,
            endpoints: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    #[serde(default)]
    defaults: Option<Target>,
    #[serde(default)]
    delivery_defaults: Option<Target>,
    #[serde(default)]
    endpoints: BTreeMap<String, Target>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error("{path}: cannot be read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

impl Targets {
    pub fn load(path: &Path) -> Result<Targets, TargetsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TargetsError::Unreadable {
            path: shown.clone(),
            source,
        })?;
        Targets::parse(&shown, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Targets, TargetsError> {
        let file: TargetsFile = toml::from_str(text).map_err(|error| TargetsError::Invalid {
            path: path.to_owned(),
            problem: error.to_string(),
        })?;
        let defaults = file.defaults.unwrap_or_default().over(Target::SLA);
        let delivery_defaults = file
            .delivery_defaults
            .unwrap_or_default()
            .over(Target::DELIVERY);
        for (name, target) in [
            ("defaults", &defaults),
            ("delivery_defaults", &delivery_defaults),
        ]
        .into_iter()
        .chain(
            file.endpoints
                .iter()
                .map(|(name, target)| (name.as_str(), target)),
        ) {
            let figures = [
                ("p50_ms", target.p50_ms),
                ("p95_ms", target.p95_ms),
                ("p99_ms", target.p99_ms),
                ("error_rate_percent", target.error_rate_percent),
                ("min_throughput_rps", target.min_throughput_rps),
            ];
            for (key, value) in figures {
                if value.is_some_and(|value| !value.is_finite() || value < 0.0) {
                    return Err(TargetsError::Invalid {
                        path: path.to_owned(),
                        problem: format!("{name}.{key} must be a number of at least 0"),
                    });
                }
            }
        }
        Ok(Targets {
            defaults,
            delivery_defaults,
            endpoints: file.endpoints,
        })
    }

    /// The target of `endpoint`: its own table over the defaults of its stage.
    pub fn of(&self, endpoint: &EndpointResult) -> Target {
        let defaults = match endpoint.stage {
            Stage::Request => self.defaults,
            Stage::Delivery => self.delivery_defaults,
        };
        self.endpoints
            .get(&endpoint.name)
            .copied()
            .unwrap_or_default()
            .over(defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoints_table_overrides_the_defaults_key_by_key_and_the_sla_fills_the_rest() {
        let targets = Targets::parse(
            "t.toml",
            "[defaults]\np95_ms = 80\n[endpoints.single]\np99_ms = 300\nmin_throughput_rps = 1000\n",
        )
        .unwrap();
        let single = targets.of(&EndpointResult::new("single"));
        assert_eq!(single.p95_ms, Some(80.0));
        assert_eq!(single.p99_ms, Some(300.0));
        assert_eq!(single.error_rate_percent, Some(1.0), "from the SLA");
        assert_eq!(single.min_throughput_rps, Some(1000.0));
        assert_eq!(
            targets.of(&EndpointResult::new("other")).p99_ms,
            Some(500.0)
        );
        let mut delivery = EndpointResult::new("delivery");
        delivery.stage = Stage::Delivery;
        assert_eq!(
            targets.of(&delivery).p95_ms,
            Some(60_000.0),
            "the alert's bound"
        );
        assert_eq!(targets.of(&delivery).p99_ms, None);
    }

    #[test]
    fn a_misspelt_key_or_a_negative_figure_is_refused_by_name() {
        let misspelt = Targets::parse("t.toml", "[defaults]\np99 = 5\n").unwrap_err();
        assert!(misspelt.to_string().contains("p99"), "{misspelt}");
        let negative = Targets::parse("t.toml", "[endpoints.get]\np95_ms = -1\n").unwrap_err();
        assert!(negative.to_string().contains("get.p95_ms"), "{negative}");
    }
}
