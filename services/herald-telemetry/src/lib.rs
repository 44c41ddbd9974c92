//! Process plumbing shared by every Herald binary: logging, the shutdown signal, the Prometheus
//! registry, and supervision of long-running tasks.

pub mod metrics;
pub mod supervise;

use tracing_subscriber::EnvFilter;

/// Logging: JSON lines when `HERALD_LOG_FORMAT=json`, human-readable otherwise; level from
/// `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn,sea_orm=warn"));
    let json = std::env::var("HERALD_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second initialisation (several apps in one test binary) is harmless.
    let _ = result;
}

/// Resolves on Ctrl-C or SIGTERM: the `shutdown` every binary's `run_until_stopped` is given.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// What a binary's `main` does with an error: one line naming the problem (with its causes), no
/// backtrace, and a non-zero exit status.
pub fn exit_with_error(error: &dyn std::fmt::Display) -> ! {
    eprintln!("error: {error}");
    std::process::exit(2)
}
