//! Everything the handlers share: the credentials each provider accepts and each provider's
//! simulation.

use secrecy::SecretString;

use crate::config::SimulatorConfig;
use crate::provider::Provider;
use crate::simulation::ProviderSimulation;

pub struct SimulatorState {
    pub sendgrid_api_key: SecretString,
    pub twilio_account_sid: String,
    pub twilio_auth_token: SecretString,
    pub sendgrid: ProviderSimulation,
    pub twilio: ProviderSimulation,
}

impl SimulatorState {
    pub fn new(config: SimulatorConfig) -> Self {
        SimulatorState {
            sendgrid_api_key: config.sendgrid.api_key,
            twilio_account_sid: config.twilio.account_sid,
            twilio_auth_token: config.twilio.auth_token,
            sendgrid: ProviderSimulation::new(
                config.sendgrid.behaviour,
                config.record_capacity,
                config.max_references,
            ),
            twilio: ProviderSimulation::new(
                config.twilio.behaviour,
                config.record_capacity,
                config.max_references,
            ),
        }
    }

    pub fn simulation(&self, provider: Provider) -> &ProviderSimulation {
        match provider {
            Provider::SendGrid => &self.sendgrid,
            Provider::Twilio => &self.twilio,
        }
    }
}
