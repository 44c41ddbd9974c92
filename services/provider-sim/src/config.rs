//! What the simulator is started with: the credentials each provider accepts, each provider's
//! behaviour (latency, faults) and how many full message records to keep.
//!
//! Each provider has its section here (its credential, if any, and its behaviour), read by
//! [`SimulatorConfig::behaviour`]; the CLI builds each section from that provider's flags
//! (`cli/<provider>_flags.rs`).

use std::time::Duration;

use secrecy::SecretString;

use crate::behaviour::{BehaviourError, ProviderBehaviour};
use crate::provider::Provider;
use crate::pushover::keys::is_pushover_key;
pub use crate::records::DEFAULT_MAX_REFERENCES;
use crate::validation::is_twilio_sid;

pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9090";
pub const DEFAULT_SENDGRID_API_KEY: &str = "SG.herald-local";
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const DEFAULT_TWILIO_AUTH_TOKEN: &str = "herald-local-token";
/// Shaped like a real bot token, `<bot id>:<secret>`: the bot id is what `from.id` answers.
pub const DEFAULT_TELEGRAM_BOT_TOKEN: &str = "123456:herald-local";
/// Shaped like a real Pushover application token: 30 letters and digits.
pub const DEFAULT_PUSHOVER_APP_TOKEN: &str = "aPushoverAppTokenForTests00001";
/// Messages the Pushover application may send per calendar month (UTC), as on Pushover's free
/// plan; the next one is answered 429.
pub const DEFAULT_PUSHOVER_APP_LIMIT: u64 = 10_000;
/// Where the `herald-provider-sim` binary accepts SMTP unless told otherwise.
pub const DEFAULT_SMTP_LISTEN_ADDRESS: &str = "127.0.0.1:2525";
/// The largest message DATA accepts (announced as `SIZE`); larger ones get `552`.
pub const DEFAULT_SMTP_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Recipients per message; the next `RCPT TO` gets `452`.
pub const DEFAULT_SMTP_MAX_RECIPIENTS: usize = 100;
/// Simultaneous SMTP connections; the next one is greeted `421` and closed.
pub const DEFAULT_SMTP_MAX_CONNECTIONS: usize = 1024;
/// How long an SMTP client may stay silent before it is cut off with `421`.
pub const DEFAULT_SMTP_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Full records kept per provider (a few hundred bytes each); older ones are dropped,
/// per-reference counts are not.
pub const DEFAULT_RECORD_CAPACITY: usize = 20_000;

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    pub sendgrid: SendGridConfig,
    pub twilio: TwilioConfig,
    pub slack: SlackConfig,
    pub discord: DiscordConfig,
    pub telegram: TelegramConfig,
    pub pushover: PushoverConfig,
    pub webhook: WebhookReceiverConfig,
    pub smtp: SmtpConfig,
    /// Where [`run`](crate::run) accepts SMTP; `None` (the library default, so that tests never
    /// collide on a fixed port) or an empty string serves no SMTP. The binary defaults to
    /// [`DEFAULT_SMTP_LISTEN_ADDRESS`]. Ignored by [`run_with_smtp`](crate::run_with_smtp),
    /// which is handed a bound listener.
    pub smtp_listen: Option<String>,
    /// How many accepted messages to keep in full, per provider (a ring: the newest win).
    pub record_capacity: usize,
    /// How many distinct idempotency references to count, per provider.
    pub max_references: usize,
    /// HTTP worker threads; 0 means one per physical core (actix's default).
    pub workers: usize,
}

#[derive(Clone, Debug)]
pub struct SendGridConfig {
    /// The only key `Authorization: Bearer <key>` is accepted with.
    pub api_key: SecretString,
    pub behaviour: ProviderBehaviour,
}

#[derive(Clone, Debug)]
pub struct TwilioConfig {
    /// The account the HTTP Basic credentials and the URL path must name (`AC` + 32 hex).
    pub account_sid: String,
    pub auth_token: SecretString,
    pub behaviour: ProviderBehaviour,
}

