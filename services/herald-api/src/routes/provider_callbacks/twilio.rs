//! `POST /v1/providers/twilio/status`: Twilio's status callback for a message, form-encoded
//! (`MessageSid`, `MessageStatus`, `ErrorCode`, …). The worker asks for it with each message, at
//! `{providers.twilio.status_callback_base_url}/v1/providers/twilio/status?notification_id=…&delivery_id=…`,
//! so the URL names the delivery, and the signature covers the URL.

use actix_web::{web, HttpRequest, HttpResponse};
use herald_domain::{ProviderId, ProviderReport};
use herald_store::provider_reports::DeliveryReport;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::twilio_signature::{is_valid_signature, SIGNATURE_HEADER};
use super::{apply_and_acknowledge, header, malformed, refuse, ProviderCallbacks, Refusal};
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_any_body_within_budget;
use crate::state::AppState;

const PROVIDER: ProviderId = ProviderId::Twilio;
/// A status callback is a few hundred bytes of form parameters.
pub const MAX_STATUS_CALLBACK_BYTES: usize = 64 * 1024;
/// The route, as the worker builds `StatusCallback` URLs from it.
pub use herald_config::TWILIO_STATUS_CALLBACK_PATH as STATUS_CALLBACK_PATH;

/// The delivery a callback is about: the query of the `StatusCallback` URL.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusCallbackTarget {
    pub notification_id: Option<String>,
    pub delivery_id: Option<String>,
}

/// The parameters Herald reads; Twilio sends more (`AccountSid`, `From`, `To`, …), all covered by
/// the signature and otherwise ignored.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TwilioStatusCallback {
    #[schema(example = "SM1f0e8ae6ade43cb3c0ce4525424e404f")]
    pub message_sid: String,
    /// `queued`, `sending`, `sent`, `delivered`, `undelivered`, `failed`, `read`, …
    #[schema(example = "undelivered")]
    pub message_status: String,
    /// Twilio's error code when undelivered or failed.
    #[schema(example = "30003")]
    pub error_code: Option<String>,
}

/// The statuses Herald acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageStatus {
    Delivered,
    Undelivered,
    Failed,
    /// Queued, sending, sent (to the carrier), read, …: not the message's fate.
    Other,
}

impl MessageStatus {
    fn parse(name: &str) -> MessageStatus {
        match name {
            "delivered" => MessageStatus::Delivered,
            "undelivered" => MessageStatus::Undelivered,
            "failed" => MessageStatus::Failed,
            _ => MessageStatus::Other,
        }
    }

    fn report(self) -> Option<ProviderReport> {
        match self {
            MessageStatus::Delivered => Some(ProviderReport::Delivered),
            MessageStatus::Undelivered | MessageStatus::Failed => Some(ProviderReport::Failed),
            MessageStatus::Other => None,
        }
    }
}

fn parameter<'a>(parameters: &'a [(String, String)], name: &str) -> Option<&'a str> {
    parameters
        .iter()
        .find(|(each, _)| each == name)
        .map(|(_, value)| value.as_str())
}

/// The report a verified callback makes, if it names a delivery and reports its fate.
fn delivery_report(
    target: &StatusCallbackTarget,
    status_name: &str,
    parameters: &[(String, String)],
) -> Option<DeliveryReport> {
    let report = MessageStatus::parse(status_name).report()?;
    let uuid =
        |field: &Option<String>| field.as_deref().and_then(|text| Uuid::parse_str(text).ok());
    let detail = match (report, parameter(parameters, "ErrorCode")) {
        (ProviderReport::Delivered, _) => None,
        (_, Some(code)) if !code.is_empty() => Some(format!("twilio {status_name}: error {code}")),
        (_, _) => Some(format!("twilio {status_name}")),
    };
    Some(DeliveryReport {
        notification_id: uuid(&target.notification_id)?,
        delivery_id: uuid(&target.delivery_id)?,
        report,
        detail,
    })
}

