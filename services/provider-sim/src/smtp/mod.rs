//! The SMTP sink: plain SMTP (RFC 5321 subset, no TLS, optional `AUTH PLAIN`/`LOGIN`) on its
//! own listener, served on the tokio runtime beside the HTTP server. Accepted messages are
//! recorded as the `smtp` provider, so the inspection API shows them like any other.

mod message;
mod session;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};

use crate::config::SmtpConfig;
use crate::state::SimulatorState;

pub use message::{decode_encoded_words, parse, ParsedMessage};
pub use session::{BOUNCE_LOCAL_PART, INVALID_USER, MAX_ERRORS, MAX_LINE_BYTES};

/// How long a connection over the limit is given to read its `421`.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause after a failed `accept` (out of file descriptors, say) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves SMTP on `listener` in a task on the current tokio runtime until `shutdown`'s sender
/// is dropped (or sends); sessions in progress are then answered `421` and closed.
pub fn spawn(
    listener: std::net::TcpListener,
    state: Arc<SimulatorState>,
    config: SmtpConfig,
    shutdown: watch::Receiver<()>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        io::Error::other("the SMTP sink needs a tokio runtime: start the simulator inside one")
    })?;
    listener.set_nonblocking(true)?;
    tracing::info!(address = %listener.local_addr()?, "SMTP sink listening");
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    runtime.spawn(accept_loop(listener, state, Arc::new(config), shutdown));
    Ok(())
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<SimulatorState>,
    config: Arc<SmtpConfig>,
    mut shutdown: watch::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting an SMTP connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let permit = permits.clone().try_acquire_owned();
        let (state, config, shutdown) = (state.clone(), config.clone(), shutdown.clone());
        tokio::spawn(async move {
            let Ok(_permit) = permit else {
                tracing::warn!(%peer, "too many SMTP connections; refusing one");
                let refusal =
                    stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n");
                let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, refusal).await;
                return;
            };
            let (reader, writer) = stream.into_split();
            session::Session::new(reader, writer, state, config, shutdown)
                .run()
                .await;
        });
    }
    tracing::debug!("SMTP sink stopped");
}
