//! The deliveries a lane holds and has not started sending yet (docs/DESIGN.md, "Fairness between
//! tenants" and "Priority lanes"): the tenants with something waiting take turns, one delivery per
//! turn (deficit round robin with equal costs: every delivery is one call), and within a tenant's
//! turn its oldest delivery of its highest priority waiting goes. A tenant with 20,000 deliveries
//! waiting therefore delays another tenant's next one by at most one of its own, whatever their
//! priorities; a tenant's `high` ones still go before its `normal`, its `normal` before its `low`.
//!
//! As in FQ-CoDel, a tenant that had nothing waiting takes the next turn, ahead of the tenants
//! with a backlog, once: a tenant sending within its share (its deliveries find nothing of its own
//! waiting) is not delayed by the others' backlogs at all, and a tenant with a backlog only ever
//! gets the turns after the newcomers'. Inventing newcomers does not help a backlog: each newcomer
//! is a delivery of its own tenant, sent in its own turn.
//!
//! Bounded without a bound of its own: everything pushed carries a held slot of its lane, so the
//! queues together never hold more than the lane's `max_held`, and a tenant is in the turn order
//! only while something of it waits.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use herald_domain::Priority;
use tokio::sync::Notify;
use uuid::Uuid;

pub struct FairQueues<T> {
    waiting: Mutex<Waiting<T>>,
    /// One permit per push not yet looked at: a consumer that finds the queues empty waits here,
    /// and a push between its look and its wait is not missed (`notify_one` keeps the permit).
    arrived: Notify,
}

/// A tenant's waiting deliveries, one FIFO queue per priority, indexed by [`rank`].
type TenantQueues<T> = [VecDeque<T>; 3];

struct Waiting<T> {
    /// Only tenants with something waiting: an entry is removed when its last item is taken.
    by_tenant: HashMap<Uuid, TenantQueues<T>>,
    /// Tenants that had nothing waiting when their item arrived: their turns come first.
    newcomers: VecDeque<Uuid>,
    /// Tenants that had their newcomer's turn and still have something waiting, in turn.
    backlogged: VecDeque<Uuid>,
}

impl<T> Waiting<T> {
    /// Every tenant with something waiting is in exactly one of the turn orders.
    fn turns_are_consistent(&self) -> bool {
        self.newcomers.len() + self.backlogged.len() == self.by_tenant.len()
    }
}

