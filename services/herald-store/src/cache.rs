//! Redis, which Herald uses for what its absence costs speed, never data: the tag cache
//! (`tag_cache`), the tenants' ingest rate limits and the providers' shared rate limits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_config::RedisSettings;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ClientTlsConfig, TlsCertificates};
use secrecy::ExposeSecret;

/// Rebuilds of the connection at most this often.
const REBUILD_PAUSE: Duration = Duration::from_secs(1);

/// Redis as every Herald process uses it: bounded connect and response times, and a connection
/// that heals itself. The process starts without Redis and connects in the background; a call that
/// fails or times out has the connection rebuilt (redis-rs's manager was seen to stay broken after
/// a Redis restart), and one that fails to read or write has it dropped as well, so that calls
/// fail at once until the rebuild connects. With Redis gone, every call would otherwise wait for
/// the broken connection (about 0.7 s each) before its caller falls back, and a worker's
/// admission, which looks recipients up per batch, ran at half its pace. Callers get an error,
/// never a wait beyond the timeout.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<RedisInner>,
}

struct RedisInner {
    client: redis::Client,
    timeout: Duration,
    state: Mutex<ConnectionState>,
}

struct ConnectionState {
    /// The connection, with the number of the rebuild that made it: a call that fails drops it
    /// only if no newer one has replaced it meanwhile.
    connection: Option<(u64, ConnectionManager)>,
    generation: u64,
    rebuilding: bool,
    last_rebuild: Option<Instant>,
    /// Why the last connection attempt failed, until one succeeds.
    connect_failure: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("redis is unavailable: {0}")]
pub struct RedisUnavailable(pub String);

impl Redis {
    /// A handle that connects in the background; only an unusable URL is an error. Call it from
    /// within a Tokio runtime.
    pub fn new(settings: &RedisSettings) -> redis::RedisResult<Redis> {
        let redis = Redis {
            inner: Arc::new(RedisInner {
                client: client_for(settings)?,
                timeout: Duration::from_millis(settings.timeout_ms),
                state: Mutex::new(ConnectionState {
                    connection: None,
                    generation: 0,
                    rebuilding: false,
                    last_rebuild: None,
                    connect_failure: None,
                }),
            }),
        };
        redis.rebuild();
        Ok(redis)
    }

    /// The client, for what needs a connection of its own (the tag cache's subscription).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// Why the last attempt to connect failed ("invalid peer certificate: UnknownIssuer", a refused
    /// password, nothing listening), while no attempt has succeeded since.
    pub fn connect_failure(&self) -> Option<String> {
        self.inner
            .state
            .lock()
            .expect("redis state poisoned")
            .connect_failure
            .clone()
    }

    /// How long one call may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Whether Redis answers a `PING` within the timeout.
    pub async fn ping(&self) -> bool {
        self.call(|mut connection| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await
        .is_ok()
    }

    /// Runs one call within the timeout; a failure has the connection rebuilt.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.call_within(self.inner.timeout, call).await
    }

