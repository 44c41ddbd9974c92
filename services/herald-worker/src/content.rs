//! Notification content, read once from PostgreSQL and cached in process (bounded in bytes): a
//! notification to 10,000 recipients is rendered from one read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_store::metrics::{count_cache_lookups, CacheKind, CacheResult};
use herald_store::notifications::{self, NotificationContent};
use herald_store::{Database, StoreError};
use moka::future::Cache;
use uuid::Uuid;

use herald_domain::routing::Decision;

use crate::routing::Router;

const CONTENT_TTL: Duration = Duration::from_secs(600);

/// A notification's content as the worker sends it: with what its routing rules chose, and the
/// rule's template (if any) already in place of its own content.
#[derive(Clone)]
pub struct LoadedContent {
    pub content: Arc<NotificationContent>,
    /// `None` without rules, or when none of them held.
    pub routing: Option<Arc<Decision>>,
}

#[derive(Clone)]
pub struct ContentCache {
    database: Database,
    cache: Cache<Uuid, LoadedContent>,
    /// A rule's template replaces the notification's own content as it is read, so every path
    /// that renders (admission, the queue's pump, retries) renders the same.
    router: Router,
}

impl ContentCache {
    pub fn new(database: Database, max_bytes: u64, router: Router) -> ContentCache {
        ContentCache {
            database,
            router,
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_id, loaded: &LoadedContent| {
                    u32::try_from(loaded.content.weight()).unwrap_or(u32::MAX)
                })
                .time_to_live(CONTENT_TTL)
                .build(),
        }
    }

    /// The content of the notifications that exist among `ids`; missing ones are absent.
    pub async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, LoadedContent>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut misses = Vec::new();
        for id in ids {
            match self.cache.get(id).await {
                Some(content) => {
                    found.insert(*id, content);
                }
                None => misses.push(*id),
            }
        }
        count_cache_lookups(CacheKind::Content, CacheResult::Hit, found.len() as u64);
        count_cache_lookups(CacheKind::Content, CacheResult::Miss, misses.len() as u64);
        if misses.is_empty() {
            return Ok(found);
        }
        let loaded: Vec<Arc<NotificationContent>> =
            notifications::load_content(&self.database, &misses)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect();
        // Decided once, as the content is read: admission, the queue's pump and retries all
        // send by the same decision, and render the same template.
        let mut decisions = self.router.decide_all(&loaded).await?;
        for mut content in loaded {
            let routing = decisions.remove(&content.id).flatten().map(Arc::new);
            if let Some((template_id, version)) = routing
                .as_ref()
                .and_then(|decision| decision.template.clone())
            {
                let content = Arc::make_mut(&mut content);
                content.template_id = Some(template_id);
                content.template_version = Some(version);
            }
            let id = content.id;
            let loaded = LoadedContent { content, routing };
            // A notification with one delivery is read once: caching it would only cost.
            if loaded.content.deliveries > 1 {
                self.cache.insert(id, loaded.clone()).await;
            }
            found.insert(id, loaded);
        }
        // moka's size is eventually consistent: good enough for a gauge that explains memory.
        crate::metrics::CONTENT_CACHE_BYTES.set(self.cache.weighted_size() as i64);
        Ok(found)
    }
}
