//! The dispatcher: claims due sends from `webhook_event_sends` and POSTs each event, signed, to
//! its subscription's URL through the `webhook` channel's own path (`providers::webhook::
//! post_signed_event`: Standard Webhooks signature, SSRF checks, the guarded client).
//!
//! Bounded: at most `max_in_flight` sends at once in this worker, at most
//! `max_in_flight_per_subscription` for any one subscription and `max_in_flight_per_tenant` for
//! one tenant's subscriptions together, so one slow endpoint holds only its own slots, and a
//! tenant's twenty subscriptions to a tarpit only the tenant's, while every other subscription's
//! events keep going. A 2xx deletes the send; a
//! timeout, connection failure, 408, 429 or 5xx makes it due again after an exponential backoff (a
//! `Retry-After` is a floor), until `max_attempts`; then, or at once for any other answer, the
//! send is parked and counted (`herald_webhook_subscription_parked_total`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use herald_channels::webhook::{post_signed_event, SignedEvent};
use herald_channels::SendOutcome;
use herald_store::webhook_event_sends::{self, ClaimRooms, ClaimedSend, Unsent};
use herald_store::Database;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::metrics;
use crate::backoff::RetryPolicy;

pub struct DispatcherSettings {
    pub max_in_flight: usize,
    pub max_in_flight_per_subscription: usize,
    pub max_in_flight_per_tenant: usize,
    pub timeout: Duration,
    pub retry_policy: RetryPolicy,
    pub interval: Duration,
    pub allow_private_networks: bool,
    /// Parked sends are deleted this long after they were parked.
    pub keep_parked: Duration,
}

/// How often parked sends past `keep_parked` are deleted.
const PARKED_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Sends in flight in this worker, counted by one key (a subscription, or a tenant).
#[derive(Default)]
struct InFlight(Mutex<HashMap<Uuid, usize>>);

impl InFlight {
    fn started(&self, key: Uuid) {
        *self
            .0
            .lock()
            .expect("in-flight map poisoned")
            .entry(key)
            .or_default() += 1;
    }

    fn finished(&self, key: Uuid) {
        let mut in_flight = self.0.lock().expect("in-flight map poisoned");
        if let Some(count) = in_flight.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&key);
            }
        }
    }

    /// The keys with sends in flight, and how many more each may take of `bound`.
    fn rooms(&self, bound: usize) -> (Vec<Uuid>, Vec<i32>) {
        self.0
            .lock()
            .expect("in-flight map poisoned")
            .iter()
            .map(|(key, count)| (*key, bound.saturating_sub(*count) as i32))
            .unzip()
    }
}

