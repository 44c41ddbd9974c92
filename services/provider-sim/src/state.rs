//! Everything the handlers share: each provider's simulation (one per [`Provider`], built from
//! [`Provider::ALL`]), the credentials each provider accepts, and the little per-provider state a
//! real provider keeps (Telegram's message numbers, Pushover's monthly message count, the
//! webhook endpoints' signing keys).

use secrecy::SecretString;

use crate::config::SimulatorConfig;
use crate::provider::{PerProvider, Provider};
use crate::pushover::app_limit::PushoverState;
use crate::simulation::ProviderSimulation;
use crate::telegram::message_numbers::MessageNumbers;
use crate::webhook::endpoints::WebhookEndpoints;

pub struct SimulatorState {
    simulations: PerProvider<ProviderSimulation>,
    pub sendgrid_api_key: SecretString,
    pub twilio_account_sid: String,
    pub twilio_auth_token: SecretString,
    pub telegram_bot_token: SecretString,
    pub telegram_message_numbers: MessageNumbers,
    pub pushover: PushoverState,
    pub webhook_endpoints: WebhookEndpoints,
}

impl SimulatorState {
    pub fn new(config: SimulatorConfig) -> Self {
        let simulations = PerProvider::from_fn(|provider| {
            ProviderSimulation::new(
                config.behaviour(provider).clone(),
                config.record_capacity,
                config.max_references,
            )
        });
        SimulatorState {
            simulations,
            pushover: PushoverState::new(&config.pushover),
            sendgrid_api_key: config.sendgrid.api_key,
            twilio_account_sid: config.twilio.account_sid,
            twilio_auth_token: config.twilio.auth_token,
            telegram_bot_token: config.telegram.bot_token,
            telegram_message_numbers: MessageNumbers::default(),
            webhook_endpoints: WebhookEndpoints::default(),
        }
    }

    pub fn simulation(&self, provider: Provider) -> &ProviderSimulation {
        &self.simulations[provider]
    }

    /// Every provider's simulation, in [`Provider::ALL`] order.
    pub fn simulations(&self) -> &PerProvider<ProviderSimulation> {
        &self.simulations
    }

    /// Forgets what every provider received: records, counters (Pushover's monthly message
    /// count too) and queued one-shot faults. Rates, latency, credentials and the registered
    /// webhook endpoints stay: they are configuration. Telegram's message numbers are not
    /// reused either, so that a number keeps identifying one message.
    pub fn reset(&self) {
        for (_, simulation) in self.simulations.iter() {
            simulation.reset();
        }
        self.pushover.reset();
    }
}
