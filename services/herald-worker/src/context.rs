//! What the worker's tasks share.

use std::sync::Arc;

use herald_domain::{Channel, ProviderId};
use herald_store::Database;

use crate::backoff::RetryPolicy;
use crate::cancellations::CancelledNotifications;
use crate::content::ContentCache;
use crate::lane::{Lane, SendServices};
use crate::recipients::Recipients;
use crate::recorder::RecorderHandle;
use crate::routing::Router;
use crate::session::Session;
use crate::templates::TemplateCache;
use herald_domain::unsubscribe::UnsubscribeLinks;

pub struct WorkerContext {
    pub database: Database,
    pub session: Arc<Session>,
    pub recorder: RecorderHandle,
    pub lanes: Lanes,
    pub contents: ContentCache,
    /// Evaluates notifications' routing rules (their templates are applied by `contents`).
    pub router: Router,
    pub templates: TemplateCache,
    /// Signs email deliveries' unsubscribe links, when they are on.
    pub unsubscribe_links: Option<Arc<UnsubscribeLinks>>,
    pub recipients: Recipients,
    pub retry_policy: RetryPolicy,
    /// Cancelled notifications: their held deliveries are cancelled before their calls.
    pub cancelled: Arc<CancelledNotifications>,
    /// The Kafka consumer group, as spans name it.
    pub consumer_group: String,
}

impl WorkerContext {
    /// What the lanes' sends need of it.
    pub fn send_services(&self) -> SendServices {
        SendServices {
            session: self.session.clone(),
            recorder: self.recorder.clone(),
            retry_policy: self.retry_policy,
            cancelled: self.cancelled.clone(),
            templates: self.templates.clone(),
            unsubscribe_links: self.unsubscribe_links.clone(),
        }
    }
}

/// One lane per provider; each channel is served by one of them.
#[derive(Clone)]
pub struct Lanes(Vec<Arc<Lane>>);

impl Lanes {
    pub fn new(lanes: Vec<Arc<Lane>>) -> Lanes {
        Lanes(lanes)
    }

    pub fn for_channel(&self, channel: Channel) -> Option<&Arc<Lane>> {
        self.0.iter().find(|lane| lane.channel() == channel)
    }

    pub fn for_provider(&self, provider: ProviderId) -> Option<&Arc<Lane>> {
        self.0.iter().find(|lane| lane.provider() == provider)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Lane>> {
        self.0.iter()
    }
}
