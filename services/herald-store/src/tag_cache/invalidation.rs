//! Invalidating tags after a write: a new random stamp for each tag and one pub/sub message naming
//! them, in one `MULTI`. A write never fails because Redis does: what could not be invalidated is
//! retried in the background, and meanwhile this process's caches read from PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Tag, CHANNEL};
use crate::cache::{Redis, RedisUnavailable};
use crate::metrics::{count_tag_invalidations, TagInvalidation, TAG_INVALIDATIONS_PENDING};

/// Tags waiting for Redis at most; beyond it a tag is dropped (counted, logged) and its entries
/// live until their TTL.
const MAX_PENDING_TAGS: usize = 100_000;
/// Of those, the most one tenant's writes may hold: a tenant writing its users by the thousand
/// while Redis is away fills its own share, never the others' (whose tags would be dropped).
const MAX_PENDING_TAGS_PER_TENANT: usize = 10_000;
/// Pending tags per retried `MULTI`.
const RETRY_CHUNK: usize = 1000;
/// Pending tags retried at least this often.
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// The tags whose invalidation has not reached Redis, each with its tenant and the number of the
/// failure that last deferred it: a retry forgets a tag only if no write deferred it again
/// meanwhile (that write may have committed after the retry's stamp, and needs one of its own).
#[derive(Default)]
struct PendingTags {
    tags: HashMap<String, PendingTag>,
    per_tenant: HashMap<Uuid, usize>,
    deferrals: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct PendingTag {
    tenant_id: Uuid,
    deferral: u64,
}

impl PendingTags {
    /// Holds `stamp_key` for a retry, unless a bound is reached (then it is dropped).
    fn hold(&mut self, tenant_id: Uuid, stamp_key: String, deferral: u64) -> Held {
        if let Some(pending) = self.tags.get_mut(&stamp_key) {
            pending.deferral = deferral;
            return Held::Again;
        }
        let tenant_pending = self.per_tenant.get(&tenant_id).copied().unwrap_or(0);
        if self.tags.len() >= MAX_PENDING_TAGS || tenant_pending >= MAX_PENDING_TAGS_PER_TENANT {
            return Held::Dropped;
        }
        self.tags.insert(
            stamp_key,
            PendingTag {
                tenant_id,
                deferral,
            },
        );
        *self.per_tenant.entry(tenant_id).or_default() += 1;
        Held::New
    }

    /// Forgets `stamp_key` if it is still pending as of `deferral`.
    fn forget(&mut self, stamp_key: &str, deferral: u64) {
        let Some(pending) = self.tags.get(stamp_key).copied() else {
            return;
        };
        if pending.deferral != deferral {
            return;
        }
        self.tags.remove(stamp_key);
        if let Some(count) = self.per_tenant.get_mut(&pending.tenant_id) {
            *count -= 1;
            if *count == 0 {
                self.per_tenant.remove(&pending.tenant_id);
            }
        }
    }
}

enum Held {
    New,
    Again,
    Dropped,
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
                self.defer(tags);
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

    fn defer(&self, tags: &[Tag]) {
        let mut dropped = 0;
        let mut deferred = 0;
        {
            let mut pending = self.pending.lock().expect("pending tags poisoned");
            pending.deferrals += 1;
            let deferral = pending.deferrals;
            for tag in tags {
                match pending.hold(tag.tenant_id(), tag.stamp_key(), deferral) {
                    Held::New => deferred += 1,
                    Held::Again => {}
                    Held::Dropped => dropped += 1,
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
                    .map(|(stamp_key, pending)| (stamp_key.clone(), pending.deferral))
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
                    pending.forget(stamp_key, *deferral);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenants_pending_tags_never_crowd_out_anothers() {
        let (attacker, neighbour) = (Uuid::new_v4(), Uuid::new_v4());
        let mut pending = PendingTags::default();
        let held = |pending: &mut PendingTags, tenant, key: String| {
            matches!(pending.hold(tenant, key, 1), Held::New)
        };
        let attackers_held = (0..MAX_PENDING_TAGS_PER_TENANT * 2)
            .filter(|user| held(&mut pending, attacker, format!("a:{user}")))
            .count();
        assert_eq!(attackers_held, MAX_PENDING_TAGS_PER_TENANT);
        assert!(
            held(&mut pending, neighbour, "b:user".into()),
            "the neighbour's tag is held"
        );

        // A tag deferred again during a retry stays; the others are forgotten and freed.
        assert!(matches!(
            pending.hold(attacker, "a:0".into(), 2),
            Held::Again
        ));
        pending.forget("a:0", 1);
        pending.forget("a:1", 1);
        assert!(pending.tags.contains_key("a:0"));
        assert!(!pending.tags.contains_key("a:1"));
        assert_eq!(
            pending.per_tenant[&attacker],
            MAX_PENDING_TAGS_PER_TENANT - 1
        );
        assert!(
            held(&mut pending, attacker, "a:again".into()),
            "its share has room again"
        );
    }
}
