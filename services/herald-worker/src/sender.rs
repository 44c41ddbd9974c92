//! Sends rendered messages through the provider of their channel, within the bounds: a global
//! cap on requests in flight, a token-bucket rate limit and a timeout per provider.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use herald_config::Settings;
use herald_domain::Channel;
use tokio::sync::Semaphore;

use crate::metrics;
use crate::providers::sendgrid::{self, SendGrid};
use crate::providers::twilio::{self, Twilio};
use crate::providers::{OutgoingMessage, SendOutcome};

struct ProviderLane {
    rate_limit: DefaultDirectRateLimiter,
    timeout: Duration,
}

pub struct Sender {
    sendgrid: SendGrid,
    twilio: Twilio,
    sendgrid_lane: ProviderLane,
    twilio_lane: ProviderLane,
    in_flight: Arc<Semaphore>,
}

fn lane(requests_per_second: u32, timeout_ms: u64) -> ProviderLane {
    let per_second = NonZeroU32::new(requests_per_second).unwrap_or(NonZeroU32::MIN);
    ProviderLane {
        rate_limit: RateLimiter::direct(Quota::per_second(per_second)),
        timeout: Duration::from_millis(timeout_ms),
    }
}

impl Sender {
    pub fn new(settings: &Settings) -> anyhow::Result<Sender> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.worker.max_in_flight_sends)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()?;
        Ok(Sender {
            sendgrid: SendGrid::new(&settings.sendgrid, client.clone()),
            twilio: Twilio::new(&settings.twilio, client),
            sendgrid_lane: lane(
                settings.sendgrid.requests_per_second,
                settings.sendgrid.timeout_ms,
            ),
            twilio_lane: lane(
                settings.twilio.requests_per_second,
                settings.twilio.timeout_ms,
            ),
            in_flight: Arc::new(Semaphore::new(settings.worker.max_in_flight_sends)),
        })
    }

    pub fn provider_of(channel: Channel) -> &'static str {
        match channel {
            Channel::Email => sendgrid::PROVIDER,
            Channel::Sms => twilio::PROVIDER,
        }
    }

    /// Sends one message; waits for a free slot and for the provider's rate limit first.
    pub async fn send(&self, channel: Channel, message: &OutgoingMessage) -> SendOutcome {
        let Ok(_slot) = self.in_flight.acquire().await else {
            return SendOutcome::Retryable {
                error: "the worker is shutting down".into(),
                http_status: None,
                retry_after: None,
            };
        };
        let lane = match channel {
            Channel::Email => &self.sendgrid_lane,
            Channel::Sms => &self.twilio_lane,
        };
        lane.rate_limit.until_ready().await;
        let started = Instant::now();
        let outcome = match channel {
            Channel::Email => self.sendgrid.send(message, lane.timeout).await,
            Channel::Sms => self.twilio.send(message, lane.timeout).await,
        };
        let provider = Self::provider_of(channel);
        metrics::PROVIDER_REQUEST_SECONDS
            .with_label_values(&[provider])
            .observe(started.elapsed().as_secs_f64());
        let outcome_label = match &outcome {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::Retryable { .. } => "retryable_error",
            SendOutcome::Permanent { .. } => "permanent_error",
        };
        metrics::PROVIDER_REQUESTS
            .with_label_values(&[provider, outcome_label])
            .inc();
        outcome
    }
}
