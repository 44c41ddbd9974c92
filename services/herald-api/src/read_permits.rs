//! A bound on the reads that hold a database connection at once, shared fairly between tenants.
//! Reads share the pool with the group commit; without a bound, a burst of slow reads (an export,
//! a wide page) would take every connection, and each further read, and every commit, would wait
//! the pool's acquire timeout. Past the bound a read is answered 503 with `Retry-After` at once,
//! and writes keep their share.
//!
//! Within the bound, no tenant may hold more than `server.max_concurrent_reads_per_tenant` read
//! permits (beyond it: 429 for that tenant alone; its cancellations are not refused for them), and
//! a quarter of the permits (at least one when there
//! are two or more) is kept for cancellations: a tenant looping slow lists can neither take every
//! permit nor stand between another tenant and its cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::ApiError;

/// What a permit is for: a cancellation may use the permits kept back from reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitUse {
    Read,
    Cancel,
}

#[derive(Clone)]
pub struct ReadPermits {
    /// Every permit (reads and cancellations).
    all: Arc<Semaphore>,
    /// The permits reads may take: `all` less the cancellations' reserve.
    reads: Arc<Semaphore>,
    per_tenant_limit: usize,
    held_per_tenant: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// Held for the whole read; dropping it lets the next read in.
pub struct ReadPermit {
    _all: OwnedSemaphorePermit,
    _read: Option<OwnedSemaphorePermit>,
    tenant_id: Uuid,
    held_per_tenant: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Drop for ReadPermit {
    fn drop(&mut self) {
        let Ok(mut held) = self.held_per_tenant.lock() else {
            return;
        };
        if let Some(count) = held.get_mut(&self.tenant_id) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.tenant_id);
            }
        }
    }
}

impl ReadPermits {
    pub fn new(max_concurrent_reads: usize, max_concurrent_reads_per_tenant: usize) -> Self {
        debug_assert!(max_concurrent_reads > 0, "validated by the settings");
        debug_assert!(
            max_concurrent_reads_per_tenant > 0,
            "validated by the settings"
        );
        let kept_for_cancellations = if max_concurrent_reads >= 2 {
            (max_concurrent_reads / 4).max(1)
        } else {
            0
        };
        ReadPermits {
            all: Arc::new(Semaphore::new(max_concurrent_reads)),
            reads: Arc::new(Semaphore::new(
                max_concurrent_reads - kept_for_cancellations,
            )),
            per_tenant_limit: max_concurrent_reads_per_tenant,
            held_per_tenant: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A permit now; `TenantBusy` (429) when `tenant_id` holds its share already, `Overloaded`
    /// (503) when as many reads are already in flight.
    pub fn try_acquire(&self, tenant_id: Uuid, purpose: PermitUse) -> Result<ReadPermit, ApiError> {
        let overloaded = || ApiError::Overloaded("too many reads are in flight");
        let mut held = self.held_per_tenant.lock().map_err(|_| overloaded())?;
        let tenant_holds = held.get(&tenant_id).copied().unwrap_or(0);
        // Cancellations are short and a tenant's own: never refused for its reads in flight.
        if purpose == PermitUse::Read && tenant_holds >= self.per_tenant_limit {
            return Err(ApiError::TenantBusy);
        }
        let read = match purpose {
            PermitUse::Read => Some(
                self.reads
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| overloaded())?,
            ),
            PermitUse::Cancel => None,
        };
        let all = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| overloaded())?;
        *held.entry(tenant_id).or_insert(0) += 1;
        Ok(ReadPermit {
            _all: all,
            _read: read,
            tenant_id,
            held_per_tenant: self.held_per_tenant.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_bound_are_refused_until_one_finishes() {
        let permits = ReadPermits::new(2, 2);
        let tenant = Uuid::new_v4();
        let first = permits.try_acquire(tenant, PermitUse::Read).unwrap();
        assert!(
            matches!(
                permits.try_acquire(Uuid::new_v4(), PermitUse::Read),
                Err(ApiError::Overloaded(_))
            ),
            "one of two is kept for cancellations"
        );
        let cancel = permits
            .try_acquire(Uuid::new_v4(), PermitUse::Cancel)
            .unwrap();
        assert!(permits
            .try_acquire(Uuid::new_v4(), PermitUse::Cancel)
            .is_err());
        drop(first);
        drop(cancel);
        assert!(permits.try_acquire(tenant, PermitUse::Read).is_ok());
    }

    #[test]
    fn one_tenant_holds_at_most_its_share_and_others_still_read() {
        let permits = ReadPermits::new(8, 2);
        let greedy = Uuid::new_v4();
        let first = permits.try_acquire(greedy, PermitUse::Read).unwrap();
        let _second = permits.try_acquire(greedy, PermitUse::Read).unwrap();
        assert!(matches!(
            permits.try_acquire(greedy, PermitUse::Read),
            Err(ApiError::TenantBusy)
        ));
        let _other = permits
            .try_acquire(Uuid::new_v4(), PermitUse::Read)
            .unwrap();
        drop(first);
        assert!(permits.try_acquire(greedy, PermitUse::Read).is_ok());
    }
}
