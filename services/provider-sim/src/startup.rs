//! Building the HTTP server: the simulated providers, the webhook receiver, the inspection and
//! configuration routes, and JSON answers for everything else.

use std::io;
use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::config::SimulatorConfig;
use crate::state::SimulatorState;
use crate::{
    discord, inspection, json_error, runtime_config, sendgrid, slack, telegram, twilio, webhook,
};

/// Seconds shutdown waits for requests in flight; held "timeout" requests are cut short.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
/// Pending connections the kernel queues: benchmarks open hundreds at once.
const LISTEN_BACKLOG: u32 = 4096;

/// Starts serving on `listener` (bind port 0 for tests). The returned server runs when awaited
/// or spawned; signals are not handled here, so the caller decides how to stop it.
pub fn run(listener: TcpListener, config: SimulatorConfig) -> io::Result<Server> {
    config
        .validate()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
    let workers = config.workers;
    let state = web::Data::new(SimulatorState::new(config));
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(json_error::query_error))
            .configure(sendgrid::configure)
            .configure(twilio::configure)
            .configure(slack::configure)
            .configure(discord::configure)
            .configure(telegram::configure)
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
