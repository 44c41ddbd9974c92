//! Everything the handlers share: the credentials each provider accepts, each provider's
//! simulation, and the little per-provider state a real provider keeps (Telegram's message
//! numbers, the webhook endpoints' signing keys).

use secrecy::SecretString;

use crate::config::SimulatorConfig;
use crate::provider::Provider;
use crate::simulation::ProviderSimulation;
use crate::telegram::message_numbers::MessageNumbers;
use crate::webhook::endpoints::WebhookEndpoints;

pub struct SimulatorState {
    pub sendgrid_api_key: SecretString,
    pub twilio_account_sid: String,
    pub twilio_auth_token: SecretString,
    pub telegram_bot_token: SecretString,
    pub telegram_message_numbers: MessageNumbers,
    pub webhook_endpoints: WebhookEndpoints,
    pub sendgrid: ProviderSimulation,
    pub twilio: ProviderSimulation,
    pub slack: ProviderSimulation,
    pub discord: ProviderSimulation,
    pub telegram: ProviderSimulation,
    pub webhook: ProviderSimulation,
    pub smtp: ProviderSimulation,
}

impl SimulatorState {
    pub fn new(config: SimulatorConfig) -> Self {
        let simulation = |provider| {
            ProviderSimulation::new(
                config.behaviour(provider).clone(),
                config.record_capacity,
                config.max_references,
            )
        };
        SimulatorState {
            sendgrid: simulation(Provider::SendGrid),
            twilio: simulation(Provider::Twilio),
            slack: simulation(Provider::Slack),
            discord: simulation(Provider::Discord),
            telegram: simulation(Provider::Telegram),
            webhook: simulation(Provider::Webhook),
            smtp: simulation(Provider::Smtp),
            sendgrid_api_key: config.sendgrid.api_key,
            twilio_account_sid: config.twilio.account_sid,
            twilio_auth_token: config.twilio.auth_token,
            telegram_bot_token: config.telegram.bot_token,
            telegram_message_numbers: MessageNumbers::default(),
            webhook_endpoints: WebhookEndpoints::default(),
        }
    }

    pub fn simulation(&self, provider: Provider) -> &ProviderSimulation {
        match provider {
            Provider::SendGrid => &self.sendgrid,
            Provider::Twilio => &self.twilio,
            Provider::Slack => &self.slack,
            Provider::Discord => &self.discord,
            Provider::Telegram => &self.telegram,
            Provider::Webhook => &self.webhook,
            Provider::Smtp => &self.smtp,
        }
    }
}
