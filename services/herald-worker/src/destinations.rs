//! Bounds per destination for lanes whose destinations the tenants choose (their own webhooks,
//! their Slack and Discord URLs): one tenant's endpoint that times out, fails or answers slowly
//! must hold only its own share of the lane, and never open a circuit for every other tenant
//! (docs/DESIGN.md, "Tenant destinations").
//!
//! Each destination has, within its lane:
//! - **its own circuit breaker**, with the lane's settings. While it is open, a delivery to it
//!   fails at once without a call (a retryable failure on the ordinary retry schedule, so an
//!   endpoint that stays down has its deliveries dead-lettered, replayable), instead of holding a
//!   slot of the lane while it waits;
//! - **a share of the lane's calls in flight** (`max_in_flight / 8`, at least one): a delivery to a
//!   destination whose share is busy waits beside the lane's queue, parked with its destination,
//!   and goes back to the queue when one of that destination's calls ends;
//! - **a share of the lane's held deliveries** (`max_held / 8`, at least one): beyond it, admission
//!   queues the delivery in PostgreSQL and the pump leaves it there for a while.
//!
//! The destinations tracked are bounded in number ([`MAX_TRACKED_DESTINATIONS`] per lane): to make
//! room, the idle ones (nothing held, circuit closed) are forgotten; if none is idle, a new
//! destination shares one overflow entry with the others like it, so a tenant inventing hosts
//! can only degrade the destinations it invented.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use herald_channels::Contact;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::circuit_breaker::{
    CircuitBreaker, CircuitBreakerSettings, CircuitState, CircuitTransition,
};
use crate::metrics;
use herald_domain::ProviderId;

/// Destinations one lane tracks at once.
pub const MAX_TRACKED_DESTINATIONS: usize = 4096;
/// A destination's share of its lane's calls in flight and held deliveries: an eighth.
const DESTINATION_SHARE_DIVISOR: usize = 8;
/// The key of the entry that new destinations share when every tracked one is busy.
const OVERFLOW_KEY: &str = "(overflow)";

/// The bounds of one destination; `Parked` is what waits there for a call slot (a lane's held
/// delivery: `held::Destination`).
pub struct Destination<Parked> {
    key: String,
    provider: ProviderId,
    circuit: CircuitBreaker,
    held: AtomicUsize,
    max_held: usize,
    in_flight: Arc<Semaphore>,
    /// Deliveries that found every call slot of this destination busy, oldest first; taken under
    /// this lock together with the slots, so an ending call never misses one parked meanwhile.
    parked: Mutex<VecDeque<Parked>>,
    /// The lane's count of parked deliveries, over all its destinations.
    lane_parked: Arc<AtomicUsize>,
}

impl<Parked> std::fmt::Debug for Destination<Parked> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Destination")
            .field("key", &self.key)
            .field("held", &self.held.load(Ordering::Relaxed))
            .finish()
    }
}

impl<Parked> Destination<Parked> {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn circuit(&self) -> &CircuitBreaker {
        &self.circuit
    }

    fn parked(&self) -> MutexGuard<'_, VecDeque<Parked>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Is anything of this destination held, or is its circuit other than closed?
    fn is_busy(&self) -> bool {
        self.held.load(Ordering::Acquire) > 0 || self.circuit.state() != CircuitState::Closed
    }

    /// A call slot of this destination for `delivery`, or `delivery` parked until one frees up.
    pub fn start_call_or_park(&self, delivery: Parked) -> Option<(Parked, DestinationCall)> {
        let mut parked = self.parked();
        match self.in_flight.clone().try_acquire_owned() {
            Ok(slot) => Some((delivery, DestinationCall { slot })),
            Err(_) => {
                metrics::DESTINATION_REFUSALS
                    .with_label_values(&[self.provider.as_str(), "in_flight_share"])
                    .inc();
                parked.push_back(delivery);
                self.lane_parked.fetch_add(1, Ordering::AcqRel);
                None
            }
        }
    }

    /// Ends a call of this destination; returns the delivery parked longest, now free to go.
    pub fn end_call(&self, call: DestinationCall) -> Option<Parked> {
        let mut parked = self.parked();
        drop(call.slot);
        let next = parked.pop_front();
        if next.is_some() {
            self.lane_parked.fetch_sub(1, Ordering::AcqRel);
        }
        next
    }

