//! `{"email"}` objects (`from`) and arrays of them (`to`). A `name` is accepted and ignored:
//! Herald sends none.

use serde_json::Value;

use super::problems::{member, Problems};
use crate::validation::is_valid_email;

/// Most recipients one `to` array (and one request, all arrays together) may hold.
pub const MAX_RECIPIENTS: usize = 1000;

pub const EMAIL_REQUIRED: &str = "The email parameter is required for every email object.";
pub const INVALID_ADDRESS: &str = "Does not contain a valid address.";
pub const INVALID_FROM_ADDRESS: &str = "The from email does not contain a valid address.";

/// Validates the email object at `path`; returns its address when it is valid.
pub fn validate_address<'a>(
    value: &'a Value,
    path: &str,
    invalid_message: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    let Value::Object(object) = value else {
        problems.wrong_type(path, "object", value);
        return None;
    };
    match member(object, "email") {
        None => {
            problems.add(format!("{path}.email"), EMAIL_REQUIRED);
            None
        }
        Some(Value::String(email)) if is_valid_email(email) => Some(email),
        Some(Value::String(_)) => {
            problems.add(format!("{path}.email"), invalid_message);
            None
        }
        Some(other) => {
            problems.wrong_type(format!("{path}.email"), "string", other);
            None
        }
    }
}

/// An array of email objects at `path` (already absent-checked by the caller); returns the
/// valid addresses with their index in the array.
pub fn validate_address_list<'a>(
    value: &'a Value,
    path: &str,
    problems: &mut Problems,
) -> Vec<(usize, &'a str)> {
    let Value::Array(items) = value else {
        problems.wrong_type(path, "array", value);
        return Vec::new();
    };
    if items.len() > MAX_RECIPIENTS {
        problems.add(
            path,
            format!("The {path} array may contain at most {MAX_RECIPIENTS} email objects."),
        );
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            validate_address(item, &format!("{path}.{index}"), INVALID_ADDRESS, problems)
                .map(|email| (index, email))
        })
        .collect()
}
