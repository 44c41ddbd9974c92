//! Reading a JSON request body with the API's own errors: 413 over the size limit, 415 for a
//! non-JSON content type, 400 for malformed JSON, 422 naming the field for a wrong type.

use actix_web::{http::header, web, HttpRequest};
use futures::StreamExt;
use herald_domain::FieldError;
use serde::de::DeserializeOwned;

use crate::client_address::TrustedProxies;
use crate::error::ApiError;
use crate::ingest::BytesPermit;
use crate::metrics;
use crate::state::AppState;

/// The JSON request body, its bytes taken from the ingest byte budget as they arrive and held until
/// the caller drops the permit: request bytes in memory stay bounded, in bytes, not requests.
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
///
/// A body is reserved as its bytes arrive, never by what its headers announce, and must arrive
/// within `server.body_read_timeout_ms` (408 beyond): a client trickling a byte at a time, or
/// announcing 4 MiB it never sends, holds only what it sent, and only that long. Before, the
/// announced length (or the largest body, for a chunked one) was reserved up front with no
/// deadline, and 64 such connections gave every tenant 503.
pub async fn read_any_body_within_budget(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    limit_bytes: usize,
) -> Result<(web::Bytes, BytesPermit), ApiError> {
    let declared_length = declared_length(request);
    if declared_length.is_some_and(|length| length > limit_bytes) {
        return Err(ApiError::PayloadTooLarge { limit_bytes });
    }
    let deadline = state.limits.body_read_timeout;
    // The client whose share of the byte budget the body takes (behind a trusted proxy, the
    // forwarded client; every client of an unconfigured ingress shares the proxy's).
    let client = request
        .app_data::<web::Data<TrustedProxies>>()
        .and_then(|proxies| proxies.client_of(request));
    let read = read_reserving(payload, state, client, limit_bytes, declared_length);
    match tokio::time::timeout(deadline, read).await {
        Ok(read) => read,
        Err(_) => {
            metrics::BODY_READ_TIMEOUTS.inc();
            Err(ApiError::BodyReadTimeout {
                timeout_ms: deadline.as_millis() as u64,
            })
        }
    }
}

/// Reads the body, taking each chunk's bytes from the budget before keeping it (503 when the
/// budget has no room, 413 past `limit_bytes`).
async fn read_reserving(
    mut payload: web::Payload,
    state: &AppState,
    client: Option<std::net::IpAddr>,
    limit_bytes: usize,
    declared_length: Option<usize>,
) -> Result<(web::Bytes, BytesPermit), ApiError> {
    // A request in progress holds at least a byte, so an empty body is accounted too.
    let mut permit = state
        .request_bytes
        .take(client, 1)
        .map_err(ApiError::from)?;
    // Never allocated on the client's word alone: at most 64 KiB ahead of what has arrived.
    let mut body =
        web::BytesMut::with_capacity(declared_length.unwrap_or(1024).min(limit_bytes).min(65_536));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|error| ApiError::MalformedJson(format!("body could not be read: {error}")))?;
        if body.len() + chunk.len() > limit_bytes {
            return Err(ApiError::PayloadTooLarge { limit_bytes });
        }
        let chunk_permit = state
            .request_bytes
            .take(client, chunk.len())
            .map_err(ApiError::from)?;
        permit.merge(chunk_permit);
        body.extend_from_slice(&chunk);
    }
    permit.shrink_to(body.len());
    Ok((body.freeze(), permit))
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

/// Parses `bytes` as `T`. Syntax errors are 400; a value of the wrong type or a missing field is a
/// 422 whose detail names the JSON path (`notifications[3].channels`).
/// The request's JSON body as `T`, read within the byte budget. The permit comes back with it (the
/// value holds about as many bytes as the body did); the raw body is dropped here.
pub async fn read_json_within_budget<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(T, BytesPermit), ApiError> {
    let (body, permit) = read_body_within_budget(request, payload, state).await?;
    Ok((parse_json(&body)?, permit))
}

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
    // Every body the API reads is an object, and serde would read a struct from an array too (its
    // fields in order): refused here, as nested structs are by `herald_domain::objects_only`.
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
        let field = if path_prefix.is_empty() {
            "$"
        } else {
            path_prefix
        };
        return Err(JsonProblem::Shape(FieldError::new(
            field,
            "invalid type: array, expected an object",
        )));
    }
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
