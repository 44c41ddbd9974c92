//! sea-orm entities: one per table, carrying the domain's enums. Hot statements are hand-written SQL
//! (see the modules beside this one), but their rows map into typed structs, not by position.

pub mod api_keys;
pub mod deliveries;
pub mod delivery_attempts;
pub mod delivery_queue;
pub mod idempotency_keys;
pub mod notification_states;
pub mod notifications;
pub mod outbox_batches;
pub mod parked_publications;
pub mod parked_records;
pub mod scheduled_notifications;
pub mod send_batches;
pub mod tenants;
pub mod users;
pub mod worker_sessions;
