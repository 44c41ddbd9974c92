//! k6's end-of-test summary (`handleSummary`'s `data`, or `--summary-export`): per endpoint the
//! `http_req_duration{endpoint:…}` trend and the `http_req_failed{endpoint:…}` rate. A run whose
//! requests carry no `endpoint` tag is read as one endpoint, `all`.

use serde_json::Value;

use super::InputError;
use crate::results::{EndpointResult, Latency, RunResults};

const DURATION: &str = "http_req_duration";
const FAILED: &str = "http_req_failed";

pub(super) fn is_k6_summary(document: &Value) -> bool {
    document
        .get("metrics")
        .and_then(Value::as_object)
        .is_some_and(|metrics| metrics.keys().any(|name| name.starts_with(DURATION)))
}

pub(super) fn read(path: &str, document: &Value) -> Result<RunResults, InputError> {
    let metrics = document["metrics"]
        .as_object()
        .ok_or_else(|| InputError::malformed(path, "`metrics` is not an object"))?;
    let duration_seconds = document
        .pointer("/state/testRunDurationMs")
        .and_then(Value::as_f64)
        .map(|milliseconds| milliseconds / 1000.0);
    let tagged: Vec<&str> = metrics
        .keys()
        .filter_map(|name| {
            name.strip_prefix("http_req_duration{endpoint:")?
                .strip_suffix('}')
        })
        .collect();
    let mut run = RunResults {
        duration_seconds,
        ..RunResults::default()
    };
    if tagged.is_empty() {
        run.endpoints.push(endpoint(
            path,
            "all",
            &metrics[DURATION],
            metrics.get(FAILED),
            duration_seconds,
        )?);
    }
    for name in tagged {
        let trend = &metrics[&format!("{DURATION}{{endpoint:{name}}}")];
        let failed = metrics.get(&format!("{FAILED}{{endpoint:{name}}}"));
        run.endpoints
            .push(endpoint(path, name, trend, failed, duration_seconds)?);
    }
    Ok(run)
}

/// A metric's values: `values` in handleSummary's data, the metric itself in `--summary-export`.
fn values(metric: &Value) -> &Value {
    metric.get("values").unwrap_or(metric)
}

fn endpoint(
    path: &str,
    name: &str,
    trend: &Value,
    failed: Option<&Value>,
    duration_seconds: Option<f64>,
) -> Result<EndpointResult, InputError> {
    let trend = values(trend);
    let figure = |key: &str| trend.get(key).and_then(Value::as_f64);
    let p95 = figure("p(95)").ok_or_else(|| {
        InputError::malformed(
            path,
            format!("`{DURATION}` of `{name}` has no p(95) (summaryTrendStats must include p(95) and p(99))"),
        )
    })?;
    let mut result = EndpointResult::new(name);
    result.latency = Latency {
        p50: figure("med").or_else(|| figure("p(50)")),
        p95: Some(p95),
        p99: figure("p(99)"),
        max: figure("max"),
        mean: figure("avg"),
    };
    if let Some(failed) = failed.map(values) {
        // http_req_failed is a rate: `passes` are the requests that failed, `fails` the others.
        let failures = failed.get("passes").and_then(Value::as_u64);
        let successes = failed.get("fails").and_then(Value::as_u64);
        if let (Some(failures), Some(successes)) = (failures, successes) {
            let requests = failures + successes;
            result.requests = Some(requests);
            result.throughput_rps = duration_seconds
                .filter(|seconds| *seconds > 0.0)
                .map(|seconds| requests as f64 / seconds);
        }
        result.error_rate = failed
            .get("rate")
            .or_else(|| failed.get("value"))
            .and_then(Value::as_f64);
    }
    Ok(result)
}
