//! What providers report later about deliveries they accepted (SendGrid's Event Webhook, Twilio's
//! status callbacks): `sent → delivered | bounced | failed`, applied by key in one statement per
//! callback. See "Provider callbacks" in docs/DESIGN.md.
//!
//! A report moves only a `sent` delivery of the provider that sent it; any other (unknown, already
//! reported, never sent, sent by the SMTP failover) is left alone and counted as unchanged. A
//! report that arrives before the send is recorded (the delivery still `queued`, `sending` or
//! `retrying` with that provider) is kept in `early_provider_reports` and applied by
//! [`apply_early_reports`] once the delivery is `sent`. The notification's counters are not
//! touched: they count what Herald handed over.

use herald_domain::{DeliveryStatus, ProviderId, ProviderReport};
use sea_orm::{DatabaseBackend, FromQueryResult, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::columns;
use crate::database::{Database, StoreError};
use crate::json_parameter;

/// Longest `last_error` a report may write; providers' reasons are short, a hostile one is cut.
pub const MAX_REPORT_DETAIL_CHARS: usize = 1000;

/// One report about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub notification_id: Uuid,
    pub delivery_id: Uuid,
    pub report: ProviderReport,
    /// Why it bounced or failed (the provider's reason or error code), kept in `last_error`.
    pub detail: Option<String>,
}

/// How many reports of each kind moved their delivery, and how many changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppliedReports {
    pub delivered: u64,
    pub bounced: u64,
    pub failed: u64,
    /// Reports kept until their delivery's send is recorded (see the module documentation), by
    /// kind: delivered, bounced, failed.
    pub deferred: [u64; 3],
    /// Reports whose delivery was unknown, final, another provider's, or already reported
    /// earlier in the same callback.
    pub unchanged: u64,
}

impl AppliedReports {
    /// The number of reports of `report`'s kind that moved their delivery.
    pub fn applied(&self, report: ProviderReport) -> u64 {
        match report {
            ProviderReport::Delivered => self.delivered,
            ProviderReport::Bounced => self.bounced,
            ProviderReport::Failed => self.failed,
        }
    }

    /// The number of reports of `report`'s kind kept until their send is recorded.
    pub fn deferred(&self, report: ProviderReport) -> u64 {
        self.deferred[report_index(report)]
    }
}

fn report_index(report: ProviderReport) -> usize {
    match report {
        ProviderReport::Delivered => 0,
        ProviderReport::Bounced => 1,
        ProviderReport::Failed => 2,
    }
}

/// A report as the statement's JSON parameter carries it.
#[derive(Serialize)]
struct ReportRow {
    /// Position in the callback: the first report of a delivery wins.
    position: usize,
    notification_id: Uuid,
    id: Uuid,
    status: &'static str,
    last_error: Option<String>,
}

#[derive(FromQueryResult)]
struct MovedRow {
    /// As text: sqlx decodes a PostgreSQL enum only into a type declared for it.
    status: String,
}

/// Where a report leads a sent delivery; a test holds it to the domain's transition function.
fn target_status(report: ProviderReport) -> DeliveryStatus {
    match report {
        ProviderReport::Delivered => DeliveryStatus::Delivered,
        ProviderReport::Bounced => DeliveryStatus::Bounced,
        ProviderReport::Failed => DeliveryStatus::Failed,
    }
}

const APPLY_SQL: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS row(
        position integer, notification_id uuid, id uuid, status delivery_status, last_error text)
), first_per_delivery AS (
    -- UPDATE … FROM applies one arbitrary match per row: choose the first report ourselves.
    SELECT DISTINCT ON (notification_id, id) notification_id, id, status, last_error
    FROM input
    ORDER BY notification_id, id, position
), locked AS (
    -- Rows locked in key order, so two callbacks naming the same deliveries in different orders
    -- (SendGrid retrying a batch while it is still being applied) never deadlock.
    SELECT deliveries.notification_id, deliveries.id, report.status, report.last_error
    FROM deliveries
    JOIN first_per_delivery AS report
      ON report.notification_id = deliveries.notification_id AND report.id = deliveries.id
    WHERE deliveries.status = 'sent'
      AND deliveries.provider = $2
    ORDER BY deliveries.notification_id, deliveries.id
    FOR UPDATE OF deliveries
), moved AS (
    UPDATE deliveries
    SET status = locked.status,
        last_error = coalesce(locked.last_error, deliveries.last_error),
        updated_at = now()
    FROM locked
    WHERE deliveries.notification_id = locked.notification_id
      AND deliveries.id = locked.id
      AND deliveries.status = 'sent'
    RETURNING deliveries.status::text AS status
), deferred AS (
    -- Its send is not recorded yet: kept, applied once it is (`apply_early_reports`).
    INSERT INTO early_provider_reports (notification_id, delivery_id, provider, status, last_error)
    SELECT report.notification_id, report.id, $2, report.status, report.last_error
    FROM first_per_delivery AS report
    JOIN deliveries
      ON deliveries.notification_id = report.notification_id AND deliveries.id = report.id
    WHERE deliveries.status IN ('queued', 'sending', 'retrying')
      AND deliveries.provider = $2
    ON CONFLICT DO NOTHING
    RETURNING 'deferred ' || status::text AS status
)
SELECT status FROM moved
UNION ALL
SELECT status FROM deferred
"#;

