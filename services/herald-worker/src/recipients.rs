//! Recipient lookup: the versioned Redis cache first (one MGET), PostgreSQL for the misses (one
//! query), and the misses written back only over older versions. Redis trouble costs speed only:
//! every lookup falls back to PostgreSQL.

use std::collections::HashMap;

use herald_store::cache::RecipientCache;
use herald_store::metrics::{count_cache_lookups, CacheKind, CacheResult};
use herald_store::users::{find_recipients, Recipient};
use herald_store::{Database, StoreError};
use uuid::Uuid;

pub type RecipientKey = (Uuid, String);

#[derive(Clone)]
pub struct Recipients {
    database: Database,
    cache: RecipientCache,
}

impl Recipients {
    pub fn new(database: Database, cache: RecipientCache) -> Recipients {
        Recipients { database, cache }
    }

    /// The recipients that exist among `keys`.
    pub async fn resolve(
        &self,
        keys: &[RecipientKey],
    ) -> Result<HashMap<RecipientKey, Recipient>, StoreError> {
        let mut found = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(found);
        }
        let lookup: Vec<(Uuid, &str)> = keys
            .iter()
            .map(|(tenant, user)| (*tenant, user.as_str()))
            .collect();
        let cached = match self.cache.get_many(&lookup).await {
            Ok(cached) => cached,
            Err(error) => {
                count_cache_lookups(CacheKind::Recipient, CacheResult::Error, 1);
                tracing::debug!(%error, "recipient cache unavailable; reading PostgreSQL");
                vec![None; keys.len()]
            }
        };
        let mut misses = Vec::new();
        for (key, cached) in lookup.iter().zip(cached) {
            match cached {
                Some(recipient) => {
                    found.insert((key.0, key.1.to_owned()), recipient);
                }
                None => misses.push(*key),
            }
        }
        count_cache_lookups(CacheKind::Recipient, CacheResult::Hit, found.len() as u64);
        count_cache_lookups(CacheKind::Recipient, CacheResult::Miss, misses.len() as u64);
        if misses.is_empty() {
            return Ok(found);
        }
        let loaded = find_recipients(&self.database, &misses).await?;
        self.fill(&loaded).await;
        for recipient in loaded {
            found.insert((recipient.tenant_id, recipient.id.clone()), recipient);
        }
        Ok(found)
    }

    /// Writes what PostgreSQL answered back into the cache, never over a newer version.
    pub async fn fill(&self, recipients: &[Recipient]) {
        if let Err(error) = self.cache.put_if_newer(recipients).await {
            tracing::debug!(%error, "filling the recipient cache failed");
        }
    }
}
