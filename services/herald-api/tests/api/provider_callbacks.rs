//! Provider callbacks against real PostgreSQL: SendGrid's signed Event Webhook and Twilio's signed
//! status callbacks move `sent` deliveries to `delivered`, `bounced` or `failed`; anything unsigned,
//! badly signed, tampered with or stale is 401 and changes nothing; reports that cannot apply
//! change nothing and are still acknowledged. Signatures are made by herald-testing's own signers,
//! not by the API's verification code.

use std::time::Duration;

use herald_testing::provider_signatures::{twilio_signature, SendGridSigner};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const SENDGRID_EVENTS: &str = "/v1/providers/sendgrid/events";
const TWILIO_STATUS: &str = "/v1/providers/twilio/status";
/// Where Twilio would reach the API: not the address the test calls (a proxy in between).
const PUBLIC_BASE_URL: &str = "https://herald.example.com";
const TWILIO_TOKEN: &str = "callback-test-token";

struct CallbackApp {
    app: TestApp,
    signer: SendGridSigner,
    /// A notification the test's deliveries belong to.
    notification_id: Uuid,
}

async fn callback_app_with(configure: impl FnOnce(&mut herald_config::Settings)) -> CallbackApp {
    let signer = SendGridSigner::generate();
    let public_key = signer.public_key_base64();
    let app = spawn_app_with(|settings| {
        settings.providers.sendgrid.event_webhook_public_key = public_key;
        settings.providers.twilio.status_callback_base_url = PUBLIC_BASE_URL.to_owned();
        settings.providers.twilio.auth_token = SecretString::from(TWILIO_TOKEN);
        configure(settings);
    })
    .await;
    let response = app.post_notification(&notification(&["u1"])).await;
    assert_eq!(response.status(), 202);
    let notification_id = json(response).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    CallbackApp {
        app,
        signer,
        notification_id,
    }
}

async fn callback_app() -> CallbackApp {
    callback_app_with(|_| {}).await
}

impl CallbackApp {
    /// A delivery of the test's notification, inserted as `status` by `provider`.
    async fn insert_delivery(&self, provider: &str, status: &str) -> Uuid {
        let id = Uuid::new_v4();
        let channel = if provider == "twilio" { "sms" } else { "email" };
        execute(
            &self.app.database,
            &format!(
                "INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, \
                 status, attempts, provider_message_id, last_error) \
                 VALUES ('{}', '{id}', '{}', 'u1', '{channel}', '{provider}', '{status}', 1, \
                 'message-{id}', NULL)",
                self.notification_id, self.app.tenant_id
            ),
        )
        .await;
        id
    }

    /// The delivery's status and `last_error`.
    async fn delivery(&self, id: Uuid) -> (String, Option<String>) {
        let row = self
            .app
            .database
            .connection()
            .query_one(Statement::from_string(
                DatabaseBackend::Postgres,
                format!(
                    "SELECT status::text AS status, last_error FROM deliveries \
                     WHERE notification_id = '{}' AND id = '{id}'",
                    self.notification_id
                ),
            ))
            .await
            .unwrap()
            .expect("the delivery exists");
        (
            row.try_get("", "status").unwrap(),
            row.try_get("", "last_error").unwrap(),
        )
    }

    async fn status_of(&self, id: Uuid) -> String {
        self.delivery(id).await.0
    }

