use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn email_and_sms_are_delivered_and_shown_as_sent() {
    let stack = start_stack(None).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack
        .put_user(
            "u1",
            json!({"email": "ops@example.com", "phone": "+14155550100"}),
        )
        .await;

    let id = stack.notify(alert(&["u1"], &["email", "sms"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    let mut deliveries = view["deliveries"].as_array().unwrap().clone();
    deliveries.sort_by_key(|delivery| delivery["channel"].as_str().unwrap().to_owned());
    assert_eq!(deliveries.len(), 2);
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "sent", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["user_id"], "u1");
        assert!(delivery["provider_message_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
    }
    let providers: Vec<&str> = deliveries
        .iter()
        .map(|d| d["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, vec!["sendgrid", "twilio"]);

    // What the providers received: rendered content, the recipient, a reference.
    let email = &stack.received("sendgrid").await["messages"][0];
    assert_eq!(email["recipient"], "ops@example.com");
    assert_eq!(email["subject"], "Pressure alert");
    assert_eq!(email["body"], "Pressure 7 on press-4");
    assert!(email["reference"].as_str().is_some());
    let sms = &stack.received("twilio").await["messages"][0];
    assert_eq!(sms["recipient"], "+14155550100");
    assert_eq!(sms["body"], "Pressure 7 on press-4");
    let twilio_sid = deliveries[1]["provider_message_id"].as_str().unwrap();
    assert_eq!(sms["provider_message_id"], twilio_sid);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_notification_to_1000_users_is_delivered_to_each_once() {
    let stack = start_stack(None).await;
    stack.insert_users(1000).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let user_ids: Vec<String> = (0..1000).map(|index| format!("user-{index}")).collect();
    let user_ids: Vec<&str> = user_ids.iter().map(String::as_str).collect();

    let id = stack.notify(alert(&user_ids, &["sms"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["delivery_summary"]["expected"], 1000);
    assert_eq!(view["delivery_summary"]["sent"], 1000);
    // Every delivery, page by page.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("{id}?deliveries_limit=300&deliveries_cursor={cursor}"),
            None => format!("{id}?deliveries_limit=300"),
        };
        let page = stack.notification(&query).await;
        let deliveries = page["deliveries"].as_array().unwrap();
        assert!(deliveries.iter().all(|d| d["status"] == "sent"), "{page}");
        seen += deliveries.len();
        match page["deliveries_next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 1000);
    let stats = stack.simulator_stats().await;
    assert_eq!(stats["twilio"]["messages"], 1000);
    assert_eq!(stats["twilio"]["distinct_references"], 1000);
    assert_eq!(stats["twilio"]["duplicates"], 0);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_recipient_without_an_address_for_a_channel_is_skipped_with_a_reason() {
    let stack = start_stack(None).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack
        .put_user("email-only", json!({"email": "a@example.com"}))
        .await;

    let id = stack
        .notify(alert(&["email-only", "nobody"], &["email", "sms"]))
        .await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(
        view["status"], "delivered",
        "skipped deliveries do not make it fail: {view}"
    );
    let by_key = |user: &str, channel: &str| {
        view["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["user_id"] == user && d["channel"] == channel)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_key("email-only", "email")["status"], "sent");
    let no_phone = by_key("email-only", "sms");
    assert_eq!(no_phone["status"], "skipped");
    assert_eq!(no_phone["last_error"], "recipient has no phone number");
    let unknown = by_key("nobody", "email");
    assert_eq!(unknown["status"], "skipped");
    assert!(unknown["last_error"]
        .as_str()
        .unwrap()
        .contains("unknown recipient"));
    assert_eq!(stack.simulator_stats().await["twilio"]["requests"], 0);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_changed_user_is_not_served_from_a_stale_cache() {
    let stack = start_stack(None).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    stack
        .put_user("mover", json!({"phone": "+14155550101"}))
        .await;
    let first = stack.notify(alert(&["mover"], &["sms"])).await;
    stack
        .wait_until_final(&first, Duration::from_secs(30))
        .await;

    stack
        .put_user("mover", json!({"phone": "+14155550102"}))
        .await;
    let second = stack.notify(alert(&["mover"], &["sms"])).await;
    stack
        .wait_until_final(&second, Duration::from_secs(30))
        .await;
    let received = stack.received("twilio").await;
    let recipients: Vec<&str> = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(recipients, vec!["+14155550101", "+14155550102"]);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
