use sea_orm_migration::prelude::*;

use crate::provider_names::{drop_provider_checks, replace_provider_checks};

/// Every `provider` column accepts only the providers Herald has (herald-domain's `ProviderId`),
/// as `channel` and the statuses already are: a misspelt name written by a new code path, a repair
/// script or an older replica fails its insert instead of creating a delivery no lane claims.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The providers as of this migration.
pub const PROVIDERS_000020: &[&str] = &[
    "sendgrid", "twilio", "smtp", "slack", "discord", "telegram", "webhook",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = replace_provider_checks(PROVIDERS_000020);
        manager
            .get_connection()
            .execute_unprepared(&statements)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = drop_provider_checks();
        manager
            .get_connection()
            .execute_unprepared(&statements)
            .await?;
        Ok(())
    }
}
