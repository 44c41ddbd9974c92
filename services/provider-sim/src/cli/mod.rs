//! Command-line flags and environment variables, turned into a [`SimulatorConfig`]. Every flag
//! has an `HERALD_SIM_*` variable; credentials' values are never printed (not even by `--help`).
//! Each provider's flags are in their own file, flattened in here under their own `--help`
//! heading.

mod discord_flags;
mod pushover_flags;
mod sendgrid_flags;
mod slack_flags;
mod smtp_flags;
mod telegram_flags;
mod twilio_flags;
mod webhook_flags;

use clap::Parser;

use crate::config::{
    ConfigError, SimulatorConfig, DEFAULT_LISTEN_ADDRESS, DEFAULT_MAX_REFERENCES,
    DEFAULT_RECORD_CAPACITY,
};
use discord_flags::DiscordFlags;
use pushover_flags::PushoverFlags;
use sendgrid_flags::SendGridFlags;
use slack_flags::SlackFlags;
use smtp_flags::SmtpFlags;
use telegram_flags::TelegramFlags;
use twilio_flags::TwilioFlags;
use webhook_flags::WebhookFlags;

/// Simulates the SendGrid, Twilio, Slack, Discord, Telegram and Pushover APIs, a Standard
/// Webhooks receiver and an SMTP sink for Herald's tests and benchmarks.
// No `Debug`: the arguments hold credentials.
#[derive(Parser)]
#[command(name = "herald-provider-sim", version)]
pub struct Arguments {
    /// Address to listen on.
    #[arg(long, env = "HERALD_SIM_LISTEN", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen: String,
    /// HTTP worker threads (0: one per physical core).
    #[arg(long, env = "HERALD_SIM_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Accepted messages kept in full per provider (per-reference counts are always complete).
    #[arg(long, env = "HERALD_SIM_RECORD_CAPACITY", default_value_t = DEFAULT_RECORD_CAPACITY)]
    pub record_capacity: usize,
    /// Distinct idempotency references counted per provider (about 80 bytes each); past it,
    /// new references show as `untracked_references` in `/_sim/stats`.
    #[arg(long, env = "HERALD_SIM_MAX_REFERENCES", default_value_t = DEFAULT_MAX_REFERENCES)]
    pub max_references: usize,

    #[command(flatten)]
    pub sendgrid: SendGridFlags,
    #[command(flatten)]
    pub twilio: TwilioFlags,
    #[command(flatten)]
    pub slack: SlackFlags,
    #[command(flatten)]
    pub discord: DiscordFlags,
    #[command(flatten)]
    pub telegram: TelegramFlags,
    #[command(flatten)]
    pub pushover: PushoverFlags,
    #[command(flatten)]
    pub webhook: WebhookFlags,
    #[command(flatten)]
    pub smtp: SmtpFlags,
}

/// A share of requests, `0..=1`, for the `*_RATE` flags.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{rate} is not between 0 and 1"));
    }
    Ok(rate)
}

