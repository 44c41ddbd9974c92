//! The webhook channel's signatures checked by an independent implementation: the Python
//! `standardwebhooks` package (installed by scripts/tools.sh) verifies a request exactly as the
//! worker's webhook provider sent it, raw body and headers.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use herald_channels::webhook::SignedWebhookContact;
use herald_channels::webhook::Webhook;
use herald_channels::{Contact, OutgoingMessage, Provider, SendOutcome};
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver got: the three signature headers and the raw body.
#[derive(Default, Clone)]
struct Captured {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn python_with_standardwebhooks() -> PathBuf {
    let tools = std::env::var_os("HERALD_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools"));
    let python = tools.join("venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run scripts/tools.sh install (make test does)",
        python.display()
    );
    python
}

#[tokio::test]
async fn a_sent_webhook_verifies_with_the_python_standardwebhooks_package() {
    let captured = Arc::new(Mutex::new(Captured::default()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server_capture = captured.clone();
    let server = HttpServer::new(move || {
        let capture = server_capture.clone();
        App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
            let capture = capture.clone();
            async move {
                let mut captured = capture.lock().unwrap();
                for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                    let value = request
                        .headers()
                        .get(name)
                        .map(|value| value.to_str().unwrap().to_owned());
                    captured
                        .headers
                        .push((name.to_owned(), value.unwrap_or_default()));
                }
                captured.body = body.to_vec();
                HttpResponse::NoContent().finish()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let provider = Webhook::new(reqwest::Client::new(), true);
    let delivery_id = Uuid::new_v4();
    let message = OutgoingMessage {
        delivery_id,
        notification_id: Uuid::now_v7(),
        user_id: "u1".into(),
        contact: Contact::Webhook(SignedWebhookContact {
            url: format!("http://{address}/hooks"),
            secret: SECRET.into(),
        }),
        subject: Some("Pressure alert".into()),
        body: "Pressure 7 on press-4 — ünïcode".into(),
        html: None,
        unsubscribe_url: None,
    };
    let outcome = provider.send(&message, Duration::from_secs(5)).await;
    assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    handle.stop(true).await;

    let captured = captured.lock().unwrap().clone();
    assert_eq!(captured.headers[0].1, delivery_id.to_string());
    let headers: serde_json::Map<String, serde_json::Value> = captured
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str())))
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret, headers_json, body_path = sys.argv[1], sys.argv[2], sys.argv[3]
body = open(body_path, "rb").read()
event = Webhook(secret).verify(body, json.loads(headers_json))
print(json.dumps(event))
"#;
    let body_file = std::env::temp_dir().join(format!("herald-webhook-{delivery_id}.json"));
    std::fs::write(&body_file, &captured.body).unwrap();
    let verified = Command::new(python_with_standardwebhooks())
        .args(["-c", script, SECRET])
        .arg(serde_json::Value::Object(headers.clone()).to_string())
        .arg(&body_file)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "standardwebhooks refused the signature: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let event: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(event["type"], "notification.message");
    assert_eq!(event["data"]["delivery_id"], delivery_id.to_string());
    assert_eq!(event["data"]["body"], "Pressure 7 on press-4 — ünïcode");

    // The same request with one byte of the body changed is refused.
    let mut tampered = captured.body.clone();
    *tampered.last_mut().unwrap() = b' ';
    std::fs::write(&body_file, &tampered).unwrap();
    let refused = Command::new(python_with_standardwebhooks())
        .args(["-c", script, SECRET])
        .arg(serde_json::Value::Object(headers).to_string())
        .arg(&body_file)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a tampered body must not verify");
    std::fs::remove_file(&body_file).ok();
}
