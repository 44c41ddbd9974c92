//! One simulated provider at run time: its current behaviour and what it received, each behind
//! its own mutex. Locks are held only to copy or update a few fields, never across an `.await`:
//! waiting (latency, timeouts) happens after the lock is released, on tokio's timer.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::behaviour::{BehaviourError, FaultKind, ProviderBehaviour};
use crate::records::{DeliveryRecord, ProviderRecords, ProviderStats};

/// How the provider answers a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Accepted,
    /// An idempotent repeat: answer as the first time, with the original message id (`None`
    /// for providers that answer none).
    Replayed {
        original_message_id: Option<String>,
    },
    /// A fault; `retry_after` is the `Retry-After` a rate limit answers with.
    Fault {
        kind: FaultKind,
        retry_after: String,
    },
}

pub struct ProviderSimulation {
    behaviour: Mutex<ProviderBehaviour>,
    records: Mutex<ProviderRecords>,
}

/// Takes a lock even if a thread panicked while holding it: the guarded data are counters and
/// plain values that stay consistent, and the simulator must keep answering.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A uniform roll in `[0, 1)`, drawn outside any lock.
fn roll() -> f64 {
    rand::random::<f64>()
}

/// Waits without blocking a worker thread; no timer at all for the common zero latency.
pub async fn wait(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

impl ProviderSimulation {
    pub fn new(
        behaviour: ProviderBehaviour,
        record_capacity: usize,
        max_references: usize,
    ) -> Self {
        ProviderSimulation {
            behaviour: Mutex::new(behaviour),
            records: Mutex::new(ProviderRecords::new(record_capacity, max_references)),
        }
    }

    /// Counts a request refused for its credentials or its content, then waits as long as the
    /// provider takes to answer. Such requests never consume a one-shot fault.
    pub async fn reject(&self) {
        lock(&self.records).count_rejected();
        let jitter_roll = roll();
        let latency = lock(&self.behaviour).latency(jitter_roll);
        wait(latency).await;
    }

    /// Counts a valid request the provider turns away for a state of its own rather than a
    /// simulated fault (Pushover's application over its monthly limit: `RateLimit`), then
    /// waits as long as the provider takes to answer. No one-shot fault is consumed.
    pub async fn turn_away(&self, fault: FaultKind) {
        lock(&self.records).count_fault(fault);
        let jitter_roll = roll();
        let latency = lock(&self.behaviour).latency(jitter_roll);
        wait(latency).await;
    }

    /// Decides a valid request's fate and counts it; an accepted request's sends (built by
    /// `deliveries`, only when accepted) are recorded before the wait, as a real provider has
    /// taken a message before its answer reaches the client: a client that gives up early has
    /// still sent it. Returns how to answer, after the wait.
    pub async fn admit(&self, deliveries: impl FnOnce() -> Vec<DeliveryRecord>) -> Admission {
        let (fault_roll, jitter_roll) = (roll(), roll());
        let (fate, honour_references, retry_after) = {
            let mut behaviour = lock(&self.behaviour);
            let fate = behaviour.decide_fate(fault_roll, jitter_roll);
            (
                fate,
                behaviour.honour_idempotency_reference,
                behaviour.retry_after.clone(),
            )
        };
        let admission = match fate.fault {
            Some(fault) => {
                lock(&self.records).count_fault(fault);
                Admission::Fault {
                    kind: fault,
                    retry_after,
                }
            }
            None => {
                let deliveries = deliveries();
                let mut records = lock(&self.records);
                let replayed = if honour_references {
                    records.replay(&deliveries)
                } else {
                    None
                };
                match replayed {
                    Some(original_message_id) => Admission::Replayed {
                        original_message_id,
                    },
                    None => {
                        records.accept(deliveries, honour_references);
                        Admission::Accepted
                    }
                }
            }
        };
        wait(fate.delay).await;
        admission
    }

    pub fn behaviour(&self) -> ProviderBehaviour {
        lock(&self.behaviour).clone()
    }

    pub fn replace_behaviour(&self, behaviour: ProviderBehaviour) -> Result<(), BehaviourError> {
        behaviour.validate()?;
        *lock(&self.behaviour) = behaviour;
        Ok(())
    }

    pub fn stats(&self) -> ProviderStats {
        lock(&self.records).stats()
    }

    pub fn reference_counts(&self) -> std::collections::HashMap<String, u64> {
        lock(&self.records).reference_counts()
    }

    pub fn recent(&self, reference: Option<&str>, limit: usize) -> Vec<DeliveryRecord> {
        lock(&self.records).recent(reference, limit)
    }

    /// Clears records, counters and queued one-shot faults; the configured rates and latency
    /// stay, so a benchmark can reset between runs without reconfiguring.
    pub fn reset(&self) {
        lock(&self.records).clear();
        lock(&self.behaviour).fail_next = 0;
    }
}
