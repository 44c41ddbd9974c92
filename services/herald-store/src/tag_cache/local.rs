//! The in-process layer of one kind: entries bounded in bytes and in age, and an index from each
//! tag's stamp key to the entries registered under it, so that an invalidation message evicts
//! exactly those entries in time proportional to their number.
//!
//! Why an index of its own: moka's `invalidate_entries_if` keeps every predicate until it has been
//! applied to every entry older than it, and applies all pending predicates to every `get`. One
//! predicate per message meant that a tenant writing users quickly made every lookup of every
//! worker evaluate thousands of closures, and every maintenance pass scan the whole cache once per
//! message.
//!
//! Invariant: a key's tags never change (the key names what the value is read from), so an entry
//! replacing another under the same key is registered under the same stamp keys.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::subscription::LocalLayer;

/// An entry as kept in process: its value and the stamps it was filled under.
pub(super) struct LocalEntry<V> {
    /// The bytes the entry stands for: its JSON and its tags'.
    pub(super) weight: u32,
    pub(super) stamp_keys: Vec<String>,
    pub(super) stamps: Vec<u64>,
    pub(super) value: V,
}

/// Keys of the entries held, by the stamp key of each of their tags.
type TagIndex = Arc<Mutex<HashMap<String, HashSet<String>>>>;

pub(super) struct LocalEntries<V> {
    entries: Cache<String, Arc<LocalEntry<V>>>,
    keys_by_stamp_key: TagIndex,
}

impl<V> Clone for LocalEntries<V> {
    fn clone(&self) -> Self {
        LocalEntries {
            entries: self.entries.clone(),
            keys_by_stamp_key: self.keys_by_stamp_key.clone(),
        }
    }
}

impl<V: Send + Sync + 'static> LocalEntries<V> {
    pub(super) fn new(max_bytes: u64, ttl: Duration) -> LocalEntries<V> {
        let keys_by_stamp_key: TagIndex = Arc::default();
        let index = keys_by_stamp_key.clone();
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Arc<LocalEntry<V>>| {
                entry
                    .weight
                    .saturating_add(u32::try_from(key.len()).unwrap_or(u32::MAX))
            })
            .time_to_live(ttl)
            .eviction_listener(move |key: Arc<String>, entry: Arc<LocalEntry<V>>, cause| {
                // A replaced entry's successor is registered under the same stamp keys.
                if cause != RemovalCause::Replaced {
                    unregister(&index, &key, &entry.stamp_keys);
                }
            })
            .build();
        LocalEntries {
            entries,
            keys_by_stamp_key,
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<Arc<LocalEntry<V>>> {
        self.entries.get(key)
    }

    pub(super) fn keep(&self, key: String, entry: LocalEntry<V>) {
        {
            let mut index = self.keys_by_stamp_key.lock().expect("tag index poisoned");
            for stamp_key in &entry.stamp_keys {
                index
                    .entry(stamp_key.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        self.entries.insert(key, Arc::new(entry));
    }

    pub(super) fn forget(&self, key: &str) {
        self.entries.invalidate(key);
    }
}

fn unregister(index: &TagIndex, key: &str, stamp_keys: &[String]) {
    let mut index = index.lock().expect("tag index poisoned");
    for stamp_key in stamp_keys {
        if let Some(keys) = index.get_mut(stamp_key) {
            keys.remove(key);
            if keys.is_empty() {
                index.remove(stamp_key);
            }
        }
    }
}

impl<V: Send + Sync + 'static> LocalLayer for LocalEntries<V> {
    fn evict_tagged(&self, stamp_keys: Arc<HashSet<String>>) {
        let keys: Vec<String> = {
            let mut index = self.keys_by_stamp_key.lock().expect("tag index poisoned");
            stamp_keys
                .iter()
                .filter_map(|stamp_key| index.remove(stamp_key))
                .flatten()
                .collect()
        };
        for key in keys {
            self.entries.invalidate(&key);
        }
    }

    fn evict_all(&self) {
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stamp_keys: &[&str]) -> LocalEntry<u32> {
        LocalEntry {
            weight: 1,
            stamp_keys: stamp_keys.iter().map(|key| (*key).to_owned()).collect(),
            stamps: vec![1; stamp_keys.len()],
            value: 7,
        }
    }

    #[test]
    fn a_message_evicts_exactly_the_entries_under_its_tags_and_the_index_stays_bounded() {
        let local = LocalEntries::<u32>::new(1024 * 1024, Duration::from_secs(60));
        local.keep("latest:welcome".into(), entry(&["tag:welcome"]));
        local.keep("3:welcome".into(), entry(&["tag:welcome"]));
        local.keep("latest:other".into(), entry(&["tag:other"]));
        local.evict_tagged(Arc::new(["tag:welcome".to_owned()].into_iter().collect()));
        assert!(local.get("latest:welcome").is_none());
        assert!(local.get("3:welcome").is_none());
        assert!(local.get("latest:other").is_some());

        // Forgotten and replaced entries leave the index as they leave the cache.
        local.keep("latest:other".into(), entry(&["tag:other"]));
        local.forget("latest:other");
        local.entries.run_pending_tasks();
        assert!(local.keys_by_stamp_key.lock().unwrap().is_empty());
        for round in 0..1000 {
            local.keep(format!("key-{round}"), entry(&["tag:many"]));
        }
        local.evict_all();
        local.entries.run_pending_tasks();
        assert!(local.keys_by_stamp_key.lock().unwrap().is_empty());
    }
}
