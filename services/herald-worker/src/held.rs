//! What a lane holds (docs/DESIGN.md, "Provider lanes"): room for a delivery ([`HeldSlot`],
//! [`Reservation`]) and the delivery itself once claimed ([`HeldDelivery`], sent from its
//! [`DeliveryPlan`]). Apart from the lane, so that what records a delivery's outcome or parks it
//! at its destination needs only this, not the lane that sends it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_channels::Contact;
use herald_domain::{Channel, Priority, ProviderId};
use herald_store::deliveries::DeliveryKey;
use herald_store::notifications::NotificationContent;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::destinations;
use crate::metrics;
use crate::tenant_shares::TenantHold;

/// The bounds of one destination of a lane, whose busy deliveries park there.
pub type Destination = destinations::Destination<HeldDelivery>;
/// A held delivery's count in its destination's share.
pub type DestinationHold = destinations::DestinationHold<HeldDelivery>;
/// A lane's destinations.
pub type Destinations = destinations::Destinations<HeldDelivery>;

/// Room in a lane, taken before a delivery is claimed for it. Its bytes are given back when its
/// send is over, its held slot once the send's outcome is recorded ([`Reservation::into_held_slot`]).
pub struct Reservation {
    pub(crate) held: HeldSlot,
    pub(crate) _bytes: OwnedSemaphorePermit,
}

impl Reservation {
    /// Gives the content's bytes back and keeps the slot: a delivery whose call is made but whose
    /// outcome is not yet in PostgreSQL would be in doubt if the worker died, so it still counts
    /// against the lane's `max_held` (docs/DESIGN.md, "The in-doubt set").
    pub fn into_held_slot(self) -> HeldSlot {
        self.held
    }
}

/// The held-deliveries count of a lane and its gauge.
pub(crate) struct HeldRoom {
    pub(crate) provider: ProviderId,
    pub(crate) semaphore: Arc<Semaphore>,
    pub(crate) capacity: usize,
}

impl HeldRoom {
    pub(crate) fn publish(&self) {
        metrics::LANE_HELD
            .with_label_values(&[self.provider.as_str()])
            .set((self.capacity - self.semaphore.available_permits()) as i64);
    }
}

/// Room for one held delivery. Giving it back, on whichever path (sent, queued, already existing,
/// unused by the pump), updates the lane's held gauge: no caller has to remember to.
pub struct HeldSlot {
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    /// A `normal` or `low` delivery's share of the room not kept for `high` ones; `None` for `high`.
    pub(crate) ordinary: Option<OwnedSemaphorePermit>,
    /// Its count in its destination's share, for a destination the tenant chose.
    pub(crate) destination: Option<DestinationHold>,
    /// Its count in its tenant's share of the lane, once its tenant is known.
    pub(crate) tenant: Option<TenantHold>,
    pub(crate) room: Arc<HeldRoom>,
}

impl std::fmt::Debug for HeldSlot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HeldSlot")
            .field("provider", &self.room.provider)
            .finish()
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        // The permits first, so that the gauge counts them as given back.
        drop(self.tenant.take());
        drop(self.destination.take());
        drop(self.ordinary.take());
        drop(self.permit.take());
        self.room.publish();
    }
}

/// What one delivery is sent from, however it came to the lane: admitted from its Kafka record,
/// or claimed from the queue. Providers render their request from it (`render_message`).
#[derive(Clone)]
pub struct DeliveryPlan {
    pub user_id: String,
    /// Its notification: tenant, content, priority and acceptance time.
    pub content: Arc<NotificationContent>,
    /// Where it goes: the recipient's address on the delivery's channel.
    pub contact: Contact,
    /// The W3C context its provider call's span is the child of.
    pub trace_parent: Option<Arc<str>>,
    /// The recipient's locale, which picks a template's part (none: the template's default).
    pub locale: Option<Arc<str>>,
}

impl DeliveryPlan {
    pub fn tenant_id(&self) -> Uuid {
        self.content.tenant_id
    }

    pub fn channel(&self) -> Channel {
        self.contact.channel()
    }

    pub fn accepted_at(&self) -> DateTime<Utc> {
        self.content.created_at
    }
}

/// A delivery this worker owns and will send through a lane: its plan, the claim that makes it
/// this worker's, and the room it holds in the lane.
pub struct HeldDelivery {
    pub key: DeliveryKey,
    pub attempt: i32,
    /// Attempts made before its current attempt budget: 0, or the attempts before a dead-letter
    /// replay. The retry policy counts `attempt - attempt_budget_start`.
    pub attempt_budget_start: i32,
    /// The session it was claimed under: if that session is lost, it is never sent.
    pub session: Uuid,
    pub send_batch: Uuid,
    pub plan: DeliveryPlan,
    pub reservation: Reservation,
}

impl HeldDelivery {
    /// Its notification's priority: the order it waits in (docs/DESIGN.md, "Priority lanes").
    pub fn priority(&self) -> Priority {
        self.plan.content.priority
    }

    /// The tenant's destination it goes to, for lanes that bound them (`destinations.rs`).
    pub(crate) fn destination(&self) -> Option<Arc<Destination>> {
        self.reservation
            .held
            .destination
            .as_ref()
            .map(|hold| hold.destination().clone())
    }
}
