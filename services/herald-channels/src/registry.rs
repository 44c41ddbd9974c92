//! Every provider Herald sends through, built from `[providers.<id>]`, with the lane settings that
//! make it a bulkhead: email (SendGrid, with SMTP standing in while its circuit is open) and SMS
//! (Twilio), then every registered channel kind (`lib.rs`).
//!
//! Two HTTP clients: one for the providers' own APIs at configured URLs, one guarded against SSRF
//! for URLs that tenants gave (Slack and Discord webhooks, recipients' endpoints): it resolves
//! names only to public addresses and follows no redirect.

use std::sync::Arc;
use std::time::Duration;

use crate::kind::HttpClients;
use crate::outbound;
use crate::provider::{Provider, ProviderLane};
use crate::sendgrid::SendGrid;
use crate::settings::OutboundSettings;
use crate::smtp::Smtp;
use crate::twilio::Twilio;
use crate::ProvidersSettings;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// Each provider with its lane settings: email, SMS, then the kinds in their registration order.
pub fn build_providers(
    providers: &ProvidersSettings,
    outbound_settings: &OutboundSettings,
) -> anyhow::Result<Vec<ProviderLane>> {
    let largest_lane = providers
        .lanes()
        .iter()
        .map(|(_, lane)| lane.max_in_flight)
        .max()
        .unwrap_or(1);
    let allow_private_networks = outbound_settings.allow_private_networks;
    let clients = HttpClients {
        provider_apis: reqwest::Client::builder()
            .pool_max_idle_per_host(largest_lane)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .build()?,
        tenant_urls: outbound::guarded_client(allow_private_networks, USER_AGENT),
        allow_private_networks,
    };
    let email_failover =
        Smtp::new(&providers.smtp)?.map(|smtp| Arc::new(smtp) as Arc<dyn Provider>);
    let mut lanes = vec![
        ProviderLane {
            provider: Arc::new(SendGrid::new(
                &providers.sendgrid,
                clients.provider_apis.clone(),
            )),
            lane: providers.sendgrid.lane(),
            failover: email_failover,
        },
        ProviderLane {
            provider: Arc::new(Twilio::new(
                &providers.twilio,
                clients.provider_apis.clone(),
            )),
            lane: providers.twilio.lane(),
            failover: None,
        },
    ];
    lanes.extend(providers.kind_lanes(&clients)?);
    Ok(lanes)
}
