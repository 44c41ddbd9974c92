//! Where a recipient is reached on the channels whose contact is more than an address: a user's
//! `channel_data`, stored as one JSON map per user, so that a new channel needs a field here and
//! no migration. Each contact validates itself; URLs given by tenants are checked here for their
//! syntax (scheme, credentials, host), and again by the worker after DNS resolution, since a
//! name can resolve anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::outbound_url::check_url;
use crate::validation::FieldError;

/// Longest URL taken from a tenant: the longest a browser or proxy reliably carries.
pub const MAX_URL_CHARS: usize = 2048;
/// Standard Webhooks: secrets are 24 to 64 random bytes, base64 after the `whsec_` prefix.
const WEBHOOK_SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// A recipient's contacts on the channels that are not email or SMS; each is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelData {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects_only::optional_object"
    )]
    pub slack: Option<WebhookUrlContact>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects_only::optional_object"
    )]
    pub discord: Option<WebhookUrlContact>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects_only::optional_object"
    )]
    pub telegram: Option<TelegramContact>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects_only::optional_object"
    )]
    pub webhook: Option<SignedWebhookContact>,
}

/// The schema of a URL Herald calls for a tenant: `https`, a public host name (an IP literal or a
/// local name such as `localhost` is refused by the validation, unless a deployment allows private
/// networks), at most [`MAX_URL_CHARS`].
pub fn public_https_url_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .max_length(Some(MAX_URL_CHARS))
        .pattern(Some(PUBLIC_HTTPS_URL_PATTERN))
        .into()
}

/// What a URL Herald calls for a tenant looks like, published in the API's schema and enforced on
/// the text as given (unless a deployment allows private networks): `https`, a lowercase host
/// name ending in a letters-only top-level label, a port below 10,000, and a path and query of
/// unreserved or percent-encoded characters. One expression for both, so that the schema never
/// promises what the API refuses, or refuses what it accepts.
pub const PUBLIC_HTTPS_URL_PATTERN: &str = r"^https://[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,63}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/%-]*)?(\?[A-Za-z0-9._~/%=&+-]*)?$";

static PUBLIC_HTTPS_URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(PUBLIC_HTTPS_URL_PATTERN).expect("PUBLIC_HTTPS_URL_PATTERN is a valid regex")
});

/// A Slack or Discord incoming-webhook URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUrlContact {
    #[schema(
        example = "https://hooks.slack.com/services/T000/B000/XXXX",
        schema_with = public_https_url_schema
    )]
    pub webhook_url: String,
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

/// The recipient's own endpoint and the secret Herald signs its requests with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedWebhookContact {
    #[schema(example = "https://example.com/herald-events", schema_with = public_https_url_schema)]
    pub url: String,
    /// `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", schema_with = webhook_secret_schema)]
    pub secret: String,
}

impl fmt::Debug for SignedWebhookContact {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SignedWebhookContact")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl ChannelData {
    /// Every problem, each naming its field below `channel_data`.
    pub fn problems(&self, allow_private_networks: bool) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if let Some(slack) = &self.slack {
            problems.extend(url_problem(
                "channel_data.slack.webhook_url",
                &slack.webhook_url,
                allow_private_networks,
            ));
        }
        if let Some(discord) = &self.discord {
            problems.extend(url_problem(
                "channel_data.discord.webhook_url",
                &discord.webhook_url,
                allow_private_networks,
            ));
        }
        if let Some(telegram) = &self.telegram {
            problems.extend(telegram.problem());
        }
        if let Some(webhook) = &self.webhook {
            problems.extend(url_problem(
                "channel_data.webhook.url",
                &webhook.url,
                allow_private_networks,
            ));
            problems.extend(webhook_secret_problem(&webhook.secret));
        }
        problems
    }
}

impl TelegramContact {
    fn problem(&self) -> Option<FieldError> {
        let field = "channel_data.telegram.chat_id";
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

/// `whsec_` and the canonical, padded base64 of 24 to 64 bytes: 8 to 20 groups of four characters
/// and an optional one- or two-byte tail, or 21 groups and an optional one-byte tail.
fn webhook_secret_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(concat!(
            r"^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,20}",
            r"(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?",
            r"|(?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/][AQgw]==)?)$",
        )))
        .into()
}

/// The secret's key bytes: the base64 after `whsec_`, or why it is not one.
pub fn decode_webhook_secret(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let Some(encoded) = secret.strip_prefix(WEBHOOK_SECRET_PREFIX) else {
        return Err(format!("must start with `{WEBHOOK_SECRET_PREFIX}`"));
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| format!("must be `{WEBHOOK_SECRET_PREFIX}` followed by base64"))?;
    if !WEBHOOK_SECRET_BYTES.contains(&key.len()) {
        return Err(format!(
            "must encode {} to {} bytes (it encodes {})",
            WEBHOOK_SECRET_BYTES.start(),
            WEBHOOK_SECRET_BYTES.end(),
            key.len()
        ));
    }
    Ok(key)
}

