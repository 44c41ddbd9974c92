//! Redis (`[redis]`): where it is, how long a call may take, and TLS for `rediss://` URLs.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::validate::{invalid, validate_tls_files, ConfigError};

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `redis://` or, encrypted, `rediss://`; contains the password, hence secret.
    pub url: SecretString,
    pub timeout_ms: u64,
    /// `rediss://` only: a PEM file of the CA(s) trusted instead of the public ones compiled in
    /// (Mozilla's), for a Redis whose certificate a private CA signed.
    #[serde(default)]
    pub ca_file: String,
    /// `rediss://` only: a client certificate (PEM) and its key, for a Redis that requires one
    /// (`tls-auth-clients yes`); both or neither.
    #[serde(default)]
    pub certificate_file: String,
    #[serde(default)]
    pub key_file: String,
}

impl RedisSettings {
    /// `url` without TLS files of its own (a `rediss://` URL trusts the public CAs).
    pub fn new(url: SecretString, timeout_ms: u64) -> RedisSettings {
        RedisSettings {
            url,
            timeout_ms,
            ca_file: String::new(),
            certificate_file: String::new(),
            key_file: String::new(),
        }
    }

    /// Whether the URL asks for TLS (schemes are case-insensitive, as the redis crate reads them).
    pub fn uses_tls(&self) -> bool {
        url::Url::parse(self.url.expose_secret()).is_ok_and(|url| url.scheme() == "rediss")
    }

    /// Problems are named by setting; the URL itself (it holds the password) never appears.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose_secret();
        let Ok(parsed) = url::Url::parse(url) else {
            return Err(invalid(
                "redis.url",
                "is not a URL (redis://[:password@]host:port/db or rediss://... for TLS)",
            ));
        };
        if !matches!(parsed.scheme(), "redis" | "rediss" | "redis+unix" | "unix") {
            return Err(invalid(
                "redis.url",
                format!(
                    "scheme `{}` is not redis, rediss (TLS), redis+unix or unix",
                    parsed.scheme()
                ),
            ));
        }
        if parsed.fragment().is_some() {
            return Err(invalid(
                "redis.url",
                "has a fragment (#insecure would turn certificate verification off): give the CA in redis.ca_file instead",
            ));
        }
        let not_encrypted = (parsed.scheme() != "rediss").then(|| {
            "is set, but redis.url is not rediss://: the connection would not be encrypted"
                .to_owned()
        });
        validate_tls_files(
            "redis",
            [&self.ca_file, &self.certificate_file, &self.key_file],
            not_encrypted,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Settings;

    fn error(pairs: &[(&str, &str)]) -> String {
        Settings::load_with_environment(
            None,
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        )
        .expect_err("refused")
        .to_string()
    }

    #[test]
    fn tls_files_need_rediss_and_certificate_verification_stays_on() {
        let ca = std::env::temp_dir().join(format!("herald-redis-ca-{}", std::process::id()));
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let ca = ca.display().to_string();
        let plain = error(&[("HERALD_REDIS__CA_FILE", &ca)]);
        assert!(
            plain.contains("`redis.ca_file`") && plain.contains("rediss://"),
            "{plain}"
        );
        let insecure = error(&[(
            "HERALD_REDIS__URL",
            "rediss://:hunter2@redis.example.com:6380/0#insecure",
        )]);
        assert!(insecure.contains("`redis.url`"), "{insecure}");
        assert!(
            !insecure.contains("hunter2"),
            "the password in an error: {insecure}"
        );
        let missing = error(&[
            ("HERALD_REDIS__URL", "rediss://redis.example.com:6380/0"),
            ("HERALD_REDIS__CA_FILE", "/nonexistent/ca.pem"),
        ]);
        assert!(missing.contains("cannot be read"), "{missing}");
        let scheme = error(&[("HERALD_REDIS__URL", "http://:hunter2@redis.example.com/0")]);
        assert!(
            scheme.contains("scheme `http`") && !scheme.contains("hunter2"),
            "{scheme}"
        );
        let settings = Settings::load_with_environment(
            None,
            [
                ("HERALD_REDIS__URL", "rediss://redis.example.com:6380/0"),
                ("HERALD_REDIS__CA_FILE", ca.as_str()),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        )
        .unwrap();
        assert!(settings.redis.uses_tls());
        std::fs::remove_file(&ca).unwrap();
    }
}
