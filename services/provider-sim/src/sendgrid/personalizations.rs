//! The `personalizations` array: who receives each copy of the message, and the per-copy
//! subject and `custom_args` (where Herald puts its delivery id). Only the members Herald sends
//! (`to`, `custom_args`) and `subject` (which waives the message-level one) are read; the others
//! (`cc`, `bcc`, `from`, `headers`, `substitutions`, `send_at`, …) are accepted and ignored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::addresses::{validate_address_list, MAX_RECIPIENTS};
use super::problems::{member, optional_string, optional_string_map, Problems};

/// Most personalizations one request may carry.
pub const MAX_PERSONALIZATIONS: usize = 1000;
/// SendGrid's limit on a personalization's `custom_args`: "may not exceed 10,000 bytes".
pub const MAX_CUSTOM_ARGS_BYTES: usize = 10_000;
/// The `custom_args` key Herald stores its delivery id under.
pub const REFERENCE_ARGUMENT: &str = "herald_delivery_id";

const PERSONALIZATIONS_REQUIRED: &str =
    "The personalizations field is required and must have at least one personalization.";
const TO_REQUIRED: &str = "The to array is required for all personalization objects, and must \
                           have at least one email object with a valid email address.";

/// What the simulator keeps of one valid personalization.
#[derive(Debug, PartialEq, Eq)]
pub struct Personalization<'a> {
    pub recipients: Vec<&'a str>,
    pub subject: Option<&'a str>,
    /// `custom_args.herald_delivery_id` of this personalization, if set.
    pub reference: Option<&'a str>,
    /// Its own `custom_args`, if any.
    pub custom_args: Option<&'a Map<String, Value>>,
}

impl Personalization<'_> {
    /// Its `custom_args` as recorded (values are strings: validated).
    pub fn recorded_custom_args(&self) -> BTreeMap<String, String> {
        self.custom_args
            .into_iter()
            .flat_map(|arguments| arguments.iter())
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
            .collect()
    }
}

pub fn validate_personalizations<'a>(
    root: &'a Map<String, Value>,
    problems: &mut Problems,
) -> Vec<Personalization<'a>> {
    let items = match member(root, "personalizations") {
        None => {
            problems.add("personalizations", PERSONALIZATIONS_REQUIRED);
            return Vec::new();
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.add("personalizations", PERSONALIZATIONS_REQUIRED);
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.wrong_type("personalizations", "array", other);
            return Vec::new();
        }
    };
    if items.len() > MAX_PERSONALIZATIONS {
        problems.add(
            "personalizations",
            format!("The personalizations array may contain at most {MAX_PERSONALIZATIONS} personalizations."),
        );
        return Vec::new();
    }
    let mut total_recipients = 0;
    let personalizations: Vec<Personalization<'a>> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let path = format!("personalizations.{index}");
            let Value::Object(object) = item else {
                problems.wrong_type(path, "object", item);
                return None;
            };
            let (personalization, recipients) = validate_personalization(object, &path, problems);
            total_recipients += recipients;
            Some(personalization)
        })
        .collect();
    // SendGrid counts `cc` and `bcc` too; Herald sends neither, so `to` is all there is to count.
    if total_recipients > MAX_RECIPIENTS {
        problems.add(
            "personalizations",
            format!(
                "The total number of recipients must be no more than {MAX_RECIPIENTS}. This \
                 includes all recipients defined within the to, cc, and bcc parameters, across \
                 each object that you include in the personalizations array."
            ),
        );
    }
    personalizations
}

/// Validates one personalization; returns what to keep of it and its recipient count.
fn validate_personalization<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    problems: &mut Problems,
) -> (Personalization<'a>, usize) {
    let to_path = format!("{path}.to");
    let to = match member(object, "to") {
        None => {
            problems.add(&to_path, TO_REQUIRED);
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.add(&to_path, TO_REQUIRED);
            Vec::new()
        }
        Some(value) => validate_address_list(value, &to_path, problems),
    };
    let subject = optional_string(object, "subject", path, problems);
    let custom_args = optional_string_map(object, "custom_args", path, problems);
    let custom_args_bytes = custom_args
        .and_then(|arguments| serde_json::to_string(arguments).ok())
        .map_or(0, |text| text.len());
    if custom_args_bytes > MAX_CUSTOM_ARGS_BYTES {
        problems.add(
            format!("{path}.custom_args"),
            format!("The custom_args may not exceed {MAX_CUSTOM_ARGS_BYTES} bytes."),
        );
    }

    let recipient_count = to.len();
    let personalization = Personalization {
        reference: custom_args
            .and_then(|arguments| arguments.get(REFERENCE_ARGUMENT))
            .and_then(Value::as_str),
        recipients: to.into_iter().map(|(_, email)| email).collect(),
        subject,
        custom_args,
    };
    (personalization, recipient_count)
}
