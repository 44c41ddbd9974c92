//! The operations listener every Herald process runs beside its work, on a port of its own:
//! `GET /metrics` (Prometheus), `GET /healthz` (liveness) and, in builds with the `profiling`
//! feature, `GET /debug/pprof/*` (profiling.rs), plus whatever a process adds (the worker's
//! `/readyz`).
//!
//! A port of its own because these are for the cluster's operators, never for clients: the API's
//! public port is reachable through the ingress, and a profile costs CPU (and its flame graph shows
//! the code) to anyone who can reach it. Kept apart, a NetworkPolicy lets only the monitoring
//! namespace reach this port (helm/herald/templates/networkpolicy.yaml).

use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tokio::task::JoinHandle;

/// An operations listener bound to its port, not yet serving.
pub struct OperationsServer {
    server: Server,
    port: u16,
}

/// An operations listener serving until [`RunningOperationsServer::stop`].
pub struct RunningOperationsServer {
    handle: ServerHandle,
    serving: JoinHandle<std::io::Result<()>>,
}

impl OperationsServer {
    /// Binds `host:port` (port 0: any free one, [`OperationsServer::port`] says which) and serves
    /// the operations routes there, with `extra_routes` (a process's own, and their `app_data`).
    /// One actix worker thread: these routes are few and light, and a profile runs on a blocking
    /// thread of its own.
    pub fn bind(
        host: &str,
        port: u16,
        extra_routes: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    ) -> std::io::Result<OperationsServer> {
        let listener = TcpListener::bind((host, port))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .route("/metrics", web::get().to(crate::metrics::endpoint))
                .route("/healthz", web::get().to(crate::health::endpoint))
                .configure(crate::profiling::configure)
                .configure(extra_routes.clone())
        })
        .workers(1)
        // The process's own shutdown decides when this stops (last, so that its final state can
        // still be scraped while it drains).
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(OperationsServer { server, port })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts serving on the current tokio runtime.
    pub fn start(self) -> RunningOperationsServer {
        RunningOperationsServer {
            handle: self.server.handle(),
            serving: tokio::spawn(self.server),
        }
    }
}

impl RunningOperationsServer {
    /// Stops taking connections, lets the requests in flight finish (a profile included, at most
    /// its own length) and returns once the listener is closed.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.serving.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One plain HTTP/1.1 GET (blocking I/O on a thread of its own): its status and the response.
    async fn get(port: u16, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let status = response
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            (status, response)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn serves_metrics_liveness_and_a_process_own_routes_until_stopped() {
        crate::metrics::TASK_RESTARTS.with_label_values(&["operations_test"]);
        let server = OperationsServer::bind("127.0.0.1", 0, |config| {
            config.route(
                "/readyz",
                web::get().to(|| async { actix_web::HttpResponse::Ok().body("ready") }),
            );
        })
        .unwrap();
        let port = server.port();
        assert_ne!(port, 0, "port 0 binds a free port and reports it");
        let running = server.start();

        let (status, body) = get(port, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("operations_test"), "{body}");
        // Liveness is the process's (health.rs), and another test of this binary marks it broken
        // for good, at any moment: 503 only once it is.
        let liveness = get(port, "/healthz").await.0;
        assert!(
            liveness == 200 || (liveness == 503 && crate::health::broken().is_some()),
            "/healthz answered {liveness}"
        );
        assert_eq!(get(port, "/readyz").await.0, 200);
        assert_eq!(get(port, "/v1/notifications").await.0, 404);

        running.stop().await;
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the listener is closed once stopped"
        );
    }
}
