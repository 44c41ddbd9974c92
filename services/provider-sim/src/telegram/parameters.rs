//! A Bot API request's parameters, from a JSON body, as one JSON object. Herald sends JSON only;
//! a body of any other type (form-encoded or multipart included, which Telegram also reads)
//! carries no parameters here, so it is refused as `chat_id is empty`.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use super::telegram_error::TelegramError;

pub fn read_parameters(
    request: &HttpRequest,
    body: &[u8],
) -> Result<Map<String, Value>, TelegramError> {
    if !is_json(request) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(parameters)) => Ok(parameters),
        _ => Err(TelegramError::bad_request(
            "Bad Request: can't parse JSON object",
        )),
    }
}

fn is_json(request: &HttpRequest) -> bool {
    let Some(Ok(content_type)) = request
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| value.to_str())
    else {
        return false;
    };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_json_body_gives_its_parameters() {
        let json = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/json; charset=utf-8"))
            .to_http_request();
        let parameters = read_parameters(&json, br#"{"chat_id": 7, "text": "hi"}"#).unwrap();
        assert_eq!(parameters["chat_id"], 7);
    }

    #[test]
    fn broken_json_is_refused_and_other_types_carry_nothing() {
        let json = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/json"))
            .to_http_request();
        assert!(read_parameters(&json, b"{\"chat_id\":").is_err());
        assert!(read_parameters(&json, b"[1]").is_err());
        for other in ["application/x-www-form-urlencoded", "text/plain"] {
            let request = TestRequest::default()
                .insert_header((CONTENT_TYPE, other))
                .to_http_request();
            assert!(read_parameters(&request, b"chat_id=7&text=hi")
                .unwrap()
                .is_empty());
        }
    }
}
