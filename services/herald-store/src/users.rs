//! Recipients, versioned: every change increments `version`, so a cached copy can be replaced only
//! by a newer one (see the worker's recipient cache).

use herald_channels::ChannelData;
use herald_domain::preferences::Preferences;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{DatabaseBackend, DbErr, EntityTrait, FromQueryResult, Set, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::database::{Database, StoreError};
use crate::entities::users;
use crate::json_parameter;

pub struct UserContact {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub channel_data: ChannelData,
}

/// What the worker needs to reach a recipient, at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub tenant_id: Uuid,
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    /// Absent in cache entries written before the chat channels: none then.
    #[serde(default)]
    pub channel_data: ChannelData,
    /// Absent in cache entries written before preferences: none then.
    #[serde(default)]
    pub preferences: Preferences,
    pub version: i64,
}

/// A stored user as the API answers it.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub tenant_id: Uuid,
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub channel_data: ChannelData,
    pub preferences: Preferences,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<users::Model> for StoredUser {
    type Error = StoreError;

    /// Only the API writes `channel_data`, after validating it: a row that does not read back is a
    /// bug, reported as an error rather than read as "no contacts".
    fn try_from(row: users::Model) -> Result<StoredUser, StoreError> {
        let channel_data = serde_json::from_value(row.channel_data).map_err(|error| {
            StoreError::Other(DbErr::Type(format!(
                "users.channel_data of user `{}` does not read back: {error}",
                row.id
            )))
        })?;
        let preferences = serde_json::from_value(row.preferences).map_err(|error| {
            StoreError::Other(DbErr::Type(format!(
                "users.preferences of user `{}` does not read back: {error}",
                row.id
            )))
        })?;
        Ok(StoredUser {
            tenant_id: row.tenant_id,
            id: row.id,
            email: row.email,
            phone: row.phone,
            locale: row.locale,
            timezone: row.timezone,
            channel_data,
            preferences,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl StoredUser {
    pub fn recipient(&self) -> Recipient {
        Recipient {
            tenant_id: self.tenant_id,
            id: self.id.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            locale: self.locale.clone(),
            timezone: self.timezone.clone(),
            channel_data: self.channel_data.clone(),
            preferences: self.preferences.clone(),
            version: self.version,
        }
    }
}

/// Inserts or replaces the user's contact data, with a new version; returns the stored row.
pub async fn upsert_user(
    database: &Database,
    tenant_id: Uuid,
    user_id: &str,
    contact: UserContact,
) -> Result<StoredUser, StoreError> {
    let channel_data = serde_json::to_value(&contact.channel_data)
        .map_err(|error| StoreError::Other(DbErr::Json(error.to_string())))?;
    let new_user = users::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(user_id.to_owned()),
        email: Set(contact.email),
        phone: Set(contact.phone),
        locale: Set(contact.locale),
        timezone: Set(contact.timezone),
        channel_data: Set(channel_data),
        version: Set(1),
        // `created_at` and `updated_at` from the database's clock: the columns' defaults.
        ..Default::default()
    };
    let replace_the_existing_user =
        OnConflict::columns([users::Column::TenantId, users::Column::Id])
            .update_columns([
                users::Column::Email,
                users::Column::Phone,
                users::Column::Locale,
                users::Column::Timezone,
                users::Column::ChannelData,
            ])
            .value(
                users::Column::Version,
                Expr::col((users::Entity, users::Column::Version)).add(1),
            )
            .value(users::Column::UpdatedAt, Expr::current_timestamp())
            .to_owned();
    database
        .run(
            "users.upsert",
            users::Entity::insert(new_user)
                .on_conflict(replace_the_existing_user)
                .exec_with_returning(database.connection()),
        )
        .await?
        .try_into()
}

/// One of the tenant's users, if it exists.
pub async fn find_user(
    database: &Database,
    tenant_id: Uuid,
    user_id: &str,
) -> Result<Option<StoredUser>, StoreError> {
    let row = database
        .run(
            "users.find",
            users::Entity::find_by_id((tenant_id, user_id.to_owned())).one(database.connection()),
        )
        .await?;
    row.map(StoredUser::try_from).transpose()
}

/// The recipients that exist among `(tenant_id, user_id)` pairs, in one query.
pub async fn find_recipients(
    database: &Database,
    keys: &[(Uuid, &str)],
) -> Result<Vec<Recipient>, StoreError> {
    #[derive(Serialize)]
    struct Key<'a> {
        tenant_id: Uuid,
        id: &'a str,
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<Key> = keys
        .iter()
        .map(|(tenant_id, id)| Key {
            tenant_id: *tenant_id,
            id,
        })
        .collect();
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT u.tenant_id, u.id, u.email, u.phone, u.locale, u.timezone, u.channel_data,
       u.preferences, u.version, u.created_at, u.updated_at
FROM jsonb_to_recordset($1::jsonb) AS key(tenant_id uuid, id text)
JOIN users u ON u.tenant_id = key.tenant_id AND u.id = key.id
"#,
        [json_parameter(&keys)?],
    );
    let rows = database
        .run(
            "users.find_recipients",
            users::Model::find_by_statement(statement).all(database.connection()),
        )
        .await?;
    rows.into_iter()
        .map(|row| StoredUser::try_from(row).map(|user| user.recipient()))
        .collect()
}

/// Replaces the user's preferences (already validated), with a new version; `None` when the tenant
/// has no such user, or when `expected_version` is given and the user's is another (a change
/// written meanwhile: read again and retry).
pub async fn set_preferences(
    database: &Database,
    tenant_id: Uuid,
    user_id: &str,
    preferences: &Preferences,
    expected_version: Option<i64>,
) -> Result<Option<StoredUser>, StoreError> {
    let preferences = serde_json::to_value(preferences)
        .map_err(|error| StoreError::Other(DbErr::Json(error.to_string())))?;
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "UPDATE users SET preferences = $3, version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 AND ($4::bigint IS NULL OR version = $4) RETURNING *",
        [
            sea_orm::Value::from(tenant_id),
            sea_orm::Value::from(user_id),
            sea_orm::Value::from(preferences),
            sea_orm::Value::from(expected_version),
        ],
    );
    let row = database
        .run(
            "users.set_preferences",
            users::Model::find_by_statement(statement).one(database.connection()),
        )
        .await?;
    row.map(StoredUser::try_from).transpose()
}
