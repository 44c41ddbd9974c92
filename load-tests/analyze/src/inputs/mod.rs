//! Reading a run's files: k6's summary JSON (`load-tests/results/*.json`), `make bench`'s results
//! (`bench-results/*.json`) and Locust's `*_stats.csv`. The format is told by the content, not the
//! name; a file that is none of them, or holds no endpoint, is an error naming the file and why.

mod bench;
mod k6;
mod locust;

use std::path::Path;

use crate::results::RunResults;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot be read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty")]
    Empty { path: String },
    #[error("{path}: not JSON ({source}); expected a k6 summary, a make bench result or a Locust *_stats.csv")]
    NotJson {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {problem}")]
    Malformed { path: String, problem: String },
}

impl InputError {
    pub(crate) fn malformed(path: &str, problem: impl Into<String>) -> InputError {
        InputError::Malformed {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Reads every file of one run into one result. Two files naming the same endpoint is an error:
/// they would be two runs. A bench result without latency figures (the capacity or export
/// scenario's) is fine beside others; a run with none at all is an error.
pub fn read_run(paths: &[impl AsRef<Path>]) -> Result<RunResults, InputError> {
    let mut run = RunResults::default();
    for path in paths {
        let one = read_file(path.as_ref())?;
        let mut shown = path.as_ref().display().to_string();
        if one.endpoints.is_empty() {
            shown.push_str(" (no latency figures)");
        }
        for endpoint in one.endpoints {
            if run.endpoint(&endpoint.name).is_some() {
                return Err(InputError::malformed(
                    &shown,
                    format!(
                        "endpoint `{}` is also in an earlier file of this run",
                        endpoint.name
                    ),
                ));
            }
            run.endpoints.push(endpoint);
        }
        run.duration_seconds = run.duration_seconds.or(one.duration_seconds);
        run.sources.push(shown);
    }
    if run.endpoints.is_empty() {
        let files: Vec<String> = paths
            .iter()
            .map(|path| path.as_ref().display().to_string())
            .collect();
        return Err(InputError::malformed(
            &files.join(", "),
            "no endpoint with latency figures in it (expected a k6 summary, a make bench result with latency_ms or accept_to_delivery_ms, or a Locust *_stats.csv)",
        ));
    }
    Ok(run)
}

fn read_file(path: &Path) -> Result<RunResults, InputError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    if text.trim().is_empty() {
        return Err(InputError::Empty { path: shown });
    }
    let run = if looks_like_csv(path, &text) {
        locust::read(&shown, &text)?
    } else {
        let document: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| InputError::NotJson {
                path: shown.clone(),
                source,
            })?;
        if k6::is_k6_summary(&document) {
            k6::read(&shown, &document)?
        } else {
            bench::read(&shown, path, &document)?
        }
    };
    Ok(run)
}

fn looks_like_csv(path: &Path, text: &str) -> bool {
    path.extension().is_some_and(|extension| extension == "csv")
        || (!text.trim_start().starts_with(['{', '['])
            && text
                .lines()
                .next()
                .is_some_and(|header| header.contains(',')))
}
