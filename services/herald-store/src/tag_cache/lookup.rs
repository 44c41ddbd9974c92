//! Reading through the tag cache: one `MGET` per lookup of many keys, PostgreSQL for the misses,
//! and the misses filled under the stamps read before PostgreSQL was.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use herald_config::CacheSettings;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::local::{LocalEntries, LocalEntry};
use super::subscription::LocalLayer;
use super::{parse_stamp, Tag, TagInvalidator, TagSubscription};
use crate::cache::{Redis, RedisUnavailable};
use crate::metrics::{count_cache_lookups, count_local_hits, CacheKind, CacheResult};
use crate::StoreError;

/// One key looked up, with the tags its value is read from.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// Unique within the kind; it includes the tenant.
    pub key: String,
    pub tags: Vec<Tag>,
}

/// What one `MGET` answered for one lookup.
struct Answer<V> {
    /// The tags' current stamps, `None` if Redis answered one that is not a stamp.
    stamps: Option<Vec<u64>>,
    /// The entry found and usable (in process or in Redis, stamps equal), if any.
    found: Option<V>,
}

pub struct TagCache<V> {
    kind: CacheKind,
    redis: Redis,
    entry_ttl: Duration,
    local: LocalEntries<V>,
    subscription: TagSubscription,
    invalidator: TagInvalidator,
}

impl<V> Clone for TagCache<V> {
    fn clone(&self) -> Self {
        TagCache {
            kind: self.kind,
            redis: self.redis.clone(),
            entry_ttl: self.entry_ttl,
            local: self.local.clone(),
            subscription: self.subscription.clone(),
            invalidator: self.invalidator.clone(),
        }
    }
}

