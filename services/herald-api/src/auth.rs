//! Tenant authentication by API key: `Authorization: Bearer <key>`. Keys are stored as SHA-256
//! hashes. Every replica holds the directory of active keys in memory (loaded at start, kept
//! current by PostgreSQL `NOTIFY` when a key is added or revoked, reloaded every 30 s as the
//! backstop), so authentication costs no database round trip on the hot path.
//!
//! A client that keeps sending unknown keys is throttled (429), per client: the peer, or the
//! address a trusted proxy forwarded (`client_address`). The throttle applies only to keys the
//! directory does not hold: a valid key is never refused because some client, perhaps sharing its
//! ingress address, sent bad ones.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use herald_config::DatabaseSettings;
use herald_store::tenants::{KEY_ADDITIONS_CHANNEL, KEY_REVOCATIONS_CHANNEL};
use herald_store::Database;
use moka::future::Cache;
use rand::RngCore;
use sea_orm::sqlx::postgres::PgListener;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use herald_store::metrics::{count_cache_lookups, CacheKind, CacheResult};

use crate::client_address::TrustedProxies;
use crate::error::ApiError;
use crate::metrics;

pub const API_KEY_PREFIX: &str = "hk_";
/// How often the directory of keys is reloaded whole: the bound on a revocation whose
/// announcement was lost.
const KEY_DIRECTORY_RELOAD: Duration = Duration::from_secs(30);
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(5);
/// Unknown keys one client address may present per window before it gets 429.
const UNKNOWN_KEYS_PER_WINDOW: u32 = 20;
const UNKNOWN_KEY_WINDOW: Duration = Duration::from_secs(10);

/// A new random API key (256 bits) and its hash and display prefix.
pub struct GeneratedApiKey {
    pub key: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

pub fn generate_api_key() -> GeneratedApiKey {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    describe_api_key(format!("{API_KEY_PREFIX}{}", hex::encode(secret)))
}

/// Hash and prefix of a key chosen elsewhere (e.g. `HERALD_API_KEY` for the local stack).
pub fn describe_api_key(key: String) -> GeneratedApiKey {
    let hash = hash_api_key(&key).to_vec();
    let prefix = key.chars().take(API_KEY_PREFIX.len() + 6).collect();
    GeneratedApiKey { key, hash, prefix }
}

pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

pub struct TenantAuthenticator {
    database: Database,
    /// Every active key this replica knows, by hash.
    key_directory: RwLock<HashMap<[u8; 32], Uuid>>,
    /// Whether the directory was loaded whole since the listener last (re)connected: then a key it
    /// does not hold is almost surely unknown (or added a moment ago, its announcement on the way).
    key_directory_complete: AtomicBool,
    unknown_keys: Cache<[u8; 32], ()>,
    /// Unknown keys seen per client address in the current window.
    failures: Cache<IpAddr, Arc<AtomicU32>>,
}

impl TenantAuthenticator {
    pub fn new(database: Database) -> TenantAuthenticator {
        TenantAuthenticator {
            database,
            key_directory: RwLock::new(HashMap::new()),
            key_directory_complete: AtomicBool::new(false),
            unknown_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(UNKNOWN_KEY_TTL)
                .build(),
            failures: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(UNKNOWN_KEY_WINDOW)
                .build(),
        }
    }

    fn tenant_in_directory(&self, key_hash: &[u8; 32]) -> Option<Uuid> {
        self.key_directory
            .read()
            .ok()
            .and_then(|directory| directory.get(key_hash).copied())
    }

    fn remember(&self, key_hash: [u8; 32], tenant_id: Uuid) {
        if let Ok(mut directory) = self.key_directory.write() {
            directory.insert(key_hash, tenant_id);
        }
    }

    async fn is_throttled(&self, client: Option<IpAddr>) -> bool {
        let Some(client) = client else { return false };
        self.failures
            .get(&client)
            .await
            .is_some_and(|count| count.load(Ordering::Relaxed) >= UNKNOWN_KEYS_PER_WINDOW)
    }

