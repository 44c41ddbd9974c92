//! Recipients.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, Set, Statement, Value,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entities::users;

pub struct UserContact {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// Inserts or replaces the user's contact data; returns the stored row.
pub async fn upsert_user(
    database: &DatabaseConnection,
    tenant_id: Uuid,
    user_id: &str,
    contact: UserContact,
) -> Result<users::Model, DbErr> {
    let now = Utc::now();
    let row = users::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(user_id.to_owned()),
        email: Set(contact.email),
        phone: Set(contact.phone),
        locale: Set(contact.locale),
        timezone: Set(contact.timezone),
        created_at: Set(now),
        updated_at: Set(now),
    };
    users::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([users::Column::TenantId, users::Column::Id])
                .update_columns([
                    users::Column::Email,
                    users::Column::Phone,
                    users::Column::Locale,
                    users::Column::Timezone,
                    users::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_with_returning(database)
        .await
}

/// What the worker needs to reach a recipient.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult, Serialize, Deserialize)]
pub struct Recipient {
    pub tenant_id: Uuid,
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// The recipients that exist among `(tenant_id, user_id)` pairs, in one query.
pub async fn find_recipients(
    database: &DatabaseConnection,
    keys: &[(Uuid, &str)],
) -> Result<Vec<Recipient>, DbErr> {
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
    let keys_json =
        serde_json::to_string(&keys).map_err(|error| DbErr::Custom(error.to_string()))?;
    Recipient::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        r#"
SELECT u.tenant_id, u.id, u.email, u.phone, u.locale, u.timezone
FROM jsonb_to_recordset($1::jsonb) AS key(tenant_id uuid, id text)
JOIN users u ON u.tenant_id = key.tenant_id AND u.id = key.id
"#,
        [Value::from(keys_json)],
    ))
    .all(database)
    .await
}
