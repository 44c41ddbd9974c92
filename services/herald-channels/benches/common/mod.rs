//! The messages the provider benches render: one notification as a typical alert looks (a
//! subject and a body of a few hundred characters) and a long one (past every chat provider's
//! limit, so the truncation path is measured too), addressed to each channel's contact.

// Each bench file includes this module and uses a part of it.
#![allow(dead_code)]

use herald_channels::incoming_webhook::WebhookUrlContact;
use herald_channels::telegram::{TelegramChatId, TelegramContact};
use herald_channels::webhook::SignedWebhookContact;
use herald_channels::{Contact, OutgoingMessage};
use uuid::Uuid;

/// A valid Standard Webhooks secret (24 bytes, as the specification's examples).
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SUBJECT: &str = "Pressure alert on press-4";
/// Longer than Discord's 2,000, Telegram's 4,096 and a Slack section's 3,000 characters.
pub const LONG_BODY_CHARS: usize = 5_000;

/// How long the rendered message is.
#[derive(Clone, Copy, Debug)]
pub enum BodySize {
    /// About 250 characters with a few non-ASCII ones, as a rendered alert template is.
    Typical,
    /// `LONG_BODY_CHARS` characters: cut by the chat providers.
    Long,
}

impl BodySize {
    pub const ALL: [BodySize; 2] = [BodySize::Typical, BodySize::Long];

    pub fn name(self) -> &'static str {
        match self {
            BodySize::Typical => "typical",
            BodySize::Long => "long",
        }
    }

    fn body(self) -> String {
        match self {
            BodySize::Typical => {
                "Pressure on press-4 reached 7.2 bar (limit 6.5 bar) at 14:02 UTC. \
                 The line was slowed to 60 % and maintenance was paged; no action is needed from \
                 you unless it stays above the limit for 15 minutes. Details: \
                 https://status.example.com/incidents/8812 — Ops, Halle 3"
                    .to_owned()
            }
            BodySize::Long => {
                "Pressure log line; ".repeat(LONG_BODY_CHARS / 19 + 1)[..LONG_BODY_CHARS].to_owned()
            }
        }
    }
}

/// One delivery of the notification to `contact`.
pub fn message(contact: Contact, size: BodySize) -> OutgoingMessage {
    OutgoingMessage {
        delivery_id: Uuid::now_v7(),
        notification_id: Uuid::now_v7(),
        user_id: "customer-42817@example.com".to_owned(),
        contact,
        subject: Some(SUBJECT.to_owned()),
        body: size.body(),
        html: None,
        unsubscribe_url: None,
    }
}

pub fn email_contact() -> Contact {
    Contact::Email("ops-oncall@example.com".to_owned())
}

pub fn phone_contact() -> Contact {
    Contact::Phone("+14155550100".to_owned())
}

pub fn slack_contact() -> Contact {
    Contact::Slack(WebhookUrlContact {
        webhook_url: "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"
            .to_owned(),
    })
}

pub fn discord_contact() -> Contact {
    Contact::Discord(WebhookUrlContact {
        webhook_url: "https://discord.com/api/webhooks/1001/token-1".to_owned(),
    })
}

pub fn telegram_contact() -> Contact {
    Contact::Telegram(TelegramContact {
        chat_id: TelegramChatId::Number(-1001234567890),
    })
}

pub fn webhook_contact() -> Contact {
    Contact::Webhook(SignedWebhookContact {
        url: "https://example.com/herald-events".to_owned(),
        secret: WEBHOOK_SECRET.to_owned(),
    })
}
