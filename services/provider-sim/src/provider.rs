//! The providers the simulator stands in for, named as they appear in URLs and JSON.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Email, `POST /v3/mail/send`.
    SendGrid,
    /// SMS, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
    Twilio,
    /// Slack incoming webhooks, `POST /slack/services/{T}/{B}/{secret}`.
    Slack,
    /// Discord webhooks, `POST /discord/api/webhooks/{id}/{token}`.
    Discord,
    /// Telegram Bot API, `POST /telegram/bot{token}/sendMessage`.
    Telegram,
    /// A customer's endpoint receiving Standard Webhooks, `POST /webhooks/{endpoint}`.
    Webhook,
    /// Plain SMTP (RFC 5321) on its own listener, the email fallback.
    Smtp,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::SendGrid,
        Provider::Twilio,
        Provider::Slack,
        Provider::Discord,
        Provider::Telegram,
        Provider::Webhook,
        Provider::Smtp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::SendGrid => "sendgrid",
            Provider::Twilio => "twilio",
            Provider::Slack => "slack",
            Provider::Discord => "discord",
            Provider::Telegram => "telegram",
            Provider::Webhook => "webhook",
            Provider::Smtp => "smtp",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.name() == name)
    }

    /// `` `sendgrid`, `twilio`, … `` for error messages that list the valid names.
    pub fn all_names() -> String {
        Provider::ALL
            .into_iter()
            .map(|provider| format!("`{}`", provider.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_serde_names() {
        for provider in Provider::ALL {
            assert_eq!(Provider::from_name(provider.name()), Some(provider));
            assert_eq!(
                serde_json::to_value(provider).unwrap(),
                serde_json::json!(provider.name())
            );
        }
        assert_eq!(Provider::from_name("mailgun"), None);
    }
}
