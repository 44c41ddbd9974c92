//! Recipients, versioned: every change increments `version`, so a cached copy can be replaced only
//! by a newer one (see the worker's recipient cache).

use sea_orm::{DatabaseBackend, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::database::{Database, StoreError};
use crate::json_parameter;

pub struct UserContact {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// What the worker needs to reach a recipient, at one version.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult, Serialize, Deserialize)]
pub struct Recipient {
    pub tenant_id: Uuid,
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub version: i64,
}

/// A stored user as the API answers it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct StoredUser {
    pub tenant_id: Uuid,
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
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
INSERT INTO users (tenant_id, id, email, phone, locale, timezone, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 1, now(), now())
ON CONFLICT (tenant_id, id) DO UPDATE
SET email = excluded.email, phone = excluded.phone, locale = excluded.locale,
    timezone = excluded.timezone, version = users.version + 1, updated_at = now()
RETURNING tenant_id, id, email, phone, locale, timezone, version, created_at, updated_at
"#,
        [
            Value::from(tenant_id),
            Value::from(user_id),
            Value::from(contact.email),
            Value::from(contact.phone),
            Value::from(contact.locale),
            Value::from(contact.timezone),
        ],
    );
    let stored = database
        .run(
            "users.upsert",
            StoredUser::find_by_statement(statement).one(database.connection()),
        )
        .await?;
    stored.ok_or_else(|| StoreError::Other(sea_orm::DbErr::RecordNotInserted))
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
SELECT u.tenant_id, u.id, u.email, u.phone, u.locale, u.timezone, u.version
FROM jsonb_to_recordset($1::jsonb) AS key(tenant_id uuid, id text)
JOIN users u ON u.tenant_id = key.tenant_id AND u.id = key.id
"#,
        [json_parameter(&keys)?],
    );
    database
        .run(
            "users.find_recipients",
            Recipient::find_by_statement(statement).all(database.connection()),
        )
        .await
}
