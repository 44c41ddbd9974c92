//! `[providers.<name>]`: one section per provider, each with its lane (bulkhead) bounds and the
//! provider's own endpoint and credentials. A new provider is a struct here, a field of
//! [`ProvidersSettings`], and an arm of [`ProvidersSettings::lane`].

use herald_domain::ProviderId;
use secrecy::SecretString;
use serde::Deserialize;

/// What every provider lane (bulkhead) is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct LaneSettings {
    pub timeout_ms: u64,
    pub requests_per_second: u32,
    /// Provider requests in flight at once.
    pub max_in_flight: usize,
    /// Deliveries this worker holds for the provider: waiting in memory, in flight, or sent with
    /// the outcome not yet recorded (so it bounds the in-doubt set of a worker that dies).
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

/// Every provider's rate limit as the worker replicas share it through Redis (docs/DESIGN.md,
/// "Rate limits"): how a 429 slows them all and how they recover, and what a worker does alone
/// when Redis is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct RateLimitConfig {
    /// The share of each provider's `requests_per_second` one worker uses while it cannot reach
    /// Redis (0 to 1): about 1 / the number of worker replicas keeps the provider within its rate.
    pub fallback_share: f64,
    /// A 429 multiplies the shared rate by this (0 to 1, exclusive), at most once a second.
    pub decrease_factor: f64,
    /// The lowest share of the configured rate a run of 429s can bring it to (0 to 1).
    pub min_share: f64,
    /// The share of the configured rate regained per second after a cut (additive increase).
    pub recovery_per_second: f64,
    /// The longest pause a provider's `Retry-After` imposes on every replica.
    pub max_pause_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProvidersSettings {
    pub circuit_breaker: CircuitBreakerConfig,
    pub rate_limit: RateLimitConfig,
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
    /// A provider's lane (`providers.<id>`); SMTP has none: it sends within SendGrid's.
    pub fn lane(&self, provider: ProviderId) -> Option<LaneSettings> {
        match provider {
            ProviderId::SendGrid => Some(self.sendgrid.lane()),
            ProviderId::Twilio => Some(self.twilio.lane()),
            ProviderId::Smtp => None,
            ProviderId::Slack => Some(self.slack),
            ProviderId::Discord => Some(self.discord),
            ProviderId::Telegram => Some(self.telegram.lane()),
            ProviderId::Webhook => Some(self.webhook),
        }
    }

    /// Every provider's lane, by provider.
    pub fn lanes(&self) -> Vec<(ProviderId, LaneSettings)> {
        ProviderId::ALL
            .into_iter()
            .filter_map(|provider| Some((provider, self.lane(provider)?)))
            .collect()
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
    /// The Event Webhook's verification key as SendGrid's settings show it: base64 of the DER
    /// (SubjectPublicKeyInfo) ECDSA P-256 public key. Public, not a secret; empty refuses every
    /// event batch (docs/DESIGN.md, "Provider callbacks").
    #[serde(default)]
    pub event_webhook_public_key: String,
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
    /// Where Twilio reaches the API from outside (`https://herald.example.com`): messages carry
    /// `StatusCallback = {this}/v1/providers/twilio/status?...`, and the API rebuilds the URL
    /// Twilio signed from it. Empty: no status callbacks.
    #[serde(default)]
    pub status_callback_base_url: String,
    pub timeout_ms: u64,
    pub requests_per_second: u32,
    pub max_in_flight: usize,
    pub max_held: usize,
}

/// The API's route for Twilio's status callbacks, under `status_callback_base_url`.
pub const TWILIO_STATUS_CALLBACK_PATH: &str = "/v1/providers/twilio/status";

/// The `StatusCallback` URL of one delivery under `base_url` (a trailing `/` is not doubled);
/// `None` for an empty base URL.
pub fn twilio_status_callback_url(
    base_url: &str,
    notification_id: impl std::fmt::Display,
    delivery_id: impl std::fmt::Display,
) -> Option<String> {
    let base = base_url.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| {
        format!(
            "{base}{TWILIO_STATUS_CALLBACK_PATH}?notification_id={notification_id}&delivery_id={delivery_id}"
        )
    })
}

impl TwilioSettings {
    /// The `StatusCallback` URL of one delivery's message, naming the delivery by its key; `None`
    /// while `status_callback_base_url` is empty.
    pub fn status_callback_url(
        &self,
        notification_id: impl std::fmt::Display,
        delivery_id: impl std::fmt::Display,
    ) -> Option<String> {
        twilio_status_callback_url(&self.status_callback_base_url, notification_id, delivery_id)
    }

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
