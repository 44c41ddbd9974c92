//! Standard Webhooks signatures: `webhook-signature` lists space-separated `v1,<base64>`
//! entries, each an HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{raw body}` keyed by the
//! base64-decoded part of the endpoint's `whsec_` secret. Several entries let a sender rotate
//! secrets; one match is enough. The timestamp must be within five minutes of now, so a captured
//! request cannot be replayed later.

use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A registered endpoint's key, ready to sign. Its `Debug` does not show the key.
pub type SigningKey = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far `webhook-timestamp` may be from now, either way.
pub const TIMESTAMP_TOLERANCE_SECONDS: u64 = 5 * 60;
/// The only signature scheme of the symmetric variant.
const SIGNATURE_VERSION: &str = "v1";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret must start with `whsec_`")]
    MissingPrefix,
    #[error("the part of the secret after `whsec_` must be base64: {0}")]
    NotBase64(String),
    #[error("the secret's key must not be empty")]
    EmptyKey,
}

/// Why a request is not accepted as signed by the endpoint's secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the `{0}` header is missing or empty")]
    MissingHeader(&'static str),
    #[error("`webhook-timestamp` is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("`webhook-timestamp` is more than 5 minutes away from now")]
    TimestampOutOfTolerance,
    #[error("no `v1` signature in `webhook-signature` matches the body")]
    NoMatchingSignature,
}

/// The key of a `whsec_<base64>` secret.
pub fn signing_key(secret: &str) -> Result<SigningKey, SecretError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SecretError::MissingPrefix)?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|error| SecretError::NotBase64(error.to_string()))?;
    if key.is_empty() {
        return Err(SecretError::EmptyKey);
    }
    // HMAC takes a key of any length; the error cannot happen, and is not unwrapped anyway.
    SigningKey::new_from_slice(&key).map_err(|_| SecretError::EmptyKey)
}

/// The three headers of a signed request, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signatures: &'a str,
}

pub fn signed_headers(request: &HttpRequest) -> Result<SignedHeaders<'_>, SignatureProblem> {
    let header = move |name: &'static str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.trim().is_empty())
            .ok_or(SignatureProblem::MissingHeader(name))
    };
    Ok(SignedHeaders {
        id: header(ID_HEADER)?,
        timestamp: header(TIMESTAMP_HEADER)?,
        signatures: header(SIGNATURE_HEADER)?,
    })
}

/// The MAC state after absorbing the signed content; finalizing a clone of it gives the tag.
fn signed_content(key: &SigningKey, id: &str, timestamp: &str, body: &[u8]) -> SigningKey {
    let mut mac = key.clone();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks the timestamp against `now_unix`, then every `v1` signature against the body; each
/// comparison is constant-time (`Mac::verify_slice`), so the time taken does not tell an
/// attacker how much of a forged signature was right.
pub fn verify(
    key: &SigningKey,
    headers: &SignedHeaders<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureProblem> {
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureProblem::InvalidTimestamp)?;
    if now_unix.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(SignatureProblem::TimestampOutOfTolerance);
    }
    // The content is signed with the header's text, exactly as the sender wrote it.
    let mac = signed_content(key, headers.id, headers.timestamp, body);
    let matched = headers
        .signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureProblem::NoMatchingSignature)
    }
}

/// `v1,<base64>` for the content, as a sender signs it (for tests and tools).
pub fn sign(key: &SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = signed_content(key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries (standard-webhooks/standard-webhooks,
    /// `libraries/javascript/src/webhook.test.ts`, "sign function works").
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_headers(signatures: &str) -> SignedHeaders<'_> {
        SignedHeaders {
            id: SPEC_ID,
            timestamp: "1614265330",
            signatures,
        }
    }

    #[test]
    fn signing_reproduces_the_specifications_vector() {
        let key = signing_key(SPEC_SECRET).unwrap();
        assert_eq!(
            sign(&key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
        // The Rust reference library's own example (`libraries/rust/src/lib.rs`, `test_sign`).
        let key = signing_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_specifications_vector_verifies_at_its_time_and_not_after_five_minutes() {
        let key = signing_key(SPEC_SECRET).unwrap();
        let headers = spec_headers(SPEC_SIGNATURE);
        assert_eq!(verify(&key, &headers, SPEC_BODY, SPEC_TIMESTAMP), Ok(()));
        assert_eq!(
            verify(&key, &headers, SPEC_BODY, SPEC_TIMESTAMP + 300),
            Ok(())
        );
        assert_eq!(
            verify(&key, &headers, SPEC_BODY, SPEC_TIMESTAMP + 301),
            Err(SignatureProblem::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(&key, &headers, SPEC_BODY, SPEC_TIMESTAMP - 301),
            Err(SignatureProblem::TimestampOutOfTolerance)
        );
    }

    #[test]
    fn any_change_to_the_body_id_or_key_breaks_the_signature() {
        let key = signing_key(SPEC_SECRET).unwrap();
        let headers = spec_headers(SPEC_SIGNATURE);
        let reserialized = br#"{"test":2432232314}"#;
        assert_eq!(
            verify(&key, &headers, reserialized, SPEC_TIMESTAMP),
            Err(SignatureProblem::NoMatchingSignature)
        );
        let other_id = SignedHeaders {
            id: "msg_other",
            ..headers
        };
        assert!(verify(&key, &other_id, SPEC_BODY, SPEC_TIMESTAMP).is_err());
        let other_key = signing_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert!(verify(&other_key, &headers, SPEC_BODY, SPEC_TIMESTAMP).is_err());
    }

    #[test]
    fn one_matching_v1_entry_among_several_is_enough() {
        let key = signing_key(SPEC_SECRET).unwrap();
        let rotated = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,{} {SPEC_SIGNATURE}",
            &SPEC_SIGNATURE[3..]
        );
        assert_eq!(
            verify(&key, &spec_headers(&rotated), SPEC_BODY, SPEC_TIMESTAMP),
            Ok(())
        );
        for wrong in [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,g0hM9SsE",
            "v1,",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,not base64!",
        ] {
            assert_eq!(
                verify(&key, &spec_headers(wrong), SPEC_BODY, SPEC_TIMESTAMP),
                Err(SignatureProblem::NoMatchingSignature),
                "{wrong}"
            );
        }
    }

    #[test]
    fn a_timestamp_that_is_not_seconds_is_refused() {
        let key = signing_key(SPEC_SECRET).unwrap();
        for timestamp in ["", "soon", "1614265330.5", "99999999999999999999"] {
            let headers = SignedHeaders {
                timestamp,
                ..spec_headers(SPEC_SIGNATURE)
            };
            assert_eq!(
                verify(&key, &headers, SPEC_BODY, SPEC_TIMESTAMP),
                Err(SignatureProblem::InvalidTimestamp)
            );
        }
    }

    #[test]
    fn secrets_need_the_prefix_and_base64() {
        assert!(signing_key(SPEC_SECRET).is_ok());
        assert_eq!(
            signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert!(matches!(
            signing_key("whsec_not base64!"),
            Err(SecretError::NotBase64(_))
        ));
        assert_eq!(signing_key("whsec_").unwrap_err(), SecretError::EmptyKey);
    }
}
