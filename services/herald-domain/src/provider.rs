//! Who sends a delivery: a closed set, spelled once. The same names are the `provider` column of
//! `deliveries`, `delivery_attempts`, `delivery_queue` and `dead_letters` (a CHECK constraint
//! allows exactly [`ProviderId::ALL`], a test compares them), the `provider` label of the metrics,
//! the `[providers.<id>]` sections of the configuration and the API's `provider` fields.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Channel;

/// A provider Herald sends through.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ProviderId {
    /// SendGrid's Mail Send v3 API.
    #[sea_orm(string_value = "sendgrid")]
    SendGrid,
    /// Twilio's Messages API.
    #[sea_orm(string_value = "twilio")]
    Twilio,
    /// Plain SMTP: email's failover while SendGrid's circuit is open.
    #[sea_orm(string_value = "smtp")]
    Smtp,
    #[sea_orm(string_value = "slack")]
    Slack,
    #[sea_orm(string_value = "discord")]
    Discord,
    #[sea_orm(string_value = "telegram")]
    Telegram,
    /// Recipients' own endpoints, signed per the Standard Webhooks specification.
    #[sea_orm(string_value = "webhook")]
    Webhook,
}

impl ProviderId {
    pub const ALL: [ProviderId; 7] = [
        ProviderId::SendGrid,
        ProviderId::Twilio,
        ProviderId::Smtp,
        ProviderId::Slack,
        ProviderId::Discord,
        ProviderId::Telegram,
        ProviderId::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::SendGrid => "sendgrid",
            ProviderId::Twilio => "twilio",
            ProviderId::Smtp => "smtp",
            ProviderId::Slack => "slack",
            ProviderId::Discord => "discord",
            ProviderId::Telegram => "telegram",
            ProviderId::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<ProviderId> {
        ProviderId::ALL
            .into_iter()
            .find(|provider| provider.as_str() == name)
    }

    /// The channel its deliveries are on.
    pub fn channel(self) -> Channel {
        match self {
            ProviderId::SendGrid | ProviderId::Smtp => Channel::Email,
            ProviderId::Twilio => Channel::Sms,
            ProviderId::Slack => Channel::Slack,
            ProviderId::Discord => Channel::Discord,
            ProviderId::Telegram => Channel::Telegram,
            ProviderId::Webhook => Channel::Webhook,
        }
    }
}

/// For metric labels (`with_label_values(&[provider])`).
impl AsRef<str> for ProviderId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveEnum;

    use super::*;

    #[test]
    fn each_provider_is_spelled_the_same_in_rust_json_and_the_database() {
        for provider in ProviderId::ALL {
            assert_eq!(ProviderId::parse(provider.as_str()), Some(provider));
            assert_eq!(provider.to_value(), provider.as_str());
            assert_eq!(
                serde_json::to_value(provider).unwrap(),
                serde_json::json!(provider.as_str())
            );
            assert_eq!(provider.to_string(), provider.as_str());
        }
        assert_eq!(ProviderId::parse("SendGrid"), None);
        assert_eq!(ProviderId::parse("mailgun"), None);
    }

    #[test]
    fn every_channel_has_a_provider() {
        for channel in Channel::ALL {
            assert!(
                ProviderId::ALL
                    .iter()
                    .any(|provider| provider.channel() == channel),
                "no provider sends {channel:?}"
            );
        }
    }
}
