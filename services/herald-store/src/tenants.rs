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

/// The tenant named `name`, or whose id is `name`: what an operator may type.
pub async fn find_tenant_id(
    database: &Database,
    name_or_id: &str,
) -> Result<Option<Uuid>, StoreError> {
    if let Ok(id) = Uuid::parse_str(name_or_id) {
        let found = database
            .run(
                "tenants.find_by_id",
                tenants::Entity::find_by_id(id).one(database.connection()),
            )
            .await?;
        if found.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(find_tenant_by_name(database, name_or_id)
        .await?
        .map(|tenant| tenant.id))
}

/// An operator's ingest limits for one tenant, each overriding its setting
/// (`ingest.tenant_notifications_per_second`, `ingest.tenant_notifications_per_day`; 0: none).
/// `None` is no override: as loaded, the setting applies; as written, the stored override stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestLimitOverrides {
    pub notifications_per_second: Option<u32>,
    pub notifications_per_day: Option<u64>,
}

/// Sets the overrides given for the tenant, keeping the ones not given.
pub async fn set_ingest_limits(
    database: &Database,
    tenant_id: Uuid,
    overrides: IngestLimitOverrides,
) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "INSERT INTO tenant_ingest_limits (tenant_id, notifications_per_second, notifications_per_day) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET \
         notifications_per_second = COALESCE(excluded.notifications_per_second, tenant_ingest_limits.notifications_per_second), \
         notifications_per_day = COALESCE(excluded.notifications_per_day, tenant_ingest_limits.notifications_per_day), \
         updated_at = now()",
        [
            Value::from(tenant_id),
            Value::from(overrides.notifications_per_second.map(i64::from)),
            Value::from(overrides.notifications_per_day.map(day_quota_to_column)),
        ],
    );
    execute(database, "tenants.set_ingest_limits", statement).await
}

/// Removes every override of the tenant's: the configured defaults apply again.
pub async fn clear_ingest_limits(database: &Database, tenant_id: Uuid) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "DELETE FROM tenant_ingest_limits WHERE tenant_id = $1",
        [Value::from(tenant_id)],
    );
    execute(database, "tenants.clear_ingest_limits", statement).await
}

/// Whether the tenant's `high` notifications go through its recipients' quiet hours (the default)
/// or wait like the others. Workers read it with each notification's content.
pub async fn set_high_priority_overrides_quiet_hours(
    database: &Database,
    tenant_id: Uuid,
    overrides: bool,
) -> Result<(), StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "UPDATE tenants SET high_priority_overrides_quiet_hours = $2 WHERE id = $1",
        [Value::from(tenant_id), Value::from(overrides)],
    );
    execute(database, "tenants.set_quiet_hours_override", statement).await
}

/// Runs one write, named `operation` in the database's metrics and errors.
async fn execute(
    database: &Database,
    operation: &'static str,
    statement: Statement,
) -> Result<(), StoreError> {
    database
        .run(operation, database.connection().execute(statement))
        .await?;
    Ok(())
}

/// A `bigint` holds any quota an operator means; beyond it is "practically none".
fn day_quota_to_column(notifications_per_day: u64) -> i64 {
    i64::try_from(notifications_per_day).unwrap_or(i64::MAX)
}

/// Every tenant's ingest limit overrides.
pub async fn ingest_limits(
    database: &Database,
) -> Result<Vec<(Uuid, IngestLimitOverrides)>, StoreError> {
    use sea_orm::FromQueryResult;
    #[derive(FromQueryResult)]
    struct Row {
        tenant_id: Uuid,
        notifications_per_second: Option<i32>,
        notifications_per_day: Option<i64>,
    }
    let rows = database
        .run(
            "tenants.ingest_limits",
            Row::find_by_statement(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT tenant_id, notifications_per_second, notifications_per_day \
                 FROM tenant_ingest_limits",
            ))
            .all(database.connection()),
        )
        .await?;
    // The columns' CHECK keeps them >= 0; the max(0) only spares a cast's surprise.
    Ok(rows
        .into_iter()
        .map(|row| {
            let overrides = IngestLimitOverrides {
                notifications_per_second: row
                    .notifications_per_second
                    .map(|rate| rate.max(0) as u32),
                notifications_per_day: row.notifications_per_day.map(|quota| quota.max(0) as u64),
            };
            (row.tenant_id, overrides)
        })
        .collect())
}
