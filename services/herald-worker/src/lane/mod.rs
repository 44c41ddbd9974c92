//! A provider lane: the bulkhead of one provider (docs/DESIGN.md, "Provider lanes").
//!
//! Its own bounds: deliveries held (waiting in memory, in flight, or sent with the outcome not yet
//! recorded; in number, and in bytes until the call ends), requests in flight, a rate limit
//! (shared by the worker replicas: `rate_limit/`) and a timeout. Admission
//! reserves room without waiting; what finds no room is queued in PostgreSQL and pumped in when
//! room frees up. So a slow, rate-limited or failing provider holds only its own lane, and a claim
//! is taken only when it can be sent soon.
//!
//! Held deliveries wait in priority order, and part of the room is kept for `high` ones
//! (docs/DESIGN.md, "Priority lanes").
//!
//! Here: the lane's room (reservations, held slots, destinations' and tenants' shares) and its
//! run loop, which gives each held delivery its turn. What that turn comes to (the checks before
//! the call, the call, the attempt to record) is in `call.rs`.

mod call;

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_channels::{Contact, Provider};
use herald_config::LaneSettings;
use herald_domain::{Channel, Priority, ProviderId};
use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::backoff::RetryPolicy;
use crate::cancellations::CancelledNotifications;
use crate::circuit_breaker::{CallPermit, CircuitBreaker, CircuitBreakerSettings};
use crate::destinations::DestinationCall;
use crate::held::{Destination, Destinations, HeldDelivery, HeldRoom, HeldSlot, Reservation};
use crate::lane_queue::FairQueues;
use crate::metrics;
use crate::rate_limit::{ProviderRateLimiter, SharedRateLimits};
use crate::recorder::RecorderHandle;
use crate::session::{SendPermission, Session};
use crate::shutdown::{Phase, ShutdownPhases};
use crate::templates::TemplateCache;
use crate::tenant_shares::{TenantRooms, TenantShares};
use herald_domain::unsubscribe::UnsubscribeLinks;

/// Bytes of content one lane's held deliveries may pin in memory (each delivery counts its
/// notification's content, shared or not: a conservative bound).
const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;
/// The share of a lane's `max_held` kept for `high` deliveries: `normal` and `low` ones may hold
/// the rest only, so a lane full of them still takes a `high` one at once.
const HIGH_PRIORITY_SHARE_DIVISOR: usize = 8;

/// Slots of a lane of `max_held` that only `high` deliveries may take: an eighth, at least one
/// (none in a lane of a single slot, which would otherwise never send anything else).
fn kept_for_high_priority(max_held: usize) -> usize {
    if max_held < 2 {
        return 0;
    }
    (max_held / HIGH_PRIORITY_SHARE_DIVISOR).max(1)
}

/// What a lane's sends need of the worker besides the lane: the session they are made under,
/// where their outcomes go, how a failed call is retried, and which notifications were cancelled
/// (their held deliveries are recorded cancelled instead of sent).
#[derive(Clone)]
pub struct SendServices {
    pub session: Arc<Session>,
    pub recorder: RecorderHandle,
    pub retry_policy: RetryPolicy,
    pub cancelled: Arc<CancelledNotifications>,
    /// Compiled template versions, for deliveries of notifications rendered from one.
    pub templates: TemplateCache,
    /// Signs email deliveries' unsubscribe links, when they are on.
    pub unsubscribe_links: Option<Arc<UnsubscribeLinks>>,
}

/// A provider a lane calls, with the host its calls' spans name (parsed once).
struct LaneProvider {
    provider: Arc<dyn Provider>,
    server_address: String,
}

impl LaneProvider {
    fn new(provider: Arc<dyn Provider>) -> LaneProvider {
        let server_address = reqwest::Url::parse(provider.endpoint())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        LaneProvider {
            provider,
            server_address,
        }
    }
}

