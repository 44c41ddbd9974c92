//! What every `[providers.<id>]` section shares: its lane (bulkhead) bounds, declared once in
//! [`provider_section!`], and the circuit-breaker and rate-limit settings of `[providers]`. The
//! sections themselves are their providers' (each in its module), and `ProvidersSettings` is
//! generated from the registered kinds (`lib.rs`).

use herald_domain::ProviderId;
use serde::Deserialize;

use crate::ProvidersSettings;

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

/// A `[providers.<id>]` section: every one configures its lane (bulkhead) bounds.
pub trait ProviderSection {
    fn lane(&self) -> LaneSettings;

    fn set_timeout_ms(&mut self, timeout_ms: u64);

    /// The provider API's base URL, for providers at a configured URL: validated at start-up, and
    /// pointed at a simulator by tests.
    fn base_url(&self) -> Option<&str> {
        None
    }

    fn base_url_mut(&mut self) -> Option<&mut String> {
        None
    }
}

/// Slack, Discord and recipients' webhooks: the URL is the recipient's, so only the lane is
/// configured.
impl ProviderSection for LaneSettings {
    fn lane(&self) -> LaneSettings {
        *self
    }

    fn set_timeout_ms(&mut self, timeout_ms: u64) {
        self.timeout_ms = timeout_ms;
    }
}

/// A `[providers.<id>]` section of a provider API at a configured URL: its `base_url`, the
/// provider's own settings as written, then the four lane settings every section has, with
/// [`ProviderSection`] reading them as a [`LaneSettings`].
/// (`#[serde(flatten)]` would say the same, but would lose unknown-key warnings and the
/// environment's strings read as numbers.)
#[macro_export]
macro_rules! provider_section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $type:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize)]
        pub struct $name {
            /// The provider API's root, without a trailing `/` (one is ignored).
            pub base_url: String,
            $( $(#[$field_meta])* pub $field: $type, )*
            pub timeout_ms: u64,
            pub requests_per_second: u32,
            pub max_in_flight: usize,
            pub max_held: usize,
        }

        impl $name {
            pub fn lane(&self) -> $crate::settings::LaneSettings {
                $crate::settings::LaneSettings {
                    timeout_ms: self.timeout_ms,
                    requests_per_second: self.requests_per_second,
                    max_in_flight: self.max_in_flight,
                    max_held: self.max_held,
                }
            }
        }

        impl $crate::settings::ProviderSection for $name {
            fn lane(&self) -> $crate::settings::LaneSettings {
                $name::lane(self)
            }

            fn set_timeout_ms(&mut self, timeout_ms: u64) {
                self.timeout_ms = timeout_ms;
            }

            fn base_url(&self) -> Option<&str> {
                Some(&self.base_url)
            }

            fn base_url_mut(&mut self) -> Option<&mut String> {
                Some(&mut self.base_url)
            }
        }
    };
}

impl ProvidersSettings {
    /// Every provider's lane, by provider.
    pub fn lanes(&self) -> Vec<(ProviderId, LaneSettings)> {
        ProviderId::ALL
            .into_iter()
            .filter_map(|provider| Some((provider, self.lane(provider)?)))
            .collect()
    }
}

/// Where tenant-given URLs may lead.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct OutboundSettings {
    /// Lets recipients' URLs point at loopback and private networks: local runs and tests only.
    pub allow_private_networks: bool,
}
