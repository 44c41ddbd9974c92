//! What notifications name besides their recipients, resolved at acceptance through the tag
//! cache: a group id to the tenant's live group, a template id (and version) to the version a
//! notification is pinned to and the channels it has. Each is read from PostgreSQL once per
//! change rather than once per request, and a change is seen by the next request on every replica
//! (docs/DESIGN.md, "The tag cache").

use std::collections::HashMap;

use herald_store::metrics::CacheKind;
use herald_store::tag_cache::{Lookup, Tag, TagCache, TagCaches};
use herald_store::templates::ResolvedTemplate;
use herald_store::{Database, StoreError};
use uuid::Uuid;

pub struct ReferenceCaches {
    groups: TagCache<Uuid>,
    templates: TagCache<ResolvedTemplate>,
}

/// The kinds this module caches, for their metrics.
pub const REFERENCE_CACHE_KINDS: [CacheKind; 2] =
    [CacheKind::GroupReference, CacheKind::TemplateReference];

impl ReferenceCaches {
    pub fn new(tag_caches: &TagCaches) -> ReferenceCaches {
        ReferenceCaches {
            groups: tag_caches.cache(CacheKind::GroupReference),
            templates: tag_caches.cache(CacheKind::TemplateReference),
        }
    }

    /// The tenant's live groups among `group_ids` (distinct), by id.
    pub async fn groups(
        &self,
        database: &Database,
        tenant_id: Uuid,
        group_ids: &[String],
    ) -> Result<HashMap<String, Uuid>, StoreError> {
        let lookup = |group_id: &String| Lookup {
            key: format!("{tenant_id}:{group_id}"),
            tags: vec![Tag::group(tenant_id, group_id)],
        };
        self.groups
            .get_map(group_ids, lookup, |wanted| async move {
                herald_store::groups::resolve_live_groups(database, tenant_id, &wanted).await
            })
            .await
    }

    /// The versions `wanted` (distinct template ids, each with a version or the latest) name among
    /// the tenant's live templates.
    pub async fn templates(
        &self,
        database: &Database,
        tenant_id: Uuid,
        wanted: &[(String, Option<i32>)],
    ) -> Result<HashMap<(String, Option<i32>), ResolvedTemplate>, StoreError> {
        let lookup = |(template_id, version): &(String, Option<i32>)| Lookup {
            key: match version {
                Some(version) => format!("{tenant_id}:{version}:{template_id}"),
                None => format!("{tenant_id}:latest:{template_id}"),
            },
            tags: vec![Tag::template(tenant_id, template_id)],
        };
        self.templates
            .get_map(wanted, lookup, |asked| async move {
                herald_store::templates::resolve_templates(database, tenant_id, &asked).await
            })
            .await
    }
}
