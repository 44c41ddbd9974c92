//! A Bot API request's parameters, from a JSON or form-encoded body, as one JSON object (form
//! values are strings, which Telegram reads as it reads JSON strings). A body of any other type
//! carries no parameters, as for Telegram.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use super::responses::TelegramError;

pub fn read_parameters(
    request: &HttpRequest,
    body: &[u8],
) -> Result<Map<String, Value>, TelegramError> {
    match media_type(request).as_deref() {
        Some("application/json") => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(parameters)) => Ok(parameters),
            _ => Err(TelegramError::bad_request(
                "Bad Request: can't parse JSON object",
            )),
        },
        Some("application/x-www-form-urlencoded") => Ok(form_parameters(body)),
        _ => Ok(Map::new()),
    }
}

fn media_type(request: &HttpRequest) -> Option<String> {
    let content_type = request.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    Some(media_type.to_ascii_lowercase())
}

/// The first value of each name wins; a body that does not decode has no parameters.
fn form_parameters(body: &[u8]) -> Map<String, Value> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut parameters = Map::new();
    for (name, value) in pairs {
        parameters.entry(name).or_insert(Value::String(value));
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn json_and_form_bodies_give_the_same_parameters() {
        let json = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/json; charset=utf-8"))
            .to_http_request();
        let parameters = read_parameters(&json, br#"{"chat_id": 7, "text": "hi"}"#).unwrap();
        assert_eq!(parameters["chat_id"], 7);
        let form = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        let parameters = read_parameters(&form, b"chat_id=7&text=hi&text=again").unwrap();
        assert_eq!(parameters["chat_id"], "7");
        assert_eq!(parameters["text"], "hi");
    }

    #[test]
    fn broken_json_is_refused_and_other_types_carry_nothing() {
        let json = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/json"))
            .to_http_request();
        assert!(read_parameters(&json, b"{\"chat_id\":").is_err());
        assert!(read_parameters(&json, b"[1]").is_err());
        let text = TestRequest::default()
            .insert_header((CONTENT_TYPE, "text/plain"))
            .to_http_request();
        assert!(read_parameters(&text, b"chat_id=7").unwrap().is_empty());
    }
}
