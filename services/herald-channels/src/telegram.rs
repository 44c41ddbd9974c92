//! Telegram Bot API: `POST {base_url}/bot{token}/sendMessage` with `{"chat_id", "text"}` (at most
//! 4,096 characters); `200 {"ok": true, "result": {"message_id"}}`. A flood limit is `429` with
//! `parameters.retry_after` in the body; a blocked bot or an unknown chat is `403` or
//! `400`, which no retry mends. (The Bot API server also sends `Retry-After` on 429; the body's
//! value is preferred, the header is the fallback.)

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use herald_domain::{Channel, FieldError, ProviderId};
use reqwest::header::RETRY_AFTER;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::classify::{
    body_excerpt, classify_transport_error, is_retryable_status, parse_retry_after, read_capped,
    MAX_RETRY_AFTER,
};
use crate::kind::{ChannelKind, HttpClients, RateLimitScope};
use crate::provider::{
    encode_json, truncate_chars, wrong_contact, OutgoingMessage, Provider, ProviderIdentity,
    SendOutcome, DELIVERY_ID_HEADER,
};
use crate::Contact;

crate::provider_section! {
    /// The Telegram Bot API: `POST {base_url}/bot{bot_token}/sendMessage`.
    pub struct TelegramSettings {
        pub bot_token: SecretString,
    }
}

/// A Telegram chat the tenant's bot writes to: its numeric id or `@channelusername`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramContact {
    #[schema(schema_with = telegram_chat_id_schema)]
    pub chat_id: TelegramChatId,
}

/// Largest magnitude of a numeric Telegram chat id: Telegram's ids have at most 52 significant
/// bits, and a JSON number this size is exact in every client's double.
pub const MAX_TELEGRAM_CHAT_ID: i64 = (1 << 53) - 1;

/// A numeric chat id other than 0, or `@` and a public username (utoipa's attributes reach neither
/// variant).
fn telegram_chat_id_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(-MAX_TELEGRAM_CHAT_ID))
                .maximum(Some(-1)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1))
                .maximum(Some(MAX_TELEGRAM_CHAT_ID)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some(r"^@[A-Za-z0-9_]{5,32}$")),
        )
        .into()
}

/// Telegram takes `chat_id` as an integer or a string; it is given back as it came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TelegramChatId {
    /// A chat's numeric id (never 0; groups' are negative).
    Number(i64),
    /// `@` and a public username of 5 to 32 letters, digits or underscores.
    Name(String),
}

/// By hand rather than `untagged`, for two reasons: JSON has one number type, so `-1001234.0` is
/// the integer `-1001234` (as JSON Schema says, and some clients' encoders write it so), and a
/// number that is no chat id gets a message saying so rather than "did not match any variant".
impl<'de> Deserialize<'de> for TelegramChatId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Number(serde_json::Number),
            Name(String),
        }
        let number = match Given::deserialize(deserializer)? {
            Given::Name(name) => return Ok(TelegramChatId::Name(name)),
            Given::Number(number) => number,
        };
        let whole = number.as_i64().or_else(|| {
            // Within ±2^53 a double holds every whole number exactly, so the cast is exact.
            number
                .as_f64()
                .filter(|value| value.fract() == 0.0 && value.abs() <= MAX_TELEGRAM_CHAT_ID as f64)
                .map(|value| value as i64)
        });
        whole.map(TelegramChatId::Number).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "a numeric chat id must be a whole number between -{MAX_TELEGRAM_CHAT_ID} and \
                 {MAX_TELEGRAM_CHAT_ID}, got {number}"
            ))
        })
    }
}

