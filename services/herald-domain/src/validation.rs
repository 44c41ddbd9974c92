//! The rules a notification request must satisfy. All problems are collected, each naming its
//! field, so a client fixes a request in one round trip.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::NotificationEnvelope;
use crate::placeholders::{placeholder_names, rendered_len};

use crate::{
    Channel, ContentRequest, NotificationRequest, Priority, TemplateReference,
    ValidatedNotification,
};

pub const MAX_USER_ID_CHARS: usize = 128;
/// A group's id, as the tenant names it (`PUT /v1/groups/{group_id}`).
pub const MAX_GROUP_ID_CHARS: usize = 128;
pub const MAX_TEMPLATE_ID_CHARS: usize = 128;
pub const MAX_CATEGORY_CHARS: usize = 64;
pub const MAX_SUBJECT_CHARS: usize = 998;
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// `data` as compact JSON: it is stored in `jsonb` and rendered into every message.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// The most a body may render to with its `data` (placeholders multiply: see
/// `placeholders::render`). Twice the template's bound: room for values, none for a bomb.
pub const MAX_RENDERED_BODY_BYTES: usize = 2 * MAX_BODY_BYTES;
/// The most a subject may render to: its bound in characters, at four bytes each.
pub const MAX_RENDERED_SUBJECT_BYTES: usize = 4 * MAX_SUBJECT_CHARS;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the offending value, e.g. `channels[1]`.
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same problem, its field named below `parent` (`webhook_url` below `channel_data.slack`
    /// is `channel_data.slack.webhook_url`).
    pub fn below(self, parent: &str) -> FieldError {
        FieldError {
            field: format!("{parent}.{}", self.field),
            problem: self.problem,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ValidationLimits {
    pub max_recipients: usize,
    /// Groups one notification may name (`group_ids`).
    pub max_groups: usize,
    /// Largest Kafka record (key + value) the producer and broker take; see `kafka.max_record_bytes`.
    pub max_record_bytes: usize,
    /// How far ahead `scheduled_for` may be: less than the retention, so a notification is final
    /// before its partition is dropped.
    pub max_schedule_ahead_days: i64,
}

/// U+0000 is valid JSON but PostgreSQL's `text` and `jsonb` cannot hold it: refused up front, so
/// that one request cannot fail the commit batch it shares with others.
const NUL: char = '\u{0}';

/// The characters `str::trim` removes (Unicode `White_Space`, what `char::is_whitespace` is): a
/// subject or body of only these is blank. The API's schema names them one by one in its "not
/// blank" patterns, because `\s` means a different set in each regex engine (ECMAScript counts
/// U+FEFF, Python not U+0085).
pub const WHITE_SPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

fn nul_problem(field: &str, text: &str) -> Option<FieldError> {
    text.contains(NUL)
        .then(|| FieldError::new(field, "must not contain the NUL character (U+0000)"))
}

/// The first NUL in `data`, keys included, as a JSON path below `data`.
fn nul_in_json(path: &str, value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) if text.contains(NUL) => Some(path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_in_json(&format!("{path}[{index}]"), item)),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains(NUL) {
                Some(path.to_owned())
            } else {
                nul_in_json(&format!("{path}.{key}"), item)
            }
        }),
        _ => None,
    }
}

/// The inline content's rules: the subject (required for email, at most 998 characters) and the
/// body (not blank, at most 64 KiB), neither with a NUL. Placeholders are checked with `data`.
fn validate_content(
    content: ContentRequest,
    channels: &[Channel],
    errors: &mut Vec<FieldError>,
) -> (Option<String>, String) {
    // Too long is refused even when blank: the schema's `maxLength` says so for any subject.
    let subject_too_long = content
        .subject
        .as_ref()
        .is_some_and(|subject| subject.chars().count() > MAX_SUBJECT_CHARS);
    let subject = content.subject.filter(|subject| !subject.trim().is_empty());
    if subject_too_long {
        errors.push(FieldError::new(
            "content.subject",
            format!("at most {MAX_SUBJECT_CHARS} characters"),
        ));
    } else if subject.is_none() && channels.contains(&Channel::Email) {
        errors.push(FieldError::new(
            "content.subject",
            "is required when channels include email",
        ));
    }
    let body = content.body;
    errors.extend(
        subject
            .as_deref()
            .and_then(|subject| nul_problem("content.subject", subject)),
    );
    errors.extend(nul_problem("content.body", &body));
    if body.trim().is_empty() {
        errors.push(FieldError::new("content.body", "must not be empty"));
    }
    if body.len() > MAX_BODY_BYTES {
        errors.push(FieldError::new(
            "content.body",
            format!("at most {MAX_BODY_BYTES} bytes"),
        ));
    }

    (subject, body)
}

