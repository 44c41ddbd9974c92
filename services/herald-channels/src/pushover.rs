//! Pushover's Message API: `POST {base_url}/1/messages.json`, form-encoded `token` (the tenant-wide
//! application token), `user` (the recipient's user or group key), `message` (at most 1,024
//! characters), `title` (at most 250) and `device` (the recipient's devices, all when absent).
//! `200 {"status": 1, "request": "<uuid>"}` is a message accepted, and `request` is kept. Invalid
//! input is a `4xx` with `status: 0` and an `errors` list, which no retry mends; an application over
//! its monthly limit is `429` (retried after `X-Limit-App-Reset`, the limit's reset); `5xx` is
//! retried. (https://pushover.net/api)
//!
//! This module is the whole channel: the recipient's contact (`channel_data.pushover`), the
//! `[providers.pushover]` section and the sender. Its registration is one line in `lib.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use herald_domain::{Channel, FieldError, ProviderId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::classify::{
    body_excerpt, classify_transport_error, is_retryable_status, parse_retry_after, read_capped,
    MAX_RETRY_AFTER,
};
use crate::kind::{ChannelKind, HttpClients, RateLimitScope};
use crate::provider::{
    truncate_chars, wrong_contact, OutgoingMessage, Provider, ProviderIdentity, SendOutcome,
    DELIVERY_ID_HEADER,
};
use crate::Contact;

crate::provider_section! {
    /// Pushover's Message API at `{base_url}/1/messages.json` (`https://api.pushover.net` in
    /// production), with the application's API token.
    pub struct PushoverSettings {
        pub app_token: SecretString,
    }
}

pub const PROVIDER: ProviderId = ProviderId::Pushover;
/// Pushover refuses a longer message…
pub const MAX_MESSAGE_CHARS: usize = 1_024;
/// …or title.
pub const MAX_TITLE_CHARS: usize = 250;
/// User and group keys, and application tokens: 30 letters and digits.
const KEY_CHARS: usize = 30;
/// Device names: 1 to 25 letters, digits, `_` or `-`.
const MAX_DEVICE_NAME_CHARS: usize = 25;
/// At most this many devices in one contact: more is no recipient's phone list.
const MAX_DEVICES: usize = 20;
/// Answers are small; a larger one is cut (its `errors` stay readable).
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Pushover asks clients not to retry a 5xx sooner than this.
const MIN_SERVER_ERROR_RETRY: Duration = Duration::from_secs(5);

/// A Pushover user or group key, and optionally which of the user's devices to send to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushoverContact {
    /// The user's or group's key: 30 letters and digits.
    #[schema(
        example = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG",
        pattern = r"^[A-Za-z0-9]{30}$"
    )]
    pub user_key: String,
    /// Device names, comma-separated (each 1 to 25 letters, digits, `_` or `-`); every device of
    /// the user when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "iphone,desk",
        pattern = r"^[A-Za-z0-9_-]{1,25}(,[A-Za-z0-9_-]{1,25})*$"
    )]
    pub device: Option<String>,
}

impl PushoverContact {
    fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if !is_key(&self.user_key) {
            problems.push(FieldError::new(
                "user_key",
                format!("must be {KEY_CHARS} letters and digits"),
            ));
        }
        if let Some(device) = &self.device {
            let names: Vec<&str> = device.split(',').collect();
            let well_formed = names.len() <= MAX_DEVICES
                && names.iter().all(|name| {
                    (1..=MAX_DEVICE_NAME_CHARS).contains(&name.len())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            if !well_formed {
                problems.push(FieldError::new(
                    "device",
                    format!(
                        "must be up to {MAX_DEVICES} comma-separated device names, each 1 to \
                         {MAX_DEVICE_NAME_CHARS} letters, digits, `_` or `-`"
                    ),
                ));
            }
        }
        problems
    }
}

fn is_key(text: &str) -> bool {
    text.len() == KEY_CHARS && text.chars().all(|c| c.is_ascii_alphanumeric())
}

pub struct Pushover {
    identity: ProviderIdentity,
    client: reqwest::Client,
    messages_url: String,
    /// Never logged, never in a span: it is only in the request's body.
    app_token: SecretString,
}

#[derive(Serialize)]
struct MessageForm<'a> {
    token: &'a str,
    user: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
}

/// Every answer: `status` 1 and the `request` id, or 0 and the `errors`.
#[derive(Deserialize)]
struct Answer {
    status: i64,
    #[serde(default)]
    request: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

impl Pushover {
    pub fn new(settings: &PushoverSettings, client: reqwest::Client) -> Pushover {
        let messages_url = format!(
            "{}/1/messages.json",
            settings.base_url.trim_end_matches('/')
        );
        Pushover {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: messages_url.clone(),
            },
            client,
            messages_url,
            app_token: settings.app_token.clone(),
        }
    }

