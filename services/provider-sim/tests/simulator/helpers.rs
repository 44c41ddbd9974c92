//! `spawn_simulator()`: a simulator on a free port with the default local credentials, and
//! request helpers for each provider and the inspection API.

use std::net::{SocketAddr, TcpListener};

use herald_provider_sim::config::{
    DEFAULT_PUSHOVER_APP_TOKEN, DEFAULT_SENDGRID_API_KEY, DEFAULT_TELEGRAM_BOT_TOKEN,
    DEFAULT_TWILIO_ACCOUNT_SID, DEFAULT_TWILIO_AUTH_TOKEN,
};
use herald_provider_sim::SimulatorConfig;
use serde_json::{json, Value};

pub const API_KEY: &str = DEFAULT_SENDGRID_API_KEY;
pub const ACCOUNT_SID: &str = DEFAULT_TWILIO_ACCOUNT_SID;
pub const AUTH_TOKEN: &str = DEFAULT_TWILIO_AUTH_TOKEN;
pub const BOT_TOKEN: &str = DEFAULT_TELEGRAM_BOT_TOKEN;
pub const PUSHOVER_APP_TOKEN: &str = DEFAULT_PUSHOVER_APP_TOKEN;
/// The header Herald carries its delivery id in to Slack, Discord, Telegram and Pushover.
pub const DELIVERY_ID_HEADER: &str = "X-Herald-Delivery-Id";

pub struct TestSimulator {
    pub address: String,
    /// Where the SMTP sink listens (on every test simulator, on its own free port).
    pub smtp: SocketAddr,
    pub client: reqwest::Client,
    pub server: actix_web::dev::ServerHandle,
}

impl Drop for TestSimulator {
    fn drop(&mut self) {
        // Stop the workers without waiting: each test has its own server.
        let server = self.server.clone();
        drop(tokio::spawn(async move { server.stop(false).await }));
    }
}

pub async fn spawn_simulator() -> TestSimulator {
    spawn_simulator_with(|_| {}).await
}

pub async fn spawn_simulator_with(configure: impl FnOnce(&mut SimulatorConfig)) -> TestSimulator {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    let port = listener.local_addr().unwrap().port();
    let smtp_listener = TcpListener::bind("127.0.0.1:0").expect("binding a free SMTP port");
    let smtp = smtp_listener.local_addr().unwrap();
    let mut config = SimulatorConfig {
        workers: 1,
        ..SimulatorConfig::default()
    };
    configure(&mut config);
    let server = herald_provider_sim::run_with_smtp(listener, smtp_listener, config)
        .expect("starting the simulator");
    let handle = server.handle();
    tokio::spawn(server);
    TestSimulator {
        address: format!("http://127.0.0.1:{port}"),
        smtp,
        client: reqwest::Client::new(),
        server: handle,
    }
}

/// A Mail Send body as Herald's worker sends it (services/herald-worker/src/providers/sendgrid.rs):
/// one recipient, its delivery and notification ids in the personalization's `custom_args`, one
/// text/plain block.
pub fn mail_with_reference(reference: &str) -> Value {
    json!({
        "personalizations": [{
            "to": [{"email": "alex@example.com"}],
            "custom_args": {
                "herald_notification_id": "0190a1b2-0000-7000-8000-000000000001",
                "herald_delivery_id": reference
            }
        }],
        "from": {"email": "notifications@herald.example"},
        "subject": "Your order shipped",
        "content": [{"type": "text/plain", "value": "It is on its way."}]
    })
}

pub fn sms_form(body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("To", "+14155552345".to_owned()),
        ("From", "+14155550000".to_owned()),
        ("Body", body.to_owned()),
    ]
}

impl TestSimulator {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send_mail(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v3/mail/send"))
            .bearer_auth(API_KEY)
            .json(body)
            .send()
            .await
            .expect("calling the simulated SendGrid")
    }

    pub fn messages_url(&self, account_sid: &str) -> String {
        self.url(&format!("/2010-04-01/Accounts/{account_sid}/Messages.json"))
    }

    /// Sends an SMS as the default account, with `reference` as the idempotency token.
    pub async fn send_sms(
        &self,
        form: &[(&'static str, String)],
        reference: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.messages_url(ACCOUNT_SID))
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
            .form(form);
        if let Some(reference) = reference {
            request = request.header("I-Twilio-Idempotency-Token", reference);
        }
        request.send().await.expect("calling the simulated Twilio")
    }

    /// Posts `body` as JSON to `path` with `reference` as `X-Herald-Delivery-Id`, as Herald's
    /// worker calls Slack, Discord and Telegram.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        reference: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(reference) = reference {
            request = request.header(DELIVERY_ID_HEADER, reference);
        }
        request.send().await.expect("calling the simulator")
    }

    /// Registers a Standard Webhooks endpoint, asserting it was accepted.
    pub async fn register_webhook_endpoint(&self, endpoint: &str, secret: &str) {
        let response = self
            .client
            .put(self.url(&format!("/_sim/webhook-endpoints/{endpoint}")))
            .json(&json!({"secret": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// The one message recorded for `reference`.
    pub async fn received_one(&self, provider: &str, reference: &str) -> Value {
        let received = self
            .get_json(&format!(
                "/_sim/received?provider={provider}&reference={reference}"
            ))
            .await;
        let messages = received["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{provider} {reference}: {received}");
        messages[0].clone()
    }

    pub async fn set_behaviour(&self, provider: &str, behaviour: Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/_sim/config/{provider}")))
            .json(&behaviour)
            .send()
            .await
            .unwrap()
    }

    /// Like `set_behaviour`, asserting it was accepted.
    pub async fn configure(&self, provider: &str, behaviour: Value) {
        let response = self.set_behaviour(provider, behaviour).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/_sim/stats").await
    }
}
