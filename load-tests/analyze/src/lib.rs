//! `herald-analyze`: from a load test's results to bottlenecks, a plan and a picture.
//!
//! Reads k6 summaries, `make bench` results and Locust stats (`inputs`), holds each endpoint to its
//! target (`targets`), finds bottlenecks (`findings`), recommends Herald settings and cache TTLs
//! (`recommendations`, from `cache_metrics`), compares two runs (`compare`), and prints a summary
//! (`summary`) and writes a self-contained HTML report (`report`).

pub mod analysis;
pub mod cache_metrics;
pub mod compare;
pub mod findings;
pub mod inputs;
pub mod recommendations;
pub mod report;
pub mod results;
pub mod summary;
pub mod targets;

use std::path::PathBuf;

use analysis::Analysis;
use compare::NoiseBand;
use targets::Targets;

/// What one invocation asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub inputs: Vec<PathBuf>,
    pub baseline: Vec<PathBuf>,
    pub targets: Option<PathBuf>,
    pub metrics: Vec<PathBuf>,
    pub band: NoiseBand,
    /// The `cache.ttl_seconds` the run had, for the cache advice.
    pub cache_ttl_seconds: u64,
}

/// Reads, judges and compares; every input problem is an error naming the file.
pub fn analyze(request: &Request) -> anyhow::Result<Analysis> {
    let run = inputs::read_run(&request.inputs)?;
    let targets = match &request.targets {
        Some(path) => Targets::load(path)?,
        None => Targets::default(),
    };
    let findings = findings::find(&run, &targets);
    let plan = recommendations::plan(&run, &findings);
    let cache = if request.metrics.is_empty() {
        Vec::new()
    } else {
        let kinds = cache_metrics::read_snapshots(&request.metrics)?;
        recommendations::cache_advice(&kinds, run.duration_seconds, request.cache_ttl_seconds)
    };
    let recommended_ttl_seconds = recommendations::recommended_ttl(&cache);
    let baseline = if request.baseline.is_empty() {
        None
    } else {
        Some(inputs::read_run(&request.baseline)?)
    };
    let comparison = baseline
        .as_ref()
        .map(|baseline| compare::compare(baseline, &run, request.band));
    Ok(Analysis {
        run,
        targets,
        findings,
        plan,
        cache,
        recommended_ttl_seconds,
        baseline,
        comparison,
    })
}
