//! Validates a Mail Send body the way SendGrid does (the required fields and limits of the
//! official request schema), reporting every problem with its field path, and extracts what the
//! simulator records: recipients, subject, first content block and Herald's delivery id.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::addresses::{validate_address, INVALID_FROM_ADDRESS};
use super::errors::FieldError;
use super::personalizations::{validate_personalizations, Personalization, REFERENCE_ARGUMENT};
use super::problems::{member, optional_integer, optional_string, optional_string_map, Problems};

/// How far ahead a send may be scheduled.
const MAX_SCHEDULE_AHEAD_SECONDS: i64 = 72 * 60 * 60;

const FROM_REQUIRED: &str = "The from object must be provided for every email send. It is an \
     object that requires the email parameter, but may also contain a name parameter.  e.g. \
     {\"email\" : \"example@example.com\"}  or {\"email\" : \"example@example.com\", \"name\" : \
     \"Example Recipient\"}.";
const SUBJECT_REQUIRED: &str = "The subject is required. You can get around this requirement if \
     you use a template with a subject defined or if every personalization has a subject defined.";
const CONTENT_REQUIRED: &str = "Unless a valid template_id is provided, the content parameter is \
     required. There must be at least one defined content block. We typically suggest both \
     text/plain and text/html blocks are included, but only one block is required.";
const CONTENT_TYPE_REQUIRED: &str =
    "The content type must be a string at least one character in length.";
const CONTENT_VALUE_REQUIRED: &str =
    "The content value must be a string at least one character in length.";
const CONTENT_ORDER: &str = "If present, text/plain content must be first, followed by \
     text/html, followed by any other content.";

/// A valid request, borrowed from its parsed body.
#[derive(Debug)]
pub struct ValidatedMail<'a> {
    pub personalizations: Vec<Personalization<'a>>,
    /// The first content block's value (text/plain when there is one); `None` with a template.
    pub body: Option<&'a str>,
    /// The message-level subject, used where a personalization has none.
    pub subject: Option<&'a str>,
    /// The message-level `custom_args.herald_delivery_id`.
    pub reference: Option<&'a str>,
    /// The message-level `custom_args`.
    pub custom_args: Option<&'a Map<String, Value>>,
}

impl<'a> ValidatedMail<'a> {
    /// The delivery reference of personalization `index`: its own, else the message-level one.
    pub fn reference_of(&self, personalization: &Personalization<'a>) -> Option<&'a str> {
        personalization.reference.or(self.reference)
    }

    /// The `custom_args` of personalization `index`: the message's, overridden key by key by its
    /// own, as SendGrid merges them. Values are strings (validated).
    pub fn custom_args_of(
        &self,
        personalization: &Personalization<'a>,
    ) -> BTreeMap<String, String> {
        [self.custom_args, personalization.custom_args]
            .into_iter()
            .flatten()
            .flat_map(|arguments| arguments.iter())
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
            .collect()
    }
}

/// `now_unix` is the current Unix time, to check that `send_at` is not too far ahead.
pub fn validate_mail(
    document: &Value,
    now_unix: i64,
) -> Result<ValidatedMail<'_>, Vec<FieldError>> {
    let Value::Object(root) = document else {
        let given = super::problems::json_type_name(document);
        return Err(vec![FieldError::general(format!(
            "Invalid type. Expected: object, given: {given}."
        ))]);
    };
    let mut problems = Problems::default();
    let personalizations = validate_personalizations(root, now_unix, &mut problems);
    validate_from(root, &mut problems);

    let template_id = optional_string(root, "template_id", "", &mut problems);
    let subject = optional_string(root, "subject", "", &mut problems);
    let every_personalization_has_subject = !personalizations.is_empty()
        && personalizations
            .iter()
            .all(|personalization| personalization.subject.is_some());
    if template_id.is_none() && subject.is_none() && !every_personalization_has_subject {
        problems.add("subject", SUBJECT_REQUIRED);
    }
    let body = validate_content(root, template_id.is_some(), &mut problems);
    let custom_args = optional_string_map(root, "custom_args", "", &mut problems);
    validate_send_at_field(root, now_unix, &mut problems);

    if !problems.is_empty() {
        return Err(problems.into_errors());
    }
    Ok(ValidatedMail {
        personalizations,
        body,
        subject,
        reference: custom_args
            .and_then(|arguments| arguments.get(REFERENCE_ARGUMENT))
            .and_then(Value::as_str),
        custom_args,
    })
}

fn validate_from(root: &Map<String, Value>, problems: &mut Problems) {
    match member(root, "from") {
        None => problems.add("from.email", FROM_REQUIRED),
        Some(Value::Object(from)) if member(from, "email").is_none() => {
            problems.add("from.email", FROM_REQUIRED)
        }
        Some(from) => {
            validate_address(from, "from", INVALID_FROM_ADDRESS, problems);
        }
    }
}

/// Checks `content`; returns the first block's value.
fn validate_content<'a>(
    root: &'a Map<String, Value>,
    has_template: bool,
    problems: &mut Problems,
) -> Option<&'a str> {
    let blocks = match member(root, "content") {
        None => {
            if !has_template {
                problems.add("content", CONTENT_REQUIRED);
            }
            return None;
        }
        Some(Value::Array(blocks)) => blocks,
        Some(other) => {
            problems.wrong_type("content", "array", other);
            return None;
        }
    };
    if blocks.is_empty() && !has_template {
        problems.add("content", CONTENT_REQUIRED);
    }
    let mut first_value = None;
    for (index, block) in blocks.iter().enumerate() {
        let path = format!("content.{index}");
        let Value::Object(block) = block else {
            problems.wrong_type(path, "object", block);
            continue;
        };
        let content_type = non_empty_string(block, "type", &path, CONTENT_TYPE_REQUIRED, problems);
        let value = non_empty_string(block, "value", &path, CONTENT_VALUE_REQUIRED, problems);
        if index == 0 {
            first_value = value;
        }
        if let Some(content_type) = content_type {
            check_content_order(content_type, index, &path, problems);
        }
    }
    first_value
}

/// text/plain may only be block 0; text/html only block 0 or (after text/plain) block 1.
fn check_content_order(content_type: &str, index: usize, path: &str, problems: &mut Problems) {
    let misplaced = if content_type.eq_ignore_ascii_case("text/plain") {
        index > 0
    } else if content_type.eq_ignore_ascii_case("text/html") {
        index > 1
    } else {
        false
    };
    if misplaced {
        problems.add(format!("{path}.type"), CONTENT_ORDER);
    }
}

fn non_empty_string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    message: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    match member(object, key) {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        _ => {
            problems.add(format!("{path}.{key}"), message);
            None
        }
    }
}

pub fn validate_send_at(send_at: i64, field: &str, now_unix: i64, problems: &mut Problems) {
    if send_at > now_unix.saturating_add(MAX_SCHEDULE_AHEAD_SECONDS) {
        problems.add(
            field,
            "The send_at parameter must not be more than 72 hours in the future.",
        );
    }
}

/// `send_at`, the one optional message-level field still checked: the simulator's own tests use
/// it. The rest of SendGrid's optional fields (categories, attachments, `asm`, `reply_to`, …)
/// are accepted unchecked: Herald never sends them, so modelling their limits bought nothing.
fn validate_send_at_field(root: &Map<String, Value>, now_unix: i64, problems: &mut Problems) {
    if let Some(send_at) = optional_integer(root, "send_at", "", problems) {
        validate_send_at(send_at, "send_at", now_unix, problems);
    }
}
