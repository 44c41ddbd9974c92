//! `herald-provider-sim`: serves the simulated providers and the webhook receiver until Ctrl-C or
//! SIGTERM.

use std::net::TcpListener;

use clap::Parser;
use herald_provider_sim::cli::Arguments;
use herald_provider_sim::provider::PerProvider;
use tracing_subscriber::EnvFilter;

/// mimalloc: the allocator is on every request's path, and glibc's showed up in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let arguments = Arguments::parse();
    let listen = arguments.listen.clone();
    let config = arguments.into_config()?;
    let listener = TcpListener::bind(&listen)?;
    // Behaviours only: the credentials are never logged.
    let behaviours = PerProvider::from_fn(|provider| config.behaviour(provider).clone());
    tracing::info!(
        address = %listener.local_addr()?,
        behaviours = %serde_json::to_string(&behaviours)?,
        smtp_address = config.smtp_listen_address().unwrap_or("disabled"),
        twilio_account_sid = %config.twilio.account_sid,
        "herald-provider-sim listening"
    );
    let server = herald_provider_sim::run(listener, config)?;
    let handle = server.handle();
    let mut server = tokio::spawn(server);
    tokio::select! {
        result = &mut server => result??,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            handle.stop(true).await;
            server.await??;
        }
    }
    Ok(())
}

/// JSON lines when `HERALD_LOG_FORMAT=json`, like the other Herald services; `RUST_LOG` sets the
/// level (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("HERALD_LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate.recv() => {}
    }
}
