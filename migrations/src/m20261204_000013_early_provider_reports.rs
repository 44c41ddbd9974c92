use sea_orm_migration::prelude::*;

/// Provider reports that arrive before Herald has recorded the send they report on (docs/DESIGN.md,
/// "Provider callbacks"): a provider can answer the send, deliver the message and call back before
/// the worker's recorder writes `sent`. Such a report used to be dropped (answered 204, the
/// delivery stayed `sent` for ever); it is now kept here, one per delivery (the first wins, as
/// within a callback), and applied once the delivery is `sent`. Reports whose delivery ends
/// otherwise, or disappears with its day, are deleted by the same pass.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE early_provider_reports (
    notification_id uuid NOT NULL,
    delivery_id     uuid NOT NULL,
    provider        text NOT NULL,
    status          delivery_status NOT NULL,
    last_error      text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, delivery_id)
);
CREATE INDEX early_provider_reports_received_at ON early_provider_reports (received_at);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE early_provider_reports;")
            .await?;
        Ok(())
    }
}