/// Slack incoming webhooks carry their credential in the URL (the last path segment), and any
/// secret is accepted except the special ones (`invalid`, …) that simulate a broken webhook.
#[derive(Clone, Debug, Default)]
pub struct SlackConfig {
    pub behaviour: ProviderBehaviour,
}

/// Discord webhooks carry their token in the URL; any token is accepted except `invalid`.
#[derive(Clone, Debug, Default)]
pub struct DiscordConfig {
    pub behaviour: ProviderBehaviour,
}

#[derive(Clone, Debug)]
pub struct TelegramConfig {
    /// The only token `/telegram/bot{token}/…` is accepted with (`<digits>:<secret>`).
    pub bot_token: SecretString,
    pub behaviour: ProviderBehaviour,
}

#[derive(Clone, Debug)]
pub struct PushoverConfig {
    /// The only application token (the `token` parameter) messages are accepted with: 30
    /// letters and digits.
    pub app_token: SecretString,
    /// Messages accepted per calendar month (UTC) before the application is over its limit
    /// (429); `X-Limit-App-Limit`. `0` refuses every message.
    pub app_limit: u64,
    pub behaviour: ProviderBehaviour,
}

/// The Standard Webhooks receiver: endpoints and their secrets are registered at run time
/// (`PUT /_sim/webhook-endpoints/{name}`), so only the behaviour is configured at start-up.
#[derive(Clone, Debug, Default)]
pub struct WebhookReceiverConfig {
    pub behaviour: ProviderBehaviour,
}

/// The SMTP sink: any sender, any recipient except a `bounce@…` local part, no TLS, `AUTH`
/// optional (any credentials but the user `invalid`).
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub behaviour: ProviderBehaviour,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    /// Silence allowed between two lines from the client.
    pub idle_timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            behaviour: ProviderBehaviour::default(),
            max_message_bytes: DEFAULT_SMTP_MAX_MESSAGE_BYTES,
            max_recipients: DEFAULT_SMTP_MAX_RECIPIENTS,
            max_connections: DEFAULT_SMTP_MAX_CONNECTIONS,
            idle_timeout: Duration::from_millis(DEFAULT_SMTP_IDLE_TIMEOUT_MS),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the Twilio account SID must be `AC` followed by 32 hexadecimal digits")]
    InvalidTwilioAccountSid,
    #[error("the SendGrid API key must not be empty")]
    EmptySendGridApiKey,
    #[error("the Twilio auth token must not be empty")]
    EmptyTwilioAuthToken,
    #[error(
        "the Telegram bot token must look like a real one: the bot's numeric id, `:`, then \
         letters, digits, `_` or `-`"
    )]
    InvalidTelegramBotToken,
    #[error("the Pushover application token must be 30 letters (A-Z, a-z) and digits")]
    InvalidPushoverAppToken,
    #[error("the SMTP limits (message size, recipients, connections, idle timeout) must not be 0")]
    InvalidSmtpLimits,
    #[error("{provider} behaviour: {error}")]
    Behaviour {
        provider: &'static str,
        error: BehaviourError,
    },
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            sendgrid: SendGridConfig::default(),
            twilio: TwilioConfig::default(),
            slack: SlackConfig::default(),
            discord: DiscordConfig::default(),
            telegram: TelegramConfig::default(),
            pushover: PushoverConfig::default(),
            webhook: WebhookReceiverConfig::default(),
            smtp: SmtpConfig::default(),
            smtp_listen: None,
            record_capacity: DEFAULT_RECORD_CAPACITY,
            max_references: DEFAULT_MAX_REFERENCES,
            workers: 0,
        }
    }
}

impl Default for SendGridConfig {
    fn default() -> Self {
        SendGridConfig {
            api_key: SecretString::from(DEFAULT_SENDGRID_API_KEY),
            behaviour: ProviderBehaviour::default(),
        }
    }
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            account_sid: DEFAULT_TWILIO_ACCOUNT_SID.to_owned(),
            auth_token: SecretString::from(DEFAULT_TWILIO_AUTH_TOKEN),
            behaviour: ProviderBehaviour::default(),
        }
    }
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            bot_token: SecretString::from(DEFAULT_TELEGRAM_BOT_TOKEN),
            behaviour: ProviderBehaviour::default(),
        }
    }
}

