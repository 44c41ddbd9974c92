//! Reading a JSON request body with the API's own errors: 413 over the size limit, 415 for a
//! non-JSON content type, 400 for malformed JSON, 422 naming the field for a wrong type.

use actix_web::{http::header, web, HttpRequest};
use futures::StreamExt;
use herald_domain::FieldError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::ingest::BytesPermit;
use crate::routes::notifications::ingest_error_to_api;
use crate::state::AppState;

/// The JSON request body, with its bytes taken from the ingest byte budget before it is read (the
/// declared length, or the largest body allowed when none is declared) and held until the caller
/// drops the permit: request bytes in memory stay bounded, in bytes, not requests.
pub async fn read_body_within_budget(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(web::Bytes, BytesPermit), ApiError> {
    require_json_content_type(request)?;
    read_any_body_within_budget(request, payload, state, state.limits.max_body_bytes).await
}

/// Like [`read_body_within_budget`], for a body of any content type at most `limit_bytes` long
/// (a provider's form-encoded callback).
pub async fn read_any_body_within_budget(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    limit_bytes: usize,
) -> Result<(web::Bytes, BytesPermit), ApiError> {
    let mut permit = take_budget(request, state, limit_bytes)?;
    let body = read_bounded_body(request, payload, limit_bytes).await?;
    permit.shrink_to(body.len());
    Ok((body, permit))
}

/// The body's bytes from the ingest byte budget: the declared length, or `limit_bytes` when none
/// is declared.
fn take_budget(
    request: &HttpRequest,
    state: &AppState,
    limit_bytes: usize,
) -> Result<BytesPermit, ApiError> {
    let reserved = declared_length(request)
        .unwrap_or(limit_bytes)
        .min(limit_bytes);
    state
        .request_bytes
        .take(reserved)
        .map_err(ingest_error_to_api)
}

fn declared_length(request: &HttpRequest) -> Option<usize> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
}

/// 415 unless the declared content type is JSON (`application/json` or `+json`); a body without
/// one is read as JSON.
fn require_json_content_type(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(content_type) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let is_json = content_type
        .to_str()
        .map(|value| {
            let mime = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// The request body whatever its content type, at most `limit_bytes` long (413 beyond).
async fn read_bounded_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit_bytes: usize,
) -> Result<web::Bytes, ApiError> {
    let declared_length = declared_length(request);
    if declared_length.is_some_and(|length| length > limit_bytes) {
        return Err(ApiError::PayloadTooLarge { limit_bytes });
    }
    let mut body = web::BytesMut::with_capacity(declared_length.unwrap_or(1024).min(limit_bytes));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|error| ApiError::MalformedJson(format!("body could not be read: {error}")))?;
        if body.len() + chunk.len() > limit_bytes {
            return Err(ApiError::PayloadTooLarge { limit_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses `bytes` as `T`. Syntax errors are 400; a value of the wrong type or a missing field is a
/// 422 whose detail names the JSON path (`notifications[3].channels`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_json_at(bytes, "").map_err(|error| match error {
        JsonProblem::Syntax(message) => ApiError::MalformedJson(message),
        JsonProblem::Shape(field_error) => ApiError::Validation(vec![field_error]),
    })
}

pub enum JsonProblem {
    Syntax(String),
    Shape(FieldError),
}

/// Like [`parse_json`], with field paths prefixed by `path_prefix` (for batch items).
pub fn parse_json_at<T: DeserializeOwned>(
    bytes: &[u8],
    path_prefix: &str,
) -> Result<T, JsonProblem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = match (path_prefix, path.as_str()) {
                    (prefix, ".") => prefix.to_owned(),
                    ("", path) => path.to_owned(),
                    (prefix, path) => format!("{prefix}.{path}"),
                };
                let field = if field.is_empty() {
                    "$".to_owned()
                } else {
                    field
                };
                JsonProblem::Shape(FieldError::new(field, strip_position(&inner.to_string())))
            }
            _ => JsonProblem::Syntax(inner.to_string()),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| JsonProblem::Syntax(error.to_string()))?;
    Ok(value)
}

/// serde_json appends " at line L column C" to data errors; the field path is more useful.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(position) => message[..position].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Sample {
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        assert!(matches!(
            parse_json::<Sample>(b"{\"items\": ["),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(br#"{"items": []} trailing"#),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn type_errors_name_the_field() {
        let Err(ApiError::Validation(errors)) =
            parse_json::<Sample>(br#"{"items": [{"count": 1}, {"count": "two"}]}"#)
        else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "items[1].count");
        assert!(
            errors[0].problem.contains("invalid type"),
            "{}",
            errors[0].problem
        );
    }
}
