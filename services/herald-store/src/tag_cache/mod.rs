//! The tag-invalidated cache (docs/DESIGN.md, "The tag cache"): values read from PostgreSQL kept
//! in Redis and in process, each entry registered under the tags of what it was read from; a
//! write invalidates exactly its tags on every replica.
//!
//! - Every tag has a **stamp** in Redis: a random number a write replaces ([`TagInvalidator`]),
//!   together with a pub/sub message naming the tag, in one `MULTI`. A tag never written, or
//!   whose stamp expired, reads as stamp 0. Random rather than counted, so that a Redis that lost
//!   its data can never hand out again a stamp an old entry was filled under.
//! - An entry is stored with the stamps its tags had **before** its value was read from
//!   PostgreSQL; a write between the two replaces a stamp, so the entry is stale at birth and never
//!   used: no stale write-back.
//! - Every read checks the entry's stamps against the tags' current stamps in Redis, in the same
//!   `MGET` that fetches the entry (in process: the stamps alone). A write acknowledged before a read
//!   began is therefore seen by that read on every replica, whatever pub/sub has delivered.
//! - The pub/sub message evicts the tag's in-process entries early ([`TagSubscription`]); while
//!   the subscription is down, the in-process layer is emptied and unused.
//! - Redis unreachable: reads go to PostgreSQL (counted as `error`), writes still succeed and
//!   their invalidations are retried in the background; until they are, this process reads from
//!   PostgreSQL too.

mod invalidation;
mod local;
mod lookup;
mod subscription;

use std::time::Duration;

use herald_config::CacheSettings;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cache::Redis;
use crate::metrics::CacheKind;

pub use invalidation::TagInvalidator;
pub use lookup::{Lookup, TagCache};
pub use subscription::TagSubscription;

/// The pub/sub channel on which writes name the tags they invalidated.
const CHANNEL: &str = "herald:tags";

/// What an entry was read from: a write to it invalidates every entry registered under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tag {
    /// A tenant's template, any version (`PUT`/`DELETE /v1/templates/{id}`).
    Template {
        tenant_id: Uuid,
        template_id: String,
    },
    /// A tenant's group, by the id the tenant gave it (`PUT`/`DELETE /v1/groups/{id}`).
    Group { tenant_id: Uuid, group_id: String },
    /// A tenant's user: contacts and preferences (`PUT`/`DELETE /v1/users/{id}`, its preferences,
    /// an unsubscribe link followed).
    User { tenant_id: Uuid, user_id: String },
}

impl Tag {
    pub fn template(tenant_id: Uuid, template_id: &str) -> Tag {
        Tag::Template {
            tenant_id,
            template_id: template_id.to_owned(),
        }
    }

    pub fn group(tenant_id: Uuid, group_id: &str) -> Tag {
        Tag::Group {
            tenant_id,
            group_id: group_id.to_owned(),
        }
    }

    pub fn user(tenant_id: Uuid, user_id: &str) -> Tag {
        Tag::User {
            tenant_id,
            user_id: user_id.to_owned(),
        }
    }

    pub fn tenant_id(&self) -> Uuid {
        match self {
            Tag::Template { tenant_id, .. }
            | Tag::Group { tenant_id, .. }
            | Tag::User { tenant_id, .. } => *tenant_id,
        }
    }

    /// The Redis key of the tag's stamp. The id comes last, so any id is unambiguous.
    pub fn stamp_key(&self) -> String {
        match self {
            Tag::Template {
                tenant_id,
                template_id,
            } => format!("herald:tag:{tenant_id}:template:{template_id}"),
            Tag::Group {
                tenant_id,
                group_id,
            } => format!("herald:tag:{tenant_id}:group:{group_id}"),
            Tag::User { tenant_id, user_id } => format!("herald:tag:{tenant_id}:user:{user_id}"),
        }
    }
}

/// Stamps live this much longer than entries: an entry filled under a tag's "never written" stamp
/// must expire before the tag's stamp can expire back to "never written".
fn stamp_ttl(entry_ttl: Duration) -> Duration {
    entry_ttl * 2 + Duration::from_secs(60)
}

/// One process's tag cache: its subscription, its invalidations, and the caches made from it.
#[derive(Clone)]
pub struct TagCaches {
    redis: Redis,
    settings: CacheSettings,
    subscription: TagSubscription,
    invalidator: TagInvalidator,
}

impl TagCaches {
    pub fn new(redis: Redis, settings: CacheSettings) -> TagCaches {
        let entry_ttl = Duration::from_secs(settings.ttl_seconds);
        TagCaches {
            invalidator: TagInvalidator::new(redis.clone(), stamp_ttl(entry_ttl)),
            subscription: TagSubscription::new(),
            redis,
            settings,
        }
    }

    /// A cache of values of `kind`, its in-process layer evicted by this process's subscription.
    pub fn cache<V>(&self, kind: CacheKind) -> TagCache<V>
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let cache = TagCache::new(
            kind,
            self.redis.clone(),
            &self.settings,
            self.subscription.clone(),
            self.invalidator.clone(),
        );
        self.subscription.register(cache.local_layer());
        cache
    }

    /// Whether this process hears invalidations (and so keeps in-process entries).
    pub fn is_subscribed(&self) -> bool {
        self.subscription.is_subscribed()
    }

    /// What writes call after they commit.
    pub fn invalidator(&self) -> &TagInvalidator {
        &self.invalidator
    }

    /// Keeps the subscription and retries invalidations that failed, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(
            self.subscription
                .run(self.redis.clone(), CHANNEL, shutdown.clone()),
            self.invalidator.run_retries(shutdown.clone()),
        );
    }
}

/// A stamp as Redis answered it: absent (never written, or expired) is 0.
fn parse_stamp(value: Option<&str>) -> Option<u64> {
    match value {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}
