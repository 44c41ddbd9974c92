//! Discord channel webhooks: `POST {webhook_url}?wait=true` of `{"content"}` (at most 2,000
//! characters); `200` with the created message, whose `id` is kept. A rate limit is `429` with
//! `Retry-After` (and `retry_after` in the body); an unknown webhook is `404` (code 10015), which
//! no retry mends.

use std::time::Duration;

use async_trait::async_trait;
use herald_domain::{Channel, ProviderId};
use serde::{Deserialize, Serialize};

use crate::classify::{classify_error_response, read_capped};
use crate::provider::{
    encode_json, truncate_chars, wrong_contact, OutgoingMessage, Provider, ProviderIdentity,
    SendOutcome,
};
use crate::tenant_endpoint::post_to_tenant_url;
use crate::Contact;

pub const PROVIDER: ProviderId = ProviderId::Discord;
/// Discord refuses a message whose `content` is longer.
pub const MAX_CONTENT_CHARS: usize = 2_000;
/// A created message is about a kilobyte; a larger answer is not believed.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

pub struct Discord {
    identity: ProviderIdentity,
    client: reqwest::Client,
    allow_private_networks: bool,
}

#[derive(Serialize)]
struct ExecuteWebhook {
    content: String,
    /// No `@everyone` or role pings from a notification's text.
    allowed_mentions: AllowedMentions,
}

#[derive(Serialize)]
struct AllowedMentions {
    parse: [&'static str; 0],
}

#[derive(Deserialize)]
struct CreatedMessage {
    id: String,
}

impl Discord {
    pub fn new(client: reqwest::Client, allow_private_networks: bool) -> Discord {
        Discord {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: "https://discord.com/api/webhooks".to_owned(),
            },
            client,
            allow_private_networks,
        }
    }

    /// The webhook URL asking Discord to answer with the created message.
    fn waiting_url(webhook_url: &str) -> String {
        let separator = if webhook_url.contains('?') { '&' } else { '?' };
        format!("{webhook_url}{separator}wait=true")
    }

    /// The Execute Webhook JSON body for `message`: all that `send` does before the network.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<Vec<u8>, SendOutcome> {
        let body = ExecuteWebhook {
            content: truncate_chars(&message.text(), MAX_CONTENT_CHARS),
            allowed_mentions: AllowedMentions { parse: [] },
        };
        encode_json(PROVIDER, &body)
    }
}

crate::incoming_webhook_kind!(Discord, Channel::Discord);

#[async_trait]
impl Provider for Discord {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let Contact::Discord(contact) = &message.contact else {
            return wrong_contact(PROVIDER, message);
        };
        let body = match self.request_body(message) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let response = match post_to_tenant_url(
            &self.client,
            PROVIDER,
            &Self::waiting_url(&contact.webhook_url),
            self.allow_private_networks,
            message.delivery_id,
            timeout,
            |request| {
                request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
            },
        )
        .await
        {
            Ok(response) => response,
            Err(outcome) => return outcome,
        };
        let status = response.status();
        if status.is_success() {
            let created = read_capped(response, MAX_MESSAGE_BYTES).await;
            let provider_message_id = serde_json::from_slice::<CreatedMessage>(&created)
                .ok()
                .map(|message| message.id);
            return SendOutcome::Sent {
                provider_message_id,
                http_status: status.as_u16(),
            };
        }
        classify_error_response(PROVIDER, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_parameter_is_added_to_any_url() {
        assert_eq!(
            Discord::waiting_url("https://discord.com/api/webhooks/1/t"),
            "https://discord.com/api/webhooks/1/t?wait=true"
        );
        assert_eq!(
            Discord::waiting_url("https://discord.com/api/webhooks/1/t?thread_id=5"),
            "https://discord.com/api/webhooks/1/t?thread_id=5&wait=true"
        );
    }

    #[test]
    fn content_never_exceeds_discords_limit() {
        let long = "é".repeat(5_000);
        let content = truncate_chars(&long, MAX_CONTENT_CHARS);
        assert_eq!(content.chars().count(), MAX_CONTENT_CHARS);
        assert!(content.ends_with('…'));
    }
}
