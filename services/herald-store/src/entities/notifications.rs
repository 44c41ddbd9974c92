//! The immutable content of an accepted notification (partitioned by day on `id`).

use herald_domain::{Channel, Priority};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_ids: Vec<String>,
    pub channels: Vec<Channel>,
    pub subject: Option<String>,
    pub body: String,
    pub data: Json,
    pub priority: Priority,
    pub scheduled_for: Option<ChronoDateTimeUtc>,
    pub idempotency_key: Option<String>,
    pub request_hash: Vec<u8>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
