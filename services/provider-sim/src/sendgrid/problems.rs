//! Collecting every problem in a JSON body, each with its dotted field path, and reading
//! optional members the way SendGrid does (`null` counts as absent).

use serde_json::{Map, Value};

use super::errors::FieldError;

#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// SendGrid's wording for a value of the wrong JSON type.
    pub fn wrong_type(&mut self, field: impl Into<String>, expected: &str, given: &Value) {
        let given = json_type_name(given);
        self.add(
            field,
            format!("Invalid type. Expected: {expected}, given: {given}."),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }
}

pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `path.key`, or `key` at the top level.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// An optional member: `None` when absent or `null`.
pub fn member<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// An optional string member; an empty string counts as absent. Other types are problems.
pub fn optional_string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    match member(object, key)? {
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(text),
        other => {
            problems.wrong_type(join(path, key), "string", other);
            None
        }
    }
}

/// An optional member that must be an object when present.
pub fn optional_object<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    match member(object, key)? {
        Value::Object(inner) => Some(inner),
        other => {
            problems.wrong_type(join(path, key), "object", other);
            None
        }
    }
}

/// An optional object whose values must all be strings (`custom_args`).
pub fn optional_string_map<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    problems: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    let map = optional_object(object, key, path, problems)?;
    for (name, value) in map {
        if !value.is_string() {
            problems.wrong_type(format!("{}.{name}", join(path, key)), "string", value);
        }
    }
    Some(map)
}
