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

/// What a binary's `main` does with an error: one line naming the problem and the causes that
/// add something to it, no backtrace, and a non-zero exit status.
pub fn exit_with_error(error: &(dyn std::error::Error + 'static)) -> ! {
    eprintln!("error: {}", one_line(error));
    std::process::exit(2)
}

/// The error and its causes in one line, leaving out causes whose text is already in it (many
/// errors repeat their source's message).
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
