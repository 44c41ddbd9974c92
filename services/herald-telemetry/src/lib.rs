//! Process plumbing shared by every Herald binary: logging and traces, the shutdown signal, the
//! Prometheus registry, liveness, and supervision of long-running tasks.

pub mod health;
pub mod metrics;
pub mod profiling;
pub mod supervise;
pub mod traces;

pub use traces::{init, init_logging, Telemetry};

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
