//! The process's subscription to invalidated tags. A message evicts the tags' in-process entries
//! at once. Pub/sub delivers at most once, so a message published while the subscription was down
//! is lost: whenever the subscription drops, every in-process entry is forgotten, and none is kept
//! until it is subscribed again. A lost message costs reads, never a stale value.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::cache::Redis;
use crate::metrics::TAG_SUBSCRIPTION_UP;

/// Subscribing again at most this often after the subscription dropped.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(1);

/// An in-process layer the subscription evicts from.
pub(super) trait LocalLayer: Send + Sync {
    /// Forgets the entries registered under any of `stamp_keys`.
    fn evict_tagged(&self, stamp_keys: Arc<HashSet<String>>);
    /// Forgets every entry.
    fn evict_all(&self);
}

#[derive(Clone, Default)]
pub struct TagSubscription {
    inner: Arc<SubscriptionInner>,
}

#[derive(Default)]
struct SubscriptionInner {
    subscribed: AtomicBool,
    layers: Mutex<Vec<Arc<dyn LocalLayer>>>,
}

impl TagSubscription {
    pub(super) fn new() -> TagSubscription {
        TagSubscription::default()
    }

    pub(super) fn register(&self, layer: Arc<dyn LocalLayer>) {
        self.inner
            .layers
            .lock()
            .expect("tag subscription poisoned")
            .push(layer);
    }

    /// Whether messages are being heard: only then may in-process entries be kept and used.
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::Acquire)
    }

    fn layers(&self) -> Vec<Arc<dyn LocalLayer>> {
        self.inner
            .layers
            .lock()
            .expect("tag subscription poisoned")
            .clone()
    }

    fn set_unsubscribed(&self) {
        self.inner.subscribed.store(false, Ordering::Release);
        TAG_SUBSCRIPTION_UP.set(0);
        for layer in self.layers() {
            layer.evict_all();
        }
    }

    /// Subscribes to `channel` and evicts what its messages name, subscribing again whenever the
    /// subscription drops, until `shutdown`.
    pub(super) async fn run(self, redis: Redis, channel: &str, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.listen(&redis, channel) => {}
            }
            self.set_unsubscribed();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RESUBSCRIBE_PAUSE) => {}
            }
        }
        self.set_unsubscribed();
    }

    /// One subscription, until it drops.
    async fn listen(&self, redis: &Redis, channel: &str) {
        let subscribed = tokio::time::timeout(redis.timeout() * 3, async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let mut pubsub = match subscribed {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(error)) => {
                tracing::debug!(%error, "subscribing to cache invalidations failed");
                return;
            }
            Err(_) => {
                tracing::debug!("subscribing to cache invalidations timed out");
                return;
            }
        };
        // Entries kept before this point may have missed a message; none is, since every layer
        // was emptied when the previous subscription dropped and nothing was kept since.
        self.inner.subscribed.store(true, Ordering::Release);
        TAG_SUBSCRIPTION_UP.set(1);
        tracing::info!("subscribed to cache invalidations");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let stamp_keys: Arc<HashSet<String>> = Arc::new(
                payload
                    .lines()
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
            for layer in self.layers() {
                layer.evict_tagged(stamp_keys.clone());
            }
        }
        tracing::warn!("the subscription to cache invalidations dropped; in-process entries forgotten until it is back");
    }
}
