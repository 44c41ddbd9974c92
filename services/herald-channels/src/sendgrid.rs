//! SendGrid Mail Send v3: `POST /v3/mail/send`, Bearer key, JSON body; `202` + `X-Message-Id`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use herald_domain::ProviderId;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::classify::{classify_error_response, classify_transport_error};
use crate::provider::{
    encode_json, list_unsubscribe_headers, wrong_contact, OutgoingMessage, Provider,
    ProviderIdentity, SendOutcome,
};
use crate::Contact;

crate::provider_section! {
    pub struct SendGridSettings {
        pub api_key: SecretString,
        pub from: String,
        /// The Event Webhook's verification key as SendGrid's settings show it: base64 of the DER
        /// (SubjectPublicKeyInfo) ECDSA P-256 public key. Public, not a secret; empty refuses every
        /// event batch (docs/DESIGN.md, "Provider callbacks").
        #[serde(default)]
        pub event_webhook_public_key: String,
    }
}

pub const PROVIDER: ProviderId = ProviderId::SendGrid;

pub struct SendGrid {
    identity: ProviderIdentity,
    client: reqwest::Client,
    api_key: SecretString,
    from: String,
}

#[derive(Serialize)]
struct MailSend<'a> {
    personalizations: [Personalization<'a>; 1],
    from: Address<'a>,
    subject: &'a str,
    /// `text/plain`, then `text/html` when there is one (SendGrid requires plain text first).
    content: Vec<Content<'a>>,
    /// The unsubscribe link's headers, when there is one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Personalization<'a> {
    to: [Address<'a>; 1],
    /// Echoed in SendGrid's events: the delivery's stable reference.
    custom_args: CustomArgs,
}

/// The delivery's key: SendGrid copies custom args into every event of the message, so the
/// Event Webhook names the delivery it reports on (docs/DESIGN.md, "Provider callbacks"). About
/// 110 bytes of SendGrid's 10,000 allowed.
#[derive(Serialize)]
struct CustomArgs {
    herald_notification_id: String,
    herald_delivery_id: String,
}

#[derive(Serialize)]
struct Address<'a> {
    email: &'a str,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(rename = "type")]
    content_type: &'a str,
    value: &'a str,
}

impl SendGrid {
    pub fn new(settings: &SendGridSettings, client: reqwest::Client) -> SendGrid {
        SendGrid {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: format!("{}/v3/mail/send", settings.base_url.trim_end_matches('/')),
            },
            client,
            api_key: settings.api_key.clone(),
            from: settings.from.clone(),
        }
    }

    /// The Mail Send JSON body for `message`: all that `send` does before the network.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<Vec<u8>, SendOutcome> {
        let Contact::Email(to) = &message.contact else {
            return Err(wrong_contact(PROVIDER, message));
        };
        let request = MailSend {
            personalizations: [Personalization {
                to: [Address { email: to }],
                custom_args: CustomArgs {
                    herald_notification_id: message.notification_id.to_string(),
                    herald_delivery_id: message.delivery_id.to_string(),
                },
            }],
            from: Address { email: &self.from },
            subject: message.subject.as_deref().unwrap_or("(no subject)"),
            content: std::iter::once(Content {
                content_type: "text/plain",
                value: &message.body,
            })
            .chain(message.html.as_deref().map(|html| Content {
                content_type: "text/html",
                value: html,
            }))
            .collect(),
            headers: message
                .unsubscribe_url
                .as_deref()
                .map(list_unsubscribe_headers)
                .into_iter()
                .flatten()
                .collect(),
        };
        encode_json(PROVIDER, &request)
    }
}

#[async_trait]
impl Provider for SendGrid {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let body = match self.request_body(message) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let response = self
            .client
            .post(&self.identity.endpoint)
            .bearer_auth(self.api_key.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return classify_transport_error(PROVIDER, error),
        };
        if response.status() == reqwest::StatusCode::ACCEPTED {
            let provider_message_id = response
                .headers()
                .get("x-message-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            return SendOutcome::Sent {
                provider_message_id,
                http_status: 202,
            };
        }
        classify_error_response(PROVIDER, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(sendgrid: &SendGrid, message: &OutgoingMessage) -> serde_json::Value {
        serde_json::from_slice(&sendgrid.request_body(message).unwrap()).unwrap()
    }

    /// The unsubscribe link travels as RFC 8058's two headers in Mail Send's `headers`, and a
    /// message without one has no `headers` at all.
    #[test]
    fn the_unsubscribe_link_is_sent_as_list_unsubscribe_headers() {
        let sendgrid = SendGrid::new(
            &SendGridSettings {
                base_url: "http://127.0.0.1:1".into(),
                api_key: SecretString::from("key"),
                from: "alerts@herald.local".into(),
                event_webhook_public_key: String::new(),
                timeout_ms: 1000,
                requests_per_second: 1,
                max_in_flight: 1,
                max_held: 1,
            },
            reqwest::Client::new(),
        );
        let mut message = OutgoingMessage::example_email();
        assert!(body_of(&sendgrid, &message).get("headers").is_none());
        message.unsubscribe_url = Some("https://herald.example.com/v1/unsubscribe/abc.def".into());
        assert_eq!(
            body_of(&sendgrid, &message)["headers"],
            serde_json::json!({
                "List-Unsubscribe": "<https://herald.example.com/v1/unsubscribe/abc.def>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            })
        );
    }
}