    /// The form-encoded body for `message`: all that `send` does before the network.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<Vec<u8>, SendOutcome> {
        let Contact::Pushover(contact) = &message.contact else {
            return Err(wrong_contact(PROVIDER, message));
        };
        let form = MessageForm {
            token: self.app_token.expose_secret(),
            user: &contact.user_key,
            message: truncate_chars(&message.body, MAX_MESSAGE_CHARS),
            title: message
                .subject
                .as_deref()
                .filter(|subject| !subject.is_empty())
                .map(|subject| truncate_chars(subject, MAX_TITLE_CHARS)),
            device: contact.device.as_deref(),
        };
        serde_urlencoded::to_string(&form)
            .map(String::into_bytes)
            .map_err(|error| SendOutcome::Permanent {
                error: format!("the {PROVIDER} request cannot be encoded: {error}"),
                http_status: None,
            })
    }
}

/// What an answer means. `retry_after` is the limit's reset (for a 429) or `Retry-After`.
fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    answer: Option<Answer>,
    answer_bytes: &[u8],
) -> SendOutcome {
    if status.is_success() {
        // Pushover answers 200 only for a request it took: the message is on its way even if the
        // body cannot be read, and sending it again would send it twice.
        return SendOutcome::Sent {
            provider_message_id: answer
                .filter(|answer| answer.status == 1)
                .and_then(|answer| answer.request),
            http_status: status.as_u16(),
        };
    }
    let errors = answer
        .as_ref()
        .filter(|answer| !answer.errors.is_empty())
        .map(|answer| answer.errors.join("; "))
        .unwrap_or_else(|| body_excerpt(answer_bytes));
    let error = format!("{PROVIDER} answered {status}: {errors}");
    if is_retryable_status(status) {
        let retry_after = if status.is_server_error() {
            Some(retry_after.unwrap_or_default().max(MIN_SERVER_ERROR_RETRY))
        } else {
            retry_after
        };
        return SendOutcome::Retryable {
            error,
            http_status: Some(status.as_u16()),
            retry_after,
        };
    }
    SendOutcome::Permanent {
        error,
        http_status: Some(status.as_u16()),
    }
}

