//! `herald-analyze INPUT… [--baseline FILE…] [--targets FILE] [--metrics FILE…] [--html FILE]
//! [--fail-on-regression]`: exits 0 when the analysis ran, 1 when `--fail-on-regression` found one,
//! 2 when an input could not be read (the message names it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use herald_analyze::compare::NoiseBand;
use herald_analyze::{analyze, report, summary, Request};

#[derive(Parser)]
#[command(
    name = "herald-analyze",
    about = "Finds bottlenecks in load-test results (k6 summary JSON, make bench results, Locust *_stats.csv), recommends Herald settings and cache TTLs, compares two runs and writes an HTML report."
)]
struct Cli {
    /// The run's result files (one run; several files are merged).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// A baseline run's result files to compare with.
    #[arg(long, num_args = 1..)]
    baseline: Vec<PathBuf>,
    /// Targets per endpoint (TOML; default: the SLA, P95 100 ms, P99 500 ms, errors 1%).
    #[arg(long)]
    targets: Option<PathBuf>,
    /// Prometheus text expositions scraped during the run (for the cache advice).
    #[arg(long, num_args = 1..)]
    metrics: Vec<PathBuf>,
    /// Where to write the HTML report (default: analysis.html beside the first input).
    #[arg(long)]
    html: Option<PathBuf>,
    /// The noise band of a comparison, in percent.
    #[arg(long, default_value_t = NoiseBand::default().percent)]
    noise_percent: f64,
    /// Latency changes smaller than this many milliseconds are noise whatever their percentage.
    #[arg(long, default_value_t = NoiseBand::default().floor_ms)]
    noise_floor_ms: f64,
    /// The cache.ttl_seconds the run had.
    #[arg(long, default_value_t = 300)]
    cache_ttl_seconds: u64,
    /// Exit 1 when the comparison finds a regression (for CI).
    #[arg(long)]
    fail_on_regression: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = Request {
        inputs: cli.inputs.clone(),
        baseline: cli.baseline.clone(),
        targets: cli.targets.clone(),
        metrics: cli.metrics.clone(),
        band: NoiseBand {
            percent: cli.noise_percent,
            floor_ms: cli.noise_floor_ms,
        },
        cache_ttl_seconds: cli.cache_ttl_seconds,
    };
    let analysis = match analyze(&request) {
        Ok(analysis) => analysis,
        Err(error) => {
            eprintln!("herald-analyze: {error:#}");
            return ExitCode::from(2);
        }
    };
    // A closed stdout (piped into `head`) is no reason to fail: the report is still written.
    let _ = std::io::stdout()
        .lock()
        .write_all(summary::render(&analysis).as_bytes());
    let html_path = cli.html.unwrap_or_else(|| {
        cli.inputs[0].parent().map_or_else(
            || PathBuf::from("analysis.html"),
            |directory| directory.join("analysis.html"),
        )
    });
    match report::render(&analysis)
        .map_err(anyhow::Error::msg)
        .and_then(|html| {
            std::fs::write(&html_path, html)
                .map_err(|error| anyhow::anyhow!("writing {}: {error}", html_path.display()))
        }) {
        Ok(()) => {
            let _ = writeln!(std::io::stdout().lock(), "report: {}", html_path.display());
        }
        Err(error) => {
            eprintln!("herald-analyze: {error:#}");
            return ExitCode::from(2);
        }
    }
    let regressed = analysis
        .comparison
        .as_ref()
        .is_some_and(|comparison| !comparison.regressions().is_empty());
    if cli.fail_on_regression && regressed {
        eprintln!("herald-analyze: regression against the baseline (--fail-on-regression)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
