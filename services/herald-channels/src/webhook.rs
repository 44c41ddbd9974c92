//! Signed webhooks to recipients' own endpoints, per the Standard Webhooks specification: a `POST`
//! of a JSON event with `webhook-id` (the delivery's reference, the same on every retry, so a
//! receiver drops a repeat), `webhook-timestamp` and `webhook-signature` (`v1,` and the base64
//! HMAC-SHA256 of `id.timestamp.body` keyed by the recipient's `whsec_` secret). Any 2xx is a
//! delivery; 429 and 5xx are retried (honouring `Retry-After`); other answers fail it for good.
//!
//! Signing uses the `standardwebhooks` crate, the specification's own reference library, rather
//! than a hand-written HMAC: the byte layout of the signed content is the whole contract.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_domain::tenant_url::{public_https_url_schema, url_problem};
use herald_domain::{Channel, FieldError, ProviderId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::classify::classify_error_response;
use crate::kind::{ChannelKind, HttpClients, RateLimitScope};
use crate::provider::{
    encode_json, wrong_contact, OutgoingMessage, Provider, ProviderIdentity, SendOutcome,
};
use crate::settings::LaneSettings;
use crate::tenant_endpoint::post_to_tenant_url;
use crate::Contact;

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

/// The recipient's own endpoint and the secret Herald signs its requests with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedWebhookContact {
    #[schema(example = "https://example.com/herald-events", schema_with = public_https_url_schema)]
    pub url: String,
    /// `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", schema_with = webhook_secret_schema)]
    pub secret: String,
}

impl fmt::Debug for SignedWebhookContact {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SignedWebhookContact")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// `whsec_` and the canonical, padded base64 of 24 to 64 bytes: 8 to 20 groups of four characters
/// and an optional one- or two-byte tail, or 21 groups and an optional one-byte tail.
fn webhook_secret_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(concat!(
            r"^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,20}",
            r"(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?",
            r"|(?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/][AQgw]==)?)$",
        )))
        .into()
}

/// The secret's key bytes: the base64 after `whsec_`, or why it is not one.
pub fn decode_webhook_secret(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let Some(encoded) = secret.strip_prefix(WEBHOOK_SECRET_PREFIX) else {
        return Err(format!("must start with `{WEBHOOK_SECRET_PREFIX}`"));
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| format!("must be `{WEBHOOK_SECRET_PREFIX}` followed by base64"))?;
    if !WEBHOOK_SECRET_BYTES.contains(&key.len()) {
        return Err(format!(
            "must encode {} to {} bytes (it encodes {})",
            WEBHOOK_SECRET_BYTES.start(),
            WEBHOOK_SECRET_BYTES.end(),
            key.len()
        ));
    }
    Ok(key)
}

fn webhook_secret_problem(secret: &str) -> Option<FieldError> {
    decode_webhook_secret(secret)
        .err()
        .map(|problem| FieldError::new("secret", problem))
}

/// The contact as the API answers it: the signing secret is never given back.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    /// Always true: a webhook cannot be stored without its secret, which is write-only.
    pub has_secret: bool,
}

/// Longest and shortest secret key: Standard Webhooks' secrets are 24 to 64 random bytes, base64
/// after the `whsec_` prefix.
const WEBHOOK_SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

impl ChannelKind for Webhook {
    const CHANNEL: Channel = Channel::Webhook;
    const PROVIDER: ProviderId = PROVIDER;
    /// A 429 is one endpoint's.
    const RATE_LIMIT_SCOPE: RateLimitScope = RateLimitScope::Destination;
    const TENANT_DESTINATIONS: bool = true;
    type Contact = SignedWebhookContact;
    type ContactView = WebhookView;
    /// The URL is the recipient's, so only the lane is configured.
    type Settings = LaneSettings;

    fn contact_problems(
        contact: &SignedWebhookContact,
        allow_private_networks: bool,
    ) -> Vec<FieldError> {
        let mut problems: Vec<FieldError> =
            url_problem("url", &contact.url, allow_private_networks)
                .into_iter()
                .collect();
        problems.extend(webhook_secret_problem(&contact.secret));
        problems
    }

    fn view(contact: &SignedWebhookContact) -> WebhookView {
        WebhookView {
            url: contact.url.clone(),
            has_secret: !contact.secret.is_empty(),
        }
    }

    /// The endpoint's host and port: a tarpit with many paths is still one endpoint.
    fn destination_key(contact: &SignedWebhookContact) -> Option<String> {
        let url = reqwest::Url::parse(&contact.url).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        Some(format!(
            "{host}:{}",
            url.port_or_known_default().unwrap_or(0)
        ))
    }

    fn sender(_: &LaneSettings, clients: &HttpClients) -> anyhow::Result<Arc<dyn Provider>> {
        Ok(Arc::new(Webhook::new(
            clients.tenant_urls.clone(),
            clients.allow_private_networks,
        )))
    }
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

    #[test]
    fn webhook_secrets_follow_standard_webhooks() {
        assert!(decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_webhook_secret("whsec_not base64!").is_err());
        assert!(decode_webhook_secret("whsec_c2hvcnQ=").is_err(), "5 bytes");
    }

    #[test]
    fn a_webhook_secret_never_shows_in_debug_output() {
        let contact = SignedWebhookContact {
            url: "https://example.com/h".into(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        };
        assert!(!format!("{contact:?}").contains("MfKQ"));
    }

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
            contact: Contact::Webhook(SignedWebhookContact {
                url: "https://example.com/hooks".into(),
                secret: secret.into(),
            }),
            subject: None,
            body: "Pressure \"7\" — ok".into(),
            html: None,
            unsubscribe_url: None,
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
