use sea_orm_migration::prelude::*;

/// Typed states, counters, daily partitions and the work tables of docs/DESIGN.md; moves the v1
/// rows over. The SQL is in the `.sql` file beside this one.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(include_str!("m20261126_000005_typed_partitioned_state.sql"))
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Going back would mean squeezing partitions and counters into the v1 tables; restore a
        // backup instead.
        Err(DbErr::Migration(
            "the v2 schema cannot be migrated down; restore a v1 backup".into(),
        ))
    }
}
