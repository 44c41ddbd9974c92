//! The contact of the chat platforms' incoming webhooks (Slack, Discord): a URL the recipient's
//! workspace made, called by the tenant-URL client, bounded per URL within the lane.

use herald_domain::tenant_url::{public_https_url_schema, url_problem};
use herald_domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A Slack or Discord incoming-webhook URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUrlContact {
    #[schema(
        example = "https://hooks.slack.com/services/T000/B000/XXXX",
        schema_with = public_https_url_schema
    )]
    pub webhook_url: String,
}

impl WebhookUrlContact {
    pub fn problems(&self, allow_private_networks: bool) -> Vec<FieldError> {
        url_problem("webhook_url", &self.webhook_url, allow_private_networks)
            .into_iter()
            .collect()
    }

    /// The webhook's URL without its query: the platform's host is shared by every tenant, the
    /// URL is one tenant's channel.
    pub fn destination_key(&self) -> Option<String> {
        let mut url = reqwest::Url::parse(&self.webhook_url).ok()?;
        url.set_query(None);
        url.set_fragment(None);
        Some(url.to_string())
    }
}

/// The [`ChannelKind`](crate::kind::ChannelKind) of a chat platform's incoming webhooks, for its
/// sender `$sender` (built with the tenant-URL client) on `$channel`: the contact is a
/// [`WebhookUrlContact`], each URL a destination bounded on its own, a 429 that URL's alone, and
/// only the lane is configured.
#[macro_export]
macro_rules! incoming_webhook_kind {
    ($sender:ident, $channel:expr) => {
        impl $crate::kind::ChannelKind for $sender {
            const CHANNEL: herald_domain::Channel = $channel;
            const PROVIDER: herald_domain::ProviderId = PROVIDER;
            const RATE_LIMIT_SCOPE: $crate::kind::RateLimitScope =
                $crate::kind::RateLimitScope::Destination;
            const TENANT_DESTINATIONS: bool = true;
            type Contact = $crate::incoming_webhook::WebhookUrlContact;
            type ContactView = $crate::incoming_webhook::WebhookUrlContact;
            type Settings = $crate::settings::LaneSettings;

            fn contact_problems(
                contact: &$crate::incoming_webhook::WebhookUrlContact,
                allow_private_networks: bool,
            ) -> Vec<herald_domain::FieldError> {
                contact.problems(allow_private_networks)
            }

            fn view(
                contact: &$crate::incoming_webhook::WebhookUrlContact,
            ) -> $crate::incoming_webhook::WebhookUrlContact {
                contact.clone()
            }

            fn destination_key(
                contact: &$crate::incoming_webhook::WebhookUrlContact,
            ) -> Option<String> {
                contact.destination_key()
            }

            fn sender(
                _: &$crate::settings::LaneSettings,
                clients: &$crate::kind::HttpClients,
            ) -> anyhow::Result<std::sync::Arc<dyn $crate::provider::Provider>> {
                Ok(std::sync::Arc::new($sender::new(
                    clients.tenant_urls.clone(),
                    clients.allow_private_networks,
                )))
            }
        }
    };
}
