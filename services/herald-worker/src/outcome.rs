//! The outcome of one provider call, on its way from the lane that made it to the recorder
//! (`recorder.rs`), and from there to a dead letter (`dead_letter.rs`) when it failed for good.

use herald_domain::Channel;
use herald_store::deliveries::RecordedAttempt;
use uuid::Uuid;

use crate::held::HeldSlot;

/// The outcome of one provider call, on its way to PostgreSQL.
#[derive(Debug)]
pub struct Outcome {
    pub session: Uuid,
    pub send_batch: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub channel: Channel,
    pub attempt: RecordedAttempt,
    /// The delivery's room in its lane, given back once the outcome is written: until then the
    /// call is in doubt should the worker die, so the lane's `max_held` bounds the calls not yet
    /// recorded however far the writes fall behind. `None` when no call was made.
    pub lane_room: Option<HeldSlot>,
}
