//! Which subscriptions each tenant holds, cached briefly in process (bounded by tenant count): the
//! events consumer asks for every tenant of a batch, and most tenants subscribe to nothing. A new
//! or deleted subscription is seen within the TTL; a deleted one costs nothing meanwhile, because
//! storing a send for it finds no subscription and stores nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_domain::status_events::EventFilter;
use herald_domain::DeliveryStatus;
use herald_store::{webhook_subscriptions, Database, StoreError};
use moka::future::Cache;
use uuid::Uuid;

/// One subscription's id and the filters its `events` list.
#[derive(Debug, Clone)]
pub struct CachedSubscription {
    pub id: Uuid,
    pub filters: Vec<EventFilter>,
}

impl CachedSubscription {
    pub fn wants(&self, status: DeliveryStatus) -> bool {
        self.filters.iter().any(|filter| filter.matches(status))
    }
}

#[derive(Clone)]
pub struct SubscriptionCache {
    database: Database,
    tenants: Cache<Uuid, Arc<Vec<CachedSubscription>>>,
}

impl SubscriptionCache {
    pub fn new(database: Database, ttl: Duration, max_tenants: u64) -> SubscriptionCache {
        SubscriptionCache {
            database,
            tenants: Cache::builder()
                .max_capacity(max_tenants)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The subscriptions of each of `tenant_ids`, loading the ones not cached in one statement.
    pub async fn of_tenants(
        &self,
        tenant_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<Vec<CachedSubscription>>>, StoreError> {
        let mut found = HashMap::with_capacity(tenant_ids.len());
        let mut missing = Vec::new();
        for tenant_id in tenant_ids {
            match self.tenants.get(tenant_id).await {
                Some(subscriptions) => {
                    found.insert(*tenant_id, subscriptions);
                }
                None if !missing.contains(tenant_id) => missing.push(*tenant_id),
                None => {}
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let mut loaded: HashMap<Uuid, Vec<CachedSubscription>> = missing
            .iter()
            .map(|tenant_id| (*tenant_id, Vec::new()))
            .collect();
        for row in webhook_subscriptions::filters_of_tenants(&self.database, &missing).await? {
            // The API stores only names it parsed; anything else is ignored, never a panic.
            let filters = row
                .events
                .iter()
                .filter_map(|name| EventFilter::parse(name))
                .collect();
            loaded
                .entry(row.tenant_id)
                .or_default()
                .push(CachedSubscription {
                    id: row.id,
                    filters,
                });
        }
        for (tenant_id, subscriptions) in loaded {
            let subscriptions = Arc::new(subscriptions);
            self.tenants.insert(tenant_id, subscriptions.clone()).await;
            found.insert(tenant_id, subscriptions);
        }
        Ok(found)
    }
}
