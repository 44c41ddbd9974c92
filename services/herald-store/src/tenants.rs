//! Tenants and their API keys. A revocation is announced on the `herald_api_keys` channel
//! (`NOTIFY`), so that every API replica forgets the key at once instead of when its cache expires.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Set,
    Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::database::{Database, StoreError};
use crate::entities::{api_keys, tenants};

/// The `LISTEN`/`NOTIFY` channel on which revoked key hashes (hex) are announced.
pub const KEY_REVOCATIONS_CHANNEL: &str = "herald_api_keys";
/// The `LISTEN`/`NOTIFY` channel on which added key hashes (hex) are announced (on commit).
pub const KEY_ADDITIONS_CHANNEL: &str = "herald_api_keys_added";

/// Creates a tenant with one API key (given as its SHA-256 hash) in one transaction.
pub async fn create_tenant_with_key(
    database: &Database,
    name: &str,
    key_hash: Vec<u8>,
    key_prefix: String,
) -> Result<tenants::Model, StoreError> {
    database
        .run("tenants.create", async {
            let transaction = database.connection().begin().await?;
            let tenant = tenants::ActiveModel {
                id: Set(Uuid::now_v7()),
                name: Set(name.to_owned()),
                created_at: Set(Utc::now()),
            }
            .insert(&transaction)
            .await?;
            add_api_key_in(&transaction, tenant.id, key_hash, key_prefix).await?;
            transaction.commit().await?;
            Ok(tenant)
        })
        .await
}

pub async fn find_tenant_by_name(
    database: &Database,
    name: &str,
) -> Result<Option<tenants::Model>, StoreError> {
    database
        .run(
            "tenants.find_by_name",
            tenants::Entity::find()
                .filter(tenants::Column::Name.eq(name))
                .one(database.connection()),
        )
        .await
}

pub async fn add_api_key(
    database: &Database,
    tenant_id: Uuid,
    key_hash: Vec<u8>,
    key_prefix: String,
) -> Result<(), StoreError> {
    database
        .run(
            "tenants.add_api_key",
            add_api_key_in(database.connection(), tenant_id, key_hash, key_prefix),
        )
        .await
}

async fn add_api_key_in<C: ConnectionTrait>(
    connection: &C,
    tenant_id: Uuid,
    key_hash: Vec<u8>,
    key_prefix: String,
) -> Result<(), sea_orm::DbErr> {
    let key_hash_for_announcement = key_hash.clone();
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
    connection
        .execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [
                Value::from(KEY_ADDITIONS_CHANNEL),
                Value::from(hex::encode(&key_hash_for_announcement)),
            ],
        ))
        .await?;
    Ok(())
}

/// Every active (not revoked) key: its hash and tenant.
pub async fn active_api_keys(database: &Database) -> Result<Vec<(Vec<u8>, Uuid)>, StoreError> {
    let keys = database
        .run(
            "tenants.active_api_keys",
            api_keys::Entity::find()
                .filter(api_keys::Column::RevokedAt.is_null())
                .all(database.connection()),
        )
        .await?;
    Ok(keys
        .into_iter()
        .map(|key| (key.key_hash, key.tenant_id))
        .collect())
}

/// The tenant owning the non-revoked key with this hash.
pub async fn find_tenant_id_by_key_hash(
    database: &Database,
    key_hash: &[u8],
) -> Result<Option<Uuid>, StoreError> {
    let key = database
        .run(
            "tenants.find_by_key_hash",
            api_keys::Entity::find()
                .filter(api_keys::Column::KeyHash.eq(key_hash.to_vec()))
                .filter(api_keys::Column::RevokedAt.is_null())
                .one(database.connection()),
        )
        .await?;
    Ok(key.map(|key| key.tenant_id))
}

/// Revokes the key with this hash and announces it to every API replica, in one transaction.
/// Returns whether a key was revoked.
pub async fn revoke_api_key(database: &Database, key_hash: &[u8]) -> Result<bool, StoreError> {
    database
        .run("tenants.revoke_api_key", async {
            let transaction = database.connection().begin().await?;
            let revoked = transaction
                .execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL",
                    [Value::from(key_hash.to_vec())],
                ))
                .await?
                .rows_affected()
                > 0;
            transaction
                .execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [
                        Value::from(KEY_REVOCATIONS_CHANNEL),
                        Value::from(hex::encode(key_hash)),
                    ],
                ))
                .await?;
            transaction.commit().await?;
            Ok(revoked)
        })
        .await
}
