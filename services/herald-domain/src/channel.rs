//! Delivery channels and priorities: closed sets, the same in Rust, in JSON and in PostgreSQL (enum
//! types `channel` and `priority`).

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A delivery channel.
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
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "channel")]
pub enum Channel {
    #[sea_orm(string_value = "email")]
    Email,
    #[sea_orm(string_value = "sms")]
    Sms,
    /// A Slack incoming webhook of the recipient's.
    #[sea_orm(string_value = "slack")]
    Slack,
    /// A Discord channel webhook of the recipient's.
    #[sea_orm(string_value = "discord")]
    Discord,
    /// A Telegram chat, through the tenant-wide bot.
    #[sea_orm(string_value = "telegram")]
    Telegram,
    /// The recipient's own HTTPS endpoint, signed per the Standard Webhooks specification.
    #[sea_orm(string_value = "webhook")]
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Email,
        Channel::Sms,
        Channel::Slack,
        Channel::Discord,
        Channel::Telegram,
        Channel::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Slack => "slack",
            Channel::Discord => "discord",
            Channel::Telegram => "telegram",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL
            .into_iter()
            .find(|channel| channel.as_str() == name)
    }

    /// The names, for error messages: `email, sms`.
    pub fn known_names() -> String {
        Channel::ALL.map(Channel::as_str).join(", ")
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "priority")]
pub enum Priority {
    #[sea_orm(string_value = "high")]
    High,
    #[default]
    #[sea_orm(string_value = "normal")]
    Normal,
    #[sea_orm(string_value = "low")]
    Low,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    pub fn parse(name: &str) -> Option<Priority> {
        Priority::ALL
            .into_iter()
            .find(|priority| priority.as_str() == name)
    }
}
