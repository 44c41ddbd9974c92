//! Command-line flags and environment variables, turned into a [`SimulatorConfig`]. Every flag
//! has an `HERALD_SIM_*` variable; credentials' values are never printed (not even by `--help`).

use clap::Parser;
use secrecy::SecretString;

use crate::behaviour::{ProviderBehaviour, DEFAULT_TIMEOUT_HOLD_MS};
use crate::config::{
    ConfigError, SendGridConfig, SimulatorConfig, TwilioConfig, DEFAULT_LISTEN_ADDRESS,
    DEFAULT_MAX_REFERENCES, DEFAULT_RECORD_CAPACITY, DEFAULT_SENDGRID_API_KEY,
    DEFAULT_TWILIO_ACCOUNT_SID, DEFAULT_TWILIO_AUTH_TOKEN,
};

/// Simulates the SendGrid and Twilio APIs for Herald's tests and benchmarks.
// No `Debug`: the arguments hold credentials.
#[derive(Parser)]
#[command(name = "herald-provider-sim", version)]
pub struct Arguments {
    /// Address to listen on.
    #[arg(long, env = "HERALD_SIM_LISTEN", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen: String,
    /// HTTP worker threads (0: one per physical core).
    #[arg(long, env = "HERALD_SIM_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Accepted messages kept in full per provider (per-reference counts are always complete).
    #[arg(long, env = "HERALD_SIM_RECORD_CAPACITY", default_value_t = DEFAULT_RECORD_CAPACITY)]
    pub record_capacity: usize,
    /// Distinct idempotency references counted per provider (about 40 bytes each); past it,
    /// new references show as `untracked_references` in `/_sim/stats`.
    #[arg(long, env = "HERALD_SIM_MAX_REFERENCES", default_value_t = DEFAULT_MAX_REFERENCES)]
    pub max_references: usize,

    /// The API key SendGrid requests must carry as `Authorization: Bearer <key>`.
    #[arg(long, env = "HERALD_SIM_SENDGRID_API_KEY", default_value = DEFAULT_SENDGRID_API_KEY, hide_env_values = true)]
    pub sendgrid_api_key: String,
    /// Base time every SendGrid answer takes, in milliseconds.
    #[arg(long, env = "HERALD_SIM_SENDGRID_LATENCY_MS", default_value_t = 0)]
    pub sendgrid_latency_ms: u64,
    #[arg(
        long,
        env = "HERALD_SIM_SENDGRID_LATENCY_JITTER_MS",
        default_value_t = 0
    )]
    pub sendgrid_latency_jitter_ms: u64,
    /// Share of valid SendGrid requests answered 500 (0..=1).
    #[arg(long, env = "HERALD_SIM_SENDGRID_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sendgrid_failure_rate: f64,
    /// Share of valid SendGrid requests answered 429 (0..=1).
    #[arg(long, env = "HERALD_SIM_SENDGRID_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sendgrid_rate_limit_rate: f64,
    /// Share of valid SendGrid requests held for the timeout hold, then answered 504 (0..=1).
    #[arg(long, env = "HERALD_SIM_SENDGRID_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sendgrid_timeout_rate: f64,
    /// How long a simulated SendGrid timeout holds the request before answering 504, in ms.
    #[arg(long, env = "HERALD_SIM_SENDGRID_TIMEOUT_HOLD_MS", default_value_t = DEFAULT_TIMEOUT_HOLD_MS)]
    pub sendgrid_timeout_hold_ms: u64,

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
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{rate} is not between 0 and 1"));
    }
    Ok(rate)
}

impl Arguments {
    /// The configuration these arguments describe, checked as a whole (rates summing above 1,
    /// a malformed account SID).
    pub fn into_config(self) -> Result<SimulatorConfig, ConfigError> {
        let config = SimulatorConfig {
            sendgrid: SendGridConfig {
                api_key: SecretString::from(self.sendgrid_api_key),
                behaviour: ProviderBehaviour {
                    latency_ms: self.sendgrid_latency_ms,
                    latency_jitter_ms: self.sendgrid_latency_jitter_ms,
                    failure_rate: self.sendgrid_failure_rate,
                    rate_limit_rate: self.sendgrid_rate_limit_rate,
                    timeout_rate: self.sendgrid_timeout_rate,
                    timeout_hold_ms: self.sendgrid_timeout_hold_ms,
                    ..ProviderBehaviour::default()
                },
            },
            twilio: TwilioConfig {
                account_sid: self.twilio_account_sid,
                auth_token: SecretString::from(self.twilio_auth_token),
                behaviour: ProviderBehaviour {
                    latency_ms: self.twilio_latency_ms,
                    latency_jitter_ms: self.twilio_latency_jitter_ms,
                    failure_rate: self.twilio_failure_rate,
                    rate_limit_rate: self.twilio_rate_limit_rate,
                    timeout_rate: self.twilio_timeout_rate,
                    timeout_hold_ms: self.twilio_timeout_hold_ms,
                    ..ProviderBehaviour::default()
                },
            },
            record_capacity: self.record_capacity,
            max_references: self.max_references,
            workers: self.workers,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_describe_a_fast_reliable_local_simulator() {
        let arguments = Arguments::try_parse_from(["herald-provider-sim"]).unwrap();
        assert_eq!(arguments.listen, "127.0.0.1:9090");
        let config = arguments.into_config().unwrap();
        assert_eq!(config.sendgrid.api_key.expose_secret(), "SG.herald-local");
        assert_eq!(
            config.twilio.account_sid,
            "AC00000000000000000000000000000000"
        );
        assert_eq!(
            config.twilio.auth_token.expose_secret(),
            "herald-local-token"
        );
        assert_eq!(config.sendgrid.behaviour, ProviderBehaviour::default());
        assert_eq!(config.record_capacity, DEFAULT_RECORD_CAPACITY);
        assert_eq!(config.max_references, DEFAULT_MAX_REFERENCES);
    }

    #[test]
    fn per_provider_flags_set_each_behaviour() {
        let arguments = Arguments::try_parse_from([
            "herald-provider-sim",
            "--sendgrid-latency-ms",
            "40",
            "--sendgrid-failure-rate",
            "0.25",
            "--twilio-rate-limit-rate",
            "0.5",
            "--twilio-timeout-hold-ms",
            "100",
        ])
        .unwrap();
        let config = arguments.into_config().unwrap();
        assert_eq!(config.sendgrid.behaviour.latency_ms, 40);
        assert_eq!(config.sendgrid.behaviour.failure_rate, 0.25);
        assert_eq!(config.twilio.behaviour.rate_limit_rate, 0.5);
        assert_eq!(config.twilio.behaviour.timeout_hold_ms, 100);
    }

    #[test]
    fn invalid_rates_and_sids_are_refused() {
        assert!(
            Arguments::try_parse_from(["herald-provider-sim", "--twilio-failure-rate", "1.5"])
                .is_err()
        );
        let arguments = Arguments::try_parse_from([
            "herald-provider-sim",
            "--sendgrid-failure-rate",
            "0.6",
            "--sendgrid-timeout-rate",
            "0.6",
        ])
        .unwrap();
        assert!(arguments.into_config().is_err());
        let arguments =
            Arguments::try_parse_from(["herald-provider-sim", "--twilio-account-sid", "AC123"])
                .unwrap();
        assert!(arguments.into_config().is_err());
    }
}