/// The URL Twilio called and signed: the configured public base URL with this request's path
/// and query. Behind a proxy, `Host` and the scheme the API sees are not the ones Twilio used.
fn called_url(public_base_url: &str, request: &HttpRequest) -> String {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|value| value.as_str())
        .unwrap_or_else(|| request.uri().path());
    format!("{public_base_url}{path_and_query}")
}

/// Receives one Twilio status callback and moves the sent delivery it reports on.
#[utoipa::path(post, path = "/v1/providers/twilio/status", tag = "provider callbacks",
    params(
        StatusCallbackTarget,
        ("X-Twilio-Signature" = String, Header,
            description = "base64 HMAC-SHA1 (auth token) of the URL called + sorted parameters"),
    ),
    request_body(content = TwilioStatusCallback, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 204, description = "verified; the report applied or counted as unchanged"),
        (status = 400, body = ErrorBody, description = "not a Twilio status callback"),
        (status = 401, body = ErrorBody, description = "unsigned or badly signed; nothing changed"),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn receive_twilio_status(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    callbacks: web::Data<ProviderCallbacks>,
) -> Result<HttpResponse, ApiError> {
    let Some(public_base_url) = &callbacks.twilio_public_base_url else {
        return Err(refuse(PROVIDER, Refusal::NotConfigured));
    };
    let Some(signature) = header(&request, SIGNATURE_HEADER) else {
        return Err(refuse(PROVIDER, Refusal::Unsigned));
    };
    let (body, _bytes) =
        read_any_body_within_budget(&request, payload, &state, MAX_STATUS_CALLBACK_BYTES).await?;
    // Form decoding never fails: whatever the body, the signature decides.
    let parameters: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let url = called_url(public_base_url, &request);
    if !is_valid_signature(&callbacks.twilio_auth_token, &url, &parameters, signature) {
        return Err(refuse(PROVIDER, Refusal::BadSignature));
    }
    let Some(status_name) = parameter(&parameters, "MessageStatus") else {
        return Err(malformed(PROVIDER, "`MessageStatus` is missing".to_owned()));
    };
    let target: StatusCallbackTarget = serde_urlencoded::from_str(request.query_string())
        .unwrap_or(StatusCallbackTarget {
            notification_id: None,
            delivery_id: None,
        });
    let reports: Vec<DeliveryReport> = delivery_report(&target, status_name, &parameters)
        .into_iter()
        .collect();
    let ignored = 1 - reports.len();
    apply_and_acknowledge(&state, PROVIDER, &reports, ignored).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn statuses_map_to_reports_and_keep_the_error_code() {
        let target = StatusCallbackTarget {
            notification_id: Some(Uuid::now_v7().to_string()),
            delivery_id: Some(Uuid::new_v4().to_string()),
        };
        let delivered = delivery_report(&target, "delivered", &form(&[])).unwrap();
        assert_eq!(
            (delivered.report, delivered.detail),
            (ProviderReport::Delivered, None)
        );
        let undelivered =
            delivery_report(&target, "undelivered", &form(&[("ErrorCode", "30003")])).unwrap();
        assert_eq!(undelivered.report, ProviderReport::Failed);
        assert_eq!(
            undelivered.detail.as_deref(),
            Some("twilio undelivered: error 30003")
        );
        let failed = delivery_report(&target, "failed", &form(&[])).unwrap();
        assert_eq!(failed.detail.as_deref(), Some("twilio failed"));
        for other in ["queued", "sending", "sent", "accepted", "read", "canceled"] {
            assert_eq!(delivery_report(&target, other, &form(&[])), None, "{other}");
        }
        let nameless = StatusCallbackTarget {
            notification_id: None,
            delivery_id: target.delivery_id.clone(),
        };
        assert_eq!(delivery_report(&nameless, "delivered", &form(&[])), None);
    }
}
