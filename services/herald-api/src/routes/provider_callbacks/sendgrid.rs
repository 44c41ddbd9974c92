//! `POST /v1/providers/sendgrid/events`: SendGrid's signed Event Webhook, a JSON array of events.
//! Each event carries the message's `custom_args` as top-level fields: the worker sets
//! `herald_notification_id` and `herald_delivery_id`, the delivery's key.

use actix_web::{web, HttpRequest, HttpResponse};
use herald_domain::{ProviderId, ProviderReport};
use herald_store::provider_reports::DeliveryReport;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::sendgrid_signature::{SignatureProblem, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{apply_and_acknowledge, header, malformed, refuse, ProviderCallbacks, Refusal};
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_body_within_budget;
use crate::state::AppState;

const PROVIDER: ProviderId = ProviderId::SendGrid;

/// One event as SendGrid posts it; only the fields Herald reads are listed (SendGrid sends more,
/// and they are ignored). Fields are taken leniently: an event Herald cannot use is ignored, not
/// refused, since a refused batch would be retried for days.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendGridEvent {
    /// `processed`, `dropped`, `delivered`, `deferred`, `bounce`, `blocked`, `open`, `click`, …
    #[schema(value_type = String, example = "delivered")]
    #[serde(default)]
    pub event: Option<Value>,
    /// A custom arg the worker sets: the delivery's notification.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub herald_notification_id: Option<Value>,
    /// A custom arg the worker sets: the delivery.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub herald_delivery_id: Option<Value>,
    /// Why it bounced or was dropped.
    #[schema(value_type = Option<String>, example = "550 5.1.1 The email account does not exist")]
    #[serde(default)]
    pub reason: Option<Value>,
}

/// The events Herald acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Delivered,
    Bounce,
    Blocked,
    Dropped,
    /// Processed, deferred (SendGrid retries), opens, clicks, unsubscribes, …
    Other,
}

impl EventKind {
    fn parse(name: &str) -> EventKind {
        match name {
            "delivered" => EventKind::Delivered,
            "bounce" => EventKind::Bounce,
            "blocked" => EventKind::Blocked,
            "dropped" => EventKind::Dropped,
            _ => EventKind::Other,
        }
    }

    fn report(self) -> Option<ProviderReport> {
        match self {
            EventKind::Delivered => Some(ProviderReport::Delivered),
            EventKind::Bounce | EventKind::Blocked => Some(ProviderReport::Bounced),
            EventKind::Dropped => Some(ProviderReport::Failed),
            EventKind::Other => None,
        }
    }
}

/// The report an event makes, if it names a Herald delivery and reports its fate.
fn delivery_report(event: &SendGridEvent) -> Option<DeliveryReport> {
    let name = event.event.as_ref()?.as_str()?;
    let report = EventKind::parse(name).report()?;
    let uuid_field = |field: &Option<Value>| {
        field
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok())
    };
    let reason = event.reason.as_ref().and_then(Value::as_str);
    Some(DeliveryReport {
        notification_id: uuid_field(&event.herald_notification_id)?,
        delivery_id: uuid_field(&event.herald_delivery_id)?,
        report,
        detail: match (report, reason) {
            (ProviderReport::Delivered, _) => None,
            (_, Some(reason)) => Some(format!("sendgrid {name}: {reason}")),
            (_, None) => Some(format!("sendgrid {name}")),
        },
    })
}