impl TelegramContact {
    pub fn problem(&self) -> Option<FieldError> {
        let field = "chat_id";
        match &self.chat_id {
            TelegramChatId::Number(0) => Some(FieldError::new(field, "must not be 0")),
            TelegramChatId::Number(number) if number.abs() > MAX_TELEGRAM_CHAT_ID => {
                Some(FieldError::new(
                    field,
                    format!("must be between -{MAX_TELEGRAM_CHAT_ID} and {MAX_TELEGRAM_CHAT_ID}"),
                ))
            }
            TelegramChatId::Number(_) => None,
            TelegramChatId::Name(name) => {
                // Telegram's public usernames: `@`, then 5 to 32 letters, digits or underscores.
                let well_formed = name.strip_prefix('@').is_some_and(|username| {
                    (5..=32).contains(&username.len())
                        && username
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                (!well_formed).then(|| {
                    FieldError::new(
                        field,
                        "must be a numeric chat id or `@` and a 5 to 32 character username",
                    )
                })
            }
        }
    }
}

impl TelegramChatId {
    /// As Telegram's `chat_id` takes it in a JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            TelegramChatId::Number(number) => serde_json::Value::from(*number),
            TelegramChatId::Name(name) => serde_json::Value::from(name.as_str()),
        }
    }
}

pub const PROVIDER: ProviderId = ProviderId::Telegram;
/// Telegram refuses a longer message text.
pub const MAX_TEXT_CHARS: usize = 4_096;
/// Answers are small; a larger one is cut (an error's description stays readable).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

pub struct Telegram {
    /// Its endpoint is the API's URL with the token replaced, for spans.
    identity: ProviderIdentity,
    client: reqwest::Client,
    /// Holds the bot token: never logged, never in a span.
    send_message_url: SecretString,
}

/// No `parse_mode`: the text is plain, so a notification's `*` or `_` is never read as markup
/// (and refused when unbalanced).
#[derive(Serialize)]
struct SendMessage {
    chat_id: serde_json::Value,
    text: String,
}

/// Every Bot API answer: `ok`, then `result` or `error_code`, `description` and `parameters`.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<SentMessage>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct SentMessage {
    message_id: i64,
}

#[derive(Deserialize)]
struct ResponseParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

impl Telegram {
    pub fn new(settings: &TelegramSettings, client: reqwest::Client) -> Telegram {
        let base_url = settings.base_url.trim_end_matches('/');
        Telegram {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint: format!("{base_url}/bot<token>/sendMessage"),
            },
            client,
            send_message_url: SecretString::from(format!(
                "{base_url}/bot{}/sendMessage",
                settings.bot_token.expose_secret()
            )),
        }
    }

    /// The sendMessage JSON body for `message`: all that `send` does before the network.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<Vec<u8>, SendOutcome> {
        let Contact::Telegram(contact) = &message.contact else {
            return Err(wrong_contact(PROVIDER, message));
        };
        let body = SendMessage {
            chat_id: contact.chat_id.to_json(),
            text: truncate_chars(&message.text(), MAX_TEXT_CHARS),
        };
        encode_json(PROVIDER, &body)
    }
}

