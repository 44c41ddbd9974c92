//! Recipients.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, Set};
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
