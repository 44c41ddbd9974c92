//! Integration tests of the API against real PostgreSQL, Redis and Apache Kafka (see
//! scripts/test.sh). One binary, one fresh database and topic per test.

mod cancellation_and_replay;
mod durability;
mod errors;
mod export;
mod groups;
mod helpers;
mod hostile;
mod idempotency;
mod ingest;
mod preferences;
mod priority_topics;
mod provider_callbacks;
mod reads;
mod relay;
mod routing_rules;
mod storage;
mod tag_cache;
mod templates;
mod topics;
mod unsubscribe;
mod users;
