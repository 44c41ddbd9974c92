//! `make bench`'s results (`bench-results/<scenario>.json`). Each scenario writes its own shape;
//! what they share is read wherever it is in the document:
//! - an object with `latency_ms` (`p50`, `p95`, `p99`) is a request endpoint, with `requests`,
//!   `error_rate` and `requests_per_second` beside it (`ingest.json`, the generators of the others);
//! - an object with `accept_to_delivery_ms` is a delivery endpoint: from acceptance to the
//!   provider, with `deliveries_per_second` (`delivery.json`, `channels.json`, `groups.json`, …).
//!
//! An endpoint is named by the file's stem and its path in the document (`ingest.single`,
//! `delivery`). The ingest scenario's `bare_handler` is the reference measured in the same run.

use std::path::Path;

use serde_json::{Map, Value};

use super::InputError;
use crate::results::{EndpointResult, Latency, RunResults, Stage};

/// The bench's same-run reference: a bare actix handler behind the same generator.
const REFERENCE: &str = "bare_handler";

pub(super) fn read(path: &str, file: &Path, document: &Value) -> Result<RunResults, InputError> {
    let Some(object) = document.as_object() else {
        return Err(InputError::malformed(
            path,
            "a JSON document that is not an object: neither a k6 summary nor a make bench result",
        ));
    };
    let stem = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bench".to_owned());
    let mut run = RunResults::default();
    collect(path, &stem, object, &mut run.endpoints)?;
    Ok(run)
}

fn collect(
    path: &str,
    name: &str,
    object: &Map<String, Value>,
    endpoints: &mut Vec<EndpointResult>,
) -> Result<(), InputError> {
    if let Some(latency) = object.get("latency_ms") {
        if let Some(latency) = percentiles(path, name, as_percentiles(path, name, latency)?, "")? {
            let mut endpoint = EndpointResult::new(name);
            endpoint.latency = latency;
            endpoint.requests = object.get("requests").and_then(Value::as_u64);
            endpoint.error_rate = object.get("error_rate").and_then(Value::as_f64);
            endpoint.throughput_rps = object.get("requests_per_second").and_then(Value::as_f64);
            endpoint.is_reference = name.ends_with(REFERENCE);
            endpoints.push(endpoint);
        }
    }
    if let Some(latency) = object.get("accept_to_delivery_ms") {
        if let Some(latency) = percentiles(path, name, as_percentiles(path, name, latency)?, "")? {
            let mut endpoint = EndpointResult::new(name);
            endpoint.latency = latency;
            endpoint.requests = object.get("deliveries_sent").and_then(Value::as_u64);
            endpoint.throughput_rps = object.get("deliveries_per_second").and_then(Value::as_f64);
            endpoint.stage = Stage::Delivery;
            endpoints.push(endpoint);
        }
    }
    // The neighbours scenario's phases: `{"p50_ms": …, "p99_ms": …}`.
    if object.contains_key("p99_ms") {
        if let Some(latency) = percentiles(path, name, object, "_ms")? {
            let mut endpoint = EndpointResult::new(name);
            endpoint.latency = latency;
            if name.contains("delivery") {
                endpoint.stage = Stage::Delivery;
            }
            endpoints.push(endpoint);
        }
    }
    for (key, value) in object {
        if key == "latency_ms" || key == "accept_to_delivery_ms" {
            continue;
        }
        match value {
            Value::Object(child) => collect(path, &format!("{name}.{key}"), child, endpoints)?,
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Object(child) = item {
                        let label = item_label(child).unwrap_or_else(|| index.to_string());
                        collect(path, &format!("{name}.{key}.{label}"), child, endpoints)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What names an element of a list of runs (`"phase": "group"`, `"apis": 2, "workers": 4`).
fn item_label(item: &Map<String, Value>) -> Option<String> {
    for key in ["name", "phase", "channel", "format", "protocol"] {
        if let Some(label) = item.get(key).and_then(Value::as_str) {
            return Some(label.to_owned());
        }
    }
    match (item.get("apis"), item.get("workers")) {
        (Some(apis), Some(workers)) => Some(format!("{apis}x{workers}")),
        _ => None,
    }
}

/// The percentiles of `latency` (keys `p50{suffix}`, …); `None` when it has none (a phase that
/// measured nothing); an error when it is not an object or a figure is not a number.
fn as_percentiles<'a>(
    path: &str,
    name: &str,
    latency: &'a Value,
) -> Result<&'a Map<String, Value>, InputError> {
    latency.as_object().ok_or_else(|| {
        InputError::malformed(
            path,
            format!("`{name}`: its latency is not an object of percentiles"),
        )
    })
}

fn percentiles(
    path: &str,
    name: &str,
    latency: &Map<String, Value>,
    suffix: &str,
) -> Result<Option<Latency>, InputError> {
    let mut figures = [None; 5];
    for (slot, key) in ["p50", "p95", "p99", "max", "mean"].into_iter().enumerate() {
        match latency.get(&format!("{key}{suffix}")) {
            None | Some(Value::Null) => {}
            Some(Value::Number(number)) => figures[slot] = number.as_f64(),
            Some(other) => {
                return Err(InputError::malformed(
                    path,
                    format!("`{name}`: {key}{suffix} is {other}, not a number"),
                ))
            }
        }
    }
    let [p50, p95, p99, max, mean] = figures;
    if p50.is_none() && p95.is_none() && p99.is_none() {
        return Ok(None);
    }
    Ok(Some(Latency {
        p50,
        p95,
        p99,
        max,
        mean,
    }))
}
