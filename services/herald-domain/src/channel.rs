//! Delivery channels and priorities: closed sets, the same in Rust, in JSON and in PostgreSQL (enum
//! types `channel` and `priority`).

use crate::vocabulary;

vocabulary! {
    /// A delivery channel.
    #[derive(PartialOrd, Ord)]
    pub enum Channel {
        Email = "email",
        Sms = "sms",
        /// A Slack incoming webhook of the recipient's.
        Slack = "slack",
        /// A Discord channel webhook of the recipient's.
        Discord = "discord",
        /// A Telegram chat, through the tenant-wide bot.
        Telegram = "telegram",
        /// The recipient's own HTTPS endpoint, signed per the Standard Webhooks specification.
        Webhook = "webhook",
        /// A Pushover user's devices, through the tenant-wide application.
        Pushover = "pushover",
    }
}

impl Channel {
    /// The names, for error messages: `email, sms`.
    pub fn known_names() -> String {
        Channel::ALL.map(Channel::as_str).join(", ")
    }
}

vocabulary! {
    #[derive(Default)]
    pub enum Priority {
        High = "high",
        #[default]
        Normal = "normal",
        Low = "low",
    }
}
