//! `herald-store-capacity <seconds> <concurrency> <batch>`: deliveries per second PostgreSQL sustains
//! for Herald's write path alone. Each round, per task: commit `batch` single-recipient
//! notifications (as the API's group commit does), load their content and admit their deliveries
//! (as a partition batch does), and record them sent (as the recorder does). Prints JSON.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald_config::Settings;
use herald_domain::{
    AcceptedNotification, AttemptOutcome, Channel, DeliveryStatus, Priority, ProviderId,
    ValidatedNotification,
};
use herald_migrations::{Migrator, MigratorTrait};
use herald_store::deliveries::{self, NewDelivery, RecordedAttempt};
use herald_store::notifications;
use herald_store::{sessions, tenants, Database};
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<u64> = std::env::args()
        .skip(1)
        .map(|argument| argument.parse())
        .collect::<Result<_, _>>()?;
    let [seconds, concurrency, batch] = arguments[..] else {
        anyhow::bail!("usage: herald-store-capacity <seconds> <concurrency> <batch>");
    };
    let settings = Settings::load(None)?;
    let database = Database::connect(&settings.database).await?;
    Migrator::up(database.connection(), None).await?;
    let tenant = tenants::create_tenant_with_key(
        &database,
        &format!("capacity-{}", Uuid::new_v4().simple()),
        Uuid::new_v4().as_bytes().to_vec(),
        "hk_capacity".into(),
    )
    .await?;
    let session = sessions::register(&database, "store-capacity").await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (database, delivered) = (database.clone(), delivered.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                round(&database, tenant.id, session, batch as usize).await?;
                delivered.fetch_add(batch, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = delivered.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "deliveries": delivered,
            "seconds": (elapsed * 10.0).round() / 10.0,
            "deliveries_per_second": (delivered as f64 / elapsed).round(),
            "concurrency": concurrency,
            "batch": batch,
        })
    );
    Ok(())
}

async fn round(
    database: &Database,
    tenant_id: Uuid,
    session: Uuid,
    batch: usize,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let requests: Vec<AcceptedNotification> = (0..batch)
        .map(|index| {
            let mut data = serde_json::Map::new();
            data.insert("value".into(), serde_json::json!(index));
            let notification = ValidatedNotification {
                user_ids: vec![format!("capacity-{index}")],
                group_ids: Vec::new(),
                channels: vec![Channel::Sms],
                subject: None,
                body: "Pressure {{value}}".into(),
                template: None,
                data,
                priority: Priority::Normal,
                category: None,
                scheduled_for: None,
                idempotency_key: None,
                data_bytes: 12,
            };
            AcceptedNotification::new(tenant_id, notification, now, None)
        })
        .collect();
    let rows: Vec<&AcceptedNotification> = requests.iter().collect();
    let ids = notifications::insert_batch(database, &rows, Uuid::now_v7()).await?;
    notifications::load_content(database, &ids).await?;
    let new_deliveries: Vec<NewDelivery> = requests
        .iter()
        .map(|accepted| NewDelivery {
            notification_id: accepted.id,
            id: Uuid::new_v5(&accepted.id, accepted.notification.user_ids[0].as_bytes()),
            tenant_id,
            user_id: accepted.notification.user_ids[0].clone(),
            channel: Channel::Sms,
            provider: ProviderId::Twilio,
            status: DeliveryStatus::Sending,
            priority: accepted.notification.priority,
            last_error: None,
            due_at: None,
        })
        .collect();
    let send_batch = Uuid::now_v7();
    let admitted = deliveries::admit(database, session, send_batch, &new_deliveries).await?;
    let finished_at = Utc::now();
    let attempts: Vec<RecordedAttempt> = admitted
        .sending
        .iter()
        .map(|key| RecordedAttempt {
            notification_id: key.notification_id,
            id: key.id,
            attempt: 1,
            status: DeliveryStatus::Sent,
            outcome: AttemptOutcome::Sent,
            provider: ProviderId::Twilio,
            provider_message_id: Some(format!("SM{}", key.id.simple())),
            http_status: Some(201),
            error: None,
            retry_delay_ms: None,
            started_at: now,
            finished_at,
        })
        .collect();
    deliveries::record(database, session, &attempts, &[send_batch]).await?;
    Ok(())
}