fn classify(
    status: reqwest::StatusCode,
    retry_after_header: Option<Duration>,
    answer: Option<Answer>,
    answer_bytes: &[u8],
) -> SendOutcome {
    if status.is_success() {
        if let Some(Answer {
            ok: true, result, ..
        }) = &answer
        {
            return SendOutcome::Sent {
                provider_message_id: result.as_ref().map(|sent| sent.message_id.to_string()),
                http_status: status.as_u16(),
            };
        }
    }
    let description = answer
        .as_ref()
        .and_then(|answer| answer.description.clone())
        .unwrap_or_else(|| body_excerpt(answer_bytes));
    let error = format!("{PROVIDER} answered {status}: {description}");
    let retry_after_body = answer
        .as_ref()
        .and_then(|answer| answer.parameters.as_ref())
        .and_then(|parameters| parameters.retry_after)
        .map(|seconds| Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    if is_retryable_status(status) {
        return SendOutcome::Retryable {
            error,
            http_status: Some(status.as_u16()),
            retry_after: retry_after_body.or(retry_after_header),
        };
    }
    if status.is_success() {
        // 200 with `ok: false` or an unreadable body: the message's fate is unknown.
        return SendOutcome::Retryable {
            error,
            http_status: Some(status.as_u16()),
            retry_after: None,
        };
    }
    SendOutcome::Permanent {
        error,
        http_status: Some(status.as_u16()),
    }
}

impl ChannelKind for Telegram {
    const CHANNEL: Channel = Channel::Telegram;
    const PROVIDER: ProviderId = PROVIDER;
    /// A flood limit is one chat's.
    const RATE_LIMIT_SCOPE: RateLimitScope = RateLimitScope::Destination;
    type Contact = TelegramContact;
    type ContactView = TelegramContact;
    type Settings = TelegramSettings;

    fn contact_problems(
        contact: &TelegramContact,
        _allow_private_networks: bool,
    ) -> Vec<FieldError> {
        contact.problem().into_iter().collect()
    }

    fn view(contact: &TelegramContact) -> TelegramContact {
        contact.clone()
    }

    fn sender(
        settings: &TelegramSettings,
        clients: &HttpClients,
    ) -> anyhow::Result<Arc<dyn Provider>> {
        Ok(Arc::new(Telegram::new(
            settings,
            clients.provider_apis.clone(),
        )))
    }
}

#[async_trait]
impl Provider for Telegram {
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
            .post(self.send_message_url.expose_secret())
            .header(DELIVERY_ID_HEADER, message.delivery_id.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match response {
            // reqwest names the URL in its errors: the token must not reach `last_error`.
            Err(error) => return classify_transport_error(PROVIDER, error.without_url()),
            Ok(response) => response,
        };
        let status = response.status();
        let retry_after_header = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let answer_bytes = read_capped(response, MAX_ANSWER_BYTES).await;
        let answer = serde_json::from_slice::<Answer>(&answer_bytes).ok();
        classify(status, retry_after_header, answer, &answer_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_chat_id_is_any_whole_json_number_within_telegrams_range() {
        let chat_id = |value: serde_json::Value| {
            serde_json::from_value::<TelegramContact>(serde_json::json!({"chat_id": value}))
                .map(|contact| contact.chat_id)
        };
        assert_eq!(
            chat_id(serde_json::json!(-1001234.0)).unwrap(),
            TelegramChatId::Number(-1001234)
        );
        assert_eq!(
            chat_id(serde_json::json!(42)).unwrap(),
            TelegramChatId::Number(42)
        );
        assert!(chat_id(serde_json::json!(1.5)).is_err());
        assert!(chat_id(serde_json::json!(1e30)).is_err());
        assert!(chat_id(serde_json::json!(u64::MAX)).is_err());
        let beyond = TelegramContact {
            chat_id: TelegramChatId::Number(MAX_TELEGRAM_CHAT_ID + 1),
        };
        assert!(beyond.problem().is_some());
    }
    use reqwest::StatusCode;

    fn answer(json: &str) -> (Option<Answer>, Vec<u8>) {
        (serde_json::from_str(json).ok(), json.as_bytes().to_vec())
    }

    #[test]
    fn a_sent_message_keeps_its_id() {
        let (parsed, bytes) = answer(r#"{"ok":true,"result":{"message_id":42,"chat":{"id":7}}}"#);
        assert_eq!(
            classify(StatusCode::OK, None, parsed, &bytes),
            SendOutcome::Sent {
                provider_message_id: Some("42".into()),
                http_status: 200
            }
        );
    }

    #[test]
    fn a_flood_limit_waits_as_long_as_the_body_says() {
        let (parsed, bytes) = answer(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
        );
        let SendOutcome::Retryable { retry_after, .. } =
            classify(StatusCode::TOO_MANY_REQUESTS, None, parsed, &bytes)
        else {
            panic!("a flood limit is retryable");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_blocked_bot_fails_for_good_with_telegrams_reason() {
        let (parsed, bytes) = answer(
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        let SendOutcome::Permanent { error, http_status } =
            classify(StatusCode::FORBIDDEN, None, parsed, &bytes)
        else {
            panic!("a blocked bot is permanent");
        };
        assert_eq!(http_status, Some(403));
        assert!(error.contains("bot was blocked by the user"), "{error}");
    }

    #[test]
    fn the_bot_token_never_shows_in_the_endpoint() {
        let settings = TelegramSettings {
            base_url: "https://api.telegram.org".into(),
            bot_token: SecretString::from("123:secret-token"),
            timeout_ms: 1000,
            requests_per_second: 1,
            max_in_flight: 1,
            max_held: 1,
        };
        let telegram = Telegram::new(&settings, reqwest::Client::new());
        assert!(!telegram.endpoint().contains("secret-token"));
    }
}
