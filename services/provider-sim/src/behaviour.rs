//! How a simulated provider behaves: how long it takes to answer and how often, and how, it
//! fails. Deciding a request's fate is a pure function of the behaviour and two random rolls, so
//! it can be tested without a server and done inside a very short critical section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a simulated timeout holds the request before answering 504, by default: longer than
/// any sensible client timeout, like a provider that never answers.
pub const DEFAULT_TIMEOUT_HOLD_MS: u64 = 30_000;
/// Upper bound for any configured delay, so a typo cannot park requests for days.
pub const MAX_DELAY_MS: u64 = 600_000;
/// The `Retry-After` a rate limit answers with unless configured: one second.
pub const DEFAULT_RETRY_AFTER: &str = "1";

/// The kind of failure a simulated provider answers with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 in the provider's error shape.
    #[default]
    ServerError,
    /// 429 with `Retry-After` (`retry_after`, default `1`).
    RateLimit,
    /// Hold the request for `timeout_hold_ms`, then 504.
    Timeout,
}

/// One provider's behaviour. Every field has a default, so a partial JSON body or no CLI flags
/// give a fast, reliable provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderBehaviour {
    /// Base time every answer takes.
    pub latency_ms: u64,
    /// Uniform extra time, `0..=latency_jitter_ms`, added to each answer.
    pub latency_jitter_ms: u64,
    /// Share of valid requests answered 500 (0..=1).
    pub failure_rate: f64,
    /// Share of valid requests answered 429 (0..=1).
    pub rate_limit_rate: f64,
    /// Share of valid requests held for `timeout_hold_ms` and answered 504 (0..=1).
    pub timeout_rate: f64,
    /// How long a simulated timeout holds the request.
    pub timeout_hold_ms: u64,
    /// The next `fail_next` valid requests get `fail_next_kind`, whatever the rates say.
    pub fail_next: u32,
    pub fail_next_kind: FaultKind,
    /// Answer a request whose reference was already accepted with the original answer and
    /// deliver nothing new, as a provider with an idempotency-key API would. Off by default:
    /// neither SendGrid's mail/send nor Twilio's Messages API deduplicates, and the simulator is
    /// faithful unless a test asks for the idempotent model.
    pub honour_idempotency_reference: bool,
    /// The `Retry-After` a rate limit answers with, verbatim: seconds, an HTTP-date, or anything a
    /// misbehaving provider might send.
    pub retry_after: String,
}

