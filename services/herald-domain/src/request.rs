//! The notification request as clients send it, and as it is after validation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{Channel, NotificationStatus, Priority};

/// An array of distinct items, at least `min_items`, each as `items` describes: `user_ids`,
/// `group_ids` and `channels` as the validation takes them (utoipa's attributes have no
/// `uniqueItems`).
fn distinct_items(
    items: utoipa::openapi::schema::Schema,
    min_items: usize,
) -> utoipa::openapi::schema::ArrayBuilder {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(items))
        .min_items(Some(min_items))
        .unique_items(true)
}

/// A string of 1 to `max_chars` characters, none a control character: a user's or a group's id.
pub fn identifier_schema(max_chars: usize) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"))
        .into()
}

/// `user_ids`: distinct ids of 1 to 128 characters, none a control character; empty only when
/// `group_ids` is not (a rule between two fields, which the schema states in words).
fn user_ids_schema() -> utoipa::openapi::schema::Schema {
    distinct_items(identifier_schema(crate::validation::MAX_USER_ID_CHARS), 0)
        .description(Some("At least one unless `group_ids` names a group."))
        .into()
}

/// `channels`: distinct channel names.
fn channels_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::PartialSchema;
    match Channel::schema() {
        utoipa::openapi::RefOr::T(schema) => distinct_items(schema, 1).into(),
        utoipa::openapi::RefOr::Ref(_) => unreachable!("a derived enum schema is inline"),
    }
}

/// A regex that matches text with no NUL and at least one character that is not white space
/// (what validation calls "not blank"); each white space character is named, see
/// [`crate::validation::WHITE_SPACE`].
pub fn not_blank_pattern() -> String {
    let white_space: String = crate::validation::WHITE_SPACE
        .iter()
        .map(|(first, last)| {
            let escape = |character: &char| format!("\\u{:04x}", u32::from(*character));
            if first == last {
                escape(first)
            } else {
                format!("{}-{}", escape(first), escape(last))
            }
        })
        .collect();
    format!(r"^[^\x00]*[^\x00{white_space}][^\x00]*$")
}

/// `content.subject`: at most 998 characters, no NUL; a blank one counts as none.
fn subject_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(crate::validation::MAX_SUBJECT_CHARS))
        .pattern(Some(r"^[^\x00]*$"))
        .description(Some(
            "Required (and not blank) when `channels` contains `email`.",
        ))
        .into()
}

/// `content.body`: not blank, no NUL.
fn body_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .min_length(Some(1))
        .pattern(Some(not_blank_pattern()))
        .examples([serde_json::json!("Pressure {{value}} on {{machine}}")])
        .into()
}

/// `group_ids`: distinct group ids, possibly none.
fn group_ids_schema() -> utoipa::openapi::schema::Schema {
    distinct_items(identifier_schema(crate::validation::MAX_GROUP_ID_CHARS), 0)
        .description(Some(
            "Groups of the tenant (`PUT /v1/groups/{group_id}`), each once: their members as of \
             acceptance are recipients too, each recipient once however many times it is named. \
             `user_ids` may be empty when this is not.",
        ))
        .into()
}

