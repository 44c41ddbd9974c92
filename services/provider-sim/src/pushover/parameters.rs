//! A Message API request's parameters, from an `application/x-www-form-urlencoded` body or, as
//! Pushover also reads, an `application/json` object with the same names. Names are
//! case-sensitive, the first of a repeated parameter wins, an empty value counts as absent, and
//! JSON numbers and booleans are read as their text (`"priority": 1` is `priority=1`). A body
//! of any other type (multipart included, which Pushover reads for attachments) carries no
//! parameters here, so it is refused for its missing token.

use std::collections::HashMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpRequest;
use serde_json::Value;

use super::responses::PushoverError;

#[derive(Debug, Default)]
pub struct Parameters(HashMap<String, String>);

impl Parameters {
    /// The parameter's value; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn insert_first(&mut self, name: String, value: String) {
        if !value.is_empty() {
            self.0.entry(name).or_insert(value);
        }
    }
}

pub fn read_parameters(request: &HttpRequest, body: &[u8]) -> Result<Parameters, PushoverError> {
    match media_type(request).as_deref() {
        Some("application/x-www-form-urlencoded") => Ok(from_form(body)),
        Some("application/json") => from_json(body),
        _ => Ok(Parameters::default()),
    }
}

fn media_type(request: &HttpRequest) -> Option<String> {
    let content_type = request.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    Some(media_type.to_ascii_lowercase())
}

fn from_form(body: &[u8]) -> Parameters {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut parameters = Parameters::default();
    for (name, value) in pairs {
        parameters.insert_first(name, value);
    }
    parameters
}

fn from_json(body: &[u8]) -> Result<Parameters, PushoverError> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(PushoverError::unparsable_json());
    };
    let mut parameters = Parameters::default();
    for (name, value) in object {
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text,
            other => other.to_string(),
        };
        parameters.insert_first(name, text);
    }
    Ok(parameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(content_type: &str) -> HttpRequest {
        TestRequest::default()
            .insert_header((CONTENT_TYPE, content_type))
            .to_http_request()
    }

    #[test]
    fn a_form_gives_its_first_non_empty_values() {
        let parameters = read_parameters(
            &request("application/x-www-form-urlencoded"),
            b"token=abc&message=Disk+full%21&message=second&title=&priority=1",
        )
        .unwrap();
        assert_eq!(parameters.get("token"), Some("abc"));
        assert_eq!(parameters.get("message"), Some("Disk full!"));
        assert_eq!(parameters.get("title"), None);
        assert_eq!(parameters.get("priority"), Some("1"));
    }

    #[test]
    fn json_gives_the_same_parameters_with_numbers_as_text() {
        let parameters = read_parameters(
            &request("application/json; charset=utf-8"),
            br#"{"token": "abc", "message": "hi", "priority": -1, "html": 1, "title": null, "device": ""}"#,
        )
        .unwrap();
        assert_eq!(parameters.get("message"), Some("hi"));
        assert_eq!(parameters.get("priority"), Some("-1"));
        assert_eq!(parameters.get("html"), Some("1"));
        assert_eq!(parameters.get("title"), None);
        assert_eq!(parameters.get("device"), None);
    }

    #[test]
    fn broken_json_is_refused_and_other_types_carry_nothing() {
        let json = request("application/json");
        assert!(read_parameters(&json, b"{\"token\":").is_err());
        assert!(read_parameters(&json, b"[1]").is_err());
        for other in ["multipart/form-data; boundary=x", "text/plain"] {
            let parameters = read_parameters(&request(other), b"token=abc").unwrap();
            assert_eq!(parameters.get("token"), None, "{other}");
        }
        let untyped = TestRequest::default().to_http_request();
        assert_eq!(
            read_parameters(&untyped, b"token=abc")
                .unwrap()
                .get("token"),
            None
        );
    }
}
