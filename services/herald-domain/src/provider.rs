//! Who sends a delivery: a closed set, spelled once. The same names are in every `provider` column
//! (a CHECK constraint allows exactly [`ProviderId::ALL`]; a test compares them), the `provider`
//! label of the metrics, the `[providers.<id>]` sections of the configuration and the API's
//! `provider` fields.

use crate::{vocabulary, Channel};

vocabulary! {
    /// A provider Herald sends through.
    #[derive(PartialOrd, Ord)]
    pub enum ProviderId {
        /// SendGrid's Mail Send v3 API.
        SendGrid = "sendgrid",
        /// Twilio's Messages API.
        Twilio = "twilio",
        /// Plain SMTP: email's failover while SendGrid's circuit is open.
        Smtp = "smtp",
        Slack = "slack",
        Discord = "discord",
        Telegram = "telegram",
        /// Recipients' own endpoints, signed per the Standard Webhooks specification.
        Webhook = "webhook",
        /// Pushover's Message API.
        Pushover = "pushover",
    }
}

impl ProviderId {
    /// The channel its deliveries are on.
    pub fn channel(self) -> Channel {
        match self {
            ProviderId::SendGrid | ProviderId::Smtp => Channel::Email,
            ProviderId::Twilio => Channel::Sms,
            ProviderId::Slack => Channel::Slack,
            ProviderId::Discord => Channel::Discord,
            ProviderId::Telegram => Channel::Telegram,
            ProviderId::Webhook => Channel::Webhook,
            ProviderId::Pushover => Channel::Pushover,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