/// Which provider a call goes to: the lane's own, with a permit of its circuit (the destination's
/// for a tenant's destination), or the failover while that circuit is open.
enum Route {
    Primary(CallPermit),
    Failover,
}

/// A call slot of a tenant's destination, for one call. Given back when dropped, on whichever path
/// (sent, refused, cancelled, a lost session), with the delivery parked longest behind it sent on
/// its way: none is left parked behind a slot nobody holds.
struct DestinationCallSlot {
    lane: Arc<Lane>,
    destination: Arc<Destination>,
    call: Option<DestinationCall>,
}

impl Drop for DestinationCallSlot {
    fn drop(&mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        if let Some(next) = self.destination.end_call(call) {
            self.lane.hand_over(next);
        }
    }
}

/// What a delivery to a tenant's destination may do now.
enum DestinationVerdict {
    /// Call it, within this slot of the destination and with this permit of its circuit.
    Call(HeldDelivery, DestinationCallSlot, CallPermit),
    /// Every call slot of the destination is busy: the delivery is parked with it.
    Parked,
    /// Its circuit is open: the delivery fails without a call.
    Refused(HeldDelivery, crate::circuit_breaker::CircuitOpen),
}

pub struct Lane {
    provider: Arc<dyn Provider>,
    /// Called instead of `provider` while its circuit is open (SMTP for SendGrid), within this
    /// lane's bounds; `None` makes the lane wait the circuit out.
    failover: Option<LaneProvider>,
    timeout: Duration,
    held: Arc<HeldRoom>,
    /// The part of `held` that `normal` and `low` deliveries may take: `max_held` less the slots
    /// kept for `high` ones.
    ordinary_held: Arc<Semaphore>,
    held_bytes: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// The host of the provider's endpoint, as its calls' spans name it.
    server_address: String,
    /// Shared by every worker replica through Redis once [`Lane::with_shared_rate_limit`] is
    /// called; this process's own until then.
    rate: ProviderRateLimiter,
    /// Opens when the provider fails (timeouts, connection errors, 5xx): the lane then waits
    /// instead of calling, holding only its own slots, and spends no attempt.
    circuit: CircuitBreaker,
    /// Held deliveries not sent yet, the tenants taking turns, each tenant's highest priority
    /// first (bounded by `held`).
    waiting: FairQueues<HeldDelivery>,
    /// How many deliveries each tenant holds, and the most it may by admission.
    tenants: TenantShares,
    /// Admission queued deliveries in PostgreSQL for this lane: the pump should look now.
    queued_work: Notify,
    /// The bounds of each destination, for a lane whose destinations the tenants choose
    /// (webhooks, Slack, Discord): these then have circuits of their own, and `circuit` is unused.
    destinations: Option<Destinations>,
}

impl Lane {
    pub fn new(
        provider: Arc<dyn Provider>,
        settings: LaneSettings,
        circuit: CircuitBreakerSettings,
    ) -> Lane {
        metrics::declare_lane(provider.id(), settings.max_held);
        let rate = ProviderRateLimiter::local(provider.id(), settings.requests_per_second);
        let server_address = reqwest::Url::parse(provider.endpoint())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let destinations = herald_channels::channel_has_tenant_destinations(provider.channel())
            .then(|| {
                Destinations::new(
                    provider.id(),
                    circuit.clone(),
                    settings.max_in_flight,
                    settings.max_held,
                )
            });
        let circuit = CircuitBreaker::new(provider.id(), circuit);
        // Every tenant may hold the whole lane until `with_tenant_held_share`.
        let tenants = TenantShares::new(provider.id(), settings.max_held, 1.0);
        Lane {
            destinations,
            failover: None,
            held: Arc::new(HeldRoom {
                provider: provider.id(),
                semaphore: Arc::new(Semaphore::new(settings.max_held)),
                capacity: settings.max_held,
            }),
            ordinary_held: Arc::new(Semaphore::new(
                settings.max_held - kept_for_high_priority(settings.max_held),
            )),
            server_address,
            provider,
            timeout: Duration::from_millis(settings.timeout_ms),
            held_bytes: Arc::new(Semaphore::new(MAX_HELD_BYTES)),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_in_flight: settings.max_in_flight,
            rate,
            circuit,
            waiting: FairQueues::default(),
            tenants,
            queued_work: Notify::new(),
        }
    }

