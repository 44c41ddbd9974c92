//! A worker never stalls: a record it cannot process is parked with its reason while its partition
//! goes on, and a provider in trouble holds only its own lane.

use std::time::Duration;

use herald_domain::{NotificationEnvelope, Priority};
use rdkafka::producer::FutureRecord;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn records_that_cannot_be_processed_are_parked_and_their_partition_goes_on() {
    let stack = start_stack(None).await;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    // Three bad records on the recipient's own partition, ahead of a good notification.
    let producer = herald_kafka::create_producer(
        &stack.settings.kafka,
        "test",
        herald_kafka::ProducerRole::Worker,
    )
    .unwrap();
    let key = NotificationEnvelope::partition_key(stack.tenant_id, "u1");
    let mut from_the_future = serde_json::to_value(NotificationEnvelope::new(
        Uuid::now_v7(),
        stack.tenant_id,
        "u1",
        Priority::Normal,
        chrono::Utc::now(),
    ))
    .unwrap();
    from_the_future["version"] = json!(99);
    let missing = NotificationEnvelope::new(
        Uuid::now_v7(),
        stack.tenant_id,
        "u1",
        Priority::Normal,
        chrono::Utc::now(),
    )
    .encode();
    let bad_payloads: [Vec<u8>; 3] = [
        b"\xff\xfe not an envelope".to_vec(),
        serde_json::to_vec(&from_the_future).unwrap(),
        missing,
    ];
    for payload in &bad_payloads {
        producer
            .send(
                FutureRecord::to(&stack.settings.kafka.topic)
                    .key(&key)
                    .payload(payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let id = stack.notify(alert(&["u1"], &["sms"])).await;

    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered", "the partition was not stopped");
    let parked = stack
        .count("SELECT count(*) FROM parked_records WHERE replayed_at IS NULL")
        .await;
    assert_eq!(parked, 3);
    for reason in ["undecodable", "unknown_version", "notification_missing"] {
        assert_eq!(
            stack
                .count(&format!(
                    "SELECT count(*) FROM parked_records WHERE reason LIKE '{reason}:%'"
                ))
                .await,
            1,
            "{reason}"
        );
    }

    // Replayable once the cause is fixed; still broken, they are parked again.
    let replayed = herald_worker::cli::replay_parked(&stack.settings, 100)
        .await
        .unwrap();
    assert_eq!(replayed, 3);
    stack
        .wait_for_count(
            "SELECT count(*) FROM parked_records WHERE replayed_at IS NULL",
            3,
            Duration::from_secs(30),
        )
        .await;
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// A record naming another tenant's notification (forged, or from a producer that mixed them up)
/// is parked: admitted, it would look its recipient up in its own tenant and send the other
/// tenant's content there.
#[tokio::test]
async fn a_record_naming_another_tenants_notification_is_parked_and_sends_nothing() {
    let stack = start_stack(None).await;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let (intruder, _) = stack.create_other_tenant("intruder").await;
    execute(
        &stack.database,
        &format!("INSERT INTO users (tenant_id, id, phone) VALUES ('{intruder}', 'mallory', '+14155550199')"),
    )
    .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let id = stack.notify(alert(&["u1"], &["sms"])).await;
    stack.wait_until_final(&id, Duration::from_secs(30)).await;

    let forged = NotificationEnvelope::new(
        id.parse().unwrap(),
        intruder,
        "mallory",
        Priority::Normal,
        chrono::Utc::now(),
    )
    .encode();
    let producer = herald_kafka::create_producer(
        &stack.settings.kafka,
        "test",
        herald_kafka::ProducerRole::Worker,
    )
    .unwrap();
    producer
        .send(
            FutureRecord::to(&stack.settings.kafka.topic)
                .key(&NotificationEnvelope::partition_key(intruder, "mallory"))
                .payload(&forged),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    stack
        .wait_for_count(
            "SELECT count(*) FROM parked_records \
             WHERE reason LIKE 'notification_missing:%' AND reason LIKE '%is not tenant%'",
            1,
            Duration::from_secs(30),
        )
        .await;
    let intruders_deliveries = stack
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE tenant_id = '{intruder}'"
        ))
        .await;
    assert_eq!(
        intruders_deliveries, 0,
        "a delivery was made for the forged record"
    );
    assert_eq!(stack.count("SELECT count(*) FROM deliveries").await, 1);
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// Twilio's calls all time out, slowly: each holds its slot for `TWILIO_TIMEOUT`. The emails
/// posted behind 2,000 text messages must neither wait in admission for Twilio's slots nor wait for
/// a slot in SendGrid's lane. Both are checked by what happened, not by a wall-clock bound on the
/// whole path, which on a loaded two-core machine measures the machine (admitting 2,300 records
/// there took from 0.7 s to 5 s, with Twilio healthy as with Twilio timing out).
#[tokio::test]
async fn a_provider_that_times_out_leaves_the_other_provider_at_full_speed() {
    const TWILIO_TIMEOUT: Duration = Duration::from_secs(10);
    const TWILIO_SLOTS: i64 = 512;
    const TEXT_MESSAGES: i64 = 2000;
    let stack = start_stack_with(None, None, |settings| {
        // As many slots as a shared pool would have had: in one pool, Twilio would take them all.
        settings.providers.twilio.max_in_flight = TWILIO_SLOTS as usize;
        settings.providers.twilio.timeout_ms = TWILIO_TIMEOUT.as_millis() as u64;
        // A session's lease outlasts its longest call (the configuration's rule).
        settings.worker.lease_ms = 4 * TWILIO_TIMEOUT.as_millis() as u64;
    })
    .await;
    stack
        .configure_provider(
            "twilio",
            json!({"timeout_rate": 1.0, "timeout_hold_ms": 2 * TWILIO_TIMEOUT.as_millis()}),
        )
        .await;
    stack.insert_users(TEXT_MESSAGES as usize).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack
        .notify_each_user(0..TEXT_MESSAGES as usize, "sms")
        .await;
    // Twilio's lane is now full of calls that will time out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.notify_each_user(0..300, "email").await;

    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE channel = 'email' AND status = 'sent'",
            300,
            Duration::from_secs(30),
        )
        .await;

    // Admission never waits for a lane's slots: had it waited, the last email could not have been
    // admitted before all but Twilio's slots' worth of the text messages ahead of it had ended
    // their calls.
    let twilio_calls_ended_before_the_last_email_was_admitted = stack
        .count(
            "SELECT count(*) FROM delivery_attempts \
             WHERE provider = 'twilio' \
               AND finished_at < (SELECT max(created_at) FROM deliveries WHERE channel = 'email')",
        )
        .await;
    assert!(
        twilio_calls_ended_before_the_last_email_was_admitted < TEXT_MESSAGES - TWILIO_SLOTS,
        "admission waited for Twilio's slots: {twilio_calls_ended_before_the_last_email_was_admitted} \
         Twilio calls had ended before the last email was admitted"
    );
    // SendGrid's lane has its own slots: in a pool Twilio shares, an email would wait for a Twilio
    // call to time out, behind the text messages already waiting for one (TWILIO_TIMEOUT or more).
    let longest_wait_for_a_sendgrid_slot_ms = stack
        .count(
            "SELECT (extract(epoch FROM max(a.started_at - d.created_at)) * 1000)::bigint \
             FROM deliveries d JOIN delivery_attempts a \
               ON a.notification_id = d.notification_id AND a.delivery_id = d.id \
             WHERE d.channel = 'email'",
        )
        .await;
    assert!(
        longest_wait_for_a_sendgrid_slot_ms < TWILIO_TIMEOUT.as_millis() as i64 / 2,
        "an email waited {longest_wait_for_a_sendgrid_slot_ms} ms from its admission to its call, \
         as if behind Twilio's timing-out calls"
    );
    let sms_still_open = stack
        .count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status NOT IN ('sent', 'failed', 'skipped')")
        .await;
    assert!(sms_still_open > 0, "Twilio was still timing out meanwhile");
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
