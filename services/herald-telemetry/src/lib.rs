//! Process plumbing shared by every Herald binary: logging and traces, the shutdown signal, the
//! Prometheus registry, liveness, the operations listener (metrics, liveness, profiles) and
//! supervision of long-running tasks.

pub mod health;
pub mod metrics;
pub mod operations;
pub mod profiling;
pub mod supervise;
pub mod traces;

pub use traces::{init, init_logging, Telemetry};

/// Resolves on the first Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closing terminal): the `shutdown`
/// every binary's `run_until_stopped` is given, which then drains. A second one of them ends the
/// process at once, without draining, as an operator who sends it again means.
pub async fn shutdown_signal() {
    let mut signals = ShutdownSignals::install();
    let first = signals.next().await;
    tracing::info!(
        signal = first,
        "shutdown signal received; draining (send it again to exit at once)"
    );
    tokio::spawn(async move {
        let second = signals.next().await;
        tracing::warn!(
            signal = second,
            "second shutdown signal: exiting now, without draining"
        );
        std::process::exit(128 + second);
    });
}

/// SIGINT, SIGTERM and SIGHUP, received through tokio (their default action would end the process
/// without draining).
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hang_up: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let install =
            |kind: SignalKind| signal(kind).expect("installing a shutdown signal handler");
        Self {
            interrupt: install(SignalKind::interrupt()),
            terminate: install(SignalKind::terminate()),
            hang_up: install(SignalKind::hangup()),
        }
    }

    /// The number of the next signal received.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.interrupt.recv() => libc_signal::SIGINT,
            _ = self.terminate.recv() => libc_signal::SIGTERM,
            _ = self.hang_up.recv() => libc_signal::SIGHUP,
        }
    }
}

/// The POSIX numbers, the same on every Linux architecture: an exit status of 128 + the number is
/// how a shell reports a process ended by that signal.
mod libc_signal {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
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
