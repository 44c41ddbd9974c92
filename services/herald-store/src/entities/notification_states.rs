//! A notification's status and delivery counters (partitioned by day on `id`).

use herald_domain::NotificationStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: NotificationStatus,
    pub deliveries_expected: i32,
    pub deliveries_sent: i32,
    pub deliveries_failed: i32,
    pub deliveries_skipped: i32,
    pub deliveries_cancelled: i32,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
