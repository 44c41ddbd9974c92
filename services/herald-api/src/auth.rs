//! Tenant authentication by API key: `Authorization: Bearer <key>`. Keys are stored as SHA-256
//! hashes; lookups are cached in process (positive for a minute, negative for a few seconds) so
//! authentication costs no database round trip on the hot path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use herald_store::DatabaseConnection;
use moka::future::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

pub const API_KEY_PREFIX: &str = "hk_";

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
    database: DatabaseConnection,
    known_keys: Cache<[u8; 32], Uuid>,
    unknown_keys: Cache<[u8; 32], ()>,
}

impl TenantAuthenticator {
    pub fn new(database: DatabaseConnection) -> TenantAuthenticator {
        TenantAuthenticator {
            database,
            known_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            unknown_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
        }
    }

    pub async fn tenant_for_key(&self, key: &str) -> Result<Uuid, ApiError> {
        let key_hash = hash_api_key(key);
        if let Some(tenant_id) = self.known_keys.get(&key_hash).await {
            return Ok(tenant_id);
        }
        if self.unknown_keys.contains_key(&key_hash) {
            return Err(ApiError::InvalidApiKey);
        }
        match herald_store::tenants::find_tenant_id_by_key_hash(&self.database, &key_hash).await? {
            Some(tenant_id) => {
                self.known_keys.insert(key_hash, tenant_id).await;
                Ok(tenant_id)
            }
            None => {
                self.unknown_keys.insert(key_hash, ()).await;
                Err(ApiError::InvalidApiKey)
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
            let id = authenticator.tenant_for_key(&key).await?;
            Ok(Tenant { id })
        })
    }
}
