//! Pushover's flags: the application token, its monthly message limit and the behaviour of
//! `POST /pushover/1/messages.json`.

use clap::Args;
use secrecy::SecretString;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::{PushoverConfig, DEFAULT_PUSHOVER_APP_LIMIT, DEFAULT_PUSHOVER_APP_TOKEN};

// No `Debug`: the flags hold credentials.
#[derive(Args)]
#[command(next_help_heading = "Pushover")]
pub struct PushoverFlags {
    /// The application token Pushover messages must carry as their `token` parameter (30
    /// letters and digits); any other is answered 400 `application token is invalid`.
    #[arg(long, env = "HERALD_SIM_PUSHOVER_APP_TOKEN", default_value = DEFAULT_PUSHOVER_APP_TOKEN, hide_env_values = true)]
    pub pushover_app_token: String,
    /// Messages the application may send per calendar month (UTC) before Pushover answers 429
    /// `application is over its message limit` (0: every message).
    #[arg(long, env = "HERALD_SIM_PUSHOVER_APP_LIMIT", default_value_t = DEFAULT_PUSHOVER_APP_LIMIT)]
    pub pushover_app_limit: u64,
    /// Base time every Pushover answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_PUSHOVER_LATENCY_MS", default_value_t = 0)]
    pub pushover_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each Pushover answer.
    #[arg(
        long,
        env = "HERALD_SIM_PUSHOVER_LATENCY_JITTER_MS",
        default_value_t = 0
    )]
    pub pushover_latency_jitter_ms: u64,
    /// Share of valid Pushover requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_PUSHOVER_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub pushover_failure_rate: f64,
    /// Share of valid Pushover requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_PUSHOVER_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub pushover_rate_limit_rate: f64,
    /// Share of valid Pushover requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_PUSHOVER_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub pushover_timeout_rate: f64,
    /// How long a simulated Pushover timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_PUSHOVER_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub pushover_timeout_hold_ms: u64,
    /// The retry delay a simulated Pushover 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_PUSHOVER_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub pushover_retry_after: String,
}

impl PushoverFlags {
    pub fn into_config(self) -> PushoverConfig {
        PushoverConfig {
            app_token: SecretString::from(self.pushover_app_token),
            app_limit: self.pushover_app_limit,
            behaviour: ProviderBehaviour {
                latency_ms: self.pushover_latency_ms,
                latency_jitter_ms: self.pushover_latency_jitter_ms,
                failure_rate: self.pushover_failure_rate,
                rate_limit_rate: self.pushover_rate_limit_rate,
                timeout_rate: self.pushover_timeout_rate,
                timeout_hold_ms: self.pushover_timeout_hold_ms,
                retry_after: self.pushover_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
