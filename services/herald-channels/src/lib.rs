//! Herald's delivery channels as plug-ins, after vector's sinks: a channel whose contact lives in
//! a user's `channel_data` is one module here (its contact, as the API validates and answers it;
//! its `[providers.<id>]` section; its sender; how its destinations are bounded) implementing
//! [`kind::ChannelKind`], and one line of the list below. The API validates contacts with it, the
//! store reads them back with it, the configuration has its sections from it and the worker builds
//! its lanes from it. Email (SendGrid, with SMTP as failover) and SMS (Twilio) are the two channels
//! that are not kinds: their contacts are the user's `email` and `phone` columns.
//!
//! A new channel also needs its names in herald-domain's `Channel` and `ProviderId` vocabularies,
//! and a migration that lets the database hold them.

mod classify;
pub mod discord;
pub mod incoming_webhook;
pub mod kind;
pub mod outbound;
pub mod provider;
pub mod pushover;
pub mod registration;
pub mod registry;
pub mod sendgrid;
pub mod settings;
pub mod slack;
pub mod smtp;
pub mod telegram;
mod tenant_endpoint;
pub mod twilio;
pub mod webhook;

pub use classify::{classify_transport_error, parse_retry_after, MAX_RETRY_AFTER};
pub use provider::*;
pub use settings::{CircuitBreakerConfig, LaneSettings, OutboundSettings, RateLimitConfig};

channel_kinds! {
    Slack(slack) => slack::Slack,
    Discord(discord) => discord::Discord,
    Telegram(telegram) => telegram::Telegram,
    Webhook(webhook) => webhook::Webhook,
    Pushover(pushover) => pushover::Pushover,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming_webhook::WebhookUrlContact;
    use crate::webhook::SignedWebhookContact;

    #[test]
    fn each_kind_is_registered_under_its_channel_and_provider_name() {
        for (field, channel, provider) in KINDS {
            assert_eq!(*field, channel.as_str(), "channel_data.{field}");
            assert_eq!(*field, provider.as_str(), "[providers.{field}]");
            assert_eq!(provider.channel(), *channel);
        }
    }

    #[test]
    fn every_channel_is_email_sms_or_a_kind() {
        use herald_domain::Channel;
        for channel in Channel::ALL {
            let is_kind = KINDS
                .iter()
                .any(|(_, kind_channel, _)| *kind_channel == channel);
            assert_eq!(
                is_kind,
                !matches!(channel, Channel::Email | Channel::Sms),
                "{channel:?}"
            );
        }
    }
    #[test]
    fn channel_data_names_each_problem_and_refuses_unknown_channels() {
        let data: ChannelData = serde_json::from_value(serde_json::json!({
            "slack": {"webhook_url": "http://hooks.example.com/x"},
            "telegram": {"chat_id": "nobody"},
            "webhook": {"url": "https://example.com/h", "secret": "plain"},
        }))
        .unwrap();
        let fields: Vec<String> = data
            .problems(false)
            .into_iter()
            .map(|problem| problem.field)
            .collect();
        assert_eq!(
            fields,
            [
                "channel_data.slack.webhook_url",
                "channel_data.telegram.chat_id",
                "channel_data.webhook.secret"
            ]
        );
        let unknown = serde_json::from_value::<ChannelData>(serde_json::json!({"pager": {}}));
        assert!(unknown.is_err());
        let numeric: ChannelData =
            serde_json::from_value(serde_json::json!({"telegram": {"chat_id": -1001234}})).unwrap();
        assert!(numeric.problems(false).is_empty());
        assert_eq!(
            numeric.telegram.unwrap().chat_id.to_json(),
            serde_json::json!(-1001234)
        );
    }

    fn webhook_contact(url: &str) -> Contact {
        Contact::Webhook(SignedWebhookContact {
            url: url.to_owned(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        })
    }

    #[test]
    fn a_webhook_destination_is_its_host_and_port_and_a_chat_webhook_its_url() {
        assert_eq!(
            webhook_contact("https://Example.com/a?x=1")
                .destination_key()
                .as_deref(),
            Some("example.com:443")
        );
        assert_eq!(
            webhook_contact("http://example.com:8080/b")
                .destination_key()
                .as_deref(),
            Some("example.com:8080")
        );
        let slack = Contact::Slack(WebhookUrlContact {
            webhook_url: "https://hooks.slack.com/services/T1/B1/X?y=2".to_owned(),
        });
        assert_eq!(
            slack.destination_key().as_deref(),
            Some("https://hooks.slack.com/services/T1/B1/X")
        );
        assert_eq!(Contact::Email("a@b.c".to_owned()).destination_key(), None);
    }
}