/// Applies one callback's reports from `provider` (`sendgrid`, `twilio`) in one statement.
pub async fn apply_reports(
    database: &Database,
    provider: ProviderId,
    reports: &[DeliveryReport],
) -> Result<AppliedReports, StoreError> {
    if reports.is_empty() {
        return Ok(AppliedReports::default());
    }
    let rows: Vec<ReportRow> = reports
        .iter()
        .enumerate()
        .map(|(position, report)| ReportRow {
            position,
            notification_id: report.notification_id,
            id: report.delivery_id,
            status: target_status(report.report).as_str(),
            last_error: report.detail.as_deref().map(cut_detail),
        })
        .collect();
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        APPLY_SQL,
        [json_parameter(&rows)?, columns::bind(provider)],
    );
    let moved = database
        .run(
            "provider_reports.apply",
            MovedRow::find_by_statement(statement).all(database.connection()),
        )
        .await?;
    let mut applied = AppliedReports::default();
    for row in &moved {
        if let Some(deferred) = row.status.strip_prefix("deferred ") {
            let report = match DeliveryStatus::parse(deferred) {
                Some(DeliveryStatus::Delivered) => ProviderReport::Delivered,
                Some(DeliveryStatus::Bounced) => ProviderReport::Bounced,
                _ => ProviderReport::Failed,
            };
            applied.deferred[report_index(report)] += 1;
            continue;
        }
        match DeliveryStatus::parse(&row.status) {
            Some(DeliveryStatus::Delivered) => applied.delivered += 1,
            Some(DeliveryStatus::Bounced) => applied.bounced += 1,
            Some(DeliveryStatus::Failed) => applied.failed += 1,
            // The statement sets only the three statuses above.
            _ => debug_assert!(false, "a report moved a delivery to `{}`", row.status),
        }
    }
    applied.unchanged = (reports.len() - moved.len()) as u64;
    Ok(applied)
}

const APPLY_EARLY_SQL: &str = r#"
WITH picked AS MATERIALIZED (
    SELECT early.notification_id, early.delivery_id
    FROM early_provider_reports AS early
    JOIN deliveries
      ON deliveries.notification_id = early.notification_id AND deliveries.id = early.delivery_id
    WHERE deliveries.status = 'sent' AND deliveries.provider = early.provider
    ORDER BY early.notification_id, early.delivery_id
    LIMIT $1
    FOR UPDATE OF early, deliveries SKIP LOCKED
), taken AS (
    DELETE FROM early_provider_reports AS early
    USING picked
    WHERE early.notification_id = picked.notification_id
      AND early.delivery_id = picked.delivery_id
    RETURNING early.notification_id, early.delivery_id, early.status, early.last_error
), moved AS (
    UPDATE deliveries
    SET status = taken.status,
        last_error = coalesce(taken.last_error, deliveries.last_error),
        updated_at = now()
    FROM taken
    WHERE deliveries.notification_id = taken.notification_id
      AND deliveries.id = taken.delivery_id
      AND deliveries.status = 'sent'
    RETURNING 1
)
SELECT count(*)::bigint AS count FROM moved
"#;

/// Reports kept for deliveries whose send was not yet recorded and that can never apply: the
/// delivery ended otherwise (failed, cancelled, reported), is gone with its day, or another
/// provider sent it in the end.
const FORGET_EARLY_SQL: &str = r#"
DELETE FROM early_provider_reports AS early
WHERE NOT EXISTS (
    SELECT 1 FROM deliveries
    WHERE deliveries.notification_id = early.notification_id
      AND deliveries.id = early.delivery_id
      AND deliveries.provider = early.provider
      AND deliveries.status IN ('queued', 'sending', 'retrying', 'sent')
) AND early.received_at < now() - interval '1 minute'
"#;

#[derive(FromQueryResult)]
struct CountRow {
    count: i64,
}

/// Applies up to `limit` early reports whose delivery is now `sent`, and forgets those that can
/// never apply. Returns how many moved a delivery.
pub async fn apply_early_reports(database: &Database, limit: u64) -> Result<u64, StoreError> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        APPLY_EARLY_SQL,
        [Value::from(limit as i64)],
    );
    let moved = database
        .run(
            "provider_reports.apply_early",
            CountRow::find_by_statement(statement).one(database.connection()),
        )
        .await?
        .map_or(0, |row| row.count);
    let forget = Statement::from_string(DatabaseBackend::Postgres, FORGET_EARLY_SQL);
    database
        .run(
            "provider_reports.forget_early",
            sea_orm::ConnectionTrait::execute(database.connection(), forget),
        )
        .await?;
    Ok(moved.max(0) as u64)
}

/// At most [`MAX_REPORT_DETAIL_CHARS`] characters, without U+0000 (PostgreSQL's `text` cannot
/// hold it, and a provider's reason must not be able to fail the whole callback).
fn cut_detail(detail: &str) -> String {
    detail
        .chars()
        .filter(|character| *character != '\0')
        .take(MAX_REPORT_DETAIL_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::DeliveryEvent;

    #[test]
    fn reports_lead_where_the_domain_says() {
        for report in [
            ProviderReport::Delivered,
            ProviderReport::Bounced,
            ProviderReport::Failed,
        ] {
            assert_eq!(
                Ok(target_status(report)),
                DeliveryStatus::Sent.transition(DeliveryEvent::Reported(report))
            );
        }
    }

    #[test]
    fn details_are_cut_and_cleaned() {
        assert_eq!(cut_detail("550 5.1.1\0 unknown"), "550 5.1.1 unknown");
        assert_eq!(
            cut_detail(&"é".repeat(5000)).chars().count(),
            MAX_REPORT_DETAIL_CHARS
        );
    }
}
