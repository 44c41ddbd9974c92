//! What every part of the worker shares.

use std::time::Duration;

use herald_store::DatabaseConnection;

use crate::backoff::RetryPolicy;
use crate::dead_letter::DeadLetters;
use crate::recipients::Recipients;
use crate::sender::Sender;

pub struct WorkerContext {
    pub database: DatabaseConnection,
    pub recipients: Recipients,
    pub sender: Sender,
    pub retry_policy: RetryPolicy,
    /// How long a claimed delivery belongs to this worker.
    pub lease: Duration,
    pub dead_letters: DeadLetters,
}
