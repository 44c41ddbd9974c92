//! The SMTP sink's flags: where it listens, its limits and its behaviour.

use std::time::Duration;

use clap::Args;

use super::parse_rate;
use crate::behaviour::{ProviderBehaviour, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::{
    SmtpConfig, DEFAULT_SMTP_IDLE_TIMEOUT_MS, DEFAULT_SMTP_LISTEN_ADDRESS,
    DEFAULT_SMTP_MAX_CONNECTIONS, DEFAULT_SMTP_MAX_MESSAGE_BYTES, DEFAULT_SMTP_MAX_RECIPIENTS,
};

#[derive(Args)]
#[command(next_help_heading = "SMTP")]
pub struct SmtpFlags {
    /// Address the SMTP sink listens on; empty serves no SMTP.
    #[arg(long, env = "HERALD_SIM_SMTP_LISTEN", default_value = DEFAULT_SMTP_LISTEN_ADDRESS)]
    pub smtp_listen: String,
    /// The largest message accepted (announced as `SIZE`), in bytes; larger ones get 552.
    #[arg(long, env = "HERALD_SIM_SMTP_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_SMTP_MAX_MESSAGE_BYTES)]
    pub smtp_max_message_bytes: usize,
    /// Recipients per message; the next `RCPT TO` gets 452.
    #[arg(long, env = "HERALD_SIM_SMTP_MAX_RECIPIENTS", default_value_t = DEFAULT_SMTP_MAX_RECIPIENTS)]
    pub smtp_max_recipients: usize,
    /// Simultaneous SMTP connections; the next one is answered 421 and closed.
    #[arg(long, env = "HERALD_SIM_SMTP_MAX_CONNECTIONS", default_value_t = DEFAULT_SMTP_MAX_CONNECTIONS)]
    pub smtp_max_connections: usize,
    /// Silence allowed from an SMTP client before it is cut off with 421, in milliseconds.
    #[arg(long, env = "HERALD_SIM_SMTP_IDLE_TIMEOUT_MS", default_value_t = DEFAULT_SMTP_IDLE_TIMEOUT_MS)]
    pub smtp_idle_timeout_ms: u64,
    /// Base time every answer to a message (end of DATA) takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_SMTP_LATENCY_MS", default_value_t = 0)]
    pub smtp_latency_ms: u64,
    /// Uniform extra time, 0..=this many milliseconds, added to each answer to a message.
    #[arg(long, env = "HERALD_SIM_SMTP_LATENCY_JITTER_MS", default_value_t = 0)]
    pub smtp_latency_jitter_ms: u64,
    /// Share of messages answered `451 4.3.0` (0..=1).
    #[arg(long, env = "HERALD_SIM_SMTP_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub smtp_failure_rate: f64,
    /// Share of messages answered `421 4.7.0` and the connection closed (0..=1).
    #[arg(long, env = "HERALD_SIM_SMTP_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub smtp_rate_limit_rate: f64,
    /// Share of messages held for the timeout hold, then answered `451 4.4.2` (0..=1).
    #[arg(long, env = "HERALD_SIM_SMTP_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub smtp_timeout_rate: f64,
    /// How long a simulated SMTP timeout holds the message before answering, in ms.
    #[arg(long, env = "HERALD_SIM_SMTP_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub smtp_timeout_hold_ms: u64,
    /// The retry delay the `421` rate-limit answer mentions, verbatim.
    #[arg(long, env = "HERALD_SIM_SMTP_RETRY_AFTER", default_value = DEFAULT_RETRY_AFTER)]
    pub smtp_retry_after: String,
}

impl SmtpFlags {
    /// The SMTP configuration and the address to listen on (`None` when empty).
    pub fn into_config(self) -> (SmtpConfig, Option<String>) {
        let listen = Some(self.smtp_listen.trim().to_owned()).filter(|address| !address.is_empty());
        let config = SmtpConfig {
            behaviour: ProviderBehaviour {
                latency_ms: self.smtp_latency_ms,
                latency_jitter_ms: self.smtp_latency_jitter_ms,
                failure_rate: self.smtp_failure_rate,
                rate_limit_rate: self.smtp_rate_limit_rate,
                timeout_rate: self.smtp_timeout_rate,
                timeout_hold_ms: self.smtp_timeout_hold_ms,
                retry_after: self.smtp_retry_after,
                ..ProviderBehaviour::default()
            },
            max_message_bytes: self.smtp_max_message_bytes,
            max_recipients: self.smtp_max_recipients,
            max_connections: self.smtp_max_connections,
            idle_timeout: Duration::from_millis(self.smtp_idle_timeout_ms),
        };
        (config, listen)
    }
}