    pub async fn tenant_for_key(
        &self,
        key: &str,
        client: Option<IpAddr>,
    ) -> Result<Uuid, ApiError> {
        let key_hash = hash_api_key(key);
        if let Some(tenant_id) = self.tenant_in_directory(&key_hash) {
            count_cache_lookups(CacheKind::ApiKey, CacheResult::Hit, 1);
            return Ok(tenant_id);
        }
        count_cache_lookups(CacheKind::ApiKey, CacheResult::Miss, 1);
        // Only a key the directory does not hold can be throttled, and only while the directory
        // is complete: while it is not (the listener reconnecting), every miss is looked up.
        if self.key_directory_complete.load(Ordering::Relaxed) && self.is_throttled(client).await {
            metrics::AUTH_THROTTLED.inc();
            return Err(ApiError::TooManyRequests);
        }
        let known = if self.unknown_keys.contains_key(&key_hash) {
            None
        } else {
            herald_store::tenants::find_tenant_id_by_key_hash(&self.database, &key_hash).await?
        };
        match known {
            Some(tenant_id) => {
                self.remember(key_hash, tenant_id);
                Ok(tenant_id)
            }
            None => {
                self.unknown_keys.insert(key_hash, ()).await;
                if let Some(client) = client {
                    self.failures
                        .get_with(client, async { Arc::new(AtomicU32::new(0)) })
                        .await
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(ApiError::InvalidApiKey)
            }
        }
    }

    /// Replaces the directory with every active key in PostgreSQL.
    async fn reload_directory(&self) -> Result<(), herald_store::StoreError> {
        let active = herald_store::tenants::active_api_keys(&self.database).await?;
        let directory: HashMap<[u8; 32], Uuid> = active
            .into_iter()
            .filter_map(|(key_hash, tenant_id)| {
                <[u8; 32]>::try_from(key_hash)
                    .ok()
                    .map(|key_hash| (key_hash, tenant_id))
            })
            .collect();
        if let Ok(mut current) = self.key_directory.write() {
            *current = directory;
        }
        self.key_directory_complete.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// A key was added (its hash, hex): hold it now, so it is never throttled.
    async fn add(&self, key_hash_hex: &str) {
        let Some(key_hash) = decode_key_hash(key_hash_hex) else {
            return;
        };
        match herald_store::tenants::find_tenant_id_by_key_hash(&self.database, &key_hash).await {
            Ok(Some(tenant_id)) => {
                self.remember(key_hash, tenant_id);
                self.unknown_keys.invalidate(&key_hash).await;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "looking up an added API key failed"),
        }
    }

    /// A key was revoked (its hash, hex): stop trusting it now.
    fn forget(&self, key_hash_hex: &str) {
        let Ok(mut directory) = self.key_directory.write() else {
            return;
        };
        match decode_key_hash(key_hash_hex) {
            Some(key_hash) => {
                directory.remove(&key_hash);
            }
            None => {
                directory.clear();
                self.key_directory_complete.store(false, Ordering::Relaxed);
            }
        }
    }

    fn mark_incomplete(&self) {
        self.key_directory_complete.store(false, Ordering::Relaxed);
    }
}

fn decode_key_hash(key_hash_hex: &str) -> Option<[u8; 32]> {
    hex::decode(key_hash_hex)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// Where the key directory's LISTEN runs: a connection of the pool, or one of its own straight to
/// PostgreSQL (`database.listen_url`) when the pool goes through a transaction pooler, which hands
/// the server connection to other clients after each statement and so never delivers a NOTIFY.
pub struct KeyListenerConnection {
    listen_url: Option<SecretString>,
    connect_timeout: Duration,
}

impl KeyListenerConnection {
    pub fn from_settings(settings: &DatabaseSettings) -> KeyListenerConnection {
        KeyListenerConnection {
            listen_url: settings
                .listen_url
                .clone()
                .filter(|url| !url.expose_secret().is_empty()),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
        }
    }

    async fn connect(&self, database: &Database) -> Result<PgListener, String> {
        let Some(listen_url) = &self.listen_url else {
            let pool = database.connection().get_postgres_connection_pool();
            return PgListener::connect_with(pool)
                .await
                .map_err(|error| error.to_string());
        };
        // The URL is a secret: the error says what failed, never where.
        match tokio::time::timeout(
            self.connect_timeout,
            PgListener::connect(listen_url.expose_secret()),
        )
        .await
        {
            Ok(Ok(listener)) => Ok(listener),
            Ok(Err(error)) => Err(format!("database.listen_url: {error}")),
            Err(_) => Err(format!(
                "database.listen_url: no connection within {} ms",
                self.connect_timeout.as_millis()
            )),
        }
    }
}

/// Keeps the key directory current until `shutdown`: listens for additions and revocations, then
/// loads the directory whole (so nothing announced during the load is missed), and again every
/// `KEY_DIRECTORY_RELOAD`. When the connection drops, announcements may have been missed: the
/// directory is incomplete until the listener has reconnected and reloaded it.
pub async fn run_key_directory(
    authenticator: Arc<TenantAuthenticator>,
    listener_connection: KeyListenerConnection,
    shutdown: CancellationToken,
) {
    loop {
        authenticator.mark_incomplete();
        let mut listener = match listener_connection.connect(&authenticator.database).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for API key changes; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if let Err(error) = listener
            .listen_all([KEY_REVOCATIONS_CHANNEL, KEY_ADDITIONS_CHANNEL])
            .await
        {
            tracing::warn!(%error, "cannot listen for API key changes; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let mut reload = tokio::time::interval(KEY_DIRECTORY_RELOAD);
        loop {
            let notification = tokio::select! {
                _ = reload.tick() => {
                    if let Err(error) = authenticator.reload_directory().await {
                        tracing::warn!(%error, "loading the API key directory failed; retrying");
                        authenticator.mark_incomplete();
                    }
                    continue;
                }
                notification = listener.try_recv() => notification,
                _ = shutdown.cancelled() => return,
            };
            match notification {
                Ok(Some(notification)) if notification.channel() == KEY_ADDITIONS_CHANNEL => {
                    authenticator.add(notification.payload()).await
                }
                Ok(Some(notification)) => authenticator.forget(notification.payload()),
                Ok(None) => {
                    // sqlx reconnected: what was announced meanwhile is lost; reload now.
                    authenticator.mark_incomplete();
                    reload.reset_immediately();
                    tracing::info!("key listener reconnected; reloading the key directory");
                }
                Err(error) => {
                    tracing::warn!(%error, "key listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

/// The authenticated tenant of a request; handlers that take it are protected.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    pub id: Uuid,
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Tenant, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let bearer_key = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|key| key.trim().to_owned());
        let client = request.app_data::<web::Data<TrustedProxies>>().map_or_else(
            || request.peer_addr().map(|address| address.ip()),
            |trusted| trusted.client_of(request),
        );
        let authenticator = request
            .app_data::<web::Data<Arc<TenantAuthenticator>>>()
            .map(|data| data.get_ref().clone());
        Box::pin(async move {
            let key = bearer_key
                .filter(|key| !key.is_empty())
                .ok_or(ApiError::MissingApiKey)?;
            let authenticator = authenticator.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("authenticator not configured"))
            })?;
            let id = authenticator.tenant_for_key(&key, client).await?;
            Ok(Tenant { id })
        })
    }
}