    /// Sends through `failover` while the lane's circuit is open, instead of waiting.
    pub fn with_failover(mut self, failover: Arc<dyn Provider>) -> Lane {
        debug_assert_eq!(failover.channel(), self.provider.channel());
        metrics::declare_provider(failover.id());
        self.failover = Some(LaneProvider::new(failover));
        self
    }

    /// Bounds each tenant's held deliveries to `share` of the lane's `max_held` (docs/DESIGN.md,
    /// "Fairness between tenants").
    pub fn with_tenant_held_share(mut self, share: f64) -> Lane {
        self.tenants = TenantShares::new(self.provider.id(), self.held.capacity, share);
        self
    }

    /// Shares the provider's rate limit with the other worker replicas through Redis.
    pub fn with_shared_rate_limit(mut self, limits: &SharedRateLimits) -> Lane {
        self.rate = self.rate.shared_through(limits);
        self
    }

    pub fn provider(&self) -> ProviderId {
        self.provider.id()
    }

    pub fn channel(&self) -> Channel {
        self.provider.channel()
    }

    /// How many more deliveries of `priority` the lane can hold now.
    pub fn room(&self, priority: Priority) -> usize {
        let any = self.held.semaphore.available_permits();
        match priority {
            Priority::High => any,
            Priority::Normal | Priority::Low => any.min(self.ordinary_held.available_permits()),
        }
    }

