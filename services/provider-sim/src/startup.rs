//! Building the HTTP server: the simulated providers, the webhook receiver, the inspection and
//! configuration routes, and JSON answers for everything else; and beside it the SMTP sink.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tokio::sync::watch;

use crate::config::SimulatorConfig;
use crate::state::SimulatorState;
use crate::{
    discord, inspection, json_error, pushover, runtime_config, sendgrid, slack, smtp, telegram,
    twilio, webhook,
};

/// Seconds shutdown waits for requests in flight; held "timeout" requests are cut short.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
/// Pending connections the kernel queues: benchmarks open hundreds at once.
const LISTEN_BACKLOG: u32 = 4096;

/// Starts serving HTTP on `listener` (bind port 0 for tests), and SMTP on
/// `config.smtp_listen` when it is set and not empty (`SimulatorConfig::default()` leaves it
/// unset). The returned server runs when awaited or spawned; signals are not handled here, so
/// the caller decides how to stop it. With SMTP, call this inside a tokio runtime: the SMTP sink
/// runs as a task on it and stops when the HTTP server has stopped.
pub fn run(listener: TcpListener, config: SimulatorConfig) -> io::Result<Server> {
    validate(&config)?;
    let smtp = match config.smtp_listen_address() {
        Some(address) => Some(TcpListener::bind(address).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("binding the SMTP listener {address}: {error}"),
            )
        })?),
        None => None,
    };
    serve(listener, smtp, config)
}

/// Like [`run`], with SMTP served on `smtp` (bind port 0 for tests) whatever
/// `config.smtp_listen` says. Call it inside a tokio runtime.
pub fn run_with_smtp(
    listener: TcpListener,
    smtp: TcpListener,
    config: SimulatorConfig,
) -> io::Result<Server> {
    validate(&config)?;
    serve(listener, Some(smtp), config)
}

fn validate(config: &SimulatorConfig) -> io::Result<()> {
    config
        .validate()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))
}

fn serve(
    listener: TcpListener,
    smtp_listener: Option<TcpListener>,
    config: SimulatorConfig,
) -> io::Result<Server> {
    let workers = config.workers;
    let smtp_config = config.smtp.clone();
    let state = web::Data::new(SimulatorState::new(config));
    // The SMTP sink stops when this sender is dropped: it lives in the app factory, which the
    // HTTP server drops once it has stopped.
    let (smtp_stop, smtp_stopped) = watch::channel(());
    let smtp_stop = Arc::new(smtp_stop);
    if let Some(smtp_listener) = smtp_listener {
        smtp::spawn(
            smtp_listener,
            state.clone().into_inner(),
            smtp_config,
            smtp_stopped,
        )?;
    }
    let mut server = HttpServer::new(move || {
        let _stops_smtp_when_dropped = &smtp_stop;
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(json_error::query_error))
            .configure(sendgrid::configure)
            .configure(twilio::configure)
            .configure(slack::configure)
            .configure(discord::configure)
            .configure(telegram::configure)
            .configure(pushover::configure)
            .configure(webhook::configure)
            .configure(inspection::configure)
            .configure(runtime_config::configure)
            .default_service(web::to(json_error::not_found))
    })
    .disable_signals()
    .backlog(LISTEN_BACKLOG)
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS);
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}
