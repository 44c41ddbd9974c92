//! What the API admits: request bytes in progress (a budget in bytes, not requests), and room in the
//! outbox (the true backlog from PostgreSQL, plus what this replica committed since it was read).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use herald_store::outbox::Backlog;
use tokio::sync::Semaphore;

use super::{BytesPermit, IngestError};
use crate::metrics;

/// The outbox backlog as admission control sees it.
#[derive(Default)]
pub struct OutboxBacklog {
    /// `sum(notification_count)` of the outbox at the last refresh (every replica's).
    last_read: AtomicU64,
    /// Notifications this replica committed into the outbox since then.
    added_since: AtomicU64,
}

impl OutboxBacklog {
    /// The relay read the true backlog.
    pub fn refresh(&self, backlog: Backlog) {
        self.last_read
            .store(backlog.notifications, Ordering::Relaxed);
        self.added_since.store(0, Ordering::Relaxed);
        metrics::OUTBOX_BACKLOG.set(backlog.notifications as i64);
        metrics::OUTBOX_OLDEST_AGE_SECONDS.set(backlog.oldest_age_seconds);
    }

    /// A commit added `count` notifications to the outbox.
    pub fn committed(&self, count: u64) {
        self.added_since.fetch_add(count, Ordering::Relaxed);
    }

    /// At most one refresh interval of this replica's commits above the truth, never drifting.
    pub fn estimate(&self) -> u64 {
        self.last_read.load(Ordering::Relaxed) + self.added_since.load(Ordering::Relaxed)
    }
}

/// The budget of request bytes held between reading a body and answering it, and each client's
/// share of it: one client (an address, or the forwarded client behind a trusted proxy) holding
/// slow bodies open can take at most its share, never the budget every tenant needs.
#[derive(Clone)]
pub struct RequestBytes {
    budget: Arc<Semaphore>,
    clients: Arc<ClientShares>,
}

/// Bytes each client holds now; a client holding nothing has no entry (the map is as large as
/// the clients with bodies in progress).
struct ClientShares {
    max_per_client: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientShares {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, client: IpAddr, bytes: usize) {
        let mut held = self.held();
        if let Some(count) = held.get_mut(&client) {
            debug_assert!(*count >= bytes, "a client gives back what it holds");
            *count = count.saturating_sub(bytes);
            if *count == 0 {
                held.remove(&client);
            }
        }
    }
}

/// A client's bytes in a [`BytesPermit`], given back when it drops.
pub struct ClientShare {
    shares: Arc<ClientShares>,
    client: IpAddr,
    bytes: usize,
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        self.shares.release(self.client, self.bytes);
    }
}

impl RequestBytes {
    /// A budget of `max_bytes_in_flight`, of which one client may hold `max_bytes_per_client`.
    pub fn new(max_bytes_in_flight: usize, max_bytes_per_client: usize) -> RequestBytes {
        RequestBytes {
            budget: Arc::new(Semaphore::new(
                max_bytes_in_flight.min(Semaphore::MAX_PERMITS),
            )),
            clients: Arc::new(ClientShares {
                max_per_client: max_bytes_per_client.max(1),
                held: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Takes `bytes` for `client` (if known) without waiting: a client over its share is a 429,
    /// no room in the budget a 503.
    pub fn take(&self, client: Option<IpAddr>, bytes: usize) -> Result<BytesPermit, IngestError> {
        let bytes = bytes.max(1);
        let client = match client {
            Some(client) => Some(self.take_share(client, bytes)?),
            None => None,
        };
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
        match self.budget.clone().try_acquire_many_owned(permits) {
            Ok(permit) => Ok(BytesPermit { permit, client }),
            Err(_) => {
                metrics::INGEST_REJECTED
                    .with_label_values(&["bytes_in_flight"])
                    .inc();
                Err(IngestError::BytesExhausted)
            }
        }
    }

    fn take_share(&self, client: IpAddr, bytes: usize) -> Result<ClientShare, IngestError> {
        let mut held = self.clients.held();
        let count = held.entry(client).or_insert(0);
        if *count + bytes > self.clients.max_per_client {
            if *count == 0 {
                held.remove(&client);
            }
            metrics::INGEST_REJECTED
                .with_label_values(&["client_bytes_in_flight"])
                .inc();
            return Err(IngestError::ClientBytesExhausted);
        }
        *count += bytes;
        Ok(ClientShare {
            shares: self.clients.clone(),
            client,
            bytes,
        })
    }
}

impl BytesPermit {
    /// Adds `more` to this permit (a body's next chunk, of the same client).
    pub fn merge(&mut self, more: BytesPermit) {
        let BytesPermit { permit, client } = more;
        self.permit.merge(permit);
        let Some(mut theirs) = client else {
            return;
        };
        if let Some(mine) = self.client.as_mut() {
            debug_assert_eq!(mine.client, theirs.client);
            // The bytes move to this permit's share; the emptied one gives back nothing.
            mine.bytes += theirs.bytes;
            theirs.bytes = 0;
        } else {
            self.client = Some(theirs);
        }
    }

    /// Gives back what the request turned out not to need (a body shorter than reserved).
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX) as usize;
        let held = self.permit.num_permits();
        if held > keep {
            if let Some(surplus) = self.permit.split(held - keep) {
                drop(surplus);
            }
        }
        if let Some(share) = &mut self.client {
            if share.bytes > keep {
                share.shares.release(share.client, share.bytes - keep);
                share.bytes = keep;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_budget_refuses_beyond_its_size_and_refills_when_released() {
        let bytes = RequestBytes::new(1000, 1000);
        let mut first = bytes.take(None, 800).unwrap();
        assert!(matches!(
            bytes.take(None, 300),
            Err(IngestError::BytesExhausted)
        ));
        first.shrink_to(100);
        let second = bytes.take(None, 800).unwrap();
        drop((first, second));
        assert!(bytes.take(None, 1000).is_ok());
    }

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back_chunk_by_chunk() {
        let bytes = RequestBytes::new(1000, 300);
        let greedy: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let mut first = bytes.take(Some(greedy), 200).unwrap();
        first.merge(bytes.take(Some(greedy), 100).unwrap());
        assert!(matches!(
            bytes.take(Some(greedy), 1),
            Err(IngestError::ClientBytesExhausted)
        ));
        let neighbour = bytes
            .take(Some(other), 300)
            .expect("another client has its own share");
        first.shrink_to(120);
        let more = bytes
            .take(Some(greedy), 180)
            .expect("the surplus was given back");
        drop((first, more, neighbour));
        assert!(bytes.clients.held().is_empty(), "no client holds anything");
        assert!(bytes.take(Some(greedy), 300).is_ok());
    }

    #[test]
    fn the_backlog_estimate_adds_local_commits_to_the_last_truth() {
        let backlog = OutboxBacklog::default();
        backlog.committed(5);
        assert_eq!(backlog.estimate(), 5);
        backlog.refresh(Backlog {
            notifications: 3,
            oldest_age_seconds: 1.0,
        });
        assert_eq!(backlog.estimate(), 3, "the truth replaces the local count");
        backlog.committed(2);
        assert_eq!(backlog.estimate(), 5);
    }
}
