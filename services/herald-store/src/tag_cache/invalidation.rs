//! Invalidating tags after a write: a new random stamp for each tag and one pub/sub message naming
//! them, in one `MULTI`. A write never fails because Redis does: what could not be invalidated is
//! retried in the background, and meanwhile this process's caches read from PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Tag, CHANNEL};
use crate::cache::{Redis, RedisUnavailable};
use crate::metrics::{count_tag_invalidations, TagInvalidation, TAG_INVALIDATIONS_PENDING};

/// Tags waiting for Redis at most; beyond it a tag is dropped (counted, logged) and its entries
/// live until their TTL.
const MAX_PENDING_TAGS: usize = 100_000;
/// Pending tags retried at least this often.
/// Pending tags per retried `MULTI`.
const RETRY_CHUNK: usize = 1000;
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// The tags whose invalidation has not reached Redis, each with the number of the failure that
/// last deferred it: a retry forgets a tag only if no write deferred it again meanwhile (that
/// write may have committed after the retry's stamp, and needs one of its own).
#[derive(Default)]
struct PendingTags {
    tags: HashMap<String, u64>,
    deferrals: u64,
}

#[derive(Clone)]
pub struct TagInvalidator {
    redis: Redis,
    stamp_ttl: Duration,
    pending: Arc<Mutex<PendingTags>>,
    retry_now: Arc<Notify>,
}

impl TagInvalidator {
    pub(super) fn new(redis: Redis, stamp_ttl: Duration) -> TagInvalidator {
        TagInvalidator {
            redis,
            stamp_ttl,
            pending: Arc::new(Mutex::new(PendingTags::default())),
            retry_now: Arc::new(Notify::new()),
        }
    }

    /// Invalidates `tags` on every replica. Call it after the write committed; it never fails:
    /// if Redis cannot be reached, the tags are retried in the background.
    pub async fn invalidate(&self, tags: &[Tag]) {
        if tags.is_empty() {
            return;
        }
        let stamp_keys: Vec<String> = tags.iter().map(Tag::stamp_key).collect();
        match self.publish(&stamp_keys).await {
            Ok(()) => count_tag_invalidations(TagInvalidation::Published, stamp_keys.len()),
            Err(error) => {
                tracing::warn!(%error, tags = stamp_keys.len(), "invalidating cache tags failed; retrying in the background");
                self.defer(stamp_keys);
            }
        }
    }

    /// Whether some invalidation of this process has not reached Redis yet: then Redis may still
    /// hold entries that are stale, and this process reads from PostgreSQL.
    pub fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .expect("pending tags poisoned")
            .tags
            .is_empty()
    }

    fn defer(&self, stamp_keys: Vec<String>) {
        let mut dropped = 0;
        let mut deferred = 0;
        {
            let mut pending = self.pending.lock().expect("pending tags poisoned");
            pending.deferrals += 1;
            let deferral = pending.deferrals;
            for stamp_key in stamp_keys {
                if pending.tags.len() >= MAX_PENDING_TAGS && !pending.tags.contains_key(&stamp_key)
                {
                    dropped += 1;
                } else if pending.tags.insert(stamp_key, deferral).is_none() {
                    deferred += 1;
                }
            }
            TAG_INVALIDATIONS_PENDING.set(pending.tags.len() as i64);
        }
        count_tag_invalidations(TagInvalidation::Deferred, deferred);
        if dropped > 0 {
            tracing::error!(
                dropped,
                "too many cache tags wait for Redis; their entries live until their TTL"
            );
            count_tag_invalidations(TagInvalidation::Dropped, dropped);
        }
        self.retry_now.notify_one();
    }

    /// New stamps for `stamp_keys` and the message naming them, atomically.
    async fn publish(&self, stamp_keys: &[String]) -> Result<(), RedisUnavailable> {
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        let mut message = String::new();
        for stamp_key in stamp_keys {
            // Never 0: that is the stamp of a tag never written.
            let stamp = rand::random::<u64>() | 1;
            pipeline
                .set_ex(stamp_key, stamp, self.stamp_ttl.as_secs())
                .ignore();
            message.push_str(stamp_key);
            message.push('\n');
        }
        pipeline.publish(CHANNEL, message).ignore();
        self.redis
            .call(|mut connection| async move { pipeline.query_async::<()>(&mut connection).await })
            .await
    }

    /// Retries the pending tags until `shutdown`.
    pub(super) async fn run_retries(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.retry_now.notified() => tokio::time::sleep(RETRY_INTERVAL).await,
                _ = tokio::time::sleep(RETRY_INTERVAL) => {}
            }
            let snapshot: Vec<(String, u64)> = {
                let pending = self.pending.lock().expect("pending tags poisoned");
                pending
                    .tags
                    .iter()
                    .map(|(stamp_key, deferral)| (stamp_key.clone(), *deferral))
                    .collect()
            };
            for chunk in snapshot.chunks(RETRY_CHUNK) {
                let stamp_keys: Vec<String> = chunk
                    .iter()
                    .map(|(stamp_key, _)| stamp_key.clone())
                    .collect();
                if self.publish(&stamp_keys).await.is_err() {
                    break;
                }
                let mut pending = self.pending.lock().expect("pending tags poisoned");
                for (stamp_key, deferral) in chunk {
                    if pending.tags.get(stamp_key) == Some(deferral) {
                        pending.tags.remove(stamp_key);
                    }
                }
                TAG_INVALIDATIONS_PENDING.set(pending.tags.len() as i64);
                count_tag_invalidations(TagInvalidation::Published, chunk.len());
                tracing::info!(
                    tags = chunk.len(),
                    "deferred cache invalidations reached Redis"
                );
            }
        }
    }
}
