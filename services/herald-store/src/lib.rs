//! PostgreSQL access for Herald: sea-orm's entities and query builder for the tables read and
//! written one row at a time by key, and hand-written SQL where one statement must do the work of
//! many (the group commit, admission, recording, the outbox lease), with rows mapped into typed
//! structs by column name (docs/DESIGN.md, "Persistence"). Every call goes through [`Database::run`]: a client-side
//! deadline, a duration metric, and a [`StoreError`] that says what the caller can do.

pub mod cache;
pub mod cancellation;
pub mod columns;
pub mod database;
pub mod dead_letters;
pub mod deliveries;
pub mod entities;
pub mod exports;
pub mod group_expansions;
pub mod groups;
pub mod maintenance;
pub mod metrics;
pub mod notifications;
pub mod outbox;
pub mod parked_records;
pub mod provider_reports;
pub mod queue_backlog;
pub mod routing_rules;
pub mod sessions;
pub mod status_events;
pub mod tag_cache;
pub mod templates;
pub mod tenants;
pub mod users;
pub mod webhook_event_sends;
pub mod webhook_subscriptions;

pub use database::{Database, StoreError};

/// A PostgreSQL statement of `sql` with its `$n` parameters `values`, in order.
pub(crate) fn statement<I: IntoIterator<Item = sea_orm::Value>>(
    sql: &str,
    values: I,
) -> sea_orm::Statement {
    sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// A value serialized as one JSON parameter (for `jsonb_to_recordset`).
pub(crate) fn json_parameter<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<sea_orm::Value, StoreError> {
    serde_json::to_string(value)
        .map(sea_orm::Value::from)
        .map_err(|error| StoreError::Other(sea_orm::DbErr::Json(error.to_string())))
}
