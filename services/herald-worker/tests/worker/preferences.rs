//! Recipients' preferences honoured by the worker: an opted-out channel or category is `skipped`
//! with the reason and never sent; a delivery within quiet hours waits in the queue until they end
//! (deferred, never dropped) unless it is `high` and its tenant lets it through; and a deferred
//! delivery whose recipient opts out before it comes due is skipped then.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::*;

async fn put_preferences(stack: &Stack, user_id: &str, preferences: Value) {
    let response = stack
        .client
        .put(format!("{}/v1/users/{user_id}/preferences", stack.api))
        .bearer_auth(&stack.api_key)
        .json(&preferences)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// Quiet hours (UTC) that began an hour ago and end in two.
fn quiet_now() -> Value {
    let now = Utc::now();
    json!({"quiet_hours": {
        "start": (now - chrono::Duration::hours(1)).format("%H:%M").to_string(),
        "end": (now + chrono::Duration::hours(2)).format("%H:%M").to_string(),
    }})
}

fn delivery_of<'a>(view: &'a Value, user_id: &str) -> &'a Value {
    view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|delivery| delivery["user_id"] == user_id)
        .unwrap_or_else(|| panic!("no delivery to {user_id}: {view}"))
}

#[tokio::test]
async fn opt_outs_are_skipped_with_the_reason_and_quiet_hours_defer_until_they_end() {
    let stack = start_stack(None).await;
    for (index, user_id) in ["ana", "bo", "cy", "di", "ed", "fi"].iter().enumerate() {
        stack
            .put_user(user_id, json!({"phone": format!("+1415555020{index}")}))
            .await;
    }
    put_preferences(&stack, "ana", json!({"opted_out_channels": ["sms"]})).await;
    put_preferences(&stack, "bo", json!({"opted_out_categories": ["marketing"]})).await;
    put_preferences(&stack, "cy", quiet_now()).await;
    put_preferences(&stack, "di", quiet_now()).await;
    put_preferences(&stack, "fi", quiet_now()).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack
        .notify(json!({
            "user_ids": ["ana", "bo", "cy", "ed", "fi"],
            "channels": ["sms"],
            "category": "marketing",
            "content": {"body": "Spring sale"},
        }))
        .await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE status IN ('sent', 'skipped', 'queued')",
            5,
            Duration::from_secs(60),
        )
        .await;
    stack
        .wait_for_count(
            "SELECT count(*) FROM deliveries WHERE status = 'sent'",
            1,
            Duration::from_secs(60),
        )
        .await;
    let view = stack.notification(&id).await;
    let ana = delivery_of(&view, "ana");
    assert_eq!(ana["status"], "skipped", "{view}");
    assert_eq!(ana["last_error"], "the recipient opted out of sms");
    let bo = delivery_of(&view, "bo");
    assert_eq!(bo["status"], "skipped");
    assert_eq!(
        bo["last_error"],
        "the recipient opted out of the category `marketing`"
    );
    assert_eq!(delivery_of(&view, "ed")["status"], "sent");
    for user_id in ["cy", "fi"] {
        assert_eq!(delivery_of(&view, user_id)["status"], "queued", "{view}");
    }
    // Due when the quiet hours end, two hours from now (to the minute they are written in).
    let due_in_minutes = stack
        .count(&format!(
            "SELECT min(extract(epoch FROM due_at - now()) / 60)::bigint FROM deferred_deliveries \
             WHERE notification_id = '{id}'"
        ))
        .await;
    assert!(
        (118..=121).contains(&due_in_minutes),
        "due in {due_in_minutes} minutes"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM delivery_queue WHERE notification_id = '{id}'"
            ))
            .await,
        0,
        "held apart from the queue, whose claim would visit them every round"
    );
    assert_eq!(view["status"], "processing", "deferred, not final: {view}");

    // `high` goes through quiet hours, as the tenant allows by default; not once it says so.
    let urgent = stack
        .notify(
            json!({"user_ids": ["di"], "channels": ["sms"], "priority": "high",
                       "content": {"body": "Breach"}}),
        )
        .await;
    let urgent = stack
        .wait_until_final(&urgent, Duration::from_secs(60))
        .await;
    assert_eq!(urgent["status"], "delivered", "{urgent}");
    herald_store::tenants::set_high_priority_overrides_quiet_hours(
        &stack.database,
        stack.tenant_id,
        false,
    )
    .await
    .unwrap();
    let held = stack
        .notify(
            json!({"user_ids": ["di"], "channels": ["sms"], "priority": "high",
                       "content": {"body": "Breach again"}}),
        )
        .await;
    stack
        .wait_for_count(
            &format!("SELECT count(*) FROM deliveries WHERE notification_id = '{held}' AND status = 'queued'"),
            1,
            Duration::from_secs(60),
        )
        .await;

    // cy opts out of sms while deferred; the quiet hours "end" for both (their deferred rows come
    // due, and the sweeper moves them into the queue): cy's is skipped when claimed, fi's is sent.
    put_preferences(&stack, "cy", json!({"opted_out_channels": ["sms"]})).await;
    herald_testing::execute(
        &stack.database,
        &format!("UPDATE deferred_deliveries SET due_at = now() WHERE notification_id = '{id}'"),
    )
    .await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    let cy = delivery_of(&view, "cy");
    assert_eq!(cy["status"], "skipped", "{view}");
    assert_eq!(cy["last_error"], "not sent: the recipient opted out of sms");
    assert_eq!(delivery_of(&view, "fi")["status"], "sent", "{view}");
    assert_eq!(view["delivery_summary"]["skipped"], 3, "{view}");
    assert_eq!(view["delivery_summary"]["sent"], 2, "{view}");

    // A deferred delivery of a cancelled notification is cancelled, and leaves nothing to move.
    let cancelled = stack
        .notify(json!({"user_ids": ["di"], "channels": ["sms"], "content": {"body": "Later"}}))
        .await;
    stack
        .wait_for_count(
            &format!(
                "SELECT count(*) FROM deferred_deliveries WHERE notification_id = '{cancelled}'"
            ),
            1,
            Duration::from_secs(60),
        )
        .await;
    let response = stack
        .client
        .post(format!("{}/v1/notifications/{cancelled}/cancel", stack.api))
        .bearer_auth(&stack.api_key)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    // The cancel answers once the waiting deliveries are cancelled.
    let view = stack.notification(&cancelled).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["deliveries"][0]["status"], "cancelled", "{view}");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM deferred_deliveries WHERE notification_id = '{cancelled}'"
            ))
            .await,
        0
    );

    let texts = stack.received("twilio").await;
    let recipients: Vec<&str> = texts["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["recipient"].as_str().unwrap())
        .collect();
    for opted_out in ["+14155550200", "+14155550201", "+14155550202"] {
        assert!(
            !recipients.contains(&opted_out),
            "{opted_out} got a message: {texts}"
        );
    }
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// An email carries its recipient's one-click unsubscribe link (RFC 8058's headers, and the
/// template's `unsubscribe_url`); the link opts out of the notification's category, and once it
/// is POSTed the next notification of that category is skipped (on every channel, as a category
/// opt-out is) while another category still goes.
#[tokio::test]
async fn an_email_carries_its_unsubscribe_link_and_following_it_skips_the_next_one() {
    const BASE_URL: &str = "https://herald.example.com";
    let stack = start_stack_with(None, None, |settings| {
        settings.unsubscribe.base_url = BASE_URL.into();
        settings.unsubscribe.signing_key = "a signing key of at least thirty-two bytes"
            .to_owned()
            .into();
    })
    .await;
    stack
        .put_user(
            "ana",
            json!({"email": "ana@example.com", "phone": "+14155550301"}),
        )
        .await;
    let template = stack
        .client
        .put(format!("{}/v1/templates/news", stack.api))
        .bearer_auth(&stack.api_key)
        .json(&json!({"channels": {
            "email": {"subject": "News", "text": "News.{% if unsubscribe_url is defined %} Unsubscribe: {{ unsubscribe_url }}{% endif %}"},
            "sms": {"text": "News.{% if unsubscribe_url is defined %} {{ unsubscribe_url }}{% endif %}"}
        }}))
        .send()
        .await
        .unwrap();
    assert!(
        template.status().is_success(),
        "{:?}",
        template.text().await
    );
    let newsletter = json!({
        "user_ids": ["ana"],
        "channels": ["email", "sms"],
        "category": "newsletter",
        "template_id": "news",
    });
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let first = stack.notify(newsletter.clone()).await;
    let view = stack
        .wait_until_final(&first, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "delivered", "{view}");

    let emails = stack.received("sendgrid").await;
    let email = &emails["messages"][0];
    let list_unsubscribe = email["headers"]["List-Unsubscribe"].as_str().unwrap();
    assert_eq!(
        email["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    let url = list_unsubscribe
        .strip_prefix('<')
        .and_then(|url| url.strip_suffix('>'))
        .unwrap_or_else(|| panic!("not <url>: {list_unsubscribe}"));
    assert_eq!(
        email["body"],
        format!("News. Unsubscribe: {url}"),
        "the template shows the same link"
    );
    let texts = stack.received("twilio").await;
    assert_eq!(
        texts["messages"][0]["body"], "News.",
        "only email has a link"
    );

    let path = url.strip_prefix(BASE_URL).unwrap();
    let unsubscribed = stack
        .client
        .post(format!("{}{path}", stack.api))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(unsubscribed.status(), 200);

    let second = stack.notify(newsletter).await;
    let view = stack
        .wait_until_final(&second, Duration::from_secs(60))
        .await;
    for delivery in view["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["status"], "skipped", "{view}");
        assert_eq!(
            delivery["last_error"], "the recipient opted out of the category `newsletter`",
            "a category opt-out holds on every channel: {view}"
        );
    }
    // Another category still reaches them, with a link of its own.
    let security = stack
        .notify(json!({
            "user_ids": ["ana"],
            "channels": ["email"],
            "category": "security",
            "template_id": "news",
        }))
        .await;
    let view = stack
        .wait_until_final(&security, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "delivered", "{view}");
    let emails = stack.received("sendgrid").await;
    let messages = emails["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{emails}");
    let links: std::collections::BTreeSet<&str> = messages
        .iter()
        .map(|message| message["headers"]["List-Unsubscribe"].as_str().unwrap())
        .collect();
    assert_eq!(
        links.len(),
        2,
        "each category's link opts out of it alone: {emails}"
    );
    assert_eq!(
        stack.received("twilio").await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}
