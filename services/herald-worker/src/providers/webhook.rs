//! Signed webhooks to recipients' own endpoints, per the Standard Webhooks specification: a `POST`
//! of a JSON event with `webhook-id` (the delivery's reference, the same on every retry, so a
//! receiver drops a repeat), `webhook-timestamp` and `webhook-signature` (`v1,` and the base64
//! HMAC-SHA256 of `id.timestamp.body` keyed by the recipient's `whsec_` secret). Any 2xx is a
//! delivery; 429 and 5xx are retried (honouring `Retry-After`); other answers fail it for good.
//!
//! Signing uses the `standardwebhooks` crate, the specification's own reference library, rather
//! than a hand-written HMAC: the byte layout of the signed content is the whole contract.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_domain::ProviderId;
use serde::Serialize;
use uuid::Uuid;

use super::classify::classify_error_response;
use super::tenant_endpoint::post_to_tenant_url;
use super::{
    encode_json, wrong_contact, Contact, OutgoingMessage, Provider, ProviderIdentity, SendOutcome,
};

pub const PROVIDER: ProviderId = ProviderId::Webhook;
/// The event type a notification's message is sent as.
pub const MESSAGE_EVENT_TYPE: &str = "notification.message";

pub struct Webhook {
    identity: ProviderIdentity,
    client: reqwest::Client,
    allow_private_networks: bool,
}

/// The Standard Webhooks payload shape: `type`, `timestamp`, `data`.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    timestamp: String,
    data: MessageData<'a>,
}

#[derive(Serialize)]
struct MessageData<'a> {
    notification_id: Uuid,
    delivery_id: Uuid,
    user_id: &'a str,
    subject: Option<&'a str>,
    body: &'a str,
}

/// The three headers of a signed request.
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

/// Signs `body` as message `id` at `timestamp` (Unix seconds) with a `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<SignedHeaders, String> {
    let signer = standardwebhooks::Webhook::new(secret)
        .map_err(|error| format!("the recipient's webhook secret is unusable: {error}"))?;
    let signature = signer
        .sign(id, timestamp, body)
        .map_err(|error| format!("the webhook could not be signed: {error}"))?;
    Ok(SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signature,
    })
}

impl Webhook {
    pub fn new(client: reqwest::Client, allow_private_networks: bool) -> Webhook {
        Webhook {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: "webhook".to_owned(),
            },
            client,
            allow_private_networks,
        }
    }

    /// The JSON event for `message`, stamped `now`: what `send` signs (with [`sign`]) and posts.
    pub fn request_body(
        &self,
        message: &OutgoingMessage,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SendOutcome> {
        let event = Event {
            event_type: MESSAGE_EVENT_TYPE,
            timestamp: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data: MessageData {
                notification_id: message.notification_id,
                delivery_id: message.delivery_id,
                user_id: &message.user_id,
                subject: message.subject.as_deref(),
                body: &message.body,
            },
        };
        encode_json(PROVIDER, &event)
    }
}

#[async_trait]
impl Provider for Webhook {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let Contact::Webhook(contact) = &message.contact else {
            return wrong_contact(PROVIDER, message);
        };
        let now = Utc::now();
        let body = match self.request_body(message, now) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        post_signed_event(
            &self.client,
            SignedEvent {
                url: &contact.url,
                secret: &contact.secret,
                webhook_id: &message.delivery_id.to_string(),
                timestamp: now.timestamp(),
                body,
                reference: message.delivery_id,
            },
            self.allow_private_networks,
            timeout,
        )
        .await
    }
}

/// One signed event for one endpoint.
pub struct SignedEvent<'a> {
    pub url: &'a str,
    /// The endpoint's `whsec_` secret.
    pub secret: &'a str,
    /// `webhook-id`: the same on every retry, what receivers deduplicate on.
    pub webhook_id: &'a str,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: i64,
    pub body: Vec<u8>,
    /// Sent as `X-Herald-Delivery-Id`.
    pub reference: Uuid,
}

/// Signs `event` and POSTs it through the SSRF-guarded path, classifying the answer as webhooks
/// are classified: any 2xx sent, 429 and 5xx retryable, other answers permanent. The one path of
/// the `webhook` channel and of status events to subscribers.
pub async fn post_signed_event(
    client: &reqwest::Client,
    event: SignedEvent<'_>,
    allow_private_networks: bool,
    timeout: Duration,
) -> SendOutcome {
    let signed = match sign(event.secret, event.webhook_id, event.timestamp, &event.body) {
        Ok(signed) => signed,
        Err(error) => {
            return SendOutcome::Permanent {
                error,
                http_status: None,
            }
        }
    };
    let body = event.body;
    let response = match post_to_tenant_url(
        client,
        PROVIDER,
        event.url,
        allow_private_networks,
        event.reference,
        timeout,
        |request| {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", signed.id)
                .header("webhook-timestamp", signed.timestamp.to_string())
                .header("webhook-signature", signed.signature)
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
        return SendOutcome::Sent {
            provider_message_id: None,
            http_status: status.as_u16(),
        };
    }
    classify_error_response(PROVIDER, response).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries: the same secret,
    /// id, timestamp and payload give the same signature.
    #[test]
    fn signatures_match_the_specifications_reference_vector() {
        let signed = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    /// What `send` posts: the event names the delivery, and its signature over exactly these
    /// bytes is accepted by the specification's reference verifier.
    #[test]
    fn the_rendered_event_carries_the_delivery_and_verifies_when_signed() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let message = OutgoingMessage {
            delivery_id: Uuid::now_v7(),
            notification_id: Uuid::now_v7(),
            user_id: "u-1".into(),
            contact: Contact::Webhook(herald_domain::contacts::SignedWebhookContact {
                url: "https://example.com/hooks".into(),
                secret: secret.into(),
            }),
            subject: None,
            body: "Pressure \"7\" — ok".into(),
        };
        let now = Utc::now();
        let body = Webhook::new(reqwest::Client::new(), false)
            .request_body(&message, now)
            .unwrap();
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(event["type"], MESSAGE_EVENT_TYPE);
        assert_eq!(
            event["data"]["delivery_id"],
            message.delivery_id.to_string()
        );
        assert_eq!(event["data"]["body"], message.body);
        let id = message.delivery_id.to_string();
        let signed = sign(secret, &id, now.timestamp(), &body).unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert(
            "webhook-timestamp",
            signed.timestamp.to_string().parse().unwrap(),
        );
        headers.insert("webhook-signature", signed.signature.parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(secret).unwrap();
        verifier.verify(&body, &headers).unwrap();
        let mut tampered = body.clone();
        tampered[0] = b' ';
        assert!(verifier.verify(&tampered, &headers).is_err());
    }

    #[test]
    fn a_secret_that_is_not_base64_is_a_clear_error() {
        let error = sign("whsec_not base64!", "id", 0, b"{}").err().unwrap();
        assert!(error.contains("secret"), "{error}");
    }
}
