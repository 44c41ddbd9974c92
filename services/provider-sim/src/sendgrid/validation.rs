//! Validates a Mail Send body the way SendGrid does (the required fields and limits of the
//! official request schema), reporting every problem with its field path, and extracts what the
//! simulator records: recipients, subject, first content block and Herald's delivery id.
//!
//! Only what Herald sends is modelled: `personalizations` (`to`, `custom_args`), `from`,
//! `subject`, `content` and `headers`. SendGrid's other members (`template_id`, `send_at`, `categories`,
//! `attachments`, `asm`, `reply_to`, message-level `custom_args`, …) are accepted and ignored:
//! modelling them bought nothing, and a request that relies on one (a template without
//! `content`) is refused by the checks of the members Herald does send.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::addresses::{validate_address, INVALID_FROM_ADDRESS};
use super::errors::FieldError;
use super::personalizations::{validate_personalizations, Personalization};
use super::problems::{member, optional_string, Problems};

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

/// A valid request, borrowed from its parsed body.
#[derive(Debug)]
pub struct ValidatedMail<'a> {
    pub personalizations: Vec<Personalization<'a>>,
    /// The first content block's value.
    pub body: Option<&'a str>,
    /// The `text/html` block's value, if any.
    pub html: Option<&'a str>,
    /// The message-level subject, used where a personalization has none.
    pub subject: Option<&'a str>,
    /// The message-level `headers` (Herald's `List-Unsubscribe` pair).
    pub headers: BTreeMap<String, String>,
}

pub fn validate_mail(document: &Value) -> Result<ValidatedMail<'_>, Vec<FieldError>> {
    let Value::Object(root) = document else {
        let given = super::problems::json_type_name(document);
        return Err(vec![FieldError::general(format!(
            "Invalid type. Expected: object, given: {given}."
        ))]);
    };
    let mut problems = Problems::default();
    let personalizations = validate_personalizations(root, &mut problems);
    validate_from(root, &mut problems);

    let subject = optional_string(root, "subject", "", &mut problems);
    let every_personalization_has_subject = !personalizations.is_empty()
        && personalizations
            .iter()
            .all(|personalization| personalization.subject.is_some());
    if subject.is_none() && !every_personalization_has_subject {
        problems.add("subject", SUBJECT_REQUIRED);
    }
    let (body, html) = validate_content(root, &mut problems);
    let headers = validate_headers(root, &mut problems);

    if !problems.is_empty() {
        return Err(problems.into_errors());
    }
    Ok(ValidatedMail {
        personalizations,
        body,
        html,
        subject,
        headers,
    })
}

/// Headers SendGrid does not let a request set (the spec's `headers` description).
const RESERVED_HEADERS: [&str; 12] = [
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
];

/// `headers`: an object of string values, none of them a reserved header.
fn validate_headers(
    root: &Map<String, Value>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    let object = match member(root, "headers") {
        None => return headers,
        Some(Value::Object(object)) => object,
        Some(other) => {
            problems.wrong_type("headers", "object", other);
            return headers;
        }
    };
    for (name, value) in object {
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            problems.add(
                format!("headers.{name}"),
                format!("You may not override the {name} header."),
            );
            continue;
        }
        match value {
            Value::String(value) => {
                headers.insert(name.clone(), value.clone());
            }
            other => problems.wrong_type(format!("headers.{name}"), "string", other),
        }
    }
    headers
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

/// Checks `content`; returns the first block's value and the `text/html` block's.
fn validate_content<'a>(
    root: &'a Map<String, Value>,
    problems: &mut Problems,
) -> (Option<&'a str>, Option<&'a str>) {
    let blocks = match member(root, "content") {
        None => {
            problems.add("content", CONTENT_REQUIRED);
            return (None, None);
        }
        Some(Value::Array(blocks)) => blocks,
        Some(other) => {
            problems.wrong_type("content", "array", other);
            return (None, None);
        }
    };
    if blocks.is_empty() {
        problems.add("content", CONTENT_REQUIRED);
    }
    let mut first_value = None;
    let mut html = None;
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
        if content_type == Some("text/html") {
            html = value;
        }
    }
    (first_value, html)
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
