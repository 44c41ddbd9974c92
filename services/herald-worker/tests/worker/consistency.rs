//! What the API shows is what happened: a notification's status only moves forward, to the final
//! status its counters mean, however many workers finish its deliveries; a changed recipient is
//! seen by the very next notification, whatever a worker was caching at that moment.

use std::time::Duration;

use herald_store::metrics::CacheKind;
use herald_store::tag_cache::{Lookup, Tag, TagCaches};
use herald_store::users::Recipient;
use herald_worker::recipients::Recipients;
use serde_json::json;

use crate::helpers::*;
use herald_testing::eventually;

#[tokio::test]
async fn a_notification_finished_by_two_workers_at_once_ends_final_with_exact_counts() {
    // What this tests is the counts, not the providers: 18,000 calls by two debug workers on a
    // busy 2-core machine must not fail for want of CPU. With the tests' 1 s call timeout, calls
    // timed out on every attempt (SendGrid, then its SMTP failover) in a `make test`, and their
    // deliveries ended `failed`.
    let stack = start_stack_with(None, None, |settings| {
        let providers = &mut settings.providers;
        providers.twilio.timeout_ms = 8_000;
        providers.sendgrid.timeout_ms = 8_000;
        providers.smtp.timeout_ms = 8_000;
        // At least twice the longest call (validated); no claim here is ever taken over.
        settings.worker.lease_ms = 20_000;
    })
    .await;
    stack
        .configure_provider("twilio", json!({"latency_ms": 5}))
        .await;
    stack.insert_users(3000).await;
    let (first_port, second_port) = (free_port(), free_port());
    let _first = worker_process(&stack.settings, first_port);
    let _second = worker_process(&stack.settings, second_port);
    // Both members of the group hold partitions before the records arrive.
    wait_until_each_holds_partitions(&[first_port, second_port]).await;

    let mut ids = Vec::new();
    for _ in 0..3 {
        let user_ids: Vec<String> = (0..3000).map(|index| format!("user-{index}")).collect();
        let user_ids: Vec<&str> = user_ids.iter().map(String::as_str).collect();
        ids.push(stack.notify(alert(&user_ids, &["sms", "email"])).await);
    }
    for id in &ids {
        let view = stack.wait_until_final(id, Duration::from_secs(120)).await;
        assert_eq!(view["status"], "delivered", "{}", view["delivery_summary"]);
        assert_eq!(view["delivery_summary"]["expected"], 6000);
        assert_eq!(view["delivery_summary"]["sent"], 6000);
    }
    // Each notification's deliveries were finished by both workers, concurrently.
    for port in [first_port, second_port] {
        let sent = metric_value(&worker_metrics(port).await, "herald_deliveries_total");
        assert!(sent > 0.0, "the worker on {port} delivered nothing");
    }
}

#[tokio::test]
async fn a_recipient_read_just_before_it_changed_is_never_cached_over_the_change() {
    let stack = start_stack(None).await;
    stack
        .put_user("mover", json!({"phone": "+14155550101"}))
        .await;
    let redis = herald_store::cache::Redis::new(&stack.settings.redis).unwrap();
    let tag_caches = TagCaches::new(redis, stack.settings.cache.clone());
    let recipients = Recipients::new(
        stack.database.clone(),
        tag_caches.cache(CacheKind::Recipient),
    );
    let key = (stack.tenant_id, "mover".to_owned());
    // Another user's lookups until the cache answers: Redis is connected, and "mover" not cached.
    stack
        .put_user("bystander", json!({"phone": "+14155550199"}))
        .await;
    let bystander = (stack.tenant_id, "bystander".to_owned());
    assert!(
        eventually(Duration::from_secs(5), || async {
            let hits = lookups("hit");
            recipients
                .resolve(std::slice::from_ref(&bystander))
                .await
                .unwrap();
            lookups("hit") > hits
        })
        .await,
        "the recipient cache answers"
    );

    // The race, forced: a lookup's miss reads version 1 from PostgreSQL, the user changes
    // through the API meanwhile (which invalidates their tag), and only then does the lookup store
    // what it read.
    let cache = tag_caches.cache::<Recipient>(CacheKind::Recipient);
    let lookup = [Lookup {
        key: format!("{}:mover", stack.tenant_id),
        tags: vec![Tag::user(stack.tenant_id, "mover")],
    }];
    let stack_ref = &stack;
    let filled = cache
        .get_many(&lookup, |_| async move {
            let stale = herald_store::users::find_recipients(
                &stack_ref.database,
                &[(stack_ref.tenant_id, "mover")],
            )
            .await?;
            stack_ref
                .put_user("mover", json!({"phone": "+14155550102"}))
                .await;
            Ok(stale.into_iter().map(Some).collect())
        })
        .await
        .unwrap();
    assert_eq!(filled[0].as_ref().unwrap().version, 1, "the race happened");

    let resolved = recipients
        .resolve(std::slice::from_ref(&key))
        .await
        .unwrap();
    let mover = &resolved[&key];
    assert_eq!(mover.phone.as_deref(), Some("+14155550102"));
    assert_eq!(mover.version, 2);

    // And the very next notification goes to the new number.
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let id = stack.notify(alert(&["mover"], &["sms"])).await;
    stack.wait_until_final(&id, Duration::from_secs(30)).await;
    let received = stack.received("twilio").await;
    assert_eq!(received["messages"][0]["recipient"], "+14155550102");
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

fn lookups(result: &str) -> u64 {
    herald_store::metrics::CACHE_LOOKUPS
        .with_label_values(&["recipient", result])
        .get()
}
