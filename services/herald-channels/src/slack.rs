//! Slack incoming webhooks: `POST` of `{"text", "blocks"}` to the recipient's webhook URL; `200 ok`.
//! Slack answers a rate limit with `429` and `Retry-After`; a revoked or unknown webhook with
//! `404 no_service`, `403` or `410`, which no retry mends.

use std::time::Duration;

use async_trait::async_trait;
use herald_domain::{Channel, ProviderId};
use serde::Serialize;

use crate::classify::classify_error_response;
use crate::provider::{
    encode_json, truncate_chars, wrong_contact, OutgoingMessage, Provider, ProviderIdentity,
    SendOutcome,
};
use crate::tenant_endpoint::post_to_tenant_url;
use crate::Contact;

pub const PROVIDER: ProviderId = ProviderId::Slack;
/// Slack truncates `text` past 40,000 characters and refuses a section's text past 3,000.
const MAX_TEXT_CHARS: usize = 40_000;
const MAX_SECTION_CHARS: usize = 3_000;
/// A header block's text limit.
const MAX_HEADER_CHARS: usize = 150;

pub struct Slack {
    identity: ProviderIdentity,
    client: reqwest::Client,
    allow_private_networks: bool,
}

#[derive(Serialize)]
struct IncomingWebhookMessage {
    /// The notification text, and the fallback for clients that do not render blocks.
    text: String,
    blocks: Vec<Block>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Header { text: PlainText },
    Section { text: Markdown },
}

#[derive(Serialize)]
struct PlainText {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct Markdown {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

impl Slack {
    pub fn new(client: reqwest::Client, allow_private_networks: bool) -> Slack {
        Slack {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: "https://hooks.slack.com/services".to_owned(),
            },
            client,
            allow_private_networks,
        }
    }

    fn message(message: &OutgoingMessage) -> IncomingWebhookMessage {
        let mut blocks = Vec::with_capacity(2);
        if let Some(subject) = message.subject.as_deref().filter(|s| !s.is_empty()) {
            blocks.push(Block::Header {
                text: PlainText {
                    kind: "plain_text",
                    text: truncate_chars(subject, MAX_HEADER_CHARS),
                },
            });
        }
        blocks.push(Block::Section {
            text: Markdown {
                kind: "mrkdwn",
                text: truncate_chars(&message.body, MAX_SECTION_CHARS),
            },
        });
        IncomingWebhookMessage {
            text: truncate_chars(&message.text(), MAX_TEXT_CHARS),
            blocks,
        }
    }

    /// The incoming-webhook JSON body for `message`: all that `send` does before the network.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<Vec<u8>, SendOutcome> {
        encode_json(PROVIDER, &Self::message(message))
    }
}

crate::incoming_webhook_kind!(Slack, Channel::Slack);

#[async_trait]
impl Provider for Slack {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let Contact::Slack(contact) = &message.contact else {
            return wrong_contact(PROVIDER, message);
        };
        let body = match self.request_body(message) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let response = match post_to_tenant_url(
            &self.client,
            PROVIDER,
            &contact.webhook_url,
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
        if response.status().is_success() {
            // Slack gives no message id for an incoming-webhook post.
            return SendOutcome::Sent {
                provider_message_id: None,
                http_status: response.status().as_u16(),
            };
        }
        classify_error_response(PROVIDER, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming_webhook::WebhookUrlContact;

    #[test]
    fn a_message_has_text_and_blocks_within_slacks_limits() {
        let message = OutgoingMessage {
            delivery_id: uuid::Uuid::nil(),
            notification_id: uuid::Uuid::nil(),
            user_id: "u".into(),
            contact: Contact::Slack(WebhookUrlContact {
                webhook_url: "https://hooks.slack.com/services/T/B/x".into(),
            }),
            subject: Some("Disk full".into()),
            body: "x".repeat(5_000),
            html: None,
            unsubscribe_url: None,
        };
        let json = serde_json::to_value(Slack::message(&message)).unwrap();
        assert_eq!(json["blocks"][0]["type"], "header");
        assert_eq!(json["blocks"][0]["text"]["text"], "Disk full");
        assert_eq!(json["blocks"][1]["type"], "section");
        assert_eq!(json["blocks"][1]["text"]["type"], "mrkdwn");
        let section = json["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(section.chars().count(), MAX_SECTION_CHARS);
        assert!(json["text"]
            .as_str()
            .unwrap()
            .starts_with("Disk full\n\nxxx"));
    }
}
