//! The simulator's own error shape, `{"error": "..."}`, for the `/_sim/*` routes, unknown paths
//! and malformed query strings: every answer is JSON, never actix's plain-text defaults.

use actix_web::error::{InternalError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

pub fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error: message })
}

/// The default service: any path the simulator does not serve.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}", request.method(), request.path()),
    )
}

/// For `web::QueryConfig`: an invalid query string becomes a JSON 400.
pub fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let response = json_error(
        StatusCode::BAD_REQUEST,
        &format!("invalid query string: {error}"),
    );
    InternalError::from_response(error, response).into()
}
