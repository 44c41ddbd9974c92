//! Each tenant's share of a lane's held deliveries (docs/DESIGN.md, "Fairness between tenants"):
//! a tenant holds at most `worker.tenant_held_share` of a lane's `max_held`, so a tenant with a
//! backlog of any size leaves the rest of the lane to the others, and another tenant's next
//! delivery is admitted straight into the lane (its turn comes after one of the backlog's) instead
//! of waiting in PostgreSQL behind it.
//!
//! Only tenants holding something are tracked, so the map never has more entries than the lane
//! has held slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::metrics;
use herald_domain::ProviderId;

/// The held deliveries of each tenant in one lane.
pub struct TenantShares {
    counts: Arc<Counts>,
}

struct Counts {
    provider: ProviderId,
    /// The most a tenant may hold by admission; at least one.
    max_per_tenant: usize,
    held: Mutex<HashMap<Uuid, usize>>,
}

impl Counts {
    fn held(&self) -> MutexGuard<'_, HashMap<Uuid, usize>> {
        // Nothing panics while holding the lock: a poisoned map still holds consistent counts.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A held delivery's count in its tenant's share; given back when dropped.
#[derive(Debug)]
pub struct TenantHold {
    counts: Arc<Counts>,
    tenant: Uuid,
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TenantShares")
            .field("provider", &self.provider)
            .field("max_per_tenant", &self.max_per_tenant)
            .finish()
    }
}

impl Drop for TenantHold {
    fn drop(&mut self) {
        let mut held = self.counts.held();
        let count = held
            .get_mut(&self.tenant)
            .expect("a held tenant is counted");
        debug_assert!(*count > 0, "a hold is counted once");
        *count -= 1;
        if *count == 0 {
            held.remove(&self.tenant);
        }
    }
}

impl TenantShares {
    /// Shares of a lane of `max_held` slots: each tenant `share` of them (0 < share ≤ 1), at least one.
    pub fn new(provider: ProviderId, max_held: usize, share: f64) -> TenantShares {
        debug_assert!(share > 0.0 && share <= 1.0, "validated with the settings");
        let max_per_tenant = ((max_held as f64 * share).floor() as usize).clamp(1, max_held.max(1));
        TenantShares {
            counts: Arc::new(Counts {
                provider,
                max_per_tenant,
                held: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn max_per_tenant(&self) -> usize {
        self.counts.max_per_tenant
    }

    /// Counts one more held delivery of `tenant`, unless it holds its share already (then the
    /// delivery should wait queued in PostgreSQL, where the pump's claims take turns by tenant).
    pub fn try_hold(&self, tenant: Uuid) -> Option<TenantHold> {
        let mut held = self.counts.held();
        let count = held.entry(tenant).or_insert(0);
        if *count >= self.counts.max_per_tenant {
            metrics::TENANT_SHARE_REFUSALS
                .with_label_values(&[self.counts.provider.as_str()])
                .inc();
            return None;
        }
        *count += 1;
        Some(TenantHold {
            counts: self.counts.clone(),
            tenant,
        })
    }

    /// Counts a delivery the pump claimed for `tenant`, within the room [`TenantShares::rooms`]
    /// gave it (a claim takes at most that many of a tenant).
    pub fn hold(&self, tenant: Uuid) -> TenantHold {
        *self.counts.held().entry(tenant).or_insert(0) += 1;
        TenantHold {
            counts: self.counts.clone(),
            tenant,
        }
    }

    /// What each tenant holding something may still take (0 for those at their share): what the
    /// pump's claim may take of each. A tenant holding nothing may take `max_per_tenant`. At most
    /// one entry per held delivery.
    pub fn rooms(&self) -> TenantRooms {
        let held = self.counts.held();
        let mut rooms = TenantRooms {
            tenants: Vec::with_capacity(held.len()),
            rooms: Vec::with_capacity(held.len()),
            max_per_tenant: self.counts.max_per_tenant,
        };
        for (tenant, count) in held.iter() {
            rooms.tenants.push(*tenant);
            rooms
                .rooms
                .push(self.counts.max_per_tenant.saturating_sub(*count));
        }
        rooms
    }
}

/// Each tenant's room in a lane, as a claim of the queue takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantRooms {
    /// The tenants holding something, and beside each what it may still take.
    pub tenants: Vec<Uuid>,
    pub rooms: Vec<usize>,
    /// What a tenant holding nothing may take.
    pub max_per_tenant: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    #[test]
    fn a_tenant_holds_at_most_its_share_and_gets_it_back_as_holds_end() {
        let shares = TenantShares::new(ProviderId::SendGrid, 10, 0.5);
        assert_eq!(shares.max_per_tenant(), 5);
        let mut a_holds: Vec<TenantHold> = (0..5).map(|_| shares.try_hold(A).unwrap()).collect();
        assert!(shares.try_hold(A).is_none(), "A holds its share");
        // B is not held back by A.
        let b_hold = shares.try_hold(B).expect("B's share is its own");
        let mut rooms = shares.rooms();
        let mut pairs: Vec<(Uuid, usize)> =
            rooms.tenants.drain(..).zip(rooms.rooms.drain(..)).collect();
        pairs.sort();
        assert_eq!(pairs, vec![(A, 0), (B, 4)]);
        assert_eq!(rooms.max_per_tenant, 5);
        a_holds.pop();
        assert_eq!(shares.rooms().rooms.iter().min(), Some(&1));
        let again = shares.try_hold(A).expect("A is below its share again");
        drop((a_holds, again, b_hold));
        assert!(
            shares.counts.held().is_empty(),
            "only tenants holding something are tracked"
        );
    }

    #[test]
    fn holds_past_the_share_make_admission_wait_until_below_it() {
        let shares = TenantShares::new(ProviderId::Twilio, 4, 0.5);
        let mut holds: Vec<TenantHold> = (0..3).map(|_| shares.hold(A)).collect();
        assert!(shares.try_hold(A).is_none());
        holds.truncate(2);
        assert!(shares.try_hold(A).is_none(), "still at its share");
        holds.truncate(1);
        assert!(shares.try_hold(A).is_some());
    }

    #[test]
    fn a_share_is_at_least_one_slot_and_at_most_the_lane() {
        assert_eq!(
            TenantShares::new(ProviderId::Slack, 1, 0.1).max_per_tenant(),
            1
        );
        assert_eq!(
            TenantShares::new(ProviderId::Slack, 8, 1.0).max_per_tenant(),
            8
        );
    }
}
