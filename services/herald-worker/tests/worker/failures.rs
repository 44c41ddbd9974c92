use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_provider_error_then_a_timeout_are_retried_until_sent() {
    let stack = start_stack(None).await;
    stack
        .put_user("u1", json!({"email": "ops@example.com"}))
        .await;
    stack
        .configure_provider(
            "sendgrid",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack.notify(alert(&["u1"], &["email"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["deliveries"][0]["attempts"], 2, "{view}");
    let attempts = stack
        .count(&format!(
            "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.notification_id = '{id}' AND a.outcome = 'retryable_error' AND a.http_status = 500"
        ))
        .await;
    assert_eq!(
        attempts, 1,
        "the failed attempt is recorded with its status"
    );

    // The provider holds the request past the worker's 1 s timeout, then recovers.
    stack
        .configure_provider(
            "sendgrid",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 2500}),
        )
        .await;
    let id = stack.notify(alert(&["u1"], &["email"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["deliveries"][0]["attempts"], 2);
    let timed_out = stack
        .count(&format!(
            "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.notification_id = '{id}' AND a.error LIKE '%timed out%'"
        ))
        .await;
    assert_eq!(timed_out, 1);

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_provider_that_keeps_failing_ends_in_failed_and_a_dead_letter() {
    let mut stack = start_stack(None).await;
    stack.settings.worker.max_attempts = 2;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    stack
        .configure_provider("twilio", json!({"failure_rate": 1.0}))
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack.notify(alert(&["u1"], &["sms"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "failed");
    let delivery = &view["deliveries"][0];
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"], 2);
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{delivery}"
    );

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_rejected_request_is_not_retried() {
    let stack = start_stack(None).await;
    // A number the API accepts as E.164 but the provider refuses (To equals From).
    let from = stack.settings.providers.twilio.from.clone();
    stack.put_user("self", json!({"phone": from})).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;

    let id = stack.notify(alert(&["self"], &["sms"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "failed");
    assert_eq!(view["deliveries"][0]["attempts"], 1);
    assert!(view["deliveries"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("400"));

    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_huge_or_dated_retry_after_is_capped_and_the_delivery_still_goes_out() {
    let stack = start_stack(None).await;
    stack.put_user("u1", json!({"phone": "+14155550100"})).await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let in_two_seconds =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    for retry_after in [
        "99999999999999999999999999999999".to_owned(),
        "18446744073709551615".to_owned(),
        in_two_seconds,
        "Fri, 31 Dec 9999 23:59:59 GMT".to_owned(),
    ] {
        stack
            .configure_provider(
                "twilio",
                json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": retry_after}),
            )
            .await;
        let id = stack.notify(alert(&["u1"], &["sms"])).await;
        // retry_max_ms caps any Retry-After, so the retry comes within seconds.
        let view = stack.wait_until_final(&id, Duration::from_secs(15)).await;
        assert_eq!(
            view["status"], "delivered",
            "Retry-After {retry_after}: {view}"
        );
        assert_eq!(view["deliveries"][0]["attempts"], 2);
    }
    let metrics = herald_telemetry::metrics::encode_text().unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert_eq!(metric_value(&metrics, "herald_task_restarts_total"), 0.0);
    assert_eq!(metric_value(&metrics, "herald_panics_caught_total"), 0.0);
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
}

/// A destination (or a proxy before it) that gave up reading the request answers 408: nothing was
/// processed, so the delivery is retried and sent, never failed for good (RFC 9110 §15.5.9). A
/// server slow to read requests under load once failed deliveries this way.
#[tokio::test]
async fn a_408_request_timeout_is_retried_and_the_delivery_sent() {
    let requests = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let counted = requests.clone();
    let server = HttpServer::new(move || {
        let counted = counted.clone();
        App::new().default_service(web::to(move || {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    HttpResponse::RequestTimeout().finish()
                } else {
                    HttpResponse::NoContent().finish()
                }
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let server_handle = server.handle();
    tokio::spawn(server);

    let stack = start_stack(None).await;
    stack
        .put_user(
            "u1",
            json!({"channel_data": {"webhook": {
                "url": format!("http://{address}/hooks"), "secret": WEBHOOK_SECRET
            }}}),
        )
        .await;
    let (stop_worker, worker) = start_worker(&stack.settings).await;
    let id = stack.notify(alert(&["u1"], &["webhook"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(30)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    assert_eq!(view["deliveries"][0]["attempts"], 2, "{view}");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM delivery_attempts WHERE notification_id = '{id}' \
                 AND outcome = 'retryable_error' AND http_status = 408"
            ))
            .await,
        1,
        "the 408 is recorded as a retryable attempt"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    stop_worker.cancel();
    worker.await.unwrap().unwrap();
    server_handle.stop(true).await;
}
