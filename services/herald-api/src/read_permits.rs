//! A bound on the reads that hold a database connection at once. Reads share the pool with the
//! group commit; without a bound, a burst of slow reads (an export, a wide page) would take every
//! connection, and each further read, and every commit, would wait the pool's acquire timeout.
//! Past the bound a read is answered 503 with `Retry-After` at once, and writes keep their share.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

#[derive(Clone)]
pub struct ReadPermits {
    semaphore: Arc<Semaphore>,
}

/// Held for the whole read; dropping it lets the next read in.
pub struct ReadPermit {
    _permit: OwnedSemaphorePermit,
}

impl ReadPermits {
    pub fn new(max_concurrent_reads: usize) -> Self {
        debug_assert!(max_concurrent_reads > 0, "validated by the settings");
        ReadPermits {
            semaphore: Arc::new(Semaphore::new(max_concurrent_reads)),
        }
    }

    /// A permit now, or `Overloaded` (503) when as many reads are already in flight.
    pub fn try_acquire(&self) -> Result<ReadPermit, ApiError> {
        self.semaphore
            .clone()
            .try_acquire_owned()
            .map(|permit| ReadPermit { _permit: permit })
            .map_err(|_| ApiError::Overloaded("too many reads are in flight"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_bound_are_refused_until_one_finishes() {
        let permits = ReadPermits::new(2);
        let first = permits.try_acquire().unwrap();
        let _second = permits.try_acquire().unwrap();
        assert!(matches!(
            permits.try_acquire(),
            Err(ApiError::Overloaded(_))
        ));
        drop(first);
        assert!(permits.try_acquire().is_ok());
    }
}
