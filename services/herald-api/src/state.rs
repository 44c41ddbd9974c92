//! What handlers share.

use herald_domain::ValidationLimits;
use herald_kafka::HeraldProducer;
use herald_store::Database;

use crate::ingest::{IngestHandle, RequestBytes};
use crate::read_permits::ReadPermits;

pub struct AppState {
    pub database: Database,
    pub redis: herald_store::cache::Redis,
    /// Groups and templates named by notifications, resolved through the tag cache.
    pub references: crate::references::ReferenceCaches,
    /// What every write to a cached thing calls once it committed (docs/DESIGN.md, "The tag
    /// cache").
    pub cache_invalidator: herald_store::tag_cache::TagInvalidator,
    pub producer: HeraldProducer,
    pub topic: String,
    pub ingest: IngestHandle,
    pub request_bytes: RequestBytes,
    pub read_permits: ReadPermits,
    /// Each tenant's ingest rate limit, shared by the replicas through Redis.
    pub tenant_limits: std::sync::Arc<crate::tenant_limits::TenantLimits>,
    pub limits: RequestLimits,
    /// Whether recipients' URLs may point at loopback and private networks (`outbound`).
    pub allow_private_networks: bool,
    /// Bounds of groups and their members (`groups`).
    pub groups: herald_config::GroupsSettings,
    /// Bounds of templates and their versions (`templates`).
    pub templates: herald_config::TemplatesSettings,
    /// Verifies (and, for previews, signs) unsubscribe links; `None` while they are off.
    pub unsubscribe_links: Option<herald_domain::unsubscribe::UnsubscribeLinks>,
}

#[derive(Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (408 beyond).
    pub body_read_timeout: std::time::Duration,
    pub max_batch_items: usize,
    pub validation: ValidationLimits,
}
