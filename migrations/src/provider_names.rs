//! The CHECK constraints that make PostgreSQL accept exactly herald-domain's `ProviderId` names in
//! every `provider` column. A migration that adds a provider writes them again from its own list
//! (`replace_provider_checks`); a test compares the database's list with `ProviderId::ALL`, so a
//! provider added in Rust without its migration fails the suite instead of failing inserts.
//!
//! Each list is frozen in its migration rather than read from `ProviderId::ALL` at run time: an
//! applied migration never runs again, so a list computed from today's Rust would give a fresh
//! database constraints that an upgraded one does not have.

use crate::sql_list::quoted_list;

/// Every table with a `provider` column.
const TABLES: [&str; 6] = [
    "deliveries",
    "delivery_attempts",
    "delivery_queue",
    "dead_letters",
    "status_events",
    "early_provider_reports",
];

/// Drops each table's `<table>_provider_known` constraint if it exists and adds it allowing
/// `providers`. Added `NOT VALID` and validated next, so the scan of existing rows runs under a
/// lock that lets reads through (it still runs inside the migration's transaction).
pub fn replace_provider_checks(providers: &[&str]) -> String {
    let allowed = quoted_list(providers);
    TABLES
        .iter()
        .map(|table| {
            format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_provider_known;\n\
                 ALTER TABLE {table} ADD CONSTRAINT {table}_provider_known \
                 CHECK (provider IN ({allowed})) NOT VALID;\n\
                 ALTER TABLE {table} VALIDATE CONSTRAINT {table}_provider_known;\n"
            )
        })
        .collect()
}

/// Drops the constraints.
pub fn drop_provider_checks() -> String {
    TABLES
        .iter()
        .map(|table| {
            format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_provider_known;\n")
        })
        .collect()
}
