//! SendGrid authenticates with `Authorization: Bearer <API key>`.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};

pub fn is_authorized(request: &HttpRequest, api_key: &SecretString) -> bool {
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return false;
    };
    let Ok(header) = header.to_str() else {
        return false;
    };
    let Some((scheme, key)) = header.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && key.trim() == api_key.expose_secret()
}