impl NotificationRequest {
    /// Checks every rule; `header_idempotency_key` is the `Idempotency-Key` header, if any.
    pub fn validate(
        self,
        limits: ValidationLimits,
        header_idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ValidatedNotification, Vec<FieldError>> {
        let mut errors = Vec::new();

        if self.user_ids.is_empty() && self.group_ids.is_empty() {
            errors.push(FieldError::new(
                "user_ids",
                "must name at least one recipient (or `group_ids` at least one group)",
            ));
        }
        if self.group_ids.len() > limits.max_groups {
            errors.push(FieldError::new(
                "group_ids",
                format!("at most {} groups per notification", limits.max_groups),
            ));
        }
        let mut seen_group_ids = HashSet::with_capacity(self.group_ids.len());
        for (index, group_id) in self.group_ids.iter().enumerate() {
            if let Some(problem) = group_id_problem(group_id) {
                errors.push(FieldError::new(format!("group_ids[{index}]"), problem));
            } else if !seen_group_ids.insert(group_id.as_str()) {
                errors.push(FieldError::new(
                    format!("group_ids[{index}]"),
                    format!("`{group_id}` is listed twice"),
                ));
            }
        }
        if self.user_ids.len() > limits.max_recipients {
            errors.push(FieldError::new(
                "user_ids",
                format!(
                    "at most {} recipients per notification",
                    limits.max_recipients
                ),
            ));
        }
        let mut seen_user_ids = HashSet::with_capacity(self.user_ids.len());
        for (index, user_id) in self.user_ids.iter().enumerate() {
            if let Some(problem) = user_id_problem(user_id) {
                errors.push(FieldError::new(format!("user_ids[{index}]"), problem));
            } else if !seen_user_ids.insert(user_id.as_str()) {
                errors.push(FieldError::new(
                    format!("user_ids[{index}]"),
                    format!("`{user_id}` is listed twice"),
                ));
            }
        }

        let mut channels = Vec::with_capacity(self.channels.len());
        let channel_names = Channel::known_names();
        if self.channels.is_empty() {
            errors.push(FieldError::new(
                "channels",
                "must name at least one channel",
            ));
        }
        for (index, name) in self.channels.iter().enumerate() {
            match Channel::parse(name) {
                Some(channel) if !channels.contains(&channel) => channels.push(channel),
                Some(_) => {}
                None => errors.push(FieldError::new(
                    format!("channels[{index}]"),
                    format!("unknown channel `{name}` (known: {channel_names})"),
                )),
            }
        }

        let (subject, body, template) = match (self.content, self.template_id) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "template_id",
                    "a notification has `content` or a `template_id`, not both",
                ));
                (None, String::new(), None)
            }
            (None, None) => {
                errors.push(FieldError::new(
                    "content",
                    "is required unless `template_id` names a template",
                ));
                (None, String::new(), None)
            }
            (Some(content), None) => {
                if self.template_version.is_some() {
                    errors.push(FieldError::new(
                        "template_version",
                        "is for a notification with a `template_id`",
                    ));
                }
                let (subject, body) = validate_content(content, &channels, &mut errors);
                (subject, body, None)
            }
            (None, Some(template_id)) => {
                if let Some(problem) = template_id_problem(&template_id) {
                    errors.push(FieldError::new("template_id", problem));
                }
                if self.template_version.is_some_and(|version| version < 1) {
                    errors.push(FieldError::new("template_version", "must be at least 1"));
                }
                let template = TemplateReference {
                    id: template_id,
                    version: self.template_version,
                };
                (None, String::new(), Some(template))
            }
        };

        let data = self.data.unwrap_or_default();
        let data_value = serde_json::Value::Object(data);
        if let Some(path) = nul_in_json("data", &data_value) {
            errors.push(FieldError::new(
                path,
                "must not contain the NUL character (U+0000), in keys or values",
            ));
        }
        let data_bytes = serde_json::to_vec(&data_value).map_or(0, |json| json.len());
        if data_bytes > MAX_DATA_BYTES {
            errors.push(FieldError::new(
                "data",
                format!("at most {MAX_DATA_BYTES} bytes as JSON, got {data_bytes}"),
            ));
        }
        let serde_json::Value::Object(data) = data_value else {
            unreachable!("built from a map")
        };
        let content_fields = [
            ("content.subject", subject.as_deref()),
            ("content.body", template.is_none().then_some(body.as_str())),
        ];
        for (field, text) in content_fields {
            let Some(text) = text else { continue };
            match placeholder_names(text) {
                Err(problem) => errors.push(FieldError::new(field, problem)),
                Ok(names) => {
                    for name in names.into_iter().filter(|name| !data.contains_key(*name)) {
                        errors.push(FieldError::new(
                            field,
                            format!("placeholder `{{{{{name}}}}}` has no value in `data`"),
                        ));
                    }
                }
            }
            let max_rendered_bytes = match field {
                "content.subject" => MAX_RENDERED_SUBJECT_BYTES,
                _ => MAX_RENDERED_BODY_BYTES,
            };
            let rendered_bytes = rendered_len(text, &data);
            if rendered_bytes > max_rendered_bytes {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "renders to {rendered_bytes} bytes with `data`, at most {max_rendered_bytes}"
                    ),
                ));
            }
        }

        let priority = match self.priority.as_deref() {
            None => Priority::Normal,
            Some(name) => Priority::parse(name).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "priority",
                    format!("unknown priority `{name}` (known: high, normal, low)"),
                ));
                Priority::Normal
            }),
        };

        if let Some(problem) = self.category.as_deref().and_then(category_problem) {
            errors.push(FieldError::new("category", problem));
        }

        let scheduled_for = match self.scheduled_for.as_deref() {
            None => None,
            Some(text) => match DateTime::parse_from_rfc3339(text) {
                Ok(due)
                    if due.with_timezone(&Utc)
                        > now + Duration::days(limits.max_schedule_ahead_days) =>
                {
                    errors.push(FieldError::new(
                        "scheduled_for",
                        format!("at most {} days ahead", limits.max_schedule_ahead_days),
                    ));
                    None
                }
                Ok(due) => Some(due.with_timezone(&Utc)),
                Err(parse_error) => {
                    errors.push(FieldError::new(
                        "scheduled_for",
                        format!("`{text}` is not an RFC 3339 time: {parse_error}"),
                    ));
                    None
                }
            },
        };

        let idempotency_key = match (self.idempotency_key, header_idempotency_key) {
            (Some(body_key), Some(header_key)) if body_key != header_key => {
                errors.push(FieldError::new(
                    "idempotency_key",
                    "differs from the Idempotency-Key header",
                ));
                None
            }
            (Some(key), _) => Some(key),
            (None, header_key) => header_key.map(str::to_owned),
        };
        if let Some(key) = &idempotency_key {
            if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
                errors.push(FieldError::new(
                    "idempotency_key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
                ));
            }
            if key.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    "idempotency_key",
                    "must not contain control characters",
                ));
            }
        }

        if let Some(record_bytes) = largest_record_bytes(&self.user_ids) {
            if record_bytes > limits.max_record_bytes {
                errors.push(FieldError::new(
                    "user_ids",
                    format!(
                        "the Kafka record for the longest user id would be {record_bytes} bytes; \
                         at most {} (kafka.max_record_bytes)",
                        limits.max_record_bytes
                    ),
                ));
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidatedNotification {
            user_ids: self.user_ids,
            group_ids: self.group_ids,
            channels,
            subject,
            body,
            template,
            data,
            priority,
            category: self.category,
            scheduled_for,
            idempotency_key,
            data_bytes,
        })
    }
}

