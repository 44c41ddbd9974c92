//! SendGrid Mail Send v3: `POST /v3/mail/send`, Bearer key, JSON body; `202` + `X-Message-Id`.

use std::time::Duration;

use herald_config::SendGridSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::classify::classify_error_response;
use async_trait::async_trait;
use herald_domain::Channel;

use super::{
    classify_transport_error, wrong_contact, Contact, OutgoingMessage, Provider, ProviderIdentity,
    SendOutcome,
};

pub const PROVIDER: &str = "sendgrid";

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
    content: [Content<'a>; 1],
}

#[derive(Serialize)]
struct Personalization<'a> {
    to: [Address<'a>; 1],
    /// Echoed in SendGrid's events: the delivery's stable reference.
    custom_args: CustomArgs,
}

#[derive(Serialize)]
struct CustomArgs {
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
                name: PROVIDER,
                channel: Channel::Email,
                endpoint: format!("{}/v3/mail/send", settings.base_url.trim_end_matches('/')),
            },
            client,
            api_key: settings.api_key.clone(),
            from: settings.from.clone(),
        }
    }
}

#[async_trait]
impl Provider for SendGrid {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let Contact::Email(to) = &message.contact else {
            return wrong_contact(PROVIDER, message);
        };
        let request = MailSend {
            personalizations: [Personalization {
                to: [Address { email: to }],
                custom_args: CustomArgs {
                    herald_delivery_id: message.delivery_id.to_string(),
                },
            }],
            from: Address { email: &self.from },
            subject: message.subject.as_deref().unwrap_or("(no subject)"),
            content: [Content {
                content_type: "text/plain",
                value: &message.body,
            }],
        };
        let response = self
            .client
            .post(&self.identity.endpoint)
            .bearer_auth(self.api_key.expose_secret())
            .timeout(timeout)
            .json(&request)
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
