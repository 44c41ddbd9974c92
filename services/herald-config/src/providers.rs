//! `[providers.<name>]`: one section per provider, each with its lane (bulkhead) bounds and the
//! provider's own endpoint and credentials. A new provider is a struct here, a field of
//! [`ProvidersSettings`], and a line of [`ProvidersSettings::lanes`].

use secrecy::SecretString;
use serde::Deserialize;

/// What every provider lane (bulkhead) is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct LaneSettings {
    pub timeout_ms: u64,
    pub requests_per_second: u32,
    /// Provider requests in flight at once.
    pub max_in_flight: usize,
    /// Deliveries this worker holds for the provider: waiting in memory or in flight.
    pub max_held: usize,
}

/// Every provider's circuit breaker: when it opens, for how long, how it probes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct CircuitBreakerConfig {
    /// Failures in a row (timeouts, connection errors, 5xx) that open the circuit.
    pub consecutive_failures: u32,
    /// The failure rate over the last `window` calls that opens it (0 to 1)…
    pub failure_rate: f64,
    pub window: usize,
    /// …once the window holds at least this many calls.
    pub minimum_calls: usize,
    /// How long it stays open before a probe; doubled on every failed probe, up to the maximum.
    pub open_for_ms: u64,
    pub max_open_for_ms: u64,
    /// Probe calls in flight at once while half-open.
    pub half_open_probes: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProvidersSettings {
    pub circuit_breaker: CircuitBreakerConfig,
    pub sendgrid: SendGridSettings,
    pub twilio: TwilioSettings,
    /// Slack incoming webhooks: the URL is the recipient's, so only the lane is configured.
    pub slack: LaneSettings,
    /// Discord channel webhooks, like Slack's.
    pub discord: LaneSettings,
    pub telegram: TelegramSettings,
    /// Plain SMTP, the email failover when SendGrid's circuit is open.
    pub smtp: SmtpSettings,
    /// Signed webhooks to recipients' own endpoints.
    pub webhook: LaneSettings,
}

impl ProvidersSettings {
    /// Every provider's lane, by the provider's name (`providers.<name>`).
    pub fn lanes(&self) -> [(&'static str, LaneSettings); 6] {
        [
            ("sendgrid", self.sendgrid.lane()),
            ("twilio", self.twilio.lane()),
            ("slack", self.slack),
            ("discord", self.discord),
            ("telegram", self.telegram.lane()),
            ("webhook", self.webhook),
        ]
    }

    /// The base URLs of the providers that have one, by setting name.
    pub fn base_urls(&self) -> [(&'static str, &str); 3] {
        [
            ("providers.sendgrid.base_url", &self.sendgrid.base_url),
            ("providers.twilio.base_url", &self.twilio.base_url),
            ("providers.telegram.base_url", &self.telegram.base_url),
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SendGridSettings {
    pub base_url: String,
    pub api_key: SecretString,
    pub from: String,
    pub timeout_ms: u64,
    pub requests_per_second: u32,
    pub max_in_flight: usize,
    pub max_held: usize,
}

impl SendGridSettings {
    pub fn lane(&self) -> LaneSettings {
        LaneSettings {
            timeout_ms: self.timeout_ms,
            requests_per_second: self.requests_per_second,
            max_in_flight: self.max_in_flight,
            max_held: self.max_held,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TwilioSettings {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    pub from: String,
    pub timeout_ms: u64,
    pub requests_per_second: u32,
    pub max_in_flight: usize,
    pub max_held: usize,
}

impl TwilioSettings {
    pub fn lane(&self) -> LaneSettings {
        LaneSettings {
            timeout_ms: self.timeout_ms,
            requests_per_second: self.requests_per_second,
            max_in_flight: self.max_in_flight,
            max_held: self.max_held,
        }
    }
}

/// The Telegram Bot API: `POST {base_url}/bot{bot_token}/sendMessage`.
#[derive(Debug, Clone, Deserialize)]
pub struct TelegramSettings {
    pub base_url: String,
    pub bot_token: SecretString,
    pub timeout_ms: u64,
    pub requests_per_second: u32,
    pub max_in_flight: usize,
    pub max_held: usize,
}

impl TelegramSettings {
    pub fn lane(&self) -> LaneSettings {
        LaneSettings {
            timeout_ms: self.timeout_ms,
            requests_per_second: self.requests_per_second,
            max_in_flight: self.max_in_flight,
            max_held: self.max_held,
        }
    }
}

/// Plain SMTP: `url` is `smtp://host:port` (`?tls=required` for STARTTLS), `smtps://host:port`
/// for implicit TLS, with optional `user:password@`; empty turns the failover off. It sends within
/// SendGrid's lane (its bounds and rate), so it has only a timeout of its own.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    /// Secret: it may carry credentials.
    pub url: SecretString,
    pub from: String,
    pub timeout_ms: u64,
}

/// Where tenant-given URLs may lead.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct OutboundSettings {
    /// Lets recipients' URLs point at loopback and private networks: local runs and tests only.
    pub allow_private_networks: bool,
}