/// Dispatches until `stop`, then waits (up to a send timeout) for the sends in flight to record
/// their outcome; a send whose outcome is not recorded is sent again after its lease.
pub async fn run_dispatcher(
    database: Database,
    client: reqwest::Client,
    settings: Arc<DispatcherSettings>,
    stop: CancellationToken,
) {
    let owner = Uuid::new_v4();
    let slots = Arc::new(Semaphore::new(settings.max_in_flight));
    let in_flight_by_subscription = Arc::new(InFlight::default());
    let in_flight_by_tenant = Arc::new(InFlight::default());
    let sends = TaskTracker::new();
    // A claim outlives the call and the recording of its outcome.
    let lease = settings.timeout * 2 + Duration::from_secs(30);
    let mut last_cleanup = tokio::time::Instant::now();
    while !stop.is_cancelled() {
        if last_cleanup.elapsed() >= PARKED_CLEANUP_INTERVAL {
            last_cleanup = tokio::time::Instant::now();
            if let Err(error) =
                webhook_event_sends::delete_parked_before(&database, settings.keep_parked).await
            {
                tracing::warn!(%error, "deleting old parked webhook sends failed; retrying later");
            }
        }
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            let (busy_subscriptions, subscription_rooms) =
                in_flight_by_subscription.rooms(settings.max_in_flight_per_subscription);
            let (busy_tenants, tenant_rooms) =
                in_flight_by_tenant.rooms(settings.max_in_flight_per_tenant);
            let rooms = ClaimRooms {
                per_subscription: settings.max_in_flight_per_subscription as u64,
                busy_subscriptions: &busy_subscriptions,
                subscription_rooms: &subscription_rooms,
                per_tenant: settings.max_in_flight_per_tenant as u64,
                busy_tenants: &busy_tenants,
                tenant_rooms: &tenant_rooms,
            };
            webhook_event_sends::claim_due(&database, owner, lease, free as u64, rooms)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "claiming webhook sends failed; retrying");
                    Vec::new()
                })
        };
        let claimed_any = !claimed.is_empty();
        for send in claimed {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Cannot happen (at most `free` were claimed); the lease brings it back.
                break;
            };
            in_flight_by_subscription.started(send.subscription_id);
            in_flight_by_tenant.started(send.tenant_id);
            let (database, client, settings) = (database.clone(), client.clone(), settings.clone());
            let (by_subscription, by_tenant) = (
                in_flight_by_subscription.clone(),
                in_flight_by_tenant.clone(),
            );
            sends.spawn(async move {
                let (subscription_id, tenant_id) = (send.subscription_id, send.tenant_id);
                deliver(&database, &client, &settings, send).await;
                by_subscription.finished(subscription_id);
                by_tenant.finished(tenant_id);
                drop(slot);
            });
        }
        if claimed_any && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = stop.cancelled() => break,
        }
    }
    sends.close();
    if tokio::time::timeout(settings.timeout + Duration::from_secs(5), sends.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "webhook sends still in flight at shutdown; they are sent again after their lease"
        );
    }
}

/// One attempt of one send, and its outcome recorded.
async fn deliver(
    database: &Database,
    client: &reqwest::Client,
    settings: &DispatcherSettings,
    send: ClaimedSend,
) {
    let webhook_id = send.event_id.to_string();
    let outcome = post_signed_event(
        client,
        SignedEvent {
            url: &send.url,
            secret: &send.secret,
            webhook_id: &webhook_id,
            timestamp: Utc::now().timestamp(),
            body: send.payload.clone().into_bytes(),
            reference: send.event_id,
        },
        settings.allow_private_networks,
        settings.timeout,
    )
    .await;
    metrics::SEND_ATTEMPTS
        .with_label_values(&[outcome.label()])
        .inc();
    let recorded = match &outcome {
        SendOutcome::Sent { .. } => {
            webhook_event_sends::complete(database, send.subscription_id, send.event_id).await
        }
        SendOutcome::Retryable {
            error, retry_after, ..
        } => {
            let unsent = match settings
                .retry_policy
                .delay_after(send.attempts, *retry_after)
            {
                Some(delay) => Unsent::RetryAfter(delay),
                None => Unsent::Park,
            };
            record_unsent(database, &send, unsent, error).await
        }
        SendOutcome::Permanent { error, .. } => {
            record_unsent(database, &send, Unsent::Park, error).await
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, subscription = %send.subscription_id, event = %send.event_id,
            "recording a webhook send's outcome failed; it is sent again after its lease");
    }
}

async fn record_unsent(
    database: &Database,
    send: &ClaimedSend,
    unsent: Unsent,
    error: &str,
) -> Result<(), herald_store::StoreError> {
    if unsent == Unsent::Park {
        metrics::SENDS_PARKED.inc();
        // The URL may hold a token; the subscription id says which one it is.
        tracing::warn!(subscription = %send.subscription_id, event = %send.event_id,
            attempts = send.attempts, error, "a status event is parked for a subscription");
    }
    webhook_event_sends::record_failure(
        database,
        send.subscription_id,
        send.event_id,
        send.attempts,
        unsent,
        error,
    )
    .await
}
