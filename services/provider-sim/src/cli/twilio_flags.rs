//! Twilio's flags: the account, its token and the behaviour of the Messages API.

use clap::Args;
use secrecy::SecretString;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::{TwilioConfig, DEFAULT_TWILIO_ACCOUNT_SID, DEFAULT_TWILIO_AUTH_TOKEN};

// No `Debug`: the flags hold credentials.
#[derive(Args)]
#[command(next_help_heading = "Twilio")]
pub struct TwilioFlags {
    /// The account SID Twilio requests must authenticate as and name in their path.
    #[arg(long, env = "HERALD_SIM_TWILIO_ACCOUNT_SID", default_value = DEFAULT_TWILIO_ACCOUNT_SID)]
    pub twilio_account_sid: String,
    /// The auth token Twilio requests must carry (HTTP Basic password).
    #[arg(long, env = "HERALD_SIM_TWILIO_AUTH_TOKEN", default_value = DEFAULT_TWILIO_AUTH_TOKEN, hide_env_values = true)]
    pub twilio_auth_token: String,
    /// Base time every Twilio answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_TWILIO_LATENCY_MS", default_value_t = 0)]
    pub twilio_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each Twilio answer.
    #[arg(long, env = "HERALD_SIM_TWILIO_LATENCY_JITTER_MS", default_value_t = 0)]
    pub twilio_latency_jitter_ms: u64,
    /// Share of valid Twilio requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_TWILIO_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub twilio_failure_rate: f64,
    /// Share of valid Twilio requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_TWILIO_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub twilio_rate_limit_rate: f64,
    /// Share of valid Twilio requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_TWILIO_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub twilio_timeout_rate: f64,
    /// How long a simulated Twilio timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_TWILIO_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub twilio_timeout_hold_ms: u64,
    /// The retry delay a simulated Twilio 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_TWILIO_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub twilio_retry_after: String,
}

impl TwilioFlags {
    pub fn into_config(self) -> TwilioConfig {
        TwilioConfig {
            account_sid: self.twilio_account_sid,
            auth_token: SecretString::from(self.twilio_auth_token),
            behaviour: ProviderBehaviour {
                latency_ms: self.twilio_latency_ms,
                latency_jitter_ms: self.twilio_latency_jitter_ms,
                failure_rate: self.twilio_failure_rate,
                rate_limit_rate: self.twilio_rate_limit_rate,
                timeout_rate: self.twilio_timeout_rate,
                timeout_hold_ms: self.twilio_timeout_hold_ms,
                retry_after: self.twilio_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