    /// Publishes a transition of this destination's circuit (the open ones are counted per lane,
    /// not named: destinations are the tenants' to invent).
    pub fn note_circuit_transition(&self, transition: Option<CircuitTransition>) {
        let Some(transition) = transition else {
            return;
        };
        let gauge = metrics::DESTINATION_CIRCUITS_OPEN.with_label_values(&[self.provider.as_str()]);
        match (transition.from, transition.to) {
            (CircuitState::Closed, CircuitState::Open) => gauge.inc(),
            (_, CircuitState::Closed) => gauge.dec(),
            _ => {}
        }
        tracing::info!(
            provider = %self.provider,
            destination = %self.key,
            from = %transition.from,
            to = %transition.to,
            "a tenant destination's circuit changed"
        );
    }
}

/// A call slot of one destination, held for the length of its call.
#[derive(Debug)]
pub struct DestinationCall {
    slot: OwnedSemaphorePermit,
}

/// A held delivery's count in its destination's share; given back when dropped.
#[derive(Debug)]
pub struct DestinationHold<Parked> {
    destination: Arc<Destination<Parked>>,
}

impl<Parked> DestinationHold<Parked> {
    pub fn destination(&self) -> &Arc<Destination<Parked>> {
        &self.destination
    }
}

impl<Parked> Drop for DestinationHold<Parked> {
    fn drop(&mut self) {
        let before = self.destination.held.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "a hold is counted once");
    }
}

/// The destinations of one lane.
pub struct Destinations<Parked> {
    provider: ProviderId,
    circuit: CircuitBreakerSettings,
    max_in_flight: usize,
    max_held: usize,
    tracked: Mutex<HashMap<String, Arc<Destination<Parked>>>>,
    overflow: Arc<Destination<Parked>>,
    /// Deliveries parked with any destination: read on every turn of the lane's loop, so a count
    /// rather than a walk over every destination.
    parked: Arc<AtomicUsize>,
}

impl<Parked> Destinations<Parked> {
    pub fn new(
        provider: ProviderId,
        circuit: CircuitBreakerSettings,
        lane_max_in_flight: usize,
        lane_max_held: usize,
    ) -> Destinations<Parked> {
        let max_in_flight = (lane_max_in_flight / DESTINATION_SHARE_DIVISOR).max(1);
        let max_held = (lane_max_held / DESTINATION_SHARE_DIVISOR).max(1);
        metrics::declare_destinations(provider);
        let parked = Arc::new(AtomicUsize::new(0));
        let overflow = Arc::new(Self::destination(
            provider,
            OVERFLOW_KEY.to_owned(),
            &circuit,
            (max_in_flight, max_held),
            parked.clone(),
        ));
        Destinations {
            provider,
            circuit,
            max_in_flight,
            max_held,
            tracked: Mutex::new(HashMap::new()),
            overflow,
            parked,
        }
    }

    fn destination(
        provider: ProviderId,
        key: String,
        circuit: &CircuitBreakerSettings,
        (max_in_flight, max_held): (usize, usize),
        lane_parked: Arc<AtomicUsize>,
    ) -> Destination<Parked> {
        Destination {
            key,
            provider,
            circuit: CircuitBreaker::new(provider, circuit.clone()),
            held: AtomicUsize::new(0),
            max_held,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            parked: Mutex::new(VecDeque::new()),
            lane_parked,
        }
    }