fn webhook_secret_problem(secret: &str) -> Option<FieldError> {
    decode_webhook_secret(secret)
        .err()
        .map(|problem| FieldError::new("channel_data.webhook.secret", problem))
}

/// Why a tenant's URL cannot be used, judged on its text (see [`crate::outbound_url`]): an
/// absolute `https` URL (or `http` when private networks are allowed) with a host, no credentials,
/// and, unless private networks are allowed, a host that is neither a local name nor a forbidden
/// IP literal. The worker checks again, after DNS resolution.
pub fn url_problem(field: &str, text: &str, allow_private_networks: bool) -> Option<FieldError> {
    if text.chars().count() > MAX_URL_CHARS {
        return Some(FieldError::new(
            field,
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    // The URL parser would quietly drop or escape them, but the text is what is stored, and
    // PostgreSQL cannot hold U+0000: refused up front, like everywhere else.
    if text.chars().any(char::is_control) || text.trim() != text {
        return Some(FieldError::new(
            field,
            "must not contain control characters or surrounding whitespace",
        ));
    }
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(error) => {
            return Some(FieldError::new(
                field,
                format!("must be an absolute URL ({error})"),
            ))
        }
    };
    if let Err(refusal) = check_url(&url, allow_private_networks) {
        return Some(FieldError::new(field, refusal.to_string()));
    }
    // The specific refusals first (they say why); then the schema's pattern, which also refuses
    // what the URL parser would accept or quietly rewrite (`*` in a host, upper case).
    (!allow_private_networks && !PUBLIC_HTTPS_URL.is_match(text)).then(|| {
        FieldError::new(
            field,
            "must be https:// and a lowercase public host name (e.g. hooks.example.com), with an \
             optional port below 10000 and an optional path and query of unreserved or \
             percent-encoded characters",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_urls_must_be_https_to_a_public_host_without_credentials() {
        let field = "url";
        for accepted in [
            "https://hooks.example.com/x",
            "https://hooks.example.com:8443/services/T0/B0/x%2Fy",
            "https://api.example.co.uk/hook?token=abc-1&v=2",
            "https://example.com",
        ] {
            assert_eq!(url_problem(field, accepted, false), None, "{accepted}");
        }
        for refused in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://user:pass@hooks.example.com/x",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://metadata.google.internal/computeMetadata",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/x",
            "https://2130706433/x",
            "https://hooks.example.com*/x",
            "https://Hooks.Example.com/x",
            "https://hooks.example.com/a b",
            "https://hooks.example.com:65000/x",
            "not a url",
            "/relative",
        ] {
            assert!(
                url_problem(field, refused, false).is_some(),
                "{refused} must be refused"
            );
        }
        assert_eq!(url_problem(field, "http://127.0.0.1:9090/x", true), None);
        assert!(url_problem(field, "ftp://127.0.0.1/x", true).is_some());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(url_problem(field, &long, false).is_some());
    }

    #[test]
    fn a_nul_or_a_newline_in_a_url_is_refused_before_it_reaches_the_database() {
        for hostile in [
            "https://hooks.example.com/\u{0}x",
            "https://hooks.example.com/x\n",
            " https://hooks.example.com/x",
            "https://hooks.example.com/\tx",
        ] {
            assert!(url_problem("url", hostile, true).is_some(), "{hostile:?}");
        }
    }

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

    #[test]
    fn webhook_secrets_follow_standard_webhooks() {
        assert!(decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_webhook_secret("whsec_not base64!").is_err());
        assert!(decode_webhook_secret("whsec_c2hvcnQ=").is_err(), "5 bytes");
    }

    #[test]
    fn channel_data_names_each_problem_and_refuses_unknown_channels() {
        let data: ChannelData = serde_json::from_value(serde_json::json!({
            "slack": {"webhook_url": "http://hooks.example.com/x"},
            "telegram": {"chat_id": "nobody"},
            "webhook": {"url": "https://example.com/h", "secret": "plain"},
        }))
        .unwrap();
        let fields: Vec<String> = data
            .problems(false)
            .into_iter()
            .map(|problem| problem.field)
            .collect();
        assert_eq!(
            fields,
            [
                "channel_data.slack.webhook_url",
                "channel_data.telegram.chat_id",
                "channel_data.webhook.secret"
            ]
        );
        let unknown = serde_json::from_value::<ChannelData>(serde_json::json!({"pager": {}}));
        assert!(unknown.is_err());
        let numeric: ChannelData =
            serde_json::from_value(serde_json::json!({"telegram": {"chat_id": -1001234}})).unwrap();
        assert!(numeric.problems(false).is_empty());
        assert_eq!(
            numeric.telegram.unwrap().chat_id.to_json(),
            serde_json::json!(-1001234)
        );
    }

    #[test]
    fn a_webhook_secret_never_shows_in_debug_output() {
        let contact = SignedWebhookContact {
            url: "https://example.com/h".into(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        };
        assert!(!format!("{contact:?}").contains("MfKQ"));
    }
}
