//! Twilio Messages: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, Basic auth,
//! form-encoded `To`, `From`, `Body`; `201` + JSON with `sid`.

use std::time::Duration;

use async_trait::async_trait;
use herald_domain::ProviderId;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::classify::{classify_error_response, classify_transport_error, read_capped};
use crate::provider::{wrong_contact, OutgoingMessage, Provider, ProviderIdentity, SendOutcome};
use crate::Contact;

crate::provider_section! {
    pub struct TwilioSettings {
        pub account_sid: String,
        pub auth_token: SecretString,
        pub from: String,
        /// Where Twilio reaches the API from outside (`https://herald.example.com`): messages carry
        /// `StatusCallback = {this}/v1/providers/twilio/status?...`, and the API rebuilds the URL
        /// Twilio signed from it. Empty: no status callbacks.
        #[serde(default)]
        pub status_callback_base_url: String,
    }
}

/// The API's route for Twilio's status callbacks, under `status_callback_base_url`.
pub const TWILIO_STATUS_CALLBACK_PATH: &str = "/v1/providers/twilio/status";

/// The `StatusCallback` URL of one delivery under `base_url` (a trailing `/` is not doubled);
/// `None` for an empty base URL.
pub fn twilio_status_callback_url(
    base_url: &str,
    notification_id: impl std::fmt::Display,
    delivery_id: impl std::fmt::Display,
) -> Option<String> {
    let base = base_url.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| {
        format!(
            "{base}{TWILIO_STATUS_CALLBACK_PATH}?notification_id={notification_id}&delivery_id={delivery_id}"
        )
    })
}

impl TwilioSettings {
    /// The `StatusCallback` URL of one delivery's message, naming the delivery by its key; `None`
    /// while `status_callback_base_url` is empty.
    pub fn status_callback_url(
        &self,
        notification_id: impl std::fmt::Display,
        delivery_id: impl std::fmt::Display,
    ) -> Option<String> {
        twilio_status_callback_url(&self.status_callback_base_url, notification_id, delivery_id)
    }
}

pub const PROVIDER: ProviderId = ProviderId::Twilio;
const MAX_RESOURCE_BYTES: usize = 64 * 1024;
/// Carries the delivery's stable reference. Twilio's Messages API does not deduplicate on it;
/// it identifies a repeat (see "in doubt" in docs/DESIGN.md), and the simulator can honour it.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

pub struct Twilio {
    identity: ProviderIdentity,
    client: reqwest::Client,
    account_sid: String,
    auth_token: SecretString,
    from: String,
    /// `providers.twilio.status_callback_base_url`; empty: no `StatusCallback`.
    status_callback_base_url: String,
}

#[derive(Serialize)]
struct MessageForm<'a> {
    #[serde(rename = "To")]
    to: &'a str,
    #[serde(rename = "From")]
    from: &'a str,
    #[serde(rename = "Body")]
    body: &'a str,
    /// Where Twilio reports the message's fate; names the delivery (docs/DESIGN.md, "Provider
    /// callbacks"). Absent while no public base URL is configured.
    #[serde(rename = "StatusCallback", skip_serializing_if = "Option::is_none")]
    status_callback: Option<String>,
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
}

impl Twilio {
    pub fn new(settings: &TwilioSettings, client: reqwest::Client) -> Twilio {
        Twilio {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    settings.base_url.trim_end_matches('/'),
                    settings.account_sid
                ),
            },
            client,
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            from: settings.from.clone(),
            status_callback_base_url: settings.status_callback_base_url.clone(),
        }
    }

    /// The form-encoded Messages body for `message`: all that `send` does before the network.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<String, SendOutcome> {
        let Contact::Phone(to) = &message.contact else {
            return Err(wrong_contact(PROVIDER, message));
        };
        let form = MessageForm {
            to,
            from: &self.from,
            body: &message.body,
            status_callback: twilio_status_callback_url(
                &self.status_callback_base_url,
                message.notification_id,
                message.delivery_id,
            ),
        };
        serde_urlencoded::to_string(&form).map_err(|error| SendOutcome::Permanent {
            error: format!("the message cannot be form-encoded: {error}"),
            http_status: None,
        })
    }
}

#[async_trait]
impl Provider for Twilio {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let form = match self.request_body(message) {
            Ok(form) => form,
            Err(outcome) => return outcome,
        };
        let response = self
            .client
            .post(&self.identity.endpoint)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header(IDEMPOTENCY_HEADER, message.delivery_id.to_string())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(timeout)
            .body(form)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return classify_transport_error(PROVIDER, error),
        };
        if response.status() == reqwest::StatusCode::CREATED {
            // A Message resource is about a kilobyte; a provider sending more is not believed.
            let body = read_capped(response, MAX_RESOURCE_BYTES).await;
            let provider_message_id = serde_json::from_slice::<MessageResource>(&body)
                .ok()
                .map(|resource| resource.sid);
            return SendOutcome::Sent {
                provider_message_id,
                http_status: 201,
            };
        }
        classify_error_response(PROVIDER, response).await
    }
}
