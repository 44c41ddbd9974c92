//! Slack's flags: the behaviour of the incoming webhooks (their secret is in the URL, so
//! there is no credential to configure).

use clap::Args;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::SlackConfig;

#[derive(Args)]
#[command(next_help_heading = "Slack")]
pub struct SlackFlags {
    /// Base time every Slack answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_SLACK_LATENCY_MS", default_value_t = 0)]
    pub slack_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each Slack answer.
    #[arg(long, env = "HERALD_SIM_SLACK_LATENCY_JITTER_MS", default_value_t = 0)]
    pub slack_latency_jitter_ms: u64,
    /// Share of valid Slack requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_SLACK_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub slack_failure_rate: f64,
    /// Share of valid Slack requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_SLACK_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub slack_rate_limit_rate: f64,
    /// Share of valid Slack requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_SLACK_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub slack_timeout_rate: f64,
    /// How long a simulated Slack timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_SLACK_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub slack_timeout_hold_ms: u64,
    /// The retry delay a simulated Slack 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_SLACK_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub slack_retry_after: String,
}

impl SlackFlags {
    pub fn into_config(self) -> SlackConfig {
        SlackConfig {
            behaviour: ProviderBehaviour {
                latency_ms: self.slack_latency_ms,
                latency_jitter_ms: self.slack_latency_jitter_ms,
                failure_rate: self.slack_failure_rate,
                rate_limit_rate: self.slack_rate_limit_rate,
                timeout_rate: self.slack_timeout_rate,
                timeout_hold_ms: self.slack_timeout_hold_ms,
                retry_after: self.slack_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
