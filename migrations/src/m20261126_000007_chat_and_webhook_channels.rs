use sea_orm_migration::prelude::*;

/// The chat and webhook channels: four more values of the `channel` enum, and a user's contacts on
/// them as one JSON map (`channel_data`), so that a further channel needs no column.
///
/// `ALTER TYPE … ADD VALUE` cannot be undone (PostgreSQL cannot drop an enum value); `down` drops
/// only the column, and the values stay, unused.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TYPE channel ADD VALUE IF NOT EXISTS 'slack';
                 ALTER TYPE channel ADD VALUE IF NOT EXISTS 'discord';
                 ALTER TYPE channel ADD VALUE IF NOT EXISTS 'telegram';
                 ALTER TYPE channel ADD VALUE IF NOT EXISTS 'webhook';
                 ALTER TABLE users ADD COLUMN channel_data jsonb NOT NULL DEFAULT '{}'::jsonb
                     CHECK (jsonb_typeof(channel_data) = 'object');",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE users DROP COLUMN channel_data")
            .await?;
        Ok(())
    }
}