    /// The timeout of one call: how long a call of the lane can take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn capacity(&self) -> usize {
        self.held.capacity
    }

    fn try_hold(&self, priority: Priority) -> Option<HeldSlot> {
        // The ordinary share first: a `normal` delivery finding it exhausted takes nothing.
        let ordinary = match priority {
            Priority::High => None,
            Priority::Normal | Priority::Low => {
                Some(self.ordinary_held.clone().try_acquire_owned().ok()?)
            }
        };
        let permit = self.held.semaphore.clone().try_acquire_owned().ok()?;
        Some(HeldSlot {
            permit: Some(permit),
            ordinary,
            destination: None,
            tenant: None,
            room: self.held.clone(),
        })
    }

    /// Counts `held` in the share of the destination `contact` names, if the tenant chose it;
    /// `false` when that destination holds its share already (the delivery should wait queued).
    pub fn hold_for_destination(&self, held: &mut HeldSlot, contact: &Contact) -> bool {
        let Some(destinations) = &self.destinations else {
            return true;
        };
        match destinations.try_hold(contact) {
            Some(hold) => {
                held.destination = hold;
                true
            }
            None => false,
        }
    }

    /// Counts `held` in the share of `tenant`, a delivery the pump claimed within the tenant's room
    /// ([`Lane::tenant_rooms`]).
    pub fn hold_for_tenant(&self, held: &mut HeldSlot, tenant: Uuid) {
        debug_assert!(
            held.tenant.is_none(),
            "a slot is counted for one tenant once"
        );
        held.tenant = Some(self.tenants.hold(tenant));
    }

    /// What each tenant may still take of the lane: what the pump may claim of each.
    pub fn tenant_rooms(&self) -> TenantRooms {
        self.tenants.rooms()
    }

    /// Room for one delivery of `tenant` and `priority` to `contact` whose content weighs
    /// `bytes`, without waiting; none while the tenant holds its share of the lane.
    pub fn try_reserve(
        &self,
        tenant: Uuid,
        priority: Priority,
        bytes: usize,
        contact: &Contact,
    ) -> Option<Reservation> {
        let mut held = self.try_hold(priority)?;
        held.tenant = Some(self.tenants.try_hold(tenant)?);
        if !self.hold_for_destination(&mut held, contact) {
            return None;
        }
        let bytes = self
            .held_bytes
            .clone()
            .try_acquire_many_owned(bytes_permits(bytes))
            .ok()?;
        self.held.publish();
        Some(Reservation {
            held,
            _bytes: bytes,
        })
    }

    /// Room for up to `count` deliveries of `priority`, without waiting; their bytes are taken once
    /// known, with [`Lane::complete_reservation`].
    pub fn try_reserve_held(&self, priority: Priority, count: usize) -> Vec<HeldSlot> {
        let slots: Vec<HeldSlot> = std::iter::from_fn(|| self.try_hold(priority))
            .take(count)
            .collect();
        self.held.publish();
        slots
    }

    /// Completes a reservation made with [`Lane::try_reserve_held`] once the content's weight is
    /// known (waiting for bytes: only the queue pump does this).
    pub async fn complete_reservation(&self, held: HeldSlot, bytes: usize) -> Reservation {
        let bytes = self
            .held_bytes
            .clone()
            .acquire_many_owned(bytes_permits(bytes))
            .await
            .expect("the lane's byte budget is never closed");
        Reservation {
            held,
            _bytes: bytes,
        }
    }

    /// Queues a held delivery for sending: in its tenant's turn, behind the tenant's waiting ones
    /// of its priority and ahead of the tenant's lower priorities.
    pub fn hand_over(&self, delivery: HeldDelivery) {
        self.waiting
            .push(delivery.plan.tenant_id(), delivery.priority(), delivery);
    }

    pub fn note_queued_work(&self) {
        self.queued_work.notify_one();
    }

    pub async fn queued_work(&self) {
        self.queued_work.notified().await;
    }

    /// Sets the in-flight gauge from its semaphore (the held gauge follows its `HeldSlot`s).
    fn publish_in_flight(&self) {
        metrics::LANE_IN_FLIGHT
            .with_label_values(&[self.provider.id().as_str()])
            .set((self.max_in_flight - self.in_flight.available_permits()) as i64);
    }

    /// Sends what the lane holds until the shutdown's [`Phase::Drain`] has begun and nothing is
    /// waiting, or until [`Phase::Abandon`] has; returns what was never sent (to release). Sends
    /// run on `sends`.
    pub async fn run(
        self: Arc<Self>,
        services: SendServices,
        sends: TaskTracker,
        phases: ShutdownPhases,
    ) -> Vec<HeldDelivery> {
        let drain = phases.token(Phase::Drain);
        let abandon = phases.token(Phase::Abandon);
        let (session, recorder, retry_policy) =
            (&services.session, &services.recorder, services.retry_policy);
        let waiting = &self.waiting;
        loop {
            // A slot first, then the delivery: the one chosen is the oldest of the highest priority
            // waiting when a call can start, so a `high` one that arrives while every slot is busy
            // goes ahead of every lower one already waiting.
            let slot = tokio::select! {
                biased;
                _ = abandon.cancelled() => break,
                slot = self.in_flight.clone().acquire_owned() => slot.expect("never closed"),
                _ = drain.cancelled(), if self.nothing_waiting() => break,
            };
            let delivery = tokio::select! {
                biased;
                _ = abandon.cancelled() => break,
                delivery = waiting.pop() => delivery,
                _ = drain.cancelled(), if self.nothing_waiting() => break,
            };
            // Its notification was cancelled while it waited: no token, no call.
            let Some(delivery) = self.unless_cancelled(delivery, &services).await else {
                continue;
            };
            // Then the circuit (the destination's, with a call slot of it, for a tenant's
            // destination) and a token; then make sure the session still allows the call.
            let (delivery, route, destination_call) = match delivery.destination() {
                Some(destination) => match self.admit_to_destination(destination, delivery) {
                    DestinationVerdict::Call(delivery, call, permit) => {
                        (delivery, Route::Primary(permit), Some(call))
                    }
                    DestinationVerdict::Parked => continue,
                    DestinationVerdict::Refused(delivery, open) => {
                        let outcome = self.refused_by_destination(delivery, open, retry_policy);
                        recorder.submit(outcome).await;
                        continue;
                    }
                },
                None => {
                    let route = tokio::select! {
                        route = self.route() => route,
                        _ = abandon.cancelled() => { return self.leftovers(delivery); }
                    };
                    (delivery, route, None)
                }
            };
            let waited = Instant::now();
            tokio::select! {
                _ = self.rate.until_ready() => {}
                _ = abandon.cancelled() => { return self.leftovers(delivery); }
            }
            metrics::RATE_LIMIT_WAIT_SECONDS
                .with_label_values(&[self.provider.id().as_str()])
                .observe(waited.elapsed().as_secs_f64());
            let permission = tokio::select! {
                permission = session.wait_for_permission(delivery.session) => permission,
                // A fenced session at shutdown: what is held goes back unsent.
                _ = abandon.cancelled() => { return self.leftovers(delivery); }
            };
            match permission {
                SendPermission::Yes => {}
                _ => {
                    // Claimed under a lost session: someone else will send it; never us.
                    tracing::warn!(delivery_id = %delivery.key.id, "dropping a delivery of a lost session");
                    continue;
                }
            }
            // Cancelled while it waited for its token: the last moment a call can be avoided.
            let Some(delivery) = self.unless_cancelled(delivery, &services).await else {
                continue;
            };
            self.publish_in_flight();
            let lane = self.clone();
            let recorder = recorder.clone();
            let templates = services.templates.clone();
            let unsubscribe_links = services.unsubscribe_links.clone();
            sends.spawn(async move {
                let outcome = lane
                    .send(
                        delivery,
                        route,
                        retry_policy,
                        &templates,
                        unsubscribe_links.as_deref(),
                    )
                    .await;
                drop(slot);
                drop(destination_call);
                recorder.submit(outcome).await;
                lane.publish_in_flight();
            });
        }
        self.take_unsent()
    }

    /// Nothing is waiting to be sent: neither in the queue nor parked with a destination.
    fn nothing_waiting(&self) -> bool {
        self.waiting.is_empty()
            && self
                .destinations
                .as_ref()
                .is_none_or(|destinations| !destinations.any_parked())
    }

    /// What the lane holds and has not sent: waiting, or parked with a destination. Called when
    /// the lane stops, and again once its calls in flight have ended (an ending call hands the
    /// delivery parked behind it back to the queue).
    pub fn take_unsent(&self) -> Vec<HeldDelivery> {
        let mut unsent = self.waiting.take_all();
        if let Some(destinations) = &self.destinations {
            unsent.extend(destinations.take_parked());
        }
        unsent
    }

    /// A call slot of the delivery's destination and a permit of its circuit, or why not.
    fn admit_to_destination(
        self: &Arc<Self>,
        destination: Arc<Destination>,
        delivery: HeldDelivery,
    ) -> DestinationVerdict {
        let Some((delivery, call)) = destination.start_call_or_park(delivery) else {
            return DestinationVerdict::Parked;
        };
        let circuit = destination.circuit().try_acquire();
        let slot = DestinationCallSlot {
            lane: self.clone(),
            destination,
            call: Some(call),
        };
        match circuit {
            Ok(permit) => DestinationVerdict::Call(delivery, slot, permit),
            // The slot goes back as it drops here.
            Err(open) => DestinationVerdict::Refused(delivery, open),
        }
    }

    /// What was never sent when the lane stops: `first` and everything [`Lane::take_unsent`] finds.
    fn leftovers(&self, first: HeldDelivery) -> Vec<HeldDelivery> {
        let mut rest = vec![first];
        rest.extend(self.take_unsent());
        rest
    }

    pub fn circuit_state(&self) -> crate::circuit_breaker::CircuitState {
        self.circuit.state()
    }
}