/// Receives a batch of SendGrid events and moves the sent deliveries they report on.
#[utoipa::path(post, path = "/v1/providers/sendgrid/events", tag = "provider callbacks",
    params(
        ("X-Twilio-Email-Event-Webhook-Signature" = String, Header,
            description = "base64 DER ECDSA P-256 signature of SHA-256(timestamp header + raw body)"),
        ("X-Twilio-Email-Event-Webhook-Timestamp" = String, Header,
            description = "Unix time of signing; at most 10 minutes from now"),
    ),
    request_body(content = Vec<SendGridEvent>, content_type = "application/json"),
    responses(
        (status = 204, description = "verified; every report applied or counted as unchanged"),
        (status = 400, body = ErrorBody, description = "not a JSON array of events"),
        (status = 401, body = ErrorBody, description = "unsigned, badly signed or stale; nothing changed"),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn receive_sendgrid_events(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    callbacks: web::Data<ProviderCallbacks>,
) -> Result<HttpResponse, ApiError> {
    let Some(verifier) = &callbacks.sendgrid else {
        return Err(refuse(PROVIDER, Refusal::NotConfigured));
    };
    // Headers first: an unsigned request costs no body read.
    let (Some(signature), Some(timestamp)) = (
        header(&request, SIGNATURE_HEADER),
        header(&request, TIMESTAMP_HEADER),
    ) else {
        return Err(refuse(PROVIDER, Refusal::Unsigned));
    };
    let refusal = |problem| {
        refuse(
            PROVIDER,
            match problem {
                SignatureProblem::BadSignature => Refusal::BadSignature,
                SignatureProblem::Stale => Refusal::Stale,
            },
        )
    };
    // A stale or malformed signature is refused before the body takes any budget; the signature
    // itself, over the body, is checked once the body is here.
    let now_unix = chrono::Utc::now().timestamp();
    verifier
        .check_headers(timestamp, signature, now_unix)
        .map_err(refusal)?;
    let (body, _bytes) = read_body_within_budget(&request, payload, &state).await?;
    verifier
        .verify(timestamp, signature, &body, now_unix)
        .map_err(refusal)?;
    let events: Vec<SendGridEvent> = serde_json::from_slice(&body).map_err(|error| {
        malformed(
            PROVIDER,
            format!("expected a JSON array of events: {error}"),
        )
    })?;
    let reports: Vec<DeliveryReport> = events.iter().filter_map(delivery_report).collect();
    let ignored = events.len() - reports.len();
    apply_and_acknowledge(&state, PROVIDER, &reports, ignored).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Value) -> SendGridEvent {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn events_map_to_reports_with_their_reasons() {
        let (notification, delivery) = (Uuid::now_v7(), Uuid::new_v4());
        let ids = |name: &str, extra: Value| {
            let mut value = json!({
                "event": name,
                "herald_notification_id": notification.to_string(),
                "herald_delivery_id": delivery.to_string(),
                "email": "a@example.com",
                "timestamp": 1764136800,
                "sg_message_id": "abc.filter0001",
            });
            value
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            event(value)
        };
        let delivered = delivery_report(&ids("delivered", json!({"response": "250 OK"}))).unwrap();
        assert_eq!(delivered.report, ProviderReport::Delivered);
        assert_eq!(
            (delivered.notification_id, delivered.delivery_id),
            (notification, delivery)
        );
        assert_eq!(delivered.detail, None);
        let bounce = delivery_report(&ids(
            "bounce",
            json!({"reason": "550 5.1.1 no such user", "type": "bounce"}),
        ))
        .unwrap();
        assert_eq!(bounce.report, ProviderReport::Bounced);
        assert_eq!(
            bounce.detail.as_deref(),
            Some("sendgrid bounce: 550 5.1.1 no such user")
        );
        assert_eq!(
            delivery_report(&ids("blocked", json!({}))).unwrap().report,
            ProviderReport::Bounced
        );
        let dropped =
            delivery_report(&ids("dropped", json!({"reason": "Bounced Address"}))).unwrap();
        assert_eq!(dropped.report, ProviderReport::Failed);
        for ignored in [
            "processed",
            "deferred",
            "open",
            "click",
            "spamreport",
            "unsubscribe",
        ] {
            assert_eq!(delivery_report(&ids(ignored, json!({}))), None, "{ignored}");
        }
    }

    #[test]
    fn events_without_a_herald_delivery_are_ignored() {
        assert_eq!(delivery_report(&event(json!({"event": "delivered"}))), None);
        assert_eq!(
            delivery_report(&event(json!({
                "event": "delivered",
                "herald_notification_id": "not a uuid",
                "herald_delivery_id": Uuid::new_v4().to_string(),
            }))),
            None
        );
        assert_eq!(
            delivery_report(&event(json!({
                "event": 7,
                "herald_notification_id": Uuid::new_v4().to_string(),
                "herald_delivery_id": Uuid::new_v4().to_string(),
            }))),
            None
        );
    }
}