    fn tracked(&self) -> MutexGuard<'_, HashMap<String, Arc<Destination<Parked>>>> {
        self.tracked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key`, made if need be (see the module documentation for the bound).
    fn entry(&self, key: &str) -> Arc<Destination<Parked>> {
        let mut tracked = self.tracked();
        if let Some(destination) = tracked.get(key) {
            return destination.clone();
        }
        if tracked.len() >= MAX_TRACKED_DESTINATIONS {
            // Forget the idle ones; only a parked or held delivery keeps an entry alive besides
            // the map, and a busy entry's circuit is worth keeping.
            tracked.retain(|_, destination| {
                Arc::strong_count(destination) > 1 || destination.is_busy()
            });
            metrics::DESTINATIONS_TRACKED
                .with_label_values(&[self.provider.as_str()])
                .set(tracked.len() as i64);
            if tracked.len() >= MAX_TRACKED_DESTINATIONS {
                return self.overflow.clone();
            }
        }
        let destination = Arc::new(Self::destination(
            self.provider,
            key.to_owned(),
            &self.circuit,
            (self.max_in_flight, self.max_held),
            self.parked.clone(),
        ));
        tracked.insert(key.to_owned(), destination.clone());
        metrics::DESTINATIONS_TRACKED
            .with_label_values(&[self.provider.as_str()])
            .set(tracked.len() as i64);
        destination
    }

    /// A count in the share of the destination `contact` goes to; `Some(None)` when the contact
    /// names no destination of a tenant's, `None` when that destination holds its share already.
    pub fn try_hold(&self, contact: &Contact) -> Option<Option<DestinationHold<Parked>>> {
        let Some(key) = contact.destination_key() else {
            return Some(None);
        };
        let destination = self.entry(&key);
        let counted = destination
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < destination.max_held).then_some(held + 1)
            })
            .is_ok();
        if !counted {
            metrics::DESTINATION_REFUSALS
                .with_label_values(&[self.provider.as_str(), "held_share"])
                .inc();
            return None;
        }
        Some(Some(DestinationHold { destination }))
    }

    /// Every delivery parked with a destination (the lane is stopping: they go back to the queue).
    pub fn take_parked(&self) -> Vec<Parked> {
        let destinations: Vec<Arc<Destination<Parked>>> = self
            .tracked()
            .values()
            .cloned()
            .chain(std::iter::once(self.overflow.clone()))
            .collect();
        let taken: Vec<Parked> = destinations
            .iter()
            .flat_map(|destination| destination.parked().drain(..).collect::<Vec<_>>())
            .collect();
        self.parked.fetch_sub(taken.len(), Ordering::AcqRel);
        taken
    }

    /// Is any delivery parked with a destination?
    pub fn any_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire) > 0
    }

    /// The share of the lane's held deliveries one destination may take.
    pub fn max_held_per_destination(&self) -> usize {
        self.max_held
    }

    /// The share of the lane's calls in flight one destination may take.
    pub fn max_in_flight_per_destination(&self) -> usize {
        self.max_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_channels::webhook::SignedWebhookContact;

    fn webhook(url: &str) -> Contact {
        Contact::Webhook(SignedWebhookContact {
            url: url.to_owned(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        })
    }

    #[test]
    fn a_destination_holds_its_share_only_and_gets_it_back() {
        let destinations: Destinations<()> = Destinations::new(
            ProviderId::Webhook,
            CircuitBreakerSettings::default(),
            16,
            16,
        );
        assert_eq!(destinations.max_held_per_destination(), 2);
        let tarpit = webhook("http://tarpit.example:81/");
        let first = destinations.try_hold(&tarpit).unwrap().unwrap();
        let second = destinations.try_hold(&tarpit).unwrap().unwrap();
        assert!(
            destinations.try_hold(&tarpit).is_none(),
            "its share is taken"
        );
        let other = destinations.try_hold(&webhook("http://healthy.example/"));
        assert!(matches!(other, Some(Some(_))), "another destination is not");
        drop(first);
        assert!(destinations.try_hold(&tarpit).is_some());
        drop(second);
        assert!(matches!(
            destinations.try_hold(&Contact::Email("a@b.c".to_owned())),
            Some(None)
        ));
    }

    #[test]
    fn tracked_destinations_are_bounded_and_idle_ones_forgotten() {
        let destinations: Destinations<()> = Destinations::new(
            ProviderId::Webhook,
            CircuitBreakerSettings::default(),
            16,
            16,
        );
        // Every tracked destination busy (one hold each): the next share the overflow entry.
        let holds: Vec<DestinationHold<()>> = (0..MAX_TRACKED_DESTINATIONS)
            .map(|index| {
                destinations
                    .try_hold(&webhook(&format!("http://host-{index}.example/")))
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let extra = destinations
            .try_hold(&webhook("http://one-more.example/"))
            .unwrap()
            .unwrap();
        assert_eq!(extra.destination().key(), OVERFLOW_KEY);
        assert_eq!(destinations.tracked().len(), MAX_TRACKED_DESTINATIONS);
        drop(holds);
        // Idle now: forgotten to make room.
        let fresh = destinations
            .try_hold(&webhook("http://fresh.example/"))
            .unwrap()
            .unwrap();
        assert_eq!(fresh.destination().key(), "fresh.example:80");
        assert_eq!(destinations.tracked().len(), 1);
    }
}