fn bytes_permits(bytes: usize) -> u32 {
    u32::try_from(bytes.clamp(1, MAX_HELD_BYTES)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_channels::{OutgoingMessage, ProviderIdentity, SendOutcome};

    const TEST_TENANT: Uuid = Uuid::from_u128(1);

    struct Silent(ProviderIdentity);

    #[async_trait::async_trait]
    impl Provider for Silent {
        fn identity(&self) -> &ProviderIdentity {
            &self.0
        }
        async fn send(&self, _: &OutgoingMessage, _: Duration) -> SendOutcome {
            unreachable!("this test never sends")
        }
    }

    fn email() -> Contact {
        Contact::Email("someone@example.com".to_owned())
    }

    /// No other unit test makes a lane of it: the gauge is this test's alone.
    const HELD_GAUGE_TEST_PROVIDER: ProviderId = ProviderId::Smtp;

    fn held_gauge() -> i64 {
        metrics::LANE_HELD
            .with_label_values(&[HELD_GAUGE_TEST_PROVIDER])
            .get()
    }

    #[tokio::test]
    async fn the_held_gauge_follows_room_given_back_on_every_path() {
        let lane = Lane::new(
            Arc::new(Silent(ProviderIdentity {
                id: HELD_GAUGE_TEST_PROVIDER,
                endpoint: "http://provider.test/send".to_owned(),
            })),
            LaneSettings {
                timeout_ms: 1000,
                requests_per_second: 100,
                max_in_flight: 4,
                max_held: 10,
            },
            CircuitBreakerSettings::default(),
        );
        assert_eq!(lane.server_address, "provider.test");

        // The pump reserves more than it fills and drops the rest.
        let mut slots = lane.try_reserve_held(Priority::Normal, 8);
        assert_eq!(slots.len(), 8);
        assert_eq!(held_gauge(), 8);
        let kept = lane.complete_reservation(slots.pop().unwrap(), 100).await;
        drop(slots);
        assert_eq!(held_gauge(), 1);

        // Admission reserves and gives back what turned out queued or existing.
        let admitted = lane
            .try_reserve(TEST_TENANT, Priority::Normal, 100, &email())
            .unwrap();
        assert_eq!(held_gauge(), 2);
        drop(admitted);
        drop(kept);
        assert_eq!(held_gauge(), 0);
        assert_eq!(lane.room(Priority::High), 10);
    }

    #[test]
    fn a_lane_full_of_ordinary_work_still_holds_high_priority_deliveries() {
        let lane = Lane::new(
            Arc::new(Silent(ProviderIdentity {
                id: ProviderId::Twilio,
                endpoint: "http://provider.test/send".to_owned(),
            })),
            LaneSettings {
                timeout_ms: 1000,
                requests_per_second: 100,
                max_in_flight: 4,
                max_held: 16,
            },
            CircuitBreakerSettings::default(),
        );
        // An eighth of 16 is kept for high priority: low and normal fill the other 14.
        let low = lane.try_reserve_held(Priority::Low, 100);
        assert_eq!(low.len(), 14);
        assert!(lane
            .try_reserve(TEST_TENANT, Priority::Normal, 10, &email())
            .is_none());
        assert_eq!(lane.room(Priority::Low), 0);
        assert_eq!(lane.room(Priority::High), 2);
        let high = lane.try_reserve_held(Priority::High, 100);
        assert_eq!(high.len(), 2);
        assert!(lane
            .try_reserve(TEST_TENANT, Priority::High, 10, &email())
            .is_none());
        // Room a low delivery gives back serves any priority again.
        drop(low);
        assert_eq!(lane.room(Priority::Low), 14);
        drop(high);
        assert_eq!(lane.room(Priority::High), 16);
        assert_eq!(kept_for_high_priority(1), 0);
        assert_eq!(kept_for_high_priority(2), 1);
        assert_eq!(kept_for_high_priority(4096), 512);
    }
}
