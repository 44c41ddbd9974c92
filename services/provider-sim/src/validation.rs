//! Format checks shared by the providers: email addresses, E.164 phone numbers, Twilio SIDs and
//! callback URLs. They are deliberately close to what the providers accept, not RFC-complete.

/// Longest address SMTP can carry (RFC 5321: 256-octet path minus the angle brackets).
const MAX_EMAIL_LENGTH: usize = 254;
const MAX_LOCAL_PART_LENGTH: usize = 64;
const MAX_DOMAIN_LABEL_LENGTH: usize = 63;

/// `local@domain.tld`: a dot-atom local part and a domain of at least two labels. Quoted local
/// parts and IP-literal domains are refused, as SendGrid refuses them.
pub fn is_valid_email(address: &str) -> bool {
    if address.len() > MAX_EMAIL_LENGTH {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    is_valid_local_part(local) && is_valid_domain(domain)
}

fn is_valid_local_part(local: &str) -> bool {
    if local.is_empty() || local.len() > MAX_LOCAL_PART_LENGTH {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    local
        .chars()
        .all(|character| character.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(character))
}

fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let all_labels_valid = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= MAX_DOMAIN_LABEL_LENGTH
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|character| character.is_alphanumeric() || character == '-')
    });
    let top_level = labels[labels.len() - 1];
    all_labels_valid
        && top_level.chars().count() >= 2
        && !top_level.chars().all(|c| c.is_ascii_digit())
}

/// E.164: `+`, then 2 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A Twilio SID: the two-letter `prefix` and 32 hexadecimal digits.
pub fn is_twilio_sid(prefix: &str, sid: &str) -> bool {
    let Some(hex) = sid.strip_prefix(prefix) else {
        return false;
    };
    hex.len() == 32 && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// An absolute `http` or `https` URL with a host.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty() && !url.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_email_addresses() {
        for address in [
            "alex@example.com",
            "first.last+tag@mail.example.co.uk",
            "o'brien@example.ie",
            "user_1@sub-domain.example.org",
            "josé@exämple.com",
        ] {
            assert!(is_valid_email(address), "{address}");
        }
    }

    #[test]
    fn refuses_malformed_email_addresses() {
        for address in [
            "",
            "alex",
            "alex@",
            "@example.com",
            "alex@example",
            "alex@@example.com",
            "alex@example..com",
            ".alex@example.com",
            "al..ex@example.com",
            "alex smith@example.com",
            "alex@-example.com",
            "alex@example.c",
            "alex@127.0.0.1",
            "Alex <alex@example.com>",
        ] {
            assert!(!is_valid_email(address), "{address}");
        }
        assert!(!is_valid_email(&format!("{}@example.com", "a".repeat(65))));
    }

    #[test]
    fn e164_needs_a_plus_and_two_to_fifteen_digits_not_starting_with_zero() {
        assert!(is_e164("+14155552345"));
        assert!(is_e164("+12"));
        assert!(is_e164("+123456789012345"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("14155552345"));
        assert!(!is_e164("+04155552345"));
        assert!(!is_e164("+1 415 555 2345"));
        assert!(!is_e164("+1415555234a"));
    }

    #[test]
    fn twilio_sids_have_a_prefix_and_32_hex_digits() {
        assert!(is_twilio_sid("AC", "AC00000000000000000000000000000000"));
        assert!(is_twilio_sid("MG", "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(!is_twilio_sid("AC", "MG00000000000000000000000000000000"));
        assert!(!is_twilio_sid("AC", "AC0000"));
        assert!(!is_twilio_sid("AC", "AC0000000000000000000000000000000g"));
    }

    #[test]
    fn callback_urls_must_be_absolute_http() {
        assert!(is_http_url("https://herald.example/callbacks/twilio"));
        assert!(is_http_url("http://127.0.0.1:8080/cb?x=1"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("/relative"));
    }
}
