//! Integration tests of the API against real PostgreSQL, Redis and tansu (see scripts/test.sh).
//! One binary, one fresh database and topic per test.

mod durability;
mod errors;
mod helpers;
mod hostile;
mod idempotency;
mod ingest;
mod reads;
mod relay;
mod storage;
mod users;
