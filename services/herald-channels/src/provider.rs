//! What every provider is: the [`Provider`] trait, the message it is given and the outcome it
//! answers with, and the helpers every sender uses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_domain::{Channel, ProviderId};
use uuid::Uuid;

use crate::settings::LaneSettings;
use crate::Contact;

/// Carries the delivery's stable reference to APIs that have no field for it (Slack, Discord,
/// Telegram, webhooks): a receiver, and the simulator, can recognise a repeat by it.
pub const DELIVERY_ID_HEADER: &str = "X-Herald-Delivery-Id";

/// A rendered message for one delivery.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// The stable reference passed to the provider (see docs/DESIGN.md).
    pub delivery_id: Uuid,
    pub notification_id: Uuid,
    pub user_id: String,
    pub contact: Contact,
    pub subject: Option<String>,
    pub body: String,
    /// The HTML alternative of `body`, for email (from a template's `html` part).
    pub html: Option<String>,
    /// The recipient's one-click unsubscribe link, for email when links are on (RFC 8058).
    pub unsubscribe_url: Option<String>,
}

/// RFC 8058's pair of headers for a one-click unsubscribe link: mailbox providers show an
/// "Unsubscribe" button that POSTs `List-Unsubscribe=One-Click` to the URL, without a visit.
pub fn list_unsubscribe_headers(unsubscribe_url: &str) -> [(&'static str, String); 2] {
    [
        ("List-Unsubscribe", format!("<{unsubscribe_url}>")),
        (
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_owned(),
        ),
    ]
}

impl OutgoingMessage {
    /// An email as the email providers' unit tests build it.
    #[cfg(test)]
    pub(crate) fn example_email() -> OutgoingMessage {
        OutgoingMessage {
            delivery_id: uuid::Uuid::now_v7(),
            notification_id: uuid::Uuid::now_v7(),
            user_id: "u-1".into(),
            contact: Contact::Email("ops@example.com".into()),
            subject: Some("Disk full".into()),
            body: "Free some space".into(),
            html: None,
            unsubscribe_url: None,
        }
    }

    /// Subject and body as one text, for channels without a subject line.
    pub fn text(&self) -> String {
        match &self.subject {
            Some(subject) if !subject.is_empty() => format!("{subject}\n\n{}", self.body),
            _ => self.body.clone(),
        }
    }
}

/// The outcome for a message whose contact is not this provider's channel: admission picks the
/// lane by channel, so this is a bug, and retrying cannot mend it.
pub fn wrong_contact(provider: ProviderId, message: &OutgoingMessage) -> SendOutcome {
    debug_assert!(
        false,
        "{provider} was given a {:?} contact",
        message.contact.channel()
    );
    SendOutcome::Permanent {
        error: format!(
            "{provider} cannot deliver to a {} contact",
            message.contact.channel().as_str()
        ),
        http_status: None,
    }
}

/// A request body as JSON bytes, as `reqwest`'s `.json()` would write it. Each provider's
/// `request_body` ends here, so what a send does before the network is one pure call that the
/// benches (`benches/payload_rendering.rs`) measure. Herald's request types always serialize;
/// an error would be a bug, and retrying could not mend it.
pub fn encode_json(
    provider: ProviderId,
    body: &impl serde::Serialize,
) -> Result<Vec<u8>, SendOutcome> {
    serde_json::to_vec(body).map_err(|error| SendOutcome::Permanent {
        error: format!("the {provider} request cannot be encoded: {error}"),
        http_status: None,
    })
}

/// At most `max_chars` characters of `text`, the last replaced by `…` when cut: providers refuse
/// longer messages outright, and a cut message is better than none.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    debug_assert!(max_chars > 0);
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}

#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Sent {
        provider_message_id: Option<String>,
        http_status: u16,
    },
    /// Timeout, connection failure, 5xx, 429: the same request may succeed later.
    Retryable {
        error: String,
        http_status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// The provider rejected the request itself; repeating it cannot help.
    Permanent {
        error: String,
        http_status: Option<u16>,
    },
}

impl SendOutcome {
    /// Every value `label` can take.
    pub const LABELS: [&'static str; 3] = ["sent", "retryable_error", "permanent_error"];

    pub fn label(&self) -> &'static str {
        match self {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::Retryable { .. } => "retryable_error",
            SendOutcome::Permanent { .. } => "permanent_error",
        }
    }
}

/// What a provider is, as lanes, metrics and spans name it.
#[derive(Debug, Clone)]
pub struct ProviderIdentity {
    /// As metrics and the `deliveries.provider` column show it; its channel is the lane's.
    pub id: ProviderId,
    /// The URL it sends to (no credentials in it; for recipients' own URLs, a fixed name), as
    /// the call's span names it.
    pub endpoint: String,
}

/// One provider: who it is and how to send through it.
#[async_trait]
pub trait Provider: Send + Sync {
    fn identity(&self) -> &ProviderIdentity;

    /// One call, bounded by `timeout`, and what its answer means for the delivery.
    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome;

    fn id(&self) -> ProviderId {
        self.identity().id
    }

    fn channel(&self) -> Channel {
        self.identity().id.channel()
    }

    fn endpoint(&self) -> &str {
        &self.identity().endpoint
    }
}

/// A provider with its lane's settings and the provider that stands in while its circuit is open.
pub struct ProviderLane {
    pub provider: Arc<dyn Provider>,
    pub lane: LaneSettings,
    pub failover: Option<Arc<dyn Provider>>,
}