/// The size of the record for the recipient whose record is largest (the longest id once escaped).
fn largest_record_bytes(user_ids: &[String]) -> Option<usize> {
    let escaped_len = |user_id: &String| {
        user_id.len() + user_id.chars().filter(|c| matches!(c, '"' | '\\')).count()
    };
    let longest = user_ids.iter().max_by_key(|user_id| escaped_len(user_id))?;
    let envelope = NotificationEnvelope::new(
        uuid::Uuid::max(),
        uuid::Uuid::max(),
        longest,
        Priority::Normal,
        DateTime::<Utc>::MAX_UTC,
    );
    Some(envelope.record_bytes())
}

/// What is wrong with a user id, if anything: the rule for `user_ids` and for group members.
pub fn user_id_problem(user_id: &str) -> Option<String> {
    if user_id.is_empty() {
        return Some("must not be empty".into());
    }
    if user_id.chars().count() > MAX_USER_ID_CHARS {
        return Some(format!("at most {MAX_USER_ID_CHARS} characters"));
    }
    if user_id.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

/// What is wrong with a group id, if anything: 1 to 128 characters, none a control character.
pub fn group_id_problem(group_id: &str) -> Option<String> {
    if group_id.is_empty() {
        return Some("must not be empty".into());
    }
    if group_id.chars().count() > MAX_GROUP_ID_CHARS {
        return Some(format!("at most {MAX_GROUP_ID_CHARS} characters"));
    }
    if group_id.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

/// What is wrong with a notification's category name, if anything: 1 to 64 characters, none a
/// control character.
pub fn category_problem(category: &str) -> Option<String> {
    if category.is_empty() {
        return Some("must not be empty".into());
    }
    if category.chars().count() > MAX_CATEGORY_CHARS {
        return Some(format!("at most {MAX_CATEGORY_CHARS} characters"));
    }
    if category.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

/// What is wrong with a template id, if anything: 1 to 128 characters, none a control character.
pub fn template_id_problem(template_id: &str) -> Option<String> {
    if template_id.is_empty() {
        return Some("must not be empty".into());
    }
    if template_id.chars().count() > MAX_TEMPLATE_ID_CHARS {
        return Some(format!("at most {MAX_TEMPLATE_ID_CHARS} characters"));
    }
    if template_id.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: ValidationLimits = ValidationLimits {
        max_recipients: 3,
        max_groups: 2,
        max_record_bytes: 65536,
        max_schedule_ahead_days: 28,
    };

    fn request(value: serde_json::Value) -> NotificationRequest {
        serde_json::from_value(value).unwrap()
    }

    fn valid() -> serde_json::Value {
        json!({
            "user_ids": ["u1", "u2"],
            "channels": ["email", "sms"],
            "content": {"subject": "Alert", "body": "Pressure {{value}} on {{machine}}"},
            "data": {"value": 7, "machine": "press-4"},
            "priority": "high"
        })
    }

    fn problems(value: serde_json::Value) -> Vec<FieldError> {
        request(value)
            .validate(LIMITS, None, Utc::now())
            .unwrap_err()
    }

    #[test]
    fn a_complete_request_validates() {
        let now = "2029-12-15T00:00:00Z".parse().unwrap();
        let mut value = valid();
        value["scheduled_for"] = json!("2030-01-01T00:00:00+01:00");
        let validated = request(value).validate(LIMITS, Some("key-1"), now).unwrap();
        assert_eq!(
            validated.scheduled_for,
            Some("2029-12-31T23:00:00Z".parse().unwrap())
        );
        assert_eq!(validated.channels, vec![Channel::Email, Channel::Sms]);
        assert_eq!(validated.priority, Priority::High);
        assert_eq!(validated.idempotency_key.as_deref(), Some("key-1"));
        assert_eq!(
            validated.initial_status(now),
            crate::NotificationStatus::Scheduled
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let errors = problems(json!({
            "user_ids": ["u1", "u1", ""],
            "channels": ["email", "fax"],
            "content": {"body": "{{missing}}"},
            "priority": "urgent",
            "scheduled_for": "tomorrow"
        }));
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "user_ids[1]",
                "user_ids[2]",
                "channels[1]",
                "content.subject",
                "content.body",
                "priority",
                "scheduled_for"
            ],
            "{errors:?}"
        );
    }

    #[test]
    fn empty_recipients_and_channels_are_rejected() {
        let mut value = valid();
        value["user_ids"] = json!([]);
        value["channels"] = json!([]);
        let fields: Vec<String> = problems(value)
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(fields, vec!["user_ids", "channels"]);
    }

    #[test]
    fn too_many_recipients_are_rejected() {
        let mut value = valid();
        value["user_ids"] = json!(["a", "b", "c", "d"]);
        assert_eq!(problems(value)[0].field, "user_ids");
    }

    #[test]
    fn header_and_body_idempotency_keys_must_agree() {
        let mut value = valid();
        value["idempotency_key"] = json!("body-key");
        let errors = request(value)
            .validate(LIMITS, Some("header-key"), Utc::now())
            .unwrap_err();
        assert_eq!(errors[0].field, "idempotency_key");
    }

    #[test]
    fn request_hash_ignores_data_key_order_and_the_idempotency_key() {
        let now = Utc::now();
        let first = request(valid()).validate(LIMITS, Some("a"), now).unwrap();
        let mut reordered = valid();
        reordered["data"] = json!({"machine": "press-4", "value": 7});
        let second = request(reordered).validate(LIMITS, Some("b"), now).unwrap();
        assert_eq!(first.request_hash(), second.request_hash());

        let mut changed = valid();
        changed["data"]["value"] = json!(8);
        let third = request(changed).validate(LIMITS, Some("a"), now).unwrap();
        assert_ne!(first.request_hash(), third.request_hash());
    }
}

#[cfg(test)]
mod hostile_input_tests {
    use serde_json::json;

    use super::*;

    const LIMITS: ValidationLimits = ValidationLimits {
        max_recipients: 10,
        max_groups: 2,
        max_record_bytes: 1024,
        max_schedule_ahead_days: 28,
    };

    fn problems(value: serde_json::Value) -> Vec<FieldError> {
        serde_json::from_value::<NotificationRequest>(value)
            .unwrap()
            .validate(LIMITS, None, Utc::now())
            .unwrap_err()
    }

    fn base() -> serde_json::Value {
        json!({"user_ids": ["u1"], "channels": ["sms"], "content": {"body": "hello"}})
    }

    #[test]
    fn nul_is_refused_wherever_postgresql_would_refuse_it() {
        let mut body = base();
        body["content"]["body"] = json!("a\u{0}b");
        assert_eq!(problems(body)[0].field, "content.body");

        let mut subject = base();
        subject["content"]["subject"] = json!("x\u{0}");
        assert_eq!(problems(subject)[0].field, "content.subject");

        let mut nested = base();
        nested["data"] = json!({"machine": {"tags": ["ok", "bad\u{0}"]}});
        assert_eq!(problems(nested)[0].field, "data.machine.tags[1]");

        let mut key = base();
        key["data"] = json!({"k\u{0}": 1});
        assert_eq!(problems(key)[0].field, "data");

        let mut idempotency = base();
        idempotency["idempotency_key"] = json!("key\u{0}");
        assert_eq!(problems(idempotency)[0].field, "idempotency_key");
    }

    #[test]
    fn data_over_its_limit_is_refused_naming_the_limit() {
        let mut value = base();
        value["data"] = json!({"blob": "x".repeat(MAX_DATA_BYTES)});
        let errors = problems(value);
        assert_eq!(errors[0].field, "data");
        assert!(errors[0].problem.contains("65536"), "{}", errors[0].problem);
    }

    #[test]
    fn a_record_over_the_kafka_limit_is_refused() {
        let mut value = base();
        // 128 characters of 4-byte UTF-8: 512 bytes of user id, over a 1024-byte record limit
        // once the key repeats it.
        value["user_ids"] = json!(["\u{1F600}".repeat(128)]);
        let errors = problems(value);
        assert_eq!(errors[0].field, "user_ids", "{errors:?}");
        assert!(errors[0].problem.contains("kafka.max_record_bytes"));
    }

    #[test]
    fn white_space_is_exactly_what_trim_removes() {
        let listed = |character: char| {
            WHITE_SPACE
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&character))
        };
        for character in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(
                listed(character),
                character.is_whitespace(),
                "U+{:04X}",
                u32::from(character)
            );
        }
    }

    #[test]
    fn a_subject_too_long_is_refused_even_when_blank_and_not_needed() {
        let mut long_blank = base();
        long_blank["channels"] = json!(["sms"]);
        long_blank["content"]["subject"] = json!(" ".repeat(MAX_SUBJECT_CHARS + 1));
        assert_eq!(problems(long_blank)[0].field, "content.subject");
        let mut blank = base();
        blank["channels"] = json!(["sms"]);
        blank["content"]["subject"] = json!("   ");
        assert!(serde_json::from_value::<NotificationRequest>(blank)
            .unwrap()
            .validate(LIMITS, None, Utc::now())
            .is_ok());
    }
}
