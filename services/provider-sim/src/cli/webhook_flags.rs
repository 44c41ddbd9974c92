//! The webhook receiver's flags: its behaviour (endpoints and their signing secrets are
//! registered at run time, `PUT /_sim/webhook-endpoints/{name}`).

use clap::Args;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::WebhookReceiverConfig;

#[derive(Args)]
#[command(next_help_heading = "Webhook receiver")]
pub struct WebhookFlags {
    /// Base time every webhook receiver answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_WEBHOOK_LATENCY_MS", default_value_t = 0)]
    pub webhook_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each webhook receiver answer.
    #[arg(
        long,
        env = "HERALD_SIM_WEBHOOK_LATENCY_JITTER_MS",
        default_value_t = 0
    )]
    pub webhook_latency_jitter_ms: u64,
    /// Share of valid webhook receiver requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_WEBHOOK_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub webhook_failure_rate: f64,
    /// Share of valid webhook receiver requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_WEBHOOK_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub webhook_rate_limit_rate: f64,
    /// Share of valid webhook receiver requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_WEBHOOK_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub webhook_timeout_rate: f64,
    /// How long a simulated webhook receiver timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_WEBHOOK_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub webhook_timeout_hold_ms: u64,
    /// The retry delay a simulated webhook receiver 429 announces, verbatim (seconds, an HTTP-date or
    /// anything a misbehaving provider might send).
    #[arg(long, env = "HERALD_SIM_WEBHOOK_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub webhook_retry_after: String,
}

impl WebhookFlags {
    pub fn into_config(self) -> WebhookReceiverConfig {
        WebhookReceiverConfig {
            behaviour: ProviderBehaviour {
                latency_ms: self.webhook_latency_ms,
                latency_jitter_ms: self.webhook_latency_jitter_ms,
                failure_rate: self.webhook_failure_rate,
                rate_limit_rate: self.webhook_rate_limit_rate,
                timeout_rate: self.webhook_timeout_rate,
                timeout_hold_ms: self.webhook_timeout_hold_ms,
                retry_after: self.webhook_retry_after,
                ..ProviderBehaviour::default()
            },
        }
    }
}
