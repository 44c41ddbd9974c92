//! SendGrid's flags: the API key and the behaviour of `POST /v3/mail/send`.

use clap::Args;
use secrecy::SecretString;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::{SendGridConfig, DEFAULT_SENDGRID_API_KEY};

// No `Debug`: the flags hold credentials.
#[derive(Args)]
#[command(next_help_heading = "SendGrid")]
pub struct SendGridFlags {
    /// The API key SendGrid requests must carry as `Authorization: Bearer <key>`.
    #[arg(long, env = "HERALD_SIM_SENDGRID_API_KEY", default_value = DEFAULT_SENDGRID_API_KEY, hide_env_values = true)]
    pub sendgrid_api_key: String,
    /// Base time every SendGrid answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_SENDGRID_LATENCY_MS", default_value_t = 0)]
    pub sendgrid_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each SendGrid answer.
    #[arg(
        long,
        env = "HERALD_SIM_SENDGRID_LATENCY_JITTER_MS",
        default_value_t = 0
    )]
    pub sendgrid_latency_jitter_ms: u64,
    /// Share of valid SendGrid requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_SENDGRID_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sendgrid_failure_rate: f64,
    /// Share of valid SendGrid requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_SENDGRID_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sendgrid_rate_limit_rate: f64,
    /// Share of valid SendGrid requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_SENDGRID_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sendgrid_timeout_rate: f64,
    /// How long a simulated SendGrid timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_SENDGRID_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub sendgrid_timeout_hold_ms: u64,
    /// The retry delay a simulated SendGrid 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_SENDGRID_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub sendgrid_retry_after: String,
}

impl SendGridFlags {
    pub fn into_config(self) -> SendGridConfig {
        SendGridConfig {
            api_key: SecretString::from(self.sendgrid_api_key),
            behaviour: ProviderBehaviour {
                latency_ms: self.sendgrid_latency_ms,
                latency_jitter_ms: self.sendgrid_latency_jitter_ms,
                failure_rate: self.sendgrid_failure_rate,
                rate_limit_rate: self.sendgrid_rate_limit_rate,
                timeout_rate: self.sendgrid_timeout_rate,
                timeout_hold_ms: self.sendgrid_timeout_hold_ms,
                retry_after: self.sendgrid_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
