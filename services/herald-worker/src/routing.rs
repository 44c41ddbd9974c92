//! Routing rules, evaluated per notification (docs/DESIGN.md, "Routing rules"). A notification
//! carries the version of its tenant's rules when it was accepted; versions never change, so the
//! compiled ones are cached in process with only a bound in entries, and every worker, at every
//! admission of the notification's records (a group's pages, a redelivery), decides the same.

use std::collections::HashMap;
use std::sync::Arc;

use herald_domain::routing::{CompiledRuleSet, Decision, RuleSet};
use herald_store::metrics::{count_cache_lookups, CacheKind, CacheResult};
use herald_store::notifications::NotificationContent;
use herald_store::{Database, StoreError};
use moka::future::Cache;
use uuid::Uuid;

/// Compiled rule versions a worker keeps (one or a few per tenant with rules).
const MAX_CACHED_RULE_SETS: u64 = 10_000;

#[derive(Clone)]
pub struct Router {
    database: Database,
    compiled: Cache<(Uuid, i32), Arc<CompiledRuleSet>>,
}

impl Router {
    pub fn new(database: Database) -> Router {
        Router {
            database,
            compiled: Cache::builder().max_capacity(MAX_CACHED_RULE_SETS).build(),
        }
    }

    /// What each notification's rules chose for it, by notification id: those with rules only
    /// (`None`: no rule held). Evaluated on the blocking pool: a tenant's rules at their bounds
    /// (50 rules of 10 conditions on 8-level fields) cost tens of microseconds per notification
    /// (the `routing` bench), which a batch of them would hold the runtime for.
    pub async fn decide_all(
        &self,
        contents: &[Arc<NotificationContent>],
    ) -> Result<HashMap<Uuid, Option<Decision>>, StoreError> {
        let mut routed = Vec::new();
        for content in contents {
            let Some(version) = content.routing_rules_version else {
                continue;
            };
            let rules = self.rule_set(content.tenant_id, version).await?;
            routed.push((content.clone(), rules));
        }
        if routed.is_empty() {
            return Ok(HashMap::new());
        }
        tokio::task::spawn_blocking(move || {
            routed
                .iter()
                .map(|(content, rules)| (content.id, rules.decide(&content.data).cloned()))
                .collect()
        })
        .await
        .map_err(|error| StoreError::Unavailable(format!("routing rules' evaluation: {error}")))
    }

    async fn rule_set(
        &self,
        tenant_id: Uuid,
        version: i32,
    ) -> Result<Arc<CompiledRuleSet>, StoreError> {
        let key = (tenant_id, version);
        if let Some(compiled) = self.compiled.get(&key).await {
            count_cache_lookups(CacheKind::RoutingRules, CacheResult::Hit, 1);
            return Ok(compiled);
        }
        count_cache_lookups(CacheKind::RoutingRules, CacheResult::Miss, 1);
        let database = self.database.clone();
        self.compiled
            .try_get_with(key, async move {
                let stored =
                    herald_store::routing_rules::load_rule_set(&database, tenant_id, version)
                        .await?;
                Ok::<_, StoreError>(Arc::new(compile(tenant_id, version, stored)))
            })
            .await
            // Shared by the concurrent misses of one version; the batch is retried.
            .map_err(|error| StoreError::Unavailable(error.to_string()))
    }
}

/// The stored version, compiled; one that is gone or no longer compiles routes nothing (the
/// notification is sent as written), which is logged: the API refused such rules when written.
fn compile(
    tenant_id: Uuid,
    version: i32,
    stored: Option<herald_store::routing_rules::StoredRuleSet>,
) -> CompiledRuleSet {
    let compiled = stored
        .ok_or_else(|| "the version is not stored".to_owned())
        .and_then(|stored| {
            serde_json::from_value::<RuleSet>(stored.rules).map_err(|error| error.to_string())
        })
        .and_then(|rules| {
            rules.compile().map_err(|problems| {
                problems
                    .iter()
                    .map(|problem| format!("{}: {}", problem.field, problem.problem))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
    compiled.unwrap_or_else(|problem| {
        tracing::error!(%tenant_id, version, %problem, "routing rules that cannot be evaluated: none applied");
        RuleSet::default()
            .compile()
            .expect("an empty rule set compiles")
    })
}
