//! Compiled template versions, cached in process (docs/DESIGN.md, "Templates"). A version never
//! changes once written, so an entry is never stale: no invalidation, only a bound in entries.

use std::sync::Arc;

use herald_domain::templates::{CompiledTemplate, TemplateDefinition};
use herald_store::metrics::{count_cache_lookups, CacheKind, CacheResult};
use herald_store::Database;
use moka::future::Cache;
use uuid::Uuid;

type TemplateKey = (Uuid, String, i32);

/// Why a template version could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateUnavailable {
    /// PostgreSQL did not answer: the delivery is tried again later.
    #[error("the template could not be read: {0}")]
    Retryable(String),
    /// The version is not stored (its tenant deleted?) or no longer compiles: sending is pointless.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Clone)]
pub struct TemplateCache {
    database: Database,
    compiled: Cache<TemplateKey, Arc<CompiledTemplate>>,
}

impl TemplateCache {
    pub fn new(database: Database, max_entries: u64) -> TemplateCache {
        TemplateCache {
            database,
            compiled: Cache::builder().max_capacity(max_entries).build(),
        }
    }

    /// The tenant's template `template_id` at `version`, compiled; concurrent misses of one
    /// version read and compile it once.
    pub async fn get(
        &self,
        tenant_id: Uuid,
        template_id: &str,
        version: i32,
    ) -> Result<Arc<CompiledTemplate>, TemplateUnavailable> {
        let key = (tenant_id, template_id.to_owned(), version);
        if let Some(compiled) = self.compiled.get(&key).await {
            count_cache_lookups(CacheKind::Template, CacheResult::Hit, 1);
            return Ok(compiled);
        }
        count_cache_lookups(CacheKind::Template, CacheResult::Miss, 1);
        let database = self.database.clone();
        let template_id = template_id.to_owned();
        self.compiled
            .try_get_with(key, async move {
                let stored = herald_store::templates::load_version(
                    &database,
                    tenant_id,
                    &template_id,
                    version,
                )
                .await
                .map_err(|error| TemplateUnavailable::Retryable(error.to_string()))?
                .ok_or_else(|| {
                    TemplateUnavailable::Permanent(format!(
                        "template `{template_id}` version {version} no longer exists"
                    ))
                })?;
                // Compiling is CPU work bounded by the sources (512 KiB at most): off the runtime.
                tokio::task::spawn_blocking(move || compile(&template_id, version, stored))
                    .await
                    .map_err(|error| TemplateUnavailable::Retryable(error.to_string()))?
                    .map(Arc::new)
            })
            .await
            .map_err(|error| (*error).clone())
    }
}

fn compile(
    template_id: &str,
    version: i32,
    stored: serde_json::Value,
) -> Result<CompiledTemplate, TemplateUnavailable> {
    let definition: TemplateDefinition = serde_json::from_value(stored).map_err(|error| {
        TemplateUnavailable::Permanent(format!(
            "template `{template_id}` version {version} does not parse: {error}"
        ))
    })?;
    definition.validate().map_err(|problems| {
        TemplateUnavailable::Permanent(format!(
            "template `{template_id}` version {version} no longer compiles: {}",
            problems
                .iter()
                .map(|problem| format!("{}: {}", problem.field, problem.problem))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}