    /// The notification's status and counters, as one text to compare before and after.
    async fn notification_state(&self) -> String {
        let row = self
            .app
            .database
            .connection()
            .query_one(Statement::from_string(
                DatabaseBackend::Postgres,
                format!(
                    "SELECT row(status, deliveries_expected, deliveries_sent, deliveries_failed, \
                     deliveries_skipped, deliveries_cancelled)::text AS state \
                     FROM notification_states WHERE id = '{}'",
                    self.notification_id
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "state").unwrap()
    }

    fn event(&self, event: &str, delivery_id: Uuid, extra: Value) -> Value {
        let mut value = json!({
            "email": "u1@example.com",
            "timestamp": chrono::Utc::now().timestamp(),
            "event": event,
            "sg_event_id": Uuid::new_v4().to_string(),
            "sg_message_id": format!("message-{delivery_id}.filter0001"),
            "herald_notification_id": self.notification_id.to_string(),
            "herald_delivery_id": delivery_id.to_string(),
        });
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        value
    }

    /// Posts `body` to the SendGrid route with the given headers.
    async fn post_sendgrid_raw(
        &self,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .post(format!("{}{SENDGRID_EVENTS}", self.app.address))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    /// Posts `body` signed by the configured key at `timestamp`.
    async fn post_sendgrid_signed_at(&self, body: &[u8], timestamp: i64) -> reqwest::Response {
        let timestamp = timestamp.to_string();
        let signature = self.signer.sign(&timestamp, body);
        self.post_sendgrid_raw(body.to_vec(), &sendgrid_headers(signature, timestamp))
            .await
    }

    async fn post_sendgrid_signed(&self, events: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(events).unwrap();
        self.post_sendgrid_signed_at(&body, chrono::Utc::now().timestamp())
            .await
    }

    async fn metrics(&self) -> String {
        self.app
            .client
            .get(format!("{}/metrics", self.app.metrics_address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The path and query of a delivery's `StatusCallback` URL, as the worker builds it.
    fn twilio_callback_path(&self, delivery_id: Uuid) -> String {
        format!(
            "{TWILIO_STATUS}?notification_id={}&delivery_id={delivery_id}",
            self.notification_id
        )
    }

    /// Posts a status callback to `path_and_query`, signed with `token` over `signed_url`.
    async fn post_twilio(
        &self,
        path_and_query: &str,
        parameters: &[(&str, &str)],
        signature: Option<String>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .post(format!("{}{path_and_query}", self.app.address))
            .form(parameters);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.unwrap()
    }

    /// Posts a callback as Twilio would: signed over the public URL.
    async fn post_twilio_signed(
        &self,
        delivery_id: Uuid,
        parameters: &[(&str, &str)],
    ) -> reqwest::Response {
        let path = self.twilio_callback_path(delivery_id);
        let signature = twilio_signature(
            TWILIO_TOKEN,
            &format!("{PUBLIC_BASE_URL}{path}"),
            parameters,
        );
        self.post_twilio(&path, parameters, Some(signature)).await
    }
}

fn sendgrid_headers(signature: String, timestamp: String) -> Vec<(&'static str, String)> {
    vec![
        ("X-Twilio-Email-Event-Webhook-Signature", signature),
        ("X-Twilio-Email-Event-Webhook-Timestamp", timestamp),
    ]
}

fn twilio_parameters<'a>(status: &'a str, error_code: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut parameters = vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("From", "+15005550006"),
        ("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("To", "+14155550100"),
    ];
    if let Some(code) = error_code {
        parameters.push(("ErrorCode", code));
    }
    parameters
}

async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "invalid_signature", "{body}");
}

#[tokio::test]
async fn a_signed_sendgrid_batch_moves_sent_deliveries_and_nothing_else() {
    let test = callback_app().await;
    let delivered = test.insert_delivery("sendgrid", "sent").await;
    let bounced = test.insert_delivery("sendgrid", "sent").await;
    let blocked = test.insert_delivery("sendgrid", "sent").await;
    let dropped = test.insert_delivery("sendgrid", "sent").await;
    let opened_only = test.insert_delivery("sendgrid", "sent").await;
    let never_sent = test.insert_delivery("sendgrid", "failed").await;
    let by_smtp_failover = test.insert_delivery("smtp", "sent").await;
    let unknown = Uuid::new_v4();
    let state_before = test.notification_state().await;

    let batch = json!([
        test.event("processed", delivered, json!({})),
        test.event("delivered", delivered, json!({"response": "250 OK"})),
        test.event("bounce", bounced, json!({"reason": "550 5.1.1 The email account does not exist", "status": "5.1.1", "type": "bounce"})),
        test.event("blocked", blocked, json!({"reason": "554 blocked by policy"})),
        test.event("dropped", dropped, json!({"reason": "Bounced Address"})),
        test.event("open", opened_only, json!({"useragent": "Mozilla/5.0"})),
        test.event("delivered", never_sent, json!({})),
        test.event("bounce", by_smtp_failover, json!({"reason": "550"})),
        test.event("delivered", unknown, json!({})),
        // Mail sent by something else on the same SendGrid account: no Herald ids.
        {"event": "delivered", "email": "x@example.com", "timestamp": 1764136800},
        // A later event for a delivery already reported in this batch: the first one wins.
        test.event("bounce", delivered, json!({"reason": "late"})),
    ]);
    let response = test.post_sendgrid_signed(&batch).await;
    assert_eq!(response.status(), 204, "{:?}", response.text().await);

    assert_eq!(
        test.delivery(delivered).await,
        ("delivered".to_owned(), None)
    );
    assert_eq!(
        test.delivery(bounced).await,
        (
            "bounced".to_owned(),
            Some("sendgrid bounce: 550 5.1.1 The email account does not exist".to_owned())
        )
    );
    assert_eq!(test.status_of(blocked).await, "bounced");
    assert_eq!(
        test.delivery(dropped).await,
        (
            "failed".to_owned(),
            Some("sendgrid dropped: Bounced Address".to_owned())
        )
    );
    assert_eq!(test.status_of(opened_only).await, "sent");
    assert_eq!(test.delivery(never_sent).await, ("failed".to_owned(), None));
    assert_eq!(test.status_of(by_smtp_failover).await, "sent");
    assert_eq!(
        test.app
            .count(&format!(
                "SELECT count(*) FROM deliveries WHERE id = '{unknown}'"
            ))
            .await,
        0
    );
    assert_eq!(
        test.notification_state().await,
        state_before,
        "a report does not change the notification's counters"
    );

    // SendGrid retries a batch it thinks failed: the same batch again changes nothing and is
    // still acknowledged.
    let response = test.post_sendgrid_signed(&batch).await;
    assert_eq!(response.status(), 204);
    assert_eq!(test.status_of(delivered).await, "delivered");
    assert_eq!(test.status_of(bounced).await, "bounced");

    let metrics = test.metrics().await;
    let applied = metric_value(
        &metrics,
        "herald_provider_reports_total{outcome=\"applied\",provider=\"sendgrid\",report=\"bounced\"}",
    );
    assert!(applied >= 2.0, "{applied}");
    let requests = metric_value(
        &metrics,
        "herald_http_requests_total{method=\"POST\",route=\"/v1/providers/sendgrid/events\",status_class=\"2xx\"}",
    );
    assert!(
        requests >= 2.0,
        "counted under the route template: {requests}"
    );
    test.app.stop().await;
}

#[tokio::test]
async fn unsigned_badly_signed_tampered_or_stale_sendgrid_batches_get_401_and_change_nothing() {
    let test = callback_app().await;
    let delivery = test.insert_delivery("sendgrid", "sent").await;
    let batch = json!([test.event("delivered", delivery, json!({}))]);
    let body = serde_json::to_vec(&batch).unwrap();
    let now = chrono::Utc::now().timestamp();
    let timestamp = now.to_string();
    let good_signature = test.signer.sign(&timestamp, &body);

    // No headers at all, or only one of the two.
    assert_refused(test.post_sendgrid_raw(body.clone(), &[]).await).await;
    assert_refused(
        test.post_sendgrid_raw(
            body.clone(),
            &[(
                "X-Twilio-Email-Event-Webhook-Signature",
                good_signature.clone(),
            )],
        )
        .await,
    )
    .await;
    assert_refused(
        test.post_sendgrid_raw(
            body.clone(),
            &[("X-Twilio-Email-Event-Webhook-Timestamp", timestamp.clone())],
        )
        .await,
    )
    .await;
    // Signed by another key.
    let stranger = SendGridSigner::generate();
    let foreign = sendgrid_headers(stranger.sign(&timestamp, &body), timestamp.clone());
    assert_refused(test.post_sendgrid_raw(body.clone(), &foreign).await).await;
    // The body changed after signing: the same events, a bounce instead.
    let tampered = serde_json::to_vec(&json!([test.event("bounce", delivery, json!({}))])).unwrap();
    let replayed_signature = sendgrid_headers(good_signature.clone(), timestamp.clone());
    assert_refused(test.post_sendgrid_raw(tampered, &replayed_signature).await).await;
    // The timestamp changed after signing.
    let moved = sendgrid_headers(good_signature.clone(), (now + 1).to_string());
    assert_refused(test.post_sendgrid_raw(body.clone(), &moved).await).await;
    // Correctly signed, but too old (a captured batch replayed) or too far ahead.
    assert_refused(test.post_sendgrid_signed_at(&body, now - 11 * 60).await).await;
    assert_refused(test.post_sendgrid_signed_at(&body, now + 11 * 60).await).await;
    // Not a signature at all.
    let garbage = sendgrid_headers("bm90IGEgc2lnbmF0dXJl".to_owned(), timestamp.clone());
    assert_refused(test.post_sendgrid_raw(body.clone(), &garbage).await).await;

    assert_eq!(test.status_of(delivery).await, "sent", "nothing changed");

    // The same batch, correctly signed, is taken: the refusals above were the signatures'.
    let response = test
        .post_sendgrid_raw(body, &sendgrid_headers(good_signature, timestamp))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(test.status_of(delivery).await, "delivered");
    test.app.stop().await;
}

#[tokio::test]
async fn without_a_verification_key_every_sendgrid_batch_is_refused() {
    let test = callback_app_with(|settings| {
        settings.providers.sendgrid.event_webhook_public_key = String::new();
    })
    .await;
    let delivery = test.insert_delivery("sendgrid", "sent").await;
    let batch = json!([test.event("delivered", delivery, json!({}))]);
    assert_refused(test.post_sendgrid_signed(&batch).await).await;
    assert_eq!(test.status_of(delivery).await, "sent");
    test.app.stop().await;
}

#[tokio::test]
async fn a_signed_sendgrid_body_that_is_not_an_event_array_is_400_and_a_large_one_413() {
    let test = callback_app_with(|settings| settings.server.max_body_bytes = 4096).await;
    let delivery = test.insert_delivery("sendgrid", "sent").await;
    let not_an_array = test.event("delivered", delivery, json!({}));
    let response = test.post_sendgrid_signed(&not_an_array).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"]["code"], "malformed_callback");
    let response = test
        .post_sendgrid_signed_at(
            b"[{\"event\": \"delivered\"",
            chrono::Utc::now().timestamp(),
        )
        .await;
    assert_eq!(response.status(), 400);

    let padding = "x".repeat(5000);
    let large = json!([test.event("delivered", delivery, json!({ "padding": padding }))]);
    let response = test.post_sendgrid_signed(&large).await;
    assert_eq!(response.status(), 413);
    assert_eq!(test.status_of(delivery).await, "sent");
    test.app.stop().await;
}

#[tokio::test]
async fn twilio_callbacks_signed_for_the_public_url_move_the_delivery() {
    let test = callback_app().await;
    let delivered = test.insert_delivery("twilio", "sent").await;
    let undelivered = test.insert_delivery("twilio", "sent").await;
    let failed = test.insert_delivery("twilio", "sent").await;
    let state_before = test.notification_state().await;

    // An intermediate status reports nothing yet.
    let response = test
        .post_twilio_signed(delivered, &twilio_parameters("sent", None))
        .await;
    assert_eq!(response.status(), 204, "{:?}", response.text().await);
    assert_eq!(test.status_of(delivered).await, "sent");

    let response = test
        .post_twilio_signed(delivered, &twilio_parameters("delivered", None))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        test.delivery(delivered).await,
        ("delivered".to_owned(), None)
    );

    let response = test
        .post_twilio_signed(
            undelivered,
            &twilio_parameters("undelivered", Some("30003")),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        test.delivery(undelivered).await,
        (
            "failed".to_owned(),
            Some("twilio undelivered: error 30003".to_owned())
        )
    );
    let response = test
        .post_twilio_signed(failed, &twilio_parameters("failed", Some("30008")))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(test.status_of(failed).await, "failed");

    // A late `failed` for a delivery already delivered: acknowledged, nothing changes.
    let response = test
        .post_twilio_signed(delivered, &twilio_parameters("failed", Some("30005")))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        test.delivery(delivered).await,
        ("delivered".to_owned(), None)
    );
    assert_eq!(test.notification_state().await, state_before);
    let requests = metric_value(
        &test.metrics().await,
        "herald_http_requests_total{method=\"POST\",route=\"/v1/providers/twilio/status\",status_class=\"2xx\"}",
    );
    assert!(
        requests >= 5.0,
        "counted under the route template: {requests}"
    );
    test.app.stop().await;
}

#[tokio::test]
async fn unsigned_or_badly_signed_twilio_callbacks_get_401_and_change_nothing() {
    let test = callback_app().await;
    let delivery = test.insert_delivery("twilio", "sent").await;
    let other = test.insert_delivery("twilio", "sent").await;
    let parameters = twilio_parameters("delivered", None);
    let path = test.twilio_callback_path(delivery);
    let public_url = format!("{PUBLIC_BASE_URL}{path}");

    // No signature.
    assert_refused(test.post_twilio(&path, &parameters, None).await).await;
    // Signed over the URL the API itself sees (its Host header), not the one Twilio called.
    let local_url = format!("{}{path}", test.app.address);
    let by_host = twilio_signature(TWILIO_TOKEN, &local_url, &parameters);
    assert_refused(test.post_twilio(&path, &parameters, Some(by_host)).await).await;
    // Signed with another account's token.
    let foreign = twilio_signature("another-token", &public_url, &parameters);
    assert_refused(test.post_twilio(&path, &parameters, Some(foreign)).await).await;
    // A parameter changed after signing.
    let signature = twilio_signature(TWILIO_TOKEN, &public_url, &parameters);
    let tampered = twilio_parameters("undelivered", None);
    assert_refused(
        test.post_twilio(&path, &tampered, Some(signature.clone()))
            .await,
    )
    .await;
    // The signed URL pointed at another delivery.
    let redirected = test.twilio_callback_path(other);
    assert_refused(
        test.post_twilio(&redirected, &parameters, Some(signature.clone()))
            .await,
    )
    .await;
    assert_refused(
        test.post_twilio(&path, &parameters, Some("garbage".to_owned()))
            .await,
    )
    .await;

    assert_eq!(test.status_of(delivery).await, "sent");
    assert_eq!(test.status_of(other).await, "sent");
    // The untouched, well-signed callback is taken.
    let response = test.post_twilio(&path, &parameters, Some(signature)).await;
    assert_eq!(response.status(), 204);
    assert_eq!(test.status_of(delivery).await, "delivered");
    assert_eq!(test.status_of(other).await, "sent");
    test.app.stop().await;
}

#[tokio::test]
async fn without_a_public_base_url_twilio_callbacks_are_refused_and_malformed_ones_are_400() {
    let unconfigured = callback_app_with(|settings| {
        settings.providers.twilio.status_callback_base_url = String::new();
    })
    .await;
    let delivery = unconfigured.insert_delivery("twilio", "sent").await;
    assert_refused(
        unconfigured
            .post_twilio_signed(delivery, &twilio_parameters("delivered", None))
            .await,
    )
    .await;
    assert_eq!(unconfigured.status_of(delivery).await, "sent");
    unconfigured.app.stop().await;

    let test = callback_app().await;
    let delivery = test.insert_delivery("twilio", "sent").await;
    let response = test
        .post_twilio_signed(
            delivery,
            &[("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"]["code"], "malformed_callback");
    assert_eq!(test.status_of(delivery).await, "sent");
    test.app.stop().await;
}

#[tokio::test]
async fn the_callbacks_are_documented_without_a_tenant_key() {
    let app = spawn_app().await;
    let document: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [SENDGRID_EVENTS, TWILIO_STATUS] {
        let operation = &document["paths"][path]["post"];
        assert!(operation.is_object(), "{path} is not documented");
        assert!(
            operation.get("security").is_none(),
            "{path}: the signature is the authentication, not an API key"
        );
        assert!(operation["responses"]["401"].is_object(), "{path}");
    }
    app.stop().await;
}

/// SendGrid retries a batch it thinks failed, possibly while the first try is still being applied,
/// and batches list deliveries in any order: concurrent batches over the same deliveries, in
/// opposite orders, must all be taken (no deadlock, no 503) and move each delivery once.
#[tokio::test]
async fn concurrent_batches_over_the_same_deliveries_are_all_taken() {
    let test = callback_app().await;
    // The plan a large `deliveries` gets (an index lookup per report, in the batch's order), which
    // a test table of 200 rows would not get on its own; connections opened from now on use it.
    execute(
        &test.app.database,
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET enable_hashjoin = off', current_database()); \
         EXECUTE format('ALTER DATABASE %I SET enable_mergejoin = off', current_database()); \
         EXECUTE format('ALTER DATABASE %I SET enable_seqscan = off', current_database()); END $$",
    )
    .await;
    let mut deliveries = Vec::new();
    for _ in 0..200 {
        deliveries.push(test.insert_delivery("sendgrid", "sent").await);
    }
    let forward: Vec<Value> = deliveries
        .iter()
        .map(|id| test.event("delivered", *id, json!({})))
        .collect();
    let backward: Vec<Value> = deliveries
        .iter()
        .rev()
        .map(|id| test.event("bounce", *id, json!({"reason": "550"})))
        .collect();
    let (forward, backward) = (json!(forward), json!(backward));
    let posts = (0..8).map(|round| {
        let batch = if round % 2 == 0 { &forward } else { &backward };
        test.post_sendgrid_signed(batch)
    });
    for response in futures::future::join_all(posts).await {
        assert_eq!(response.status(), 204, "{:?}", response.text().await);
    }
    let moved = test
        .app
        .count(&format!(
            "SELECT count(*) FROM deliveries WHERE notification_id = '{}' \
             AND status IN ('delivered', 'bounced')",
            test.notification_id
        ))
        .await;
    assert_eq!(moved, 200);
    test.app.stop().await;
}

/// A provider can deliver and call back before the worker records the send: the report is kept
/// and applied once the delivery is `sent`, never dropped while the delivery stays `sent` for
/// ever. A report for a delivery that then fails is forgotten.
#[tokio::test]
async fn a_report_that_arrives_before_the_send_is_recorded_is_applied_once_it_is() {
    let test = callback_app().await;
    let in_flight = test.insert_delivery("sendgrid", "sending").await;
    let bounced_in_flight = test.insert_delivery("sendgrid", "sending").await;
    let batch = json!([
        test.event("delivered", in_flight, json!({"response": "250 OK"})),
        test.event(
            "bounce",
            bounced_in_flight,
            json!({"reason": "550 no such user"})
        ),
    ]);
    let response = test.post_sendgrid_signed(&batch).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        test.status_of(in_flight).await,
        "sending",
        "not applied early"
    );
    let metrics = test.metrics().await;
    assert!(
        metrics.contains(
            "herald_provider_reports_total{outcome=\"deferred\",provider=\"sendgrid\",report=\"delivered\"} 1"
        ),
        "{metrics}"
    );

    // The recorder writes the send (as the worker does: `sending → sent`).
    execute(
        &test.app.database,
        &format!(
            "UPDATE deliveries SET status = 'sent' WHERE notification_id = '{}' AND id IN ('{in_flight}', '{bounced_in_flight}')",
            test.notification_id
        ),
    )
    .await;
    let mut statuses = (String::new(), String::new());
    for _ in 0..100 {
        statuses = (
            test.status_of(in_flight).await,
            test.status_of(bounced_in_flight).await,
        );
        if statuses.0 != "sent" && statuses.1 != "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses, ("delivered".to_owned(), "bounced".to_owned()));
    assert_eq!(
        test.delivery(bounced_in_flight).await.1.as_deref(),
        Some("sendgrid bounce: 550 no such user")
    );
    assert_eq!(
        test.app
            .count("SELECT count(*) FROM early_provider_reports")
            .await,
        0,
        "applied reports are not kept"
    );
}