/// Where a priority's queue is: the order in which a tenant's deliveries are served.
fn rank(priority: Priority) -> usize {
    match priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

impl<T> Default for FairQueues<T> {
    fn default() -> Self {
        FairQueues {
            waiting: Mutex::new(Waiting {
                by_tenant: HashMap::new(),
                newcomers: VecDeque::new(),
                backlogged: VecDeque::new(),
            }),
            arrived: Notify::new(),
        }
    }
}

impl<T> FairQueues<T> {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting<T>> {
        // Nothing panics while holding the lock (push and pop only): a poisoned lock still holds
        // consistent queues.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn push(&self, tenant: Uuid, priority: Priority, item: T) {
        {
            let mut guard = self.waiting();
            let waiting = &mut *guard;
            let queues = waiting.by_tenant.entry(tenant).or_insert_with(|| {
                waiting.newcomers.push_back(tenant);
                Default::default()
            });
            queues[rank(priority)].push_back(item);
            debug_assert!(waiting.turns_are_consistent());
        }
        self.arrived.notify_one();
    }

    /// The next tenant's oldest item of its highest priority waiting, if anything waits: a
    /// newcomer's first, then the backlogged tenants' in turn.
    pub fn try_pop(&self) -> Option<T> {
        let mut guard = self.waiting();
        let waiting = &mut *guard;
        let tenant = waiting
            .newcomers
            .pop_front()
            .or_else(|| waiting.backlogged.pop_front())?;
        let queues = waiting
            .by_tenant
            .get_mut(&tenant)
            .expect("a tenant in a turn order has queues");
        let item = queues.iter_mut().find_map(VecDeque::pop_front);
        debug_assert!(
            item.is_some(),
            "a tenant in a turn order has something waiting"
        );
        if queues.iter().all(VecDeque::is_empty) {
            waiting.by_tenant.remove(&tenant);
        } else {
            waiting.backlogged.push_back(tenant);
        }
        debug_assert!(waiting.turns_are_consistent());
        item
    }

    /// Waits for the next item in turn. Cancel-safe: an item is taken only when it is returned.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.arrived.notified().await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiting().by_tenant.is_empty()
    }

    /// Everything still waiting.
    pub fn take_all(&self) -> Vec<T> {
        let mut waiting = self.waiting();
        waiting.newcomers.clear();
        waiting.backlogged.clear();
        std::mem::take(&mut waiting.by_tenant)
            .into_values()
            .flat_map(|queues| queues.into_iter().flatten())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);
    const C: Uuid = Uuid::from_u128(0xc);

    #[test]
    fn within_a_tenant_higher_priorities_go_first_and_each_priority_keeps_its_order() {
        let queues = FairQueues::default();
        queues.push(A, Priority::Low, "low 1");
        queues.push(A, Priority::Normal, "normal 1");
        queues.push(A, Priority::Low, "low 2");
        queues.push(A, Priority::High, "high 1");
        queues.push(A, Priority::Normal, "normal 2");
        queues.push(A, Priority::High, "high 2");
        assert_eq!(queues.try_pop(), Some("high 1"));
        assert_eq!(queues.try_pop(), Some("high 2"));
        assert_eq!(queues.try_pop(), Some("normal 1"));
        queues.push(A, Priority::High, "high 3");
        assert_eq!(queues.try_pop(), Some("high 3"));
        let mut rest = queues.take_all();
        rest.sort();
        assert_eq!(rest, vec!["low 1", "low 2", "normal 2"]);
        assert!(queues.is_empty());
        assert_eq!(queues.try_pop(), None);
    }

    #[test]
    fn tenants_take_turns_whatever_their_backlogs_and_priorities() {
        let queues = FairQueues::default();
        for index in 0..1000 {
            queues.push(A, Priority::High, format!("a{index}"));
        }
        queues.push(B, Priority::Low, "b0".to_owned());
        queues.push(C, Priority::Normal, "c0".to_owned());
        queues.push(B, Priority::Low, "b1".to_owned());
        // A's thousand high ones delay B's and C's low and normal ones by one turn at most.
        let first: Vec<String> = std::iter::from_fn(|| queues.try_pop()).take(6).collect();
        assert_eq!(first, ["a0", "b0", "c0", "a1", "b1", "a2"]);
        assert_eq!(queues.take_all().len(), 997);
        assert!(queues.is_empty());
    }

    #[test]
    fn a_tenant_with_nothing_waiting_goes_before_the_backlogs_once() {
        let queues = FairQueues::default();
        for index in 0..100 {
            queues.push(A, Priority::High, format!("a{index}"));
        }
        assert_eq!(queues.try_pop().as_deref(), Some("a0"));
        // B sends within its share: each of its deliveries finds nothing of B's waiting, and goes
        // next, ahead of A's backlog.
        queues.push(B, Priority::Low, "b0".to_owned());
        assert_eq!(queues.try_pop().as_deref(), Some("b0"));
        assert_eq!(queues.try_pop().as_deref(), Some("a1"));
        queues.push(B, Priority::Low, "b1".to_owned());
        queues.push(C, Priority::Normal, "c0".to_owned());
        // Two newcomers in their order, then B (backlogged now) takes turns with A.
        queues.push(B, Priority::Low, "b2".to_owned());
        let next: Vec<String> = std::iter::from_fn(|| queues.try_pop()).take(5).collect();
        assert_eq!(next, ["b1", "c0", "a2", "b2", "a3"]);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_for_a_push_and_a_cancelled_wait_loses_nothing() {
        let queues = std::sync::Arc::new(FairQueues::default());
        // A wait given up before anything arrives takes nothing.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), queues.pop())
                .await
                .is_err()
        );
        let consumer = tokio::spawn({
            let queues = queues.clone();
            async move { queues.pop().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queues.push(A, Priority::Low, 7);
        let popped = tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the consumer woke")
            .unwrap();
        assert_eq!(popped, 7);
        // A push with nobody waiting is found by the next pop at once.
        queues.push(B, Priority::Normal, 8);
        assert_eq!(queues.pop().await, 8);
    }
}