impl Arguments {
    /// The configuration these arguments describe, checked as a whole (rates summing above 1,
    /// a malformed account SID, bot token or Pushover application token).
    pub fn into_config(self) -> Result<SimulatorConfig, ConfigError> {
        let (smtp, smtp_listen) = self.smtp.into_config();
        let config = SimulatorConfig {
            sendgrid: self.sendgrid.into_config(),
            twilio: self.twilio.into_config(),
            slack: self.slack.into_config(),
            discord: self.discord.into_config(),
            telegram: self.telegram.into_config(),
            pushover: self.pushover.into_config(),
            webhook: self.webhook.into_config(),
            smtp,
            smtp_listen,
            record_capacity: self.record_capacity,
            max_references: self.max_references,
            workers: self.workers,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::ProviderBehaviour;
    use crate::config::{
        DEFAULT_PUSHOVER_APP_LIMIT, DEFAULT_PUSHOVER_APP_TOKEN, DEFAULT_TELEGRAM_BOT_TOKEN,
    };
    use crate::provider::Provider;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_describe_a_fast_reliable_local_simulator() {
        let arguments = Arguments::try_parse_from(["herald-provider-sim"]).unwrap();
        assert_eq!(arguments.listen, "127.0.0.1:9090");
        let config = arguments.into_config().unwrap();
        assert_eq!(config.sendgrid.api_key.expose_secret(), "SG.herald-local");
        assert_eq!(
            config.twilio.account_sid,
            "AC00000000000000000000000000000000"
        );
        assert_eq!(
            config.twilio.auth_token.expose_secret(),
            "herald-local-token"
        );
        assert_eq!(
            config.telegram.bot_token.expose_secret(),
            DEFAULT_TELEGRAM_BOT_TOKEN
        );
        assert_eq!(
            config.pushover.app_token.expose_secret(),
            DEFAULT_PUSHOVER_APP_TOKEN
        );
        assert_eq!(config.pushover.app_limit, DEFAULT_PUSHOVER_APP_LIMIT);
        for provider in Provider::ALL {
            assert_eq!(
                config.behaviour(provider),
                &ProviderBehaviour::default(),
                "{provider:?}"
            );
        }
        assert_eq!(config.smtp_listen.as_deref(), Some("127.0.0.1:2525"));
        assert_eq!(config.record_capacity, DEFAULT_RECORD_CAPACITY);
        assert_eq!(config.max_references, DEFAULT_MAX_REFERENCES);
    }

    #[test]
    fn per_provider_flags_set_each_behaviour() {
        let arguments = Arguments::try_parse_from([
            "herald-provider-sim",
            "--sendgrid-latency-ms",
            "40",
            "--sendgrid-failure-rate",
            "0.25",
            "--twilio-rate-limit-rate",
            "0.5",
            "--twilio-timeout-hold-ms",
            "100",
            "--slack-latency-ms",
            "7",
            "--slack-retry-after",
            "30",
            "--discord-failure-rate",
            "0.1",
            "--discord-latency-jitter-ms",
            "3",
            "--telegram-rate-limit-rate",
            "0.2",
            "--telegram-bot-token",
            "42:another-bot",
            "--pushover-app-token",
            "anotherPushoverAppToken0000002",
            "--pushover-app-limit",
            "3",
            "--pushover-timeout-rate",
            "0.5",
            "--webhook-timeout-rate",
            "0.3",
            "--webhook-timeout-hold-ms",
            "250",
            "--smtp-listen",
            "",
            "--smtp-failure-rate",
            "0.4",
            "--smtp-idle-timeout-ms",
            "500",
        ])
        .unwrap();
        let config = arguments.into_config().unwrap();
        assert_eq!(config.sendgrid.behaviour.latency_ms, 40);
        assert_eq!(config.sendgrid.behaviour.failure_rate, 0.25);
        assert_eq!(config.twilio.behaviour.rate_limit_rate, 0.5);
        assert_eq!(config.twilio.behaviour.timeout_hold_ms, 100);
        assert_eq!(config.slack.behaviour.latency_ms, 7);
        assert_eq!(config.slack.behaviour.retry_after, "30");
        assert_eq!(config.discord.behaviour.failure_rate, 0.1);
        assert_eq!(config.discord.behaviour.latency_jitter_ms, 3);
        assert_eq!(config.telegram.behaviour.rate_limit_rate, 0.2);
        assert_eq!(config.telegram.bot_token.expose_secret(), "42:another-bot");
        assert_eq!(
            config.pushover.app_token.expose_secret(),
            "anotherPushoverAppToken0000002"
        );
        assert_eq!(config.pushover.app_limit, 3);
        assert_eq!(config.pushover.behaviour.timeout_rate, 0.5);
        assert_eq!(config.webhook.behaviour.timeout_rate, 0.3);
        assert_eq!(config.webhook.behaviour.timeout_hold_ms, 250);
        assert_eq!(config.smtp_listen, None, "an empty address disables SMTP");
        assert_eq!(config.smtp.behaviour.failure_rate, 0.4);
        assert_eq!(
            config.smtp.idle_timeout,
            std::time::Duration::from_millis(500)
        );
    }

    #[test]
    fn invalid_rates_sids_and_tokens_are_refused() {
        assert!(
            Arguments::try_parse_from(["herald-provider-sim", "--twilio-failure-rate", "1.5"])
                .is_err()
        );
        assert!(Arguments::try_parse_from([
            "herald-provider-sim",
            "--slack-rate-limit-rate",
            "-0.1"
        ])
        .is_err());
        let arguments = Arguments::try_parse_from([
            "herald-provider-sim",
            "--sendgrid-failure-rate",
            "0.6",
            "--sendgrid-timeout-rate",
            "0.6",
        ])
        .unwrap();
        assert!(arguments.into_config().is_err());
        let arguments =
            Arguments::try_parse_from(["herald-provider-sim", "--twilio-account-sid", "AC123"])
                .unwrap();
        assert!(arguments.into_config().is_err());
        let arguments =
            Arguments::try_parse_from(["herald-provider-sim", "--telegram-bot-token", "no-bot-id"])
                .unwrap();
        assert!(arguments.into_config().is_err());
        let arguments =
            Arguments::try_parse_from(["herald-provider-sim", "--pushover-app-token", "too-short"])
                .unwrap();
        assert!(arguments.into_config().is_err());
    }
}
