//! A URL given by a tenant (a Slack or Discord webhook, a recipient's endpoint, a status-events
//! subscription), judged on its text when the API takes it: its syntax, scheme, credentials and
//! host. The worker checks again after DNS resolution ([`crate::outbound_url`]), since a name can
//! resolve anywhere.

use crate::outbound_url::check_url;
use crate::validation::FieldError;

/// Longest URL taken from a tenant: the longest a browser or proxy reliably carries.
pub const MAX_URL_CHARS: usize = 2048;

/// The schema of a URL Herald calls for a tenant: `https`, a public host name (an IP literal or a
/// local name such as `localhost` is refused by the validation, unless a deployment allows private
/// networks), at most [`MAX_URL_CHARS`].
pub fn public_https_url_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .max_length(Some(MAX_URL_CHARS))
        .pattern(Some(PUBLIC_HTTPS_URL_PATTERN))
        .into()
}

/// What a URL Herald calls for a tenant looks like, published in the API's schema and enforced on
/// the text as given (unless a deployment allows private networks): `https`, a lowercase host
/// name ending in a letters-only top-level label, a port below 10,000, and a path and query of
/// unreserved or percent-encoded characters. One expression for both, so that the schema never
/// promises what the API refuses, or refuses what it accepts.
pub const PUBLIC_HTTPS_URL_PATTERN: &str = r"^https://[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,63}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/%-]*)?(\?[A-Za-z0-9._~/%=&+-]*)?$";

static PUBLIC_HTTPS_URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(PUBLIC_HTTPS_URL_PATTERN).expect("PUBLIC_HTTPS_URL_PATTERN is a valid regex")
});

/// Why a tenant's URL cannot be used, judged on its text (see [`crate::outbound_url`]): an
/// absolute `https` URL (or `http` when private networks are allowed) with a host, no credentials,
/// and, unless private networks are allowed, a host that is neither a local name nor a forbidden
/// IP literal. The worker checks again, after DNS resolution.
pub fn url_problem(field: &str, text: &str, allow_private_networks: bool) -> Option<FieldError> {
    if text.chars().count() > MAX_URL_CHARS {
        return Some(FieldError::new(
            field,
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    // The URL parser would quietly drop or escape them, but the text is what is stored, and
    // PostgreSQL cannot hold U+0000: refused up front, like everywhere else.
    if text.chars().any(char::is_control) || text.trim() != text {
        return Some(FieldError::new(
            field,
            "must not contain control characters or surrounding whitespace",
        ));
    }
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(error) => {
            return Some(FieldError::new(
                field,
                format!("must be an absolute URL ({error})"),
            ))
        }
    };
    if let Err(refusal) = check_url(&url, allow_private_networks) {
        return Some(FieldError::new(field, refusal.to_string()));
    }
    // The specific refusals first (they say why); then the schema's pattern, which also refuses
    // what the URL parser would accept or quietly rewrite (`*` in a host, upper case).
    (!allow_private_networks && !PUBLIC_HTTPS_URL.is_match(text)).then(|| {
        FieldError::new(
            field,
            "must be https:// and a lowercase public host name (e.g. hooks.example.com), with an \
             optional port below 10000 and an optional path and query of unreserved or \
             percent-encoded characters",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_urls_must_be_https_to_a_public_host_without_credentials() {
        let field = "url";
        for accepted in [
            "https://hooks.example.com/x",
            "https://hooks.example.com:8443/services/T0/B0/x%2Fy",
            "https://api.example.co.uk/hook?token=abc-1&v=2",
            "https://example.com",
        ] {
            assert_eq!(url_problem(field, accepted, false), None, "{accepted}");
        }
        for refused in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://user:pass@hooks.example.com/x",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://metadata.google.internal/computeMetadata",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/x",
            "https://2130706433/x",
            "https://hooks.example.com*/x",
            "https://Hooks.Example.com/x",
            "https://hooks.example.com/a b",
            "https://hooks.example.com:65000/x",
            "not a url",
            "/relative",
        ] {
            assert!(
                url_problem(field, refused, false).is_some(),
                "{refused} must be refused"
            );
        }
        assert_eq!(url_problem(field, "http://127.0.0.1:9090/x", true), None);
        assert!(url_problem(field, "ftp://127.0.0.1/x", true).is_some());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(url_problem(field, &long, false).is_some());
    }

    #[test]
    fn a_nul_or_a_newline_in_a_url_is_refused_before_it_reaches_the_database() {
        for hostile in [
            "https://hooks.example.com/\u{0}x",
            "https://hooks.example.com/x\n",
            " https://hooks.example.com/x",
            "https://hooks.example.com/\tx",
        ] {
            assert!(url_problem("url", hostile, true).is_some(), "{hostile:?}");
        }
    }
}
