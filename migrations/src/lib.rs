//! Database schema of Herald, as sea-orm migrations.
//!
//! The statements are plain SQL: partial indexes, GIN indexes and array columns are clearer
//! in SQL than in a schema builder, and they are what a DBA reviews.

pub use sea_orm_migration::prelude::*;

mod delivery_transitions;
mod m20261125_000001_tenants_and_api_keys;
mod m20261125_000002_users;
mod m20261125_000003_notifications_and_outbox;
mod m20261125_000004_deliveries;
mod m20261126_000005_typed_partitioned_state;
mod m20261126_000006_notification_trace_context;
mod m20261126_000007_chat_and_webhook_channels;
mod m20261126_000008_cancellation_reports_replay;
mod m20261126_000009_priority_lanes;
mod m20261126_000010_dead_letters;
mod m20261126_000011_status_events;
mod m20261126_000012_cancel_held_deliveries;
mod m20261204_000013_early_provider_reports;
mod m20261204_000014_retention_spares_unfinished_work;
mod m20261205_000015_bounded_subscription_backlogs;
mod m20261205_000016_tenant_ingest_limits;
mod m20261205_000017_fair_delivery_queue;
mod m20261206_000018_tenant_ingest_quotas;
mod m20261206_000019_recipient_index;
mod m20261206_000020_provider_names;
mod m20261206_000021_pushover_channel;
mod m20261207_000022_groups;
mod m20261207_000023_export_leases;
mod m20261207_000024_templates;
mod m20261207_000025_preferences;
mod m20261207_000026_routing_rules;
mod provider_names;
mod sql_list;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_tenants_and_api_keys::Migration),
            Box::new(m20261125_000002_users::Migration),
            Box::new(m20261125_000003_notifications_and_outbox::Migration),
            Box::new(m20261125_000004_deliveries::Migration),
            Box::new(m20261126_000005_typed_partitioned_state::Migration),
            Box::new(m20261126_000006_notification_trace_context::Migration),
            Box::new(m20261126_000007_chat_and_webhook_channels::Migration),
            Box::new(m20261126_000008_cancellation_reports_replay::Migration),
            Box::new(m20261126_000009_priority_lanes::Migration),
            Box::new(m20261126_000010_dead_letters::Migration),
            Box::new(m20261126_000011_status_events::Migration),
            Box::new(m20261126_000012_cancel_held_deliveries::Migration),
            Box::new(m20261204_000013_early_provider_reports::Migration),
            Box::new(m20261204_000014_retention_spares_unfinished_work::Migration),
            Box::new(m20261205_000015_bounded_subscription_backlogs::Migration),
            Box::new(m20261205_000016_tenant_ingest_limits::Migration),
            Box::new(m20261205_000017_fair_delivery_queue::Migration),
            Box::new(m20261206_000018_tenant_ingest_quotas::Migration),
            Box::new(m20261206_000019_recipient_index::Migration),
            Box::new(m20261206_000020_provider_names::Migration),
            Box::new(m20261206_000021_pushover_channel::Migration),
            Box::new(m20261207_000022_groups::Migration),
            Box::new(m20261207_000023_export_leases::Migration),
            Box::new(m20261207_000024_templates::Migration),
            Box::new(m20261207_000025_preferences::Migration),
            Box::new(m20261207_000026_routing_rules::Migration),
        ]
    }
}
