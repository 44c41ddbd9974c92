//! Recipient lookup: Redis first (one MGET per batch), PostgreSQL for the misses (one query), and
//! the misses written back with a TTL. The API deletes a user's key when the user changes, so the
//! TTL only bounds staleness if that delete was lost. Redis trouble degrades to PostgreSQL only.

use std::collections::HashMap;
use std::time::Duration;

use herald_domain::cache_keys;
use herald_store::users::{find_recipients, Recipient};
use herald_store::DatabaseConnection;
use redis::aio::ConnectionManager;
use uuid::Uuid;

pub type RecipientKey = (Uuid, String);

pub struct Recipients {
    database: DatabaseConnection,
    redis: ConnectionManager,
    redis_timeout: Duration,
    ttl_seconds: u64,
}

impl Recipients {
    pub fn new(
        database: DatabaseConnection,
        redis: ConnectionManager,
        redis_timeout: Duration,
        ttl_seconds: u64,
    ) -> Recipients {
        Recipients {
            database,
            redis,
            redis_timeout,
            ttl_seconds,
        }
    }

    /// The recipients that exist among `keys`.
    pub async fn resolve(
        &self,
        keys: &[RecipientKey],
    ) -> anyhow::Result<HashMap<RecipientKey, Recipient>> {
        let mut found = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(found);
        }
        let cache_keys: Vec<String> = keys
            .iter()
            .map(|(tenant, user)| cache_keys::user_key(*tenant, user))
            .collect();
        let cached = self.cached(&cache_keys).await;
        let mut misses = Vec::new();
        for (key, cached) in keys.iter().zip(cached) {
            match cached.and_then(|json| serde_json::from_str::<Recipient>(&json).ok()) {
                Some(recipient) => {
                    found.insert(key.clone(), recipient);
                }
                None => misses.push((key.0, key.1.as_str())),
            }
        }
        if misses.is_empty() {
            return Ok(found);
        }
        let loaded = find_recipients(&self.database, &misses).await?;
        self.fill_cache(&loaded).await;
        for recipient in loaded {
            found.insert((recipient.tenant_id, recipient.id.clone()), recipient);
        }
        Ok(found)
    }

    async fn cached(&self, cache_keys: &[String]) -> Vec<Option<String>> {
        let mut connection = self.redis.clone();
        let mut command = redis::cmd("MGET");
        command.arg(cache_keys);
        let lookup = command.query_async::<Vec<Option<String>>>(&mut connection);
        match tokio::time::timeout(self.redis_timeout, lookup).await {
            Ok(Ok(values)) if values.len() == cache_keys.len() => values,
            Ok(Err(error)) => {
                tracing::warn!(%error, "user cache unavailable; reading PostgreSQL");
                vec![None; cache_keys.len()]
            }
            _ => vec![None; cache_keys.len()],
        }
    }

    async fn fill_cache(&self, recipients: &[Recipient]) {
        if recipients.is_empty() {
            return;
        }
        let mut pipeline = redis::pipe();
        for recipient in recipients {
            let Ok(json) = serde_json::to_string(recipient) else {
                continue;
            };
            pipeline
                .cmd("SET")
                .arg(cache_keys::user_key(recipient.tenant_id, &recipient.id))
                .arg(json)
                .arg("EX")
                .arg(self.ttl_seconds)
                .ignore();
        }
        let mut connection = self.redis.clone();
        let write = pipeline.query_async::<()>(&mut connection);
        if let Ok(Err(error)) = tokio::time::timeout(self.redis_timeout, write).await {
            tracing::debug!(%error, "filling the user cache failed");
        }
    }
}
