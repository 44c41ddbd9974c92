//! Telegram's flags: the bot token and the behaviour of `sendMessage`.

use clap::Args;
use secrecy::SecretString;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::{TelegramConfig, DEFAULT_TELEGRAM_BOT_TOKEN};

// No `Debug`: the flags hold credentials.
#[derive(Args)]
#[command(next_help_heading = "Telegram")]
pub struct TelegramFlags {
    /// The bot token Telegram requests must name in their path (`/telegram/bot<token>/…`),
    /// `<bot id>:<secret>`; any other token is answered 401 Unauthorized.
    #[arg(long, env = "HERALD_SIM_TELEGRAM_BOT_TOKEN", default_value = DEFAULT_TELEGRAM_BOT_TOKEN, hide_env_values = true)]
    pub telegram_bot_token: String,
    /// Base time every Telegram answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_TELEGRAM_LATENCY_MS", default_value_t = 0)]
    pub telegram_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each Telegram answer.
    #[arg(
        long,
        env = "HERALD_SIM_TELEGRAM_LATENCY_JITTER_MS",
        default_value_t = 0
    )]
    pub telegram_latency_jitter_ms: u64,
    /// Share of valid Telegram requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_TELEGRAM_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub telegram_failure_rate: f64,
    /// Share of valid Telegram requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_TELEGRAM_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub telegram_rate_limit_rate: f64,
    /// Share of valid Telegram requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_TELEGRAM_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub telegram_timeout_rate: f64,
    /// How long a simulated Telegram timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_TELEGRAM_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub telegram_timeout_hold_ms: u64,
    /// The retry delay a simulated Telegram 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_TELEGRAM_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub telegram_retry_after: String,
}

impl TelegramFlags {
    pub fn into_config(self) -> TelegramConfig {
        TelegramConfig {
            bot_token: SecretString::from(self.telegram_bot_token),
            behaviour: ProviderBehaviour {
                latency_ms: self.telegram_latency_ms,
                latency_jitter_ms: self.telegram_latency_jitter_ms,
                failure_rate: self.telegram_failure_rate,
                rate_limit_rate: self.telegram_rate_limit_rate,
                timeout_rate: self.telegram_timeout_rate,
                timeout_hold_ms: self.telegram_timeout_hold_ms,
                retry_after: self.telegram_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
