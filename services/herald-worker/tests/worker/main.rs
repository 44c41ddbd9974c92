//! End-to-end tests of delivery: the API, the worker and the provider simulator against real
//! PostgreSQL, Redis and Apache Kafka (see scripts/test.sh). One database, topic and group per test.

mod alerts;
mod bulkhead;
mod cancellation;
mod channels;
mod circuits;
mod consistency;
mod crashes;
mod dead_letters;
mod delivery;
mod failures;
mod fairness;
mod faults;
mod groups;
mod helpers;
mod hostile_tenants;
mod kafka_cluster;
mod metrics;
mod no_duplicates;
mod no_stall;
mod preferences;
mod priority;
mod provider_callbacks;
mod queue_backlog;
mod rate_limits;
mod restarts;
mod routing;
mod scaling;
mod secure_connections;
mod signatures;
mod static_membership;
mod status_events;
mod status_events_lag;
mod steady_load;
mod templates;
mod traces;