    /// Like [`Redis::call`] with a timeout of the caller's, for calls on a hot path that must give
    /// up sooner than the configured timeout (the providers' shared rate limits); never longer.
    pub async fn call_within<T, F, Fut>(
        &self,
        timeout: Duration,
        call: F,
    ) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let timeout = timeout.min(self.inner.timeout);
        let connection = self
            .inner
            .state
            .lock()
            .expect("redis state poisoned")
            .connection
            .clone();
        let Some((generation, connection)) = connection else {
            self.rebuild();
            return Err(RedisUnavailable("not connected".into()));
        };
        let (failure, connection_broken) =
            match tokio::time::timeout(timeout, call(connection)).await {
                Ok(Ok(value)) => return Ok(value),
                // A failed read or write means the connection is gone. An error Redis answered
                // with, or a call that outran its timeout (the rate limits give Redis 200 ms on a
                // hot path, and a busy Redis misses that now and then), leaves it usable: dropping
                // it then sent every caller to its fallback for up to a second (an email behind a
                // saturated lane took over 3 s in `no_stall::a_provider_that_times_out…`).
                Ok(Err(error)) => (
                    error.to_string(),
                    error.is_io_error() || error.is_unrecoverable_error(),
                ),
                Err(_) => (format!("no answer within {timeout:?}"), false),
            };
        if connection_broken {
            self.drop_connection(generation);
        }
        self.rebuild();
        Err(RedisUnavailable(failure))
    }

    /// Forgets the connection of rebuild `generation`, unless a newer one replaced it.
    fn drop_connection(&self, generation: u64) {
        let mut state = self.inner.state.lock().expect("redis state poisoned");
        if state
            .connection
            .as_ref()
            .is_some_and(|(current, _)| *current == generation)
        {
            state.connection = None;
        }
    }

    /// Replaces the connection in the background, at most once per pause.
    fn rebuild(&self) {
        {
            let mut state = self.inner.state.lock().expect("redis state poisoned");
            let too_soon = state
                .last_rebuild
                .is_some_and(|last| last.elapsed() < REBUILD_PAUSE);
            if state.rebuilding || too_soon {
                return;
            }
            state.rebuilding = true;
            state.last_rebuild = Some(Instant::now());
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(inner.timeout)
                .set_response_timeout(inner.timeout)
                .set_number_of_retries(1);
            let connected = tokio::time::timeout(
                inner.timeout * 3,
                ConnectionManager::new_with_config(inner.client.clone(), config),
            )
            .await;
            let mut state = inner.state.lock().expect("redis state poisoned");
            state.rebuilding = false;
            let failure = match connected {
                Ok(Ok(connection)) => {
                    state.generation += 1;
                    state.connection = Some((state.generation, connection));
                    state.connect_failure = None;
                    return;
                }
                // A Redis that is down or restarting is expected now and then (callers fall back);
                // one that answers but refuses Herald (an untrusted certificate, a wrong password)
                // is a configuration to fix, said once per reason.
                Ok(Err(error)) => {
                    let unreachable = error.is_connection_refusal()
                        || error.is_timeout()
                        || error.is_connection_dropped();
                    let reason = error.to_string();
                    if unreachable || state.connect_failure.as_ref() == Some(&reason) {
                        tracing::debug!(%error, "connecting to redis failed");
                    } else {
                        tracing::warn!(%error, "redis refused the connection: check redis.url, redis.ca_file and the Redis's certificate");
                    }
                    reason
                }
                Err(_) => {
                    tracing::debug!("connecting to redis timed out");
                    format!("no connection within {:?}", inner.timeout * 3)
                }
            };
            state.connect_failure = Some(failure);
        });
    }
}

/// The one place a Redis client is made: the URL, and for `rediss://` the CA and the client
/// certificate the settings name (read now; the URL's host name is verified against the
/// certificate). Errors name the setting and the file, never the URL (it holds the password).
fn client_for(settings: &RedisSettings) -> redis::RedisResult<redis::Client> {
    let url = settings.url.expose_secret();
    if settings.ca_file.is_empty() && settings.certificate_file.is_empty() {
        return redis::Client::open(url);
    }
    let read = |setting: &str, file: &str| -> redis::RedisResult<Vec<u8>> {
        std::fs::read(file).map_err(|error| {
            std::io::Error::new(error.kind(), format!("{setting} `{file}`: {error}")).into()
        })
    };
    let root_cert = match settings.ca_file.as_str() {
        "" => None,
        file => Some(read("redis.ca_file", file)?),
    };
    let client_tls = match settings.certificate_file.as_str() {
        "" => None,
        file => Some(ClientTlsConfig {
            client_cert: read("redis.certificate_file", file)?,
            client_key: read("redis.key_file", &settings.key_file)?,
        }),
    };
    redis::Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
}
