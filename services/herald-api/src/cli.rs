//! Administrative commands: migrations, topics, tenants and keys.

use herald_config::Settings;
use herald_migrations::{Migrator, MigratorTrait};

use crate::auth::{describe_api_key, generate_api_key, hash_api_key};
use crate::kafka;
use crate::startup::connect_database;

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let database = connect_database(settings).await?;
    Migrator::up(&database, None).await?;
    Ok(())
}

pub async fn create_topics(settings: &Settings) -> anyhow::Result<()> {
    kafka::create_topic(
        &settings.kafka,
        &settings.kafka.topic,
        settings.kafka.partitions,
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
