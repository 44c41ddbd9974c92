//! The deliveries a lane holds and has not started sending yet, in priority order (docs/DESIGN.md,
//! "Priority lanes"): every waiting `high` one before any `normal`, every `normal` before any
//! `low`, first in first out within a priority. One FIFO queue per priority.
//!
//! Bounded without a bound of its own: everything pushed carries a held slot of its lane, so the
//! queues together never hold more than the lane's `max_held`.

use std::collections::VecDeque;
use std::sync::Mutex;

use herald_domain::Priority;
use tokio::sync::Notify;

pub struct PriorityQueues<T> {
    /// Indexed by [`rank`]: high, normal, low.
    queues: Mutex<[VecDeque<T>; 3]>,
    /// One permit per push not yet looked at: a consumer that finds the queues empty waits here,
    /// and a push between its look and its wait is not missed (`notify_one` keeps the permit).
    arrived: Notify,
}

/// Where a priority's queue is: the order in which they are served.
fn rank(priority: Priority) -> usize {
    match priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

impl<T> Default for PriorityQueues<T> {
    fn default() -> Self {
        PriorityQueues {
            queues: Mutex::new([VecDeque::new(), VecDeque::new(), VecDeque::new()]),
            arrived: Notify::new(),
        }
    }
}

impl<T> PriorityQueues<T> {
    fn queues(&self) -> std::sync::MutexGuard<'_, [VecDeque<T>; 3]> {
        // Nothing panics while holding the lock (push and pop only): a poisoned lock still holds
        // consistent queues.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn push(&self, priority: Priority, item: T) {
        self.queues()[rank(priority)].push_back(item);
        self.arrived.notify_one();
    }

    /// The oldest item of the highest priority waiting, if any.
    pub fn try_pop(&self) -> Option<T> {
        self.queues().iter_mut().find_map(VecDeque::pop_front)
    }

    /// Waits for the next item in priority order. Cancel-safe: an item is taken only when it is
    /// returned.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.arrived.notified().await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queues().iter().all(VecDeque::is_empty)
    }

    /// Everything still waiting, in priority order.
    pub fn take_all(&self) -> Vec<T> {
        let mut queues = self.queues();
        queues.iter_mut().flat_map(std::mem::take).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn higher_priorities_go_first_and_each_priority_keeps_its_order() {
        let queues = PriorityQueues::default();
        queues.push(Priority::Low, "low 1");
        queues.push(Priority::Normal, "normal 1");
        queues.push(Priority::Low, "low 2");
        queues.push(Priority::High, "high 1");
        queues.push(Priority::Normal, "normal 2");
        queues.push(Priority::High, "high 2");
        assert_eq!(queues.try_pop(), Some("high 1"));
        assert_eq!(queues.try_pop(), Some("high 2"));
        assert_eq!(queues.try_pop(), Some("normal 1"));
        queues.push(Priority::High, "high 3");
        assert_eq!(
            queues.take_all(),
            vec!["high 3", "normal 2", "low 1", "low 2"]
        );
        assert!(queues.is_empty());
        assert_eq!(queues.try_pop(), None);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_for_a_push_and_a_cancelled_wait_loses_nothing() {
        let queues = std::sync::Arc::new(PriorityQueues::default());
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
        queues.push(Priority::Low, 7);
        let popped = tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the consumer woke")
            .unwrap();
        assert_eq!(popped, 7);
        // A push with nobody waiting is found by the next pop at once.
        queues.push(Priority::Normal, 8);
        assert_eq!(queues.pop().await, 8);
    }
}
