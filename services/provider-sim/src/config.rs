//! What the simulator is started with: the credentials each provider accepts, each provider's
//! behaviour (latency, faults) and how many full message records to keep.

use secrecy::SecretString;

use crate::behaviour::{BehaviourError, ProviderBehaviour};
pub use crate::records::DEFAULT_MAX_REFERENCES;
use crate::validation::is_twilio_sid;

pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9090";
pub const DEFAULT_SENDGRID_API_KEY: &str = "SG.herald-local";
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const DEFAULT_TWILIO_AUTH_TOKEN: &str = "herald-local-token";
/// Full records kept per provider (a few hundred bytes each); older ones are dropped,
/// per-reference counts are not.
pub const DEFAULT_RECORD_CAPACITY: usize = 20_000;

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    pub sendgrid: SendGridConfig,
    pub twilio: TwilioConfig,
    /// How many accepted messages to keep in full, per provider (a ring: the newest win).
    pub record_capacity: usize,
    /// How many distinct idempotency references to count, per provider.
    pub max_references: usize,
    /// HTTP worker threads; 0 means one per physical core (actix's default).
    pub workers: usize,
}

#[derive(Clone, Debug)]
pub struct SendGridConfig {
    /// The only key `Authorization: Bearer <key>` is accepted with.
    pub api_key: SecretString,
    pub behaviour: ProviderBehaviour,
}

#[derive(Clone, Debug)]
pub struct TwilioConfig {
    /// The account the HTTP Basic credentials and the URL path must name (`AC` + 32 hex).
    pub account_sid: String,
    pub auth_token: SecretString,
    pub behaviour: ProviderBehaviour,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the Twilio account SID must be `AC` followed by 32 hexadecimal digits")]
    InvalidTwilioAccountSid,
    #[error("the SendGrid API key must not be empty")]
    EmptySendGridApiKey,
    #[error("the Twilio auth token must not be empty")]
    EmptyTwilioAuthToken,
    #[error("sendgrid behaviour: {0}")]
    SendGridBehaviour(BehaviourError),
    #[error("twilio behaviour: {0}")]
    TwilioBehaviour(BehaviourError),
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            sendgrid: SendGridConfig::default(),
            twilio: TwilioConfig::default(),
            record_capacity: DEFAULT_RECORD_CAPACITY,
            max_references: DEFAULT_MAX_REFERENCES,
            workers: 0,
        }
    }
}

impl Default for SendGridConfig {
    fn default() -> Self {
        SendGridConfig {
            api_key: SecretString::from(DEFAULT_SENDGRID_API_KEY),
            behaviour: ProviderBehaviour::default(),
        }
    }
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            account_sid: DEFAULT_TWILIO_ACCOUNT_SID.to_owned(),
            auth_token: SecretString::from(DEFAULT_TWILIO_AUTH_TOKEN),
            behaviour: ProviderBehaviour::default(),
        }
    }
}

impl SimulatorConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        if self.sendgrid.api_key.expose_secret().is_empty() {
            return Err(ConfigError::EmptySendGridApiKey);
        }
        if !is_twilio_sid("AC", &self.twilio.account_sid) {
            return Err(ConfigError::InvalidTwilioAccountSid);
        }
        if self.twilio.auth_token.expose_secret().is_empty() {
            return Err(ConfigError::EmptyTwilioAuthToken);
        }
        self.sendgrid
            .behaviour
            .validate()
            .map_err(ConfigError::SendGridBehaviour)?;
        self.twilio
            .behaviour
            .validate()
            .map_err(ConfigError::TwilioBehaviour)?;
        Ok(())
    }
}
