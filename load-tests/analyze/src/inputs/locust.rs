//! Locust's `*_stats.csv` (`--csv PREFIX`): a row per request name, and an `Aggregated` row, which
//! is left out (it is the sum of the others). Both header styles are read: Locust 2's
//! (`Request Count`, `Failure Count`) and the older (`# requests`, `# failures`).

use std::collections::HashMap;

use super::InputError;
use crate::results::{EndpointResult, Latency, RunResults};

const AGGREGATED: &str = "Aggregated";

pub(super) fn read(path: &str, text: &str) -> Result<RunResults, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| InputError::malformed(path, format!("not a CSV file: {error}")))?
        .clone();
    let column: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(index, name)| (name, index))
        .collect();
    let find = |names: &[&str]| names.iter().find_map(|name| column.get(name).copied());
    let name_column = find(&["Name"]);
    let requests_column = find(&["Request Count", "# requests"]);
    let failures_column = find(&["Failure Count", "# failures"]);
    let p95_column = find(&["95%"]);
    let mut missing = Vec::new();
    for (wanted, found) in [
        ("Name", name_column),
        ("Request Count (or # requests)", requests_column),
        ("Failure Count (or # failures)", failures_column),
        ("95%", p95_column),
    ] {
        if found.is_none() {
            missing.push(wanted);
        }
    }
    let (Some(name_column), Some(requests_column), Some(failures_column), Some(_)) =
        (name_column, requests_column, failures_column, p95_column)
    else {
        return Err(InputError::malformed(
            path,
            format!(
                "not a Locust stats CSV: missing the column(s) {}",
                missing.join(", ")
            ),
        ));
    };
    let type_column = find(&["Type", "Method"]);
    let mut run = RunResults::default();
    for (line, record) in reader.records().enumerate() {
        let row_number = line + 2;
        let record = record
            .map_err(|error| InputError::malformed(path, format!("row {row_number}: {error}")))?;
        let name = record.get(name_column).unwrap_or_default();
        if name == AGGREGATED || name.is_empty() {
            continue;
        }
        let number = |column: Option<usize>| -> Result<Option<f64>, InputError> {
            let Some(text) = column.and_then(|column| record.get(column)) else {
                return Ok(None);
            };
            if text.is_empty() || text == "N/A" {
                return Ok(None);
            }
            text.trim_end_matches('%')
                .parse::<f64>()
                .map(Some)
                .map_err(|_| {
                    InputError::malformed(
                        path,
                        format!("row {row_number} (`{name}`): `{text}` is not a number"),
                    )
                })
        };
        let requests = number(Some(requests_column))?.unwrap_or(0.0);
        let failures = number(Some(failures_column))?.unwrap_or(0.0);
        let method = type_column
            .and_then(|column| record.get(column))
            .filter(|method| !method.is_empty());
        let mut endpoint = EndpointResult::new(match method {
            Some(method) => format!("{method} {name}"),
            None => name.to_owned(),
        });
        endpoint.requests = Some(requests as u64);
        endpoint.error_rate = (requests > 0.0).then(|| failures / requests);
        endpoint.throughput_rps = number(find(&["Requests/s"]))?;
        endpoint.latency = Latency {
            p50: number(find(&["50%", "Median Response Time"]))?,
            p95: number(find(&["95%"]))?,
            p99: number(find(&["99%"]))?,
            max: number(find(&["Max Response Time", "100%"]))?,
            mean: number(find(&["Average Response Time"]))?,
        };
        run.endpoints.push(endpoint);
    }
    Ok(run)
}
