//! Discord's flags: the behaviour of the webhooks (their token is in the URL, so there is
//! no credential to configure).

use clap::Args;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::DiscordConfig;

#[derive(Args)]
#[command(next_help_heading = "Discord")]
pub struct DiscordFlags {
    /// Base time every Discord answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_DISCORD_LATENCY_MS", default_value_t = 0)]
    pub discord_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each Discord answer.
    #[arg(
        long,
        env = "HERALD_SIM_DISCORD_LATENCY_JITTER_MS",
        default_value_t = 0
    )]
    pub discord_latency_jitter_ms: u64,
    /// Share of valid Discord requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_DISCORD_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub discord_failure_rate: f64,
    /// Share of valid Discord requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_DISCORD_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub discord_rate_limit_rate: f64,
    /// Share of valid Discord requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_DISCORD_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub discord_timeout_rate: f64,
    /// How long a simulated Discord timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_DISCORD_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub discord_timeout_hold_ms: u64,
    /// The retry delay a simulated Discord 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_DISCORD_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub discord_retry_after: String,
}

impl DiscordFlags {
    pub fn into_config(self) -> DiscordConfig {
        DiscordConfig {
            behaviour: ProviderBehaviour {
                latency_ms: self.discord_latency_ms,
                latency_jitter_ms: self.discord_latency_jitter_ms,
                failure_rate: self.discord_failure_rate,
                rate_limit_rate: self.discord_rate_limit_rate,
                timeout_rate: self.discord_timeout_rate,
                timeout_hold_ms: self.discord_timeout_hold_ms,
                retry_after: self.discord_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