/// How long until `X-Limit-App-Reset` (Unix seconds), the end of an application's monthly limit.
fn until_limit_reset(reset: &str, now: SystemTime) -> Option<Duration> {
    let reset = UNIX_EPOCH + Duration::from_secs(reset.trim().parse::<u64>().ok()?);
    Some(
        reset
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

impl ChannelKind for Pushover {
    const CHANNEL: Channel = Channel::Pushover;
    const PROVIDER: ProviderId = PROVIDER;
    /// A 429 is the application's monthly limit: every replica's.
    const RATE_LIMIT_SCOPE: RateLimitScope = RateLimitScope::Account;
    type Contact = PushoverContact;
    type ContactView = PushoverContact;
    type Settings = PushoverSettings;

    fn contact_problems(contact: &PushoverContact, _: bool) -> Vec<FieldError> {
        contact.problems()
    }

    fn view(contact: &PushoverContact) -> PushoverContact {
        contact.clone()
    }

    fn sender(
        settings: &PushoverSettings,
        clients: &HttpClients,
    ) -> anyhow::Result<Arc<dyn Provider>> {
        Ok(Arc::new(Pushover::new(
            settings,
            clients.provider_apis.clone(),
        )))
    }
}

#[async_trait]
impl Provider for Pushover {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let body = match self.request_body(message) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let response = self
            .client
            .post(&self.messages_url)
            .header(DELIVERY_ID_HEADER, message.delivery_id.to_string())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match response {
            Err(error) => return classify_transport_error(PROVIDER, error),
            Ok(response) => response,
        };
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let now = SystemTime::now();
        let retry_after = match status {
            reqwest::StatusCode::TOO_MANY_REQUESTS => header("x-limit-app-reset")
                .and_then(|reset| until_limit_reset(&reset, now))
                .or_else(|| header("retry-after").and_then(|value| parse_retry_after(&value, now))),
            _ => header("retry-after").and_then(|value| parse_retry_after(&value, now)),
        };
        let answer_bytes = read_capped(response, MAX_ANSWER_BYTES).await;
        let answer = serde_json::from_slice::<Answer>(&answer_bytes).ok();
        classify(status, retry_after, answer, &answer_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn contact(user_key: &str, device: Option<&str>) -> PushoverContact {
        PushoverContact {
            user_key: user_key.to_owned(),
            device: device.map(str::to_owned),
        }
    }

    const KEY: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

    #[test]
    fn a_contact_is_a_thirty_character_key_and_well_formed_device_names() {
        assert!(contact(KEY, None).problems().is_empty());
        assert!(contact(KEY, Some("iphone,desk_2,old-pad"))
            .problems()
            .is_empty());
        let fields = |contact: PushoverContact| -> Vec<String> {
            contact
                .problems()
                .into_iter()
                .map(|problem| problem.field)
                .collect()
        };
        assert_eq!(fields(contact("short", None)), ["user_key"]);
        assert_eq!(
            fields(contact(&format!("{}é", &KEY[..29]), None)),
            ["user_key"]
        );
        for device in [
            "",
            "iphone,",
            "a b",
            &"d".repeat(26),
            &vec!["d"; 21].join(","),
        ] {
            assert_eq!(fields(contact(KEY, Some(device))), ["device"], "{device:?}");
        }
    }

    fn outgoing(subject: Option<&str>, body: &str) -> OutgoingMessage {
        OutgoingMessage {
            delivery_id: uuid::Uuid::nil(),
            notification_id: uuid::Uuid::nil(),
            user_id: "u1".into(),
            contact: Contact::Pushover(contact(KEY, Some("iphone"))),
            subject: subject.map(str::to_owned),
            body: body.to_owned(),
            html: None,
            unsubscribe_url: None,
        }
    }

    fn pushover() -> Pushover {
        Pushover::new(
            &PushoverSettings {
                base_url: "http://127.0.0.1:9090/pushover/".into(),
                app_token: SecretString::from("azGDORePK8gMaC0QOYAMyEEuzJnyUi".to_owned()),
                timeout_ms: 1000,
                requests_per_second: 10,
                max_in_flight: 1,
                max_held: 1,
            },
            reqwest::Client::new(),
        )
    }

    #[test]
    fn the_request_is_the_form_pushover_documents_with_long_text_cut() {
        let body = pushover()
            .request_body(&outgoing(Some("Disk full"), &"é".repeat(2_000)))
            .unwrap();
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(
            field("token").as_deref(),
            Some("azGDORePK8gMaC0QOYAMyEEuzJnyUi")
        );
        assert_eq!(field("user").as_deref(), Some(KEY));
        assert_eq!(field("title").as_deref(), Some("Disk full"));
        assert_eq!(field("device").as_deref(), Some("iphone"));
        assert_eq!(field("message").unwrap().chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(
            pushover().messages_url,
            "http://127.0.0.1:9090/pushover/1/messages.json"
        );
        let untitled = pushover().request_body(&outgoing(None, "hi")).unwrap();
        assert!(!String::from_utf8(untitled).unwrap().contains("title="));
    }

    fn answer(json: &str) -> (Option<Answer>, Vec<u8>) {
        (serde_json::from_str(json).ok(), json.as_bytes().to_vec())
    }

    #[test]
    fn an_accepted_message_keeps_its_request_id_and_an_unreadable_200_is_still_sent() {
        let (parsed, bytes) =
            answer(r#"{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}"#);
        assert_eq!(
            classify(StatusCode::OK, None, parsed, &bytes),
            SendOutcome::Sent {
                provider_message_id: Some("647d2300-702c-4b38-8b2f-d56326ae460b".into()),
                http_status: 200
            }
        );
        assert_eq!(
            classify(StatusCode::OK, None, None, b"<html>"),
            SendOutcome::Sent {
                provider_message_id: None,
                http_status: 200
            }
        );
    }

    #[test]
    fn invalid_input_fails_for_good_naming_pushovers_errors() {
        let (parsed, bytes) = answer(
            r#"{"user":"invalid","errors":["user identifier is invalid"],"status":0,"request":"x"}"#,
        );
        let outcome = classify(StatusCode::BAD_REQUEST, None, parsed, &bytes);
        let SendOutcome::Permanent { error, http_status } = outcome else {
            panic!("a 400 is permanent: {outcome:?}");
        };
        assert_eq!(http_status, Some(400));
        assert!(error.contains("user identifier is invalid"), "{error}");
    }

    #[test]
    fn over_the_limit_waits_for_its_reset_and_a_server_error_at_least_five_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let reset = until_limit_reset("1003600", now);
        assert_eq!(reset, Some(Duration::from_secs(3600)));
        assert_eq!(until_limit_reset("999999", now), Some(Duration::ZERO));
        assert_eq!(until_limit_reset("soon", now), None);
        let (parsed, bytes) =
            answer(r#"{"status":0,"errors":["application is over its message limit"]}"#);
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, reset, parsed, &bytes),
            SendOutcome::Retryable { retry_after, http_status: Some(429), .. } if retry_after == reset
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, None, b""),
            SendOutcome::Retryable { retry_after: Some(delay), .. } if delay == MIN_SERVER_ERROR_RETRY
        ));
    }
}
