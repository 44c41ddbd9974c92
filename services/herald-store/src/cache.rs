//! Redis, which Herald uses as a cache only: its absence costs speed, never data.
//!
//! Recipients are cached **versioned**: an entry is `"{version}:{json}"` and every writer (the API
//! when a user changes, the worker when it fills a miss) replaces an entry only with a newer
//! version, atomically in Redis. So a worker that read a user just before it changed can never
//! write the old version back over the new one.

use std::time::Duration;

use herald_config::RedisSettings;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::users::Recipient;

/// Every Herald process opens Redis the same way: bounded connect and response times, a few
/// reconnection attempts.
pub async fn connect_redis(settings: &RedisSettings) -> redis::RedisResult<ConnectionManager> {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let client = redis::Client::open(settings.url.expose_secret())?;
    ConnectionManager::new_with_config(
        client,
        ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(2),
    )
    .await
}

/// A recipient's contact data: cached by the worker, written through by the API.
pub fn recipient_key(tenant_id: Uuid, user_id: &str) -> String {
    format!("herald:user:{tenant_id}:{user_id}")
}

/// Sets each key to its value unless the cached version is the same or newer.
/// KEYS: the keys. ARGV: the TTL in seconds, then a version and a value per key.
const SET_IF_NEWER: &str = r#"
local ttl = tonumber(ARGV[1])
for index, key in ipairs(KEYS) do
    local version = tonumber(ARGV[2 * index])
    local value = ARGV[2 * index + 1]
    local current = redis.call('GET', key)
    local current_version = -1
    if current then
        current_version = tonumber(string.match(current, '^(%d+):')) or -1
    end
    if version > current_version then
        redis.call('SET', key, value, 'EX', ttl)
    end
end
return 0
"#;

#[derive(Clone)]
pub struct RecipientCache {
    redis: ConnectionManager,
    timeout: Duration,
    ttl_seconds: u64,
    set_if_newer: redis::Script,
}

#[derive(Debug, thiserror::Error)]
#[error("the recipient cache is unavailable: {0}")]
pub struct CacheUnavailable(String);

impl RecipientCache {
    pub fn new(redis: ConnectionManager, timeout: Duration, ttl_seconds: u64) -> RecipientCache {
        RecipientCache {
            redis,
            timeout,
            ttl_seconds,
            set_if_newer: redis::Script::new(SET_IF_NEWER),
        }
    }

    /// One MGET; an entry that cannot be read counts as a miss.
    pub async fn get_many(
        &self,
        keys: &[(Uuid, &str)],
    ) -> Result<Vec<Option<Recipient>>, CacheUnavailable> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cache_keys: Vec<String> = keys
            .iter()
            .map(|(tenant_id, user_id)| recipient_key(*tenant_id, user_id))
            .collect();
        let mut connection = self.redis.clone();
        let mut command = redis::cmd("MGET");
        command.arg(&cache_keys);
        let lookup = command.query_async::<Vec<Option<String>>>(&mut connection);
        let values = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(values)) if values.len() == keys.len() => values,
            Ok(Ok(_)) => return Err(CacheUnavailable("MGET answered the wrong count".into())),
            Ok(Err(error)) => return Err(CacheUnavailable(error.to_string())),
            Err(_) => return Err(CacheUnavailable("MGET timed out".into())),
        };
        Ok(values
            .into_iter()
            .map(|value| {
                let value = value?;
                let (_version, json) = value.split_once(':')?;
                serde_json::from_str::<Recipient>(json).ok()
            })
            .collect())
    }

    /// Writes the recipients, each only over an older version, in one script call.
    pub async fn put_if_newer(&self, recipients: &[Recipient]) -> Result<(), CacheUnavailable> {
        if recipients.is_empty() {
            return Ok(());
        }
        let mut invocation = self.set_if_newer.prepare_invoke();
        invocation.arg(self.ttl_seconds);
        for recipient in recipients {
            let Ok(json) = serde_json::to_string(recipient) else {
                continue;
            };
            invocation
                .key(recipient_key(recipient.tenant_id, &recipient.id))
                .arg(recipient.version)
                .arg(format!("{}:{json}", recipient.version));
        }
        let mut connection = self.redis.clone();
        let write = invocation.invoke_async::<i64>(&mut connection);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(CacheUnavailable(error.to_string())),
            Err(_) => Err(CacheUnavailable("the cache write timed out".into())),
        }
    }
}