impl<V> TagCache<V>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) fn new(
        kind: CacheKind,
        redis: Redis,
        settings: &CacheSettings,
        subscription: TagSubscription,
        invalidator: TagInvalidator,
    ) -> TagCache<V> {
        let entry_ttl = Duration::from_secs(settings.ttl_seconds);
        let local = LocalEntries::new(settings.local_max_bytes, entry_ttl);
        TagCache {
            kind,
            redis,
            entry_ttl,
            local,
            subscription,
            invalidator,
        }
    }

    pub(super) fn local_layer(&self) -> Arc<dyn LocalLayer> {
        Arc::new(self.local.clone())
    }

    /// The values of `lookups`, in their order; `load` reads those the cache cannot give from
    /// PostgreSQL, given their indexes in `lookups`, and answers in the same order (`None`: there is
    /// no such thing, which is not cached). Redis unreachable or slow: everything is loaded.
    pub async fn get_many<Load, Loaded>(
        &self,
        lookups: &[Lookup],
        load: Load,
    ) -> Result<Vec<Option<V>>, StoreError>
    where
        Load: FnOnce(Vec<usize>) -> Loaded,
        Loaded: Future<Output = Result<Vec<Option<V>>, StoreError>>,
    {
        if lookups.is_empty() {
            return Ok(Vec::new());
        }
        let every_index: Vec<usize> = (0..lookups.len()).collect();
        // An invalidation of this process that has not reached Redis leaves entries there (and
        // in process, filled from there) under the stamps the write could not replace: they are
        // stale, and PostgreSQL answers until the invalidation has landed.
        if self.invalidator.has_pending() {
            count_cache_lookups(self.kind, CacheResult::Error, lookups.len() as u64);
            return load(every_index).await;
        }
        let answers = match self.ask_redis(lookups).await {
            Ok(answers) => answers,
            Err(error) => {
                tracing::debug!(%error, kind = ?self.kind, "cache lookup fell back to PostgreSQL");
                count_cache_lookups(self.kind, CacheResult::Error, lookups.len() as u64);
                return load(every_index).await;
            }
        };
        let mut values: Vec<Option<V>> = Vec::with_capacity(lookups.len());
        let mut misses = Vec::new();
        for (index, answer) in answers.iter().enumerate() {
            match &answer.found {
                Some(value) => values.push(Some(value.clone())),
                None => {
                    values.push(None);
                    misses.push(index);
                }
            }
        }
        count_cache_lookups(
            self.kind,
            CacheResult::Hit,
            (lookups.len() - misses.len()) as u64,
        );
        count_cache_lookups(self.kind, CacheResult::Miss, misses.len() as u64);
        if misses.is_empty() {
            return Ok(values);
        }
        let loaded = load(misses.clone()).await?;
        debug_assert_eq!(loaded.len(), misses.len(), "load answers each index asked");
        let mut fills = Vec::new();
        for (index, value) in misses.into_iter().zip(loaded) {
            if let (Some(value), Some(stamps)) = (&value, &answers[index].stamps) {
                fills.push((index, value.clone(), stamps.clone()));
            }
            values[index] = value;
        }
        self.fill(lookups, fills).await;
        Ok(values)
    }

    /// [`TagCache::get_many`] for callers that think in their own keys: `lookup` says what each
    /// key is cached as, `load` reads the keys the cache cannot give (by key, leaving out what does
    /// not exist), and the answer holds every key found.
    pub async fn get_map<K, Load, Loaded>(
        &self,
        keys: &[K],
        lookup: impl Fn(&K) -> Lookup,
        load: Load,
    ) -> Result<HashMap<K, V>, StoreError>
    where
        K: Clone + Eq + Hash,
        Load: FnOnce(Vec<K>) -> Loaded,
        Loaded: Future<Output = Result<HashMap<K, V>, StoreError>>,
    {
        let lookups: Vec<Lookup> = keys.iter().map(lookup).collect();
        let found = self
            .get_many(&lookups, |indexes| async move {
                let wanted: Vec<K> = indexes.iter().map(|index| keys[*index].clone()).collect();
                let mut loaded = load(wanted.clone()).await?;
                Ok(wanted.iter().map(|key| loaded.remove(key)).collect())
            })
            .await?;
        Ok(keys
            .iter()
            .zip(found)
            .filter_map(|(key, value)| Some((key.clone(), value?)))
            .collect())
    }

    /// One `MGET`: for a key held in process, its tags' stamps; otherwise its Redis entry too.
    async fn ask_redis(&self, lookups: &[Lookup]) -> Result<Vec<Answer<V>>, RedisUnavailable> {
        let use_local = self.subscription.is_subscribed();
        let mut held = Vec::with_capacity(lookups.len());
        let mut redis_keys = Vec::new();
        for lookup in lookups {
            let local = if use_local {
                self.local.get(&lookup.key)
            } else {
                None
            };
            if local.is_none() {
                redis_keys.push(self.entry_key(&lookup.key));
            }
            redis_keys.extend(lookup.tags.iter().map(Tag::stamp_key));
            held.push(local);
        }
        let expected = redis_keys.len();
        let replies = self
            .redis
            .call(|mut connection| async move {
                redis::cmd("MGET")
                    .arg(&redis_keys)
                    .query_async::<Vec<Option<String>>>(&mut connection)
                    .await
            })
            .await?;
        if replies.len() != expected {
            return Err(RedisUnavailable("MGET answered the wrong count".into()));
        }
        let mut replies = replies.into_iter();
        let mut answers = Vec::with_capacity(lookups.len());
        for (lookup, local) in lookups.iter().zip(held) {
            let redis_entry = match local {
                Some(_) => None,
                None => Some(replies.next().flatten()),
            };
            let stamps: Option<Vec<u64>> = (&mut replies)
                .take(lookup.tags.len())
                .map(|reply| parse_stamp(reply.as_deref()))
                .collect();
            let found = match (&stamps, local, redis_entry) {
                (None, _, _) => None,
                (Some(current), Some(local), _) => {
                    if &local.stamps == current {
                        count_local_hits(self.kind);
                        Some(local.value.clone())
                    } else {
                        self.local.forget(&lookup.key);
                        None
                    }
                }
                (Some(current), None, Some(Some(stored))) => {
                    let entry = parse_entry::<V>(&stored).filter(|(stamps, _)| stamps == current);
                    match entry {
                        Some((stamps, value)) => {
                            if use_local {
                                self.keep_local(lookup, stamps, value.clone(), stored.len());
                            }
                            Some(value)
                        }
                        None => None,
                    }
                }
                (Some(_), None, _) => None,
            };
            answers.push(Answer { stamps, found });
        }
        Ok(answers)
    }

    /// Stores what PostgreSQL answered under the stamps read before it was asked, in Redis (one
    /// pipeline) and in process.
    async fn fill(&self, lookups: &[Lookup], fills: Vec<(usize, V, Vec<u64>)>) {
        if fills.is_empty() {
            return;
        }
        let mut pipeline = redis::pipe();
        let mut stored_bytes = Vec::with_capacity(fills.len());
        for (index, value, stamps) in &fills {
            let Ok(json) = serde_json::to_string(value) else {
                stored_bytes.push(None);
                continue;
            };
            let stored = format!("{}|{json}", join_stamps(stamps));
            stored_bytes.push(Some(stored.len()));
            pipeline
                .set_ex(
                    self.entry_key(&lookups[*index].key),
                    stored,
                    self.entry_ttl.as_secs(),
                )
                .ignore();
        }
        if let Err(error) = self
            .redis
            .call(|mut connection| async move { pipeline.query_async::<()>(&mut connection).await })
            .await
        {
            tracing::debug!(%error, kind = ?self.kind, "filling the cache failed");
        }
        if self.subscription.is_subscribed() {
            for ((index, value, stamps), stored_bytes) in fills.into_iter().zip(stored_bytes) {
                if let Some(stored_bytes) = stored_bytes {
                    self.keep_local(&lookups[index], stamps, value, stored_bytes);
                }
            }
        }
    }

    fn keep_local(&self, lookup: &Lookup, stamps: Vec<u64>, value: V, stored_bytes: usize) {
        let stamp_key_bytes: usize = lookup.tags.len() * 64;
        let entry = LocalEntry {
            weight: u32::try_from(stored_bytes + stamp_key_bytes).unwrap_or(u32::MAX),
            stamp_keys: lookup.tags.iter().map(Tag::stamp_key).collect(),
            stamps,
            value,
        };
        self.local.keep(lookup.key.clone(), entry);
    }

    fn entry_key(&self, key: &str) -> String {
        format!("herald:cache:{}:{key}", self.kind.as_label())
    }
}

fn join_stamps(stamps: &[u64]) -> String {
    stamps
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `"{stamp},{stamp}|{json}"` as stored in Redis; `None` if it is not that.
fn parse_entry<V: DeserializeOwned>(stored: &str) -> Option<(Vec<u64>, V)> {
    let (stamps, json) = stored.split_once('|')?;
    let stamps = if stamps.is_empty() {
        Vec::new()
    } else {
        stamps
            .split(',')
            .map(|stamp| stamp.parse().ok())
            .collect::<Option<Vec<u64>>>()?
    };
    let value = serde_json::from_str(json).ok()?;
    Some((stamps, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_it_was_stored() {
        let stored = format!("{}|{}", join_stamps(&[7, 0, u64::MAX]), "\"value\"");
        let (stamps, value) = parse_entry::<String>(&stored).unwrap();
        assert_eq!(stamps, vec![7, 0, u64::MAX]);
        assert_eq!(value, "value");
        assert!(parse_entry::<String>("7,x|\"value\"").is_none());
        assert!(parse_entry::<String>("no separator").is_none());
    }
}