impl Default for PushoverConfig {
    fn default() -> Self {
        PushoverConfig {
            app_token: SecretString::from(DEFAULT_PUSHOVER_APP_TOKEN),
            app_limit: DEFAULT_PUSHOVER_APP_LIMIT,
            behaviour: ProviderBehaviour::default(),
        }
    }
}

/// `<bot id>:<secret>`, as BotFather issues them; the bot id must fit the `from.id` answered.
pub fn is_telegram_bot_token(token: &str) -> bool {
    let Some((bot_id, secret)) = token.split_once(':') else {
        return false;
    };
    !bot_id.is_empty()
        && bot_id.len() <= 18
        && bot_id.bytes().all(|byte| byte.is_ascii_digit())
        && !secret.is_empty()
        && secret
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

impl SimulatorConfig {
    /// The SMTP address to bind, if any: `smtp_listen` unless it is missing or blank.
    pub fn smtp_listen_address(&self) -> Option<&str> {
        self.smtp_listen
            .as_deref()
            .map(str::trim)
            .filter(|address| !address.is_empty())
    }

    /// The start-up behaviour of `provider`.
    pub fn behaviour(&self, provider: Provider) -> &ProviderBehaviour {
        match provider {
            Provider::SendGrid => &self.sendgrid.behaviour,
            Provider::Twilio => &self.twilio.behaviour,
            Provider::Slack => &self.slack.behaviour,
            Provider::Discord => &self.discord.behaviour,
            Provider::Telegram => &self.telegram.behaviour,
            Provider::Pushover => &self.pushover.behaviour,
            Provider::Webhook => &self.webhook.behaviour,
            Provider::Smtp => &self.smtp.behaviour,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        if self.sendgrid.api_key.expose_secret().is_empty() {
            return Err(ConfigError::EmptySendGridApiKey);
        }
        if !is_twilio_sid("AC", &self.twilio.account_sid) {
            return Err(ConfigError::InvalidTwilioAccountSid);
        }
        if self.twilio.auth_token.expose_secret().is_empty() {
            return Err(ConfigError::EmptyTwilioAuthToken);
        }
        if !is_telegram_bot_token(self.telegram.bot_token.expose_secret()) {
            return Err(ConfigError::InvalidTelegramBotToken);
        }
        if !is_pushover_key(self.pushover.app_token.expose_secret()) {
            return Err(ConfigError::InvalidPushoverAppToken);
        }
        let smtp = &self.smtp;
        if smtp.max_message_bytes == 0
            || smtp.max_recipients == 0
            || smtp.max_connections == 0
            || smtp.idle_timeout.is_zero()
        {
            return Err(ConfigError::InvalidSmtpLimits);
        }
        for provider in Provider::ALL {
            self.behaviour(provider)
                .validate()
                .map_err(|error| ConfigError::Behaviour {
                    provider: provider.name(),
                    error,
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_bot_tokens_are_a_numeric_id_and_a_secret() {
        assert!(is_telegram_bot_token(DEFAULT_TELEGRAM_BOT_TOKEN));
        assert!(is_telegram_bot_token(
            "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
        ));
        for token in [
            "",
            "123456",
            ":secret",
            "12a:secret",
            "123:",
            "123:a b",
            "123:a/b",
        ] {
            assert!(!is_telegram_bot_token(token), "{token}");
        }
    }

    #[test]
    fn the_pushover_app_token_must_look_like_a_real_one() {
        assert!(SimulatorConfig::default().validate().is_ok());
        for token in [
            "",
            "short",
            "aPushoverAppTokenForTests0000!",
            "aPushoverAppTokenForTests000001",
        ] {
            let mut config = SimulatorConfig::default();
            config.pushover.app_token = SecretString::from(token);
            assert!(
                matches!(config.validate(), Err(ConfigError::InvalidPushoverAppToken)),
                "{token}"
            );
        }
    }

    #[test]
    fn every_providers_behaviour_is_validated() {
        let mut config = SimulatorConfig::default();
        config.discord.behaviour.failure_rate = 2.0;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.starts_with("discord behaviour:"), "{error}");
    }
}
