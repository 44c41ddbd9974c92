//! Administrative commands: migrations, topics, tenants and keys, parked records.

use std::time::Duration;

use herald_config::Settings;
use herald_migrations::{Migrator, MigratorTrait};
use herald_store::outbox::{self, ParkedPublication};
pub use herald_store::tenants::IngestLimitOverrides;
use uuid::Uuid;

use crate::auth::{describe_api_key, generate_api_key, hash_api_key};
use crate::ingest::maintain_once;
use crate::ingest::MaintenanceSettings;
use crate::startup::connect_database;

/// Applies the migrations, then makes the partitions for the coming days right away.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let database = connect_database(settings).await?;
    Migrator::up(database.connection(), None).await?;
    maintain_once(
        &MaintenanceSettings {
            interval: Duration::from_millis(settings.retention.maintenance_interval_ms),
            retention_days: settings.retention.days,
            premake_days: settings.retention.premake_days,
            idempotency_window: Duration::from_secs(
                u64::from(settings.idempotency.window_hours) * 3600,
            ),
        },
        &database,
    )
    .await;
    Ok(())
}

pub async fn create_topics(settings: &Settings) -> anyhow::Result<()> {
    herald_kafka::create_topics(
        &settings.kafka,
        &settings.retention,
        &settings.status_events.topic,
        settings
            .status_events
            .kafka_retention_ms(&settings.retention),
    )
    .await
}

/// Creates a tenant and its first key; returns the key, which is shown once and never stored.
pub async fn create_tenant(settings: &Settings, name: &str) -> anyhow::Result<String> {
    let database = connect_database(settings).await?;
    let key = generate_api_key();
    herald_store::tenants::create_tenant_with_key(&database, name, key.hash, key.prefix).await?;
    Ok(key.key)
}

/// Makes sure the tenant `name` exists and accepts `key` (or a new key when `key` is `None`).
/// Returns the key to print. Running it twice with the same key changes nothing.
pub async fn ensure_tenant_with_key(
    settings: &Settings,
    name: &str,
    key: Option<String>,
) -> anyhow::Result<String> {
    let database = connect_database(settings).await?;
    let key = match key {
        Some(key) => describe_api_key(key),
        None => generate_api_key(),
    };
    match herald_store::tenants::find_tenant_by_name(&database, name).await? {
        None => {
            herald_store::tenants::create_tenant_with_key(&database, name, key.hash, key.prefix)
                .await?;
        }
        Some(tenant) => {
            let owner = herald_store::tenants::find_tenant_id_by_key_hash(
                &database,
                &hash_api_key(&key.key),
            )
            .await?;
            match owner {
                Some(owner) if owner == tenant.id => {}
                Some(_) => anyhow::bail!("this API key already belongs to another tenant"),
                None => {
                    herald_store::tenants::add_api_key(&database, tenant.id, key.hash, key.prefix)
                        .await?
                }
            }
        }
    }
    Ok(key.key)
}

/// Sets the ingest limit of the tenant named (or identified by) `tenant`: notifications per second
/// (0: none), keeping its daily quota, or `None` for the configured defaults of both. Every API
/// replica applies it within [`crate::tenant_limits::RELOAD_EVERY`].
pub async fn set_ingest_limit(
    settings: &Settings,
    tenant: &str,
    notifications_per_second: Option<u32>,
) -> anyhow::Result<()> {
    let overrides = notifications_per_second.map(|rate| IngestLimitOverrides {
        notifications_per_second: Some(rate),
        notifications_per_day: None,
    });
    set_ingest_limits(settings, tenant, overrides).await
}

/// Sets the ingest limits given of the tenant named (or identified by) `tenant`, keeping those not
/// given (0: none), or with `None` removes them all so the configured defaults apply. Every API
/// replica applies them within [`crate::tenant_limits::RELOAD_EVERY`].
pub async fn set_ingest_limits(
    settings: &Settings,
    tenant: &str,
    overrides: Option<IngestLimitOverrides>,
) -> anyhow::Result<()> {
    let database = connect_database(settings).await?;
    let Some(tenant_id) = herald_store::tenants::find_tenant_id(&database, tenant).await? else {
        anyhow::bail!("no tenant is named or identified by {tenant:?}");
    };
    match overrides {
        Some(overrides) => {
            herald_store::tenants::set_ingest_limits(&database, tenant_id, overrides).await?
        }
        None => herald_store::tenants::clear_ingest_limits(&database, tenant_id).await?,
    }
    Ok(())
}

/// Sets whether the tenant's `high` notifications go through recipients' quiet hours.
pub async fn set_quiet_hours_override(
    settings: &Settings,
    tenant: &str,
    high_priority_overrides: bool,
) -> anyhow::Result<()> {
    let database = connect_database(settings).await?;
    let Some(tenant_id) = herald_store::tenants::find_tenant_id(&database, tenant).await? else {
        anyhow::bail!("no tenant is named or identified by {tenant:?}");
    };
    herald_store::tenants::set_high_priority_overrides_quiet_hours(
        &database,
        tenant_id,
        high_priority_overrides,
    )
    .await?;
    Ok(())
}

/// Revokes a key; every API replica stops accepting it at once. Returns whether it was active.
pub async fn revoke_key(settings: &Settings, key: &str) -> anyhow::Result<bool> {
    let database = connect_database(settings).await?;
    Ok(herald_store::tenants::revoke_api_key(&database, &hash_api_key(key)).await?)
}

/// The parked records (refused by the broker for good), oldest first.
pub async fn parked(settings: &Settings, limit: u64) -> anyhow::Result<Vec<ParkedPublication>> {
    let database = connect_database(settings).await?;
    Ok(outbox::parked_publications(&database, limit).await?)
}

/// Queues the notifications of parked records for publishing again; returns how many.
pub async fn replay_parked(
    settings: &Settings,
    notification_id: Option<Uuid>,
) -> anyhow::Result<u64> {
    let database = connect_database(settings).await?;
    let grace = Duration::from_millis(settings.outbox.grace_ms);
    Ok(outbox::replay_parked(&database, notification_id, grace).await?)
}
