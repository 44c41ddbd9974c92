//! Tenants and their API keys.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::entities::{api_keys, tenants};

/// Creates a tenant with one API key (given as its SHA-256 hash) in one transaction.
pub async fn create_tenant_with_key(
    database: &DatabaseConnection,
    name: &str,
    key_hash: Vec<u8>,
    key_prefix: String,
) -> Result<tenants::Model, DbErr> {
    let transaction = database.begin().await?;
    let now = Utc::now();
    let tenant = tenants::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        created_at: Set(now),
    }
    .insert(&transaction)
    .await?;
    add_api_key_in(&transaction, tenant.id, key_hash, key_prefix).await?;
    transaction.commit().await?;
    Ok(tenant)
}

pub async fn find_tenant_by_name(
    database: &DatabaseConnection,
    name: &str,
) -> Result<Option<tenants::Model>, DbErr> {
    tenants::Entity::find()
        .filter(tenants::Column::Name.eq(name))
        .one(database)
        .await
}

pub async fn add_api_key(
    database: &DatabaseConnection,
    tenant_id: Uuid,
    key_hash: Vec<u8>,
    key_prefix: String,
) -> Result<(), DbErr> {
    add_api_key_in(database, tenant_id, key_hash, key_prefix).await
}

async fn add_api_key_in<C: sea_orm::ConnectionTrait>(
    connection: &C,
    tenant_id: Uuid,
    key_hash: Vec<u8>,
    key_prefix: String,
) -> Result<(), DbErr> {
    api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        key_hash: Set(key_hash),
        key_prefix: Set(key_prefix),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
    }
    .insert(connection)
    .await?;
    Ok(())
}

/// The tenant owning the non-revoked key with this hash.
pub async fn find_tenant_id_by_key_hash(
    database: &DatabaseConnection,
    key_hash: &[u8],
) -> Result<Option<Uuid>, DbErr> {
    let key = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(key_hash.to_vec()))
        .filter(api_keys::Column::RevokedAt.is_null())
        .one(database)
        .await?;
    Ok(key.map(|key| key.tenant_id))
}
