//! Every provider Herald sends through, built from `[providers.<name>]`, with the lane settings
//! that make it a bulkhead. Adding a provider is its file and one entry here.
//!
//! Two HTTP clients: one for the providers' own APIs at configured URLs (SendGrid, Twilio,
//! Telegram), one guarded against SSRF for URLs that tenants gave (Slack and Discord webhooks,
//! recipients' endpoints): it resolves names only to public addresses and follows no redirect.

use std::sync::Arc;
use std::time::Duration;

use herald_config::{LaneSettings, Settings};

use super::discord::Discord;
use super::sendgrid::SendGrid;
use super::slack::Slack;
use super::smtp::Smtp;
use super::telegram::Telegram;
use super::twilio::Twilio;
use super::webhook::Webhook;
use super::Provider;
use crate::outbound;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// A provider with its lane's settings and the provider that stands in while its circuit is open.
pub struct ProviderLane {
    pub provider: Arc<dyn Provider>,
    pub lane: LaneSettings,
    pub failover: Option<Arc<dyn Provider>>,
}

/// Each provider with its lane settings, in the order of `[providers.*]`.
pub fn build_providers(settings: &Settings) -> anyhow::Result<Vec<ProviderLane>> {
    let largest_lane = settings
        .providers
        .lanes()
        .iter()
        .map(|(_, lane)| lane.max_in_flight)
        .max()
        .unwrap_or(1);
    let provider_apis = reqwest::Client::builder()
        .pool_max_idle_per_host(largest_lane)
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .user_agent(USER_AGENT)
        .build()?;
    let allow_private_networks = settings.outbound.allow_private_networks;
    let tenant_urls = outbound::guarded_client(allow_private_networks, USER_AGENT);
    let providers = &settings.providers;
    let lane = |provider: Arc<dyn Provider>, lane: LaneSettings| ProviderLane {
        provider,
        lane,
        failover: None,
    };
    let email_failover =
        Smtp::new(&providers.smtp)?.map(|smtp| Arc::new(smtp) as Arc<dyn Provider>);
    Ok(vec![
        ProviderLane {
            failover: email_failover,
            ..lane(
                Arc::new(SendGrid::new(&providers.sendgrid, provider_apis.clone())),
                providers.sendgrid.lane(),
            )
        },
        lane(
            Arc::new(Twilio::new(&providers.twilio, provider_apis.clone())),
            providers.twilio.lane(),
        ),
        lane(
            Arc::new(Slack::new(tenant_urls.clone(), allow_private_networks)),
            providers.slack,
        ),
        lane(
            Arc::new(Discord::new(tenant_urls.clone(), allow_private_networks)),
            providers.discord,
        ),
        lane(
            Arc::new(Telegram::new(&providers.telegram, provider_apis)),
            providers.telegram.lane(),
        ),
        lane(
            Arc::new(Webhook::new(tenant_urls, allow_private_networks)),
            providers.webhook,
        ),
    ])
}
