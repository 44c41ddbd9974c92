//! Recipients, versioned: every change increments `version`, so a cached copy can be replaced only
//! by a newer one (see the worker's recipient cache).

use herald_channels::ChannelData;
use sea_orm::{DatabaseBackend, DbErr, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::database::{Database, StoreError};
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
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A `users` row as PostgreSQL returns it, `channel_data` still JSON.
#[derive(FromQueryResult)]
struct UserRow {
    tenant_id: Uuid,
    id: String,
    email: Option<String>,
    phone: Option<String>,
    locale: Option<String>,
    timezone: Option<String>,
    channel_data: serde_json::Value,
    version: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

const USER_COLUMNS: &str =
    "tenant_id, id, email, phone, locale, timezone, channel_data, version, created_at, updated_at";

impl TryFrom<UserRow> for StoredUser {
    type Error = StoreError;

    /// Only the API writes `channel_data`, after validating it: a row that does not read back is a
    /// bug, reported as an error rather than read as "no contacts".
    fn try_from(row: UserRow) -> Result<StoredUser, StoreError> {
        let channel_data = serde_json::from_value(row.channel_data).map_err(|error| {
            StoreError::Other(DbErr::Type(format!(
                "users.channel_data of user `{}` does not read back: {error}",
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
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
INSERT INTO users (tenant_id, id, email, phone, locale, timezone, channel_data, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 1, now(), now())
ON CONFLICT (tenant_id, id) DO UPDATE
SET email = excluded.email, phone = excluded.phone, locale = excluded.locale,
    timezone = excluded.timezone, channel_data = excluded.channel_data,
    version = users.version + 1, updated_at = now()
RETURNING tenant_id, id, email, phone, locale, timezone, channel_data, version, created_at, updated_at
"#,
        [
            Value::from(tenant_id),
            Value::from(user_id),
            Value::from(contact.email),
            Value::from(contact.phone),
            Value::from(contact.locale),
            Value::from(contact.timezone),
            json_parameter(&contact.channel_data)?,
        ],
    );
    let stored = database
        .run(
            "users.upsert",
            UserRow::find_by_statement(statement).one(database.connection()),
        )
        .await?;
    stored
        .ok_or_else(|| StoreError::Other(DbErr::RecordNotInserted))?
        .try_into()
}

/// One of the tenant's users, if it exists.
pub async fn find_user(
    database: &Database,
    tenant_id: Uuid,
    user_id: &str,
) -> Result<Option<StoredUser>, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"),
        [Value::from(tenant_id), Value::from(user_id)],
    );
    let row = database
        .run(
            "users.find",
            UserRow::find_by_statement(statement).one(database.connection()),
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
SELECT u.tenant_id, u.id, u.email, u.phone, u.locale, u.timezone, u.channel_data, u.version,
       u.created_at, u.updated_at
FROM jsonb_to_recordset($1::jsonb) AS key(tenant_id uuid, id text)
JOIN users u ON u.tenant_id = key.tenant_id AND u.id = key.id
"#,
        [json_parameter(&keys)?],
    );
    let rows = database
        .run(
            "users.find_recipients",
            UserRow::find_by_statement(statement).all(database.connection()),
        )
        .await?;
    rows.into_iter()
        .map(|row| StoredUser::try_from(row).map(|user| user.recipient()))
        .collect()
}