/// A notification as submitted. Channels and priority are strings here so that an unknown value
/// is reported as a validation error naming the field, not as a parse error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    /// Recipients: the tenant's user ids (see `PUT /v1/users/{user_id}`), each once. At least one
    /// unless `group_ids` names a group.
    #[serde(default)]
    #[schema(schema_with = user_ids_schema)]
    pub user_ids: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = group_ids_schema)]
    pub group_ids: Vec<String>,
    /// The channels to deliver on, each once.
    #[schema(example = json!(["email", "sms"]), schema_with = channels_schema)]
    pub channels: Vec<String>,
    /// The message, written inline. Required unless `template_id` names a template (then absent).
    #[serde(default, deserialize_with = "crate::objects_only::optional_object")]
    pub content: Option<ContentRequest>,
    /// A template of the tenant's (`PUT /v1/templates/{template_id}`) to render the message from,
    /// per channel and the recipient's locale, with `data`. Instead of `content`.
    #[serde(default)]
    #[schema(schema_with = template_id_schema)]
    pub template_id: Option<String>,
    /// The template's version; default the latest when the notification is accepted (stored
    /// with it: a later edit does not change what it sends).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub template_version: Option<i32>,
    /// Values for the `{{placeholders}}` of the content.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"value": 97, "machine": "press-4"}))]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// `high`, `normal` (default) or `low`.
    #[serde(default)]
    #[schema(value_type = Option<Priority>)]
    pub priority: Option<String>,
    /// What kind of notification it is (`marketing`, `security`): recipients who opted out of the
    /// category get none of it (`PUT /v1/users/{user_id}/preferences`).
    #[serde(default)]
    #[schema(schema_with = category_schema)]
    pub category: Option<String>,
    /// RFC 3339 time; the notification is held until then.
    #[serde(default)]
    pub scheduled_for: Option<String>,
    /// Retrying with the same key returns the same id and creates nothing new.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentRequest {
    #[serde(default)]
    #[schema(schema_with = subject_schema)]
    pub subject: Option<String>,
    #[schema(schema_with = body_schema)]
    pub body: String,
}

/// `template_id`: a template id, or none.
fn template_id_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
        .max_length(Some(crate::validation::MAX_TEMPLATE_ID_CHARS))
        .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"))
        .into()
}

/// `category`: 1 to 64 characters, none a control character, or none.
fn category_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
        .max_length(Some(crate::validation::MAX_CATEGORY_CHARS))
        .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"))
        .examples([serde_json::json!("security")])
        .into()
}

/// The template a validated notification renders: its id, and the version asked for (none: the
/// latest, resolved at acceptance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateReference {
    pub id: String,
    pub version: Option<i32>,
}

/// A request that passed every rule. Only this type reaches storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatedNotification {
    pub user_ids: Vec<String>,
    /// The tenant's names of the groups whose members are recipients too (expanded by the worker).
    /// Serialized only when there are some, so a request without groups hashes as it always did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_ids: Vec<String>,
    pub channels: Vec<Channel>,
    pub subject: Option<String>,
    /// Empty for a notification rendered from a template.
    pub body: String,
    /// Serialized only when there is one, so a request without a template hashes as it always did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateReference>,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub priority: Priority,
    /// Serialized only when there is one, so a request without a category hashes as it always did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    /// `data` as compact JSON, in bytes (measured by validation).
    #[serde(skip)]
    pub data_bytes: usize,
}

impl ValidatedNotification {
    /// SHA-256 of the canonical JSON of everything but the idempotency key. Two requests with the
    /// same key are the same request exactly when their hashes are equal. `data` is a BTreeMap, so
    /// the JSON (and the hash) does not depend on the client's key order.
    pub fn request_hash(&self) -> [u8; 32] {
        let canonical =
            serde_json::to_vec(self).expect("a validated notification always serializes");
        Sha256::digest(canonical).into()
    }

    /// `scheduled` when the notification is to be held, otherwise `accepted`.
    pub fn initial_status(&self, now: DateTime<Utc>) -> NotificationStatus {
        NotificationStatus::initial(self.scheduled_for.is_some_and(|due| due > now))
    }

    /// About the bytes it takes to store: its content, `data` and recipients.
    pub fn stored_bytes(&self) -> usize {
        self.body.len()
            + self.subject.as_ref().map_or(0, String::len)
            + self.data_bytes
            + self
                .user_ids
                .iter()
                .chain(&self.group_ids)
                .map(|id| id.len() + 8)
                .sum::<usize>()
            + 256
    }

    /// Named recipients × channels: the deliveries known at acceptance. Each group's members add
    /// theirs as the worker expands it.
    pub fn deliveries_expected(&self) -> i32 {
        let expected = self.user_ids.len() * self.channels.len();
        debug_assert!(expected <= i32::MAX as usize, "bounded by max_recipients");
        expected.min(i32::MAX as usize) as i32
    }
}
