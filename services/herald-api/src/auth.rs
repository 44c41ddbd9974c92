//! Tenant authentication by API key: `Authorization: Bearer <key>`. Keys are stored as SHA-256
//! hashes; lookups are cached in process so authentication costs no database round trip on the hot
//! path. A revoked key is forgotten by every replica at once (PostgreSQL `NOTIFY`, with a short TTL
//! as the backstop), and a client that keeps sending unknown keys is throttled (429).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use herald_store::tenants::KEY_REVOCATIONS_CHANNEL;
use herald_store::Database;
use moka::future::Cache;
use rand::RngCore;
use sea_orm::sqlx::postgres::PgListener;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use herald_store::metrics::{count_cache_lookups, CacheKind, CacheResult};

use crate::error::ApiError;
use crate::metrics;

pub const API_KEY_PREFIX: &str = "hk_";
/// How long a known key is trusted without asking PostgreSQL: the bound on a revocation whose
/// announcement was lost.
const KNOWN_KEY_TTL: Duration = Duration::from_secs(30);
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

#[derive(Clone)]
pub struct TenantAuthenticator {
    database: Database,
    known_keys: Cache<[u8; 32], Uuid>,
    unknown_keys: Cache<[u8; 32], ()>,
    /// Unknown keys seen per client address in the current window.
    failures: Cache<IpAddr, Arc<AtomicU32>>,
}

impl TenantAuthenticator {
    pub fn new(database: Database) -> TenantAuthenticator {
        TenantAuthenticator {
            database,
            known_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KNOWN_KEY_TTL)
                .build(),
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

    pub async fn tenant_for_key(
        &self,
        key: &str,
        client: Option<IpAddr>,
    ) -> Result<Uuid, ApiError> {
        let key_hash = hash_api_key(key);
        if let Some(tenant_id) = self.known_keys.get(&key_hash).await {
            count_cache_lookups(CacheKind::ApiKey, CacheResult::Hit, 1);
            return Ok(tenant_id);
        }
        count_cache_lookups(CacheKind::ApiKey, CacheResult::Miss, 1);
        if let Some(client) = client {
            let failures = self.failures.get(&client).await;
            if failures
                .is_some_and(|count| count.load(Ordering::Relaxed) >= UNKNOWN_KEYS_PER_WINDOW)
            {
                metrics::AUTH_THROTTLED.inc();
                return Err(ApiError::TooManyRequests);
            }
        }
        let known = if self.unknown_keys.contains_key(&key_hash) {
            None
        } else {
            herald_store::tenants::find_tenant_id_by_key_hash(&self.database, &key_hash).await?
        };
        match known {
            Some(tenant_id) => {
                self.known_keys.insert(key_hash, tenant_id).await;
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

    /// A key was revoked (its hash, hex): stop trusting it now.
    async fn forget(&self, key_hash_hex: &str) {
        match hex::decode(key_hash_hex)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        {
            Some(key_hash) => self.known_keys.invalidate(&key_hash).await,
            None => self.known_keys.invalidate_all(),
        }
    }
}

/// Listens for key revocations until `shutdown`. When the connection drops, announcements may have
/// been missed: every cached key is forgotten, and the listener reconnects.
pub async fn run_revocation_listener(
    authenticator: Arc<TenantAuthenticator>,
    shutdown: CancellationToken,
) {
    let pool = authenticator
        .database
        .connection()
        .get_postgres_connection_pool()
        .clone();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for API key revocations; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if let Err(error) = listener.listen(KEY_REVOCATIONS_CHANNEL).await {
            tracing::warn!(%error, "cannot listen for API key revocations; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            let notification = tokio::select! {
                notification = listener.try_recv() => notification,
                _ = shutdown.cancelled() => return,
            };
            match notification {
                Ok(Some(notification)) => authenticator.forget(notification.payload()).await,
                Ok(None) => {
                    authenticator.known_keys.invalidate_all();
                    tracing::info!("revocation listener reconnecting; forgot every cached key");
                }
                Err(error) => {
                    authenticator.known_keys.invalidate_all();
                    tracing::warn!(%error, "revocation listener failed; reconnecting");
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
        let client = request.peer_addr().map(|address| address.ip());
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