impl Default for ProviderBehaviour {
    fn default() -> Self {
        ProviderBehaviour {
            latency_ms: 0,
            latency_jitter_ms: 0,
            failure_rate: 0.0,
            rate_limit_rate: 0.0,
            timeout_rate: 0.0,
            timeout_hold_ms: DEFAULT_TIMEOUT_HOLD_MS,
            fail_next: 0,
            fail_next_kind: FaultKind::ServerError,
            honour_idempotency_reference: false,
            retry_after: DEFAULT_RETRY_AFTER.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BehaviourError {
    #[error("{field} must be a number between 0 and 1, got {value}")]
    RateOutOfRange { field: &'static str, value: f64 },
    #[error(
        "failure_rate + rate_limit_rate + timeout_rate must not exceed 1 (they are shares of the \
         same requests), got {0}"
    )]
    RatesExceedOne(f64),
    #[error("{field} must be at most {MAX_DELAY_MS} ms, got {value}")]
    DelayTooLong { field: &'static str, value: u64 },
}

/// The simulated fate of one valid request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestFate {
    /// `None`: the provider accepts the request.
    pub fault: Option<FaultKind>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl ProviderBehaviour {
    pub fn validate(&self) -> Result<(), BehaviourError> {
        let rates = [
            ("failure_rate", self.failure_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("timeout_rate", self.timeout_rate),
        ];
        for (field, value) in rates {
            if !(0.0..=1.0).contains(&value) {
                return Err(BehaviourError::RateOutOfRange { field, value });
            }
        }
        let total = self.failure_rate + self.rate_limit_rate + self.timeout_rate;
        // A small tolerance, so 0.7 + 0.2 + 0.1 is not refused for floating-point noise.
        if total > 1.0 + 1e-9 {
            return Err(BehaviourError::RatesExceedOne(total));
        }
        let delays = [
            ("latency_ms", self.latency_ms),
            ("latency_jitter_ms", self.latency_jitter_ms),
            ("timeout_hold_ms", self.timeout_hold_ms),
        ];
        for (field, value) in delays {
            if value > MAX_DELAY_MS {
                return Err(BehaviourError::DelayTooLong { field, value });
            }
        }
        Ok(())
    }

    /// The ordinary answer time: the base latency plus a share of the jitter.
    /// `jitter_roll` is uniform in `[0, 1)`.
    pub fn latency(&self, jitter_roll: f64) -> Duration {
        let span = self.latency_jitter_ms.saturating_add(1) as f64;
        let jitter = ((jitter_roll * span) as u64).min(self.latency_jitter_ms);
        Duration::from_millis(self.latency_ms.saturating_add(jitter))
    }

    /// Decides a valid request's fate and consumes one queued one-shot fault if there is one.
    /// `fault_roll` and `jitter_roll` are uniform in `[0, 1)`. One roll is compared against the
    /// cumulative rates, so the three faults never overlap and each occurs at its own rate.
    pub fn decide_fate(&mut self, fault_roll: f64, jitter_roll: f64) -> RequestFate {
        let fault = if self.fail_next > 0 {
            self.fail_next -= 1;
            Some(self.fail_next_kind)
        } else if fault_roll < self.failure_rate {
            Some(FaultKind::ServerError)
        } else if fault_roll < self.failure_rate + self.rate_limit_rate {
            Some(FaultKind::RateLimit)
        } else if fault_roll < self.failure_rate + self.rate_limit_rate + self.timeout_rate {
            Some(FaultKind::Timeout)
        } else {
            None
        };
        let delay = match fault {
            Some(FaultKind::Timeout) => Duration::from_millis(self.timeout_hold_ms),
            _ => self.latency(jitter_roll),
        };
        RequestFate { fault, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_faults_come_first_then_normal_behaviour_resumes() {
        let mut behaviour = ProviderBehaviour {
            fail_next: 2,
            fail_next_kind: FaultKind::RateLimit,
            ..ProviderBehaviour::default()
        };
        assert_eq!(
            behaviour.decide_fate(0.99, 0.0).fault,
            Some(FaultKind::RateLimit)
        );
        assert_eq!(
            behaviour.decide_fate(0.99, 0.0).fault,
            Some(FaultKind::RateLimit)
        );
        assert_eq!(behaviour.decide_fate(0.0, 0.0).fault, None);
        assert_eq!(behaviour.fail_next, 0);
    }

    #[test]
    fn one_roll_selects_among_cumulative_rates() {
        let mut behaviour = ProviderBehaviour {
            failure_rate: 0.1,
            rate_limit_rate: 0.2,
            timeout_rate: 0.3,
            timeout_hold_ms: 50,
            ..ProviderBehaviour::default()
        };
        assert_eq!(
            behaviour.decide_fate(0.05, 0.0).fault,
            Some(FaultKind::ServerError)
        );
        assert_eq!(
            behaviour.decide_fate(0.25, 0.0).fault,
            Some(FaultKind::RateLimit)
        );
        let timeout = behaviour.decide_fate(0.55, 0.0);
        assert_eq!(timeout.fault, Some(FaultKind::Timeout));
        assert_eq!(timeout.delay, Duration::from_millis(50));
        assert_eq!(behaviour.decide_fate(0.65, 0.0).fault, None);
    }

    #[test]
    fn latency_stays_within_base_plus_jitter() {
        let behaviour = ProviderBehaviour {
            latency_ms: 100,
            latency_jitter_ms: 10,
            ..ProviderBehaviour::default()
        };
        assert_eq!(behaviour.latency(0.0), Duration::from_millis(100));
        assert_eq!(behaviour.latency(0.999_999), Duration::from_millis(110));
        assert_eq!(behaviour.latency(1.0), Duration::from_millis(110));
    }

    #[test]
    fn rates_outside_zero_to_one_or_summing_above_one_are_refused() {
        let negative = ProviderBehaviour {
            failure_rate: -0.1,
            ..ProviderBehaviour::default()
        };
        assert!(matches!(
            negative.validate(),
            Err(BehaviourError::RateOutOfRange { .. })
        ));
        let not_a_number = ProviderBehaviour {
            timeout_rate: f64::NAN,
            ..ProviderBehaviour::default()
        };
        assert!(not_a_number.validate().is_err());
        let too_much = ProviderBehaviour {
            failure_rate: 0.6,
            rate_limit_rate: 0.6,
            ..ProviderBehaviour::default()
        };
        assert!(matches!(
            too_much.validate(),
            Err(BehaviourError::RatesExceedOne(_))
        ));
        let exactly_one = ProviderBehaviour {
            failure_rate: 0.7,
            rate_limit_rate: 0.2,
            timeout_rate: 0.1,
            ..ProviderBehaviour::default()
        };
        assert!(exactly_one.validate().is_ok());
    }
}
