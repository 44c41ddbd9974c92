//! Twilio authenticates with HTTP Basic `AccountSid:AuthToken`, and the account in the URL must
//! be the authenticated one.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

pub fn is_authorized(
    request: &HttpRequest,
    path_account_sid: &str,
    account_sid: &str,
    auth_token: &SecretString,
) -> bool {
    let Some((user, password)) = basic_credentials(request) else {
        return false;
    };
    user == account_sid && password == auth_token.expose_secret() && path_account_sid == account_sid
}

fn basic_credentials(request: &HttpRequest) -> Option<(String, String)> {
    let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
