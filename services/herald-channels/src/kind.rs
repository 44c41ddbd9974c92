//! What a channel whose contact lives in a user's `channel_data` is: a plug-in. Its module
//! implements [`ChannelKind`] (the contact as the API takes and answers it, the provider's
//! settings, how its destinations are bounded, and its sender), and one line of
//! [`channel_kinds!`](crate::channel_kinds) in `lib.rs` registers it. Everything that lists
//! channels (`ChannelData`, `Contact`, `[providers.*]`, the worker's lanes) is generated from
//! that list, so nothing else names the channel but herald-domain's vocabularies, which the
//! database enforces (a new name is a migration).
//!
//! Email and SMS are not kinds: their contacts are the user's own `email` and `phone` columns,
//! and email has a failover provider (SMTP) within SendGrid's lane.

use std::fmt;
use std::sync::Arc;

use herald_domain::{Channel, FieldError, ProviderId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::provider::Provider;
use crate::settings::ProviderSection;

/// What a provider's 429 answer limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitScope {
    /// Herald's account with the provider (SendGrid's and Twilio's API limits): every replica's
    /// lane slows down and honours its `Retry-After`.
    Account,
    /// One destination (a Slack or Discord webhook, a Telegram chat, a recipient's endpoint):
    /// only that delivery waits, by its retry delay; the lane goes on for everyone else.
    Destination,
}

/// The HTTP clients a sender may use (docs/DESIGN.md, "Tenant destinations").
#[derive(Clone)]
pub struct HttpClients {
    /// For providers' own APIs at configured URLs (SendGrid, Twilio, Telegram, Pushover).
    pub provider_apis: reqwest::Client,
    /// For URLs that tenants gave: resolves names only to public addresses and follows no
    /// redirect ([`crate::outbound::guarded_client`]).
    pub tenant_urls: reqwest::Client,
    /// Tenants' URLs may lead to loopback and private networks: local runs and tests only.
    pub allow_private_networks: bool,
}

/// A channel whose contact is `channel_data.<channel>`, and the provider that sends it.
pub trait ChannelKind: 'static {
    /// The names of herald-domain's vocabularies (and the database's) for it.
    const CHANNEL: Channel;
    const PROVIDER: ProviderId;
    /// What a 429 from its provider limits.
    const RATE_LIMIT_SCOPE: RateLimitScope;

    /// `channel_data.<channel>` as the API takes it and the store keeps it.
    type Contact: Clone
        + fmt::Debug
        + PartialEq
        + Eq
        + Serialize
        + DeserializeOwned
        + utoipa::ToSchema
        + Send
        + Sync;
    /// The contact as the API answers it: secrets left out.
    type ContactView: Serialize + utoipa::ToSchema;
    /// `[providers.<provider>]`.
    type Settings: Clone + fmt::Debug + DeserializeOwned + ProviderSection;

    /// What is wrong with a contact the API was given, each problem naming its field below the
    /// contact (`webhook_url`, not `channel_data.slack.webhook_url`).
    fn contact_problems(contact: &Self::Contact, allow_private_networks: bool) -> Vec<FieldError>;

    fn view(contact: &Self::Contact) -> Self::ContactView;

    /// Whether the tenants choose where this channel's deliveries go (a URL in the contact); such
    /// a kind names each destination by [`ChannelKind::destination_key`].
    const TENANT_DESTINATIONS: bool = false;

    /// Where a delivery goes when the tenant chose it: each such destination is bounded on its own
    /// within the lane. `None` for a provider's own API.
    fn destination_key(_contact: &Self::Contact) -> Option<String> {
        None
    }

    fn sender(
        settings: &Self::Settings,
        clients: &HttpClients,
    ) -> anyhow::Result<Arc<dyn Provider>>;
}
