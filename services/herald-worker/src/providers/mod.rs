//! Provider clients. Each turns a message into one HTTP request shaped like the provider's API and
//! classifies the answer: sent, worth retrying, or not.

mod classify;
pub mod sendgrid;
pub mod twilio;

use std::time::Duration;

use futures::future::BoxFuture;
use herald_domain::Channel;
use uuid::Uuid;

pub use classify::{classify_transport_error, parse_retry_after, MAX_RETRY_AFTER};

/// A rendered message for one delivery.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// The stable reference passed to the provider (see docs/DESIGN.md).
    pub delivery_id: Uuid,
    /// Email address or E.164 number.
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
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

/// One provider: the channel it serves and how to send through it.
pub trait Provider: Send + Sync {
    /// The provider's name, as metrics and the `deliveries.provider` column show it.
    fn name(&self) -> &'static str;
    fn channel(&self) -> Channel;
    /// The URL it sends to (no credentials in it), as the call's span names it.
    fn endpoint(&self) -> &str;
    fn send<'a>(
        &'a self,
        message: &'a OutgoingMessage,
        timeout: Duration,
    ) -> BoxFuture<'a, SendOutcome>;
}
