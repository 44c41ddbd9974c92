use sea_orm_migration::prelude::*;

use crate::provider_names::replace_provider_checks;

/// The Pushover channel: a value of the `channel` enum, and its provider among those every
/// `provider` column accepts. Its contact is `users.channel_data.pushover`, so no column.
///
/// `ALTER TYPE … ADD VALUE` cannot be undone (PostgreSQL cannot drop an enum value); `down` puts
/// the provider checks back as migration 000020 left them, and the value stays, unused.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The providers as of this migration.
pub const PROVIDERS_000021: &[&str] = &[
    "sendgrid", "twilio", "smtp", "slack", "discord", "telegram", "webhook", "pushover",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = format!(
            "ALTER TYPE channel ADD VALUE IF NOT EXISTS 'pushover';\n{}",
            replace_provider_checks(PROVIDERS_000021)
        );
        manager
            .get_connection()
            .execute_unprepared(&statements)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements =
            replace_provider_checks(crate::m20261206_000020_provider_names::PROVIDERS_000020);
        manager
            .get_connection()
            .execute_unprepared(&statements)
            .await?;
        Ok(())
    }
}
