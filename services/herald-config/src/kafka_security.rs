//! Encryption and authentication to the Kafka brokers (`[kafka.security]`, docs/DEPLOY.md "Secure
//! connections"): which protocol, which CA, an optional client certificate, and a SASL login by
//! password (PLAIN, SCRAM) or by OAuth bearer tokens (OIDC client credentials). Checked once at
//! start-up, refusing combinations that would connect less securely than the operator believes;
//! herald-kafka turns them into librdkafka's properties.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::validate::{invalid, readable_file, secret_value, validate_tls_files, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaSecuritySettings {
    pub protocol: KafkaSecurityProtocol,
    /// PEM file of the CA(s) that signed the brokers' certificates; empty: the system's CA bundle
    /// (the public CAs of managed clusters).
    pub ca_file: String,
    /// A client certificate (PEM) and its unencrypted key, for brokers that require one (mutual
    /// TLS); both or neither.
    pub certificate_file: String,
    pub key_file: String,
    pub sasl: KafkaSaslSettings,
}

impl Default for KafkaSecuritySettings {
    fn default() -> Self {
        KafkaSecuritySettings {
            protocol: KafkaSecurityProtocol::Plaintext,
            ca_file: String::new(),
            certificate_file: String::new(),
            key_file: String::new(),
            sasl: KafkaSaslSettings::default(),
        }
    }
}

/// Kafka's `security.protocol`. Herald's spelling is lower case; Kafka's (`SASL_SSL`) is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSecurityProtocol {
    /// Neither encryption nor login: a private network only.
    #[serde(alias = "PLAINTEXT")]
    Plaintext,
    /// TLS, the broker's certificate verified (and its host name), optionally a client certificate.
    #[serde(alias = "SSL")]
    Ssl,
    /// A SASL login without encryption (SCRAM only: PLAIN and OAUTHBEARER would send their secret
    /// as it is): a private network only.
    #[serde(alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// TLS and a SASL login: what managed clusters (MSK, Confluent Cloud, Aiven, ...) expect.
    #[serde(alias = "SASL_SSL")]
    SaslSsl,
}

impl KafkaSecurityProtocol {
    /// librdkafka's `security.protocol`.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            KafkaSecurityProtocol::Plaintext => "plaintext",
            KafkaSecurityProtocol::Ssl => "ssl",
            KafkaSecurityProtocol::SaslPlaintext => "sasl_plaintext",
            KafkaSecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(
            self,
            KafkaSecurityProtocol::Ssl | KafkaSecurityProtocol::SaslSsl
        )
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            KafkaSecurityProtocol::SaslPlaintext | KafkaSecurityProtocol::SaslSsl
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaSaslSettings {
    /// Required with the sasl_* protocols, `none` with the others.
    pub mechanism: KafkaSaslMechanism,
    /// PLAIN and SCRAM: the user, and its password either as a value (an environment variable
    /// from a Secret) or as a file (a mounted Secret); exactly one of the two.
    pub username: String,
    pub password: SecretString,
    pub password_file: String,
    pub oauthbearer: KafkaOauthBearerSettings,
}

impl Default for KafkaSaslSettings {
    fn default() -> Self {
        KafkaSaslSettings {
            mechanism: KafkaSaslMechanism::None,
            username: String::new(),
            password: SecretString::from(""),
            password_file: String::new(),
            oauthbearer: KafkaOauthBearerSettings::default(),
        }
    }
}

/// Kafka's `sasl.mechanism`: the ones librdkafka implements with OpenSSL alone. GSSAPI (Kerberos)
/// is not built in. Kafka's spelling (`SCRAM-SHA-512`) is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KafkaSaslMechanism {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "plain", alias = "PLAIN")]
    Plain,
    #[serde(rename = "scram-sha-256", alias = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "scram-sha-512", alias = "SCRAM-SHA-512")]
    ScramSha512,
    /// OAuth 2 bearer tokens from an OIDC token endpoint (client credentials grant), fetched and
    /// refreshed by librdkafka itself.
    #[serde(rename = "oauthbearer", alias = "OAUTHBEARER")]
    OauthBearer,
}

impl KafkaSaslMechanism {
    /// librdkafka's `sasl.mechanism`; `None` has none.
    pub fn as_librdkafka(self) -> Option<&'static str> {
        match self {
            KafkaSaslMechanism::None => None,
            KafkaSaslMechanism::Plain => Some("PLAIN"),
            KafkaSaslMechanism::ScramSha256 => Some("SCRAM-SHA-256"),
            KafkaSaslMechanism::ScramSha512 => Some("SCRAM-SHA-512"),
            KafkaSaslMechanism::OauthBearer => Some("OAUTHBEARER"),
        }
    }

    fn uses_password(self) -> bool {
        matches!(
            self,
            KafkaSaslMechanism::Plain
                | KafkaSaslMechanism::ScramSha256
                | KafkaSaslMechanism::ScramSha512
        )
    }
}

/// OAUTHBEARER through an OIDC token endpoint: librdkafka's `sasl.oauthbearer.method=oidc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaOauthBearerSettings {
    /// The identity provider's token endpoint (https).
    pub token_endpoint_url: String,
    pub client_id: String,
    /// The client's secret, as a value or as a file; exactly one of the two.
    pub client_secret: SecretString,
    pub client_secret_file: String,
    /// Space-separated scopes to ask for; empty: none.
    pub scope: String,
    /// SASL extensions the cluster wants, `key=value` pairs separated by commas (Confluent Cloud:
    /// `logicalCluster=lkc-...,identityPoolId=pool-...`); empty: none.
    pub extensions: String,
    /// PEM file of the CA(s) that signed the token endpoint's certificate, for an identity
    /// provider with a private CA (an in-house Keycloak); empty: the system's CA bundle. Not
    /// `kafka.security.ca_file`: the brokers and the identity provider are seldom signed alike.
    pub ca_file: String,
}

impl Default for KafkaOauthBearerSettings {
    fn default() -> Self {
        KafkaOauthBearerSettings {
            token_endpoint_url: String::new(),
            client_id: String::new(),
            client_secret: SecretString::from(""),
            client_secret_file: String::new(),
            scope: String::new(),
            extensions: String::new(),
            ca_file: String::new(),
        }
    }
}

impl KafkaOauthBearerSettings {
    fn is_set(&self) -> bool {
        !(self.token_endpoint_url.is_empty()
            && self.client_id.is_empty()
            && self.client_secret.expose_secret().is_empty()
            && self.client_secret_file.is_empty()
            && self.scope.is_empty()
            && self.extensions.is_empty()
            && self.ca_file.is_empty())
    }

    /// The client secret, read from its file when one is named (at every call: a rotated Secret
    /// applies to clients created afterwards).
    pub fn client_secret(&self) -> Result<SecretString, ConfigError> {
        secret_value(
            &self.client_secret,
            &self.client_secret_file,
            "kafka.security.sasl.oauthbearer.client_secret",
        )
    }
}

impl KafkaSaslSettings {
    /// The password, read from its file when one is named (at every call: a rotated Secret
    /// applies to clients created afterwards).
    pub fn password(&self) -> Result<SecretString, ConfigError> {
        secret_value(
            &self.password,
            &self.password_file,
            "kafka.security.sasl.password",
        )
    }
}

/// A secret given as a value or as a file: exactly one of the two when `required`, neither
/// otherwise; and not empty.
fn one_secret(
    value: &SecretString,
    file: &str,
    setting: &str,
    required: bool,
    why_not_allowed: &str,
) -> Result<(), ConfigError> {
    let has_value = !value.expose_secret().is_empty();
    let has_file = !file.is_empty();
    if !required {
        if has_value || has_file {
            return Err(invalid(setting, why_not_allowed.to_owned()));
        }
        return Ok(());
    }
    match (has_value, has_file) {
        (true, true) => Err(invalid(
            setting,
            format!("give {setting} or {setting}_file, not both"),
        )),
        (false, false) => Err(invalid(
            setting,
            format!(
                "required: give {setting} (from a Secret) or {setting}_file (a mounted Secret)"
            ),
        )),
        (false, true) => {
            // Reading it is the check that it is there and readable.
            if secret_value(value, file, setting)?
                .expose_secret()
                .is_empty()
            {
                return Err(invalid(
                    format!("{setting}_file"),
                    format!("`{file}` is empty"),
                ));
            }
            Ok(())
        }
        (true, false) => Ok(()),
    }
}

impl KafkaSecuritySettings {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let protocol = self.protocol;
        let not_encrypted = (!protocol.uses_tls()).then(|| {
            format!(
                "is set, but kafka.security.protocol `{}` is not encrypted: use ssl or sasl_ssl",
                protocol.as_librdkafka()
            )
        });
        validate_tls_files(
            "kafka.security",
            [&self.ca_file, &self.certificate_file, &self.key_file],
            not_encrypted,
        )?;
        self.validate_sasl()
    }

    fn validate_sasl(&self) -> Result<(), ConfigError> {
        let (protocol, sasl) = (self.protocol, &self.sasl);
        let mechanism = sasl.mechanism;
        if protocol.uses_sasl() && mechanism == KafkaSaslMechanism::None {
            return Err(invalid(
                "kafka.security.sasl.mechanism",
                format!(
                    "required with kafka.security.protocol `{}`: plain, scram-sha-256, scram-sha-512 or oauthbearer",
                    protocol.as_librdkafka()
                ),
            ));
        }
        if !protocol.uses_sasl() && mechanism != KafkaSaslMechanism::None {
            return Err(invalid(
                "kafka.security.sasl.mechanism",
                format!(
                    "is set, but kafka.security.protocol `{}` has no SASL login: use sasl_ssl",
                    protocol.as_librdkafka()
                ),
            ));
        }
        if protocol == KafkaSecurityProtocol::SaslPlaintext
            && matches!(
                mechanism,
                KafkaSaslMechanism::Plain | KafkaSaslMechanism::OauthBearer
            )
        {
            return Err(invalid(
                "kafka.security.sasl.mechanism",
                "plain and oauthbearer send their secret as it is: only over sasl_ssl",
            ));
        }
        let uses_password = mechanism.uses_password();
        if uses_password == sasl.username.is_empty() {
            return Err(invalid(
                "kafka.security.sasl.username",
                if uses_password {
                    "required with the plain and scram mechanisms"
                } else {
                    "only the plain and scram mechanisms have a user"
                },
            ));
        }
        one_secret(
            &sasl.password,
            &sasl.password_file,
            "kafka.security.sasl.password",
            uses_password,
            "only the plain and scram mechanisms have a password",
        )?;
        let oauthbearer = &sasl.oauthbearer;
        if mechanism != KafkaSaslMechanism::OauthBearer {
            if oauthbearer.is_set() {
                return Err(invalid(
                    "kafka.security.sasl.oauthbearer",
                    "is set, but kafka.security.sasl.mechanism is not oauthbearer",
                ));
            }
            return Ok(());
        }
        let endpoint_is_https = url::Url::parse(&oauthbearer.token_endpoint_url)
            .is_ok_and(|url| url.scheme() == "https" || is_loopback_http(&url));
        if !endpoint_is_https {
            return Err(invalid(
                "kafka.security.sasl.oauthbearer.token_endpoint_url",
                "required with oauthbearer: the identity provider's https token endpoint",
            ));
        }
        if oauthbearer.client_id.is_empty() {
            return Err(invalid(
                "kafka.security.sasl.oauthbearer.client_id",
                "required with oauthbearer",
            ));
        }
        one_secret(
            &oauthbearer.client_secret,
            &oauthbearer.client_secret_file,
            "kafka.security.sasl.oauthbearer.client_secret",
            true,
            "",
        )?;
        if !oauthbearer.ca_file.is_empty() {
            readable_file(
                "kafka.security.sasl.oauthbearer.ca_file",
                &oauthbearer.ca_file,
            )?;
        }
        let malformed_extension = oauthbearer
            .extensions
            .split(',')
            .filter(|pair| !pair.trim().is_empty())
            .find(|pair| {
                pair.split_once('=')
                    .is_none_or(|(key, _)| key.trim().is_empty())
            });
        if let Some(pair) = malformed_extension {
            return Err(invalid(
                "kafka.security.sasl.oauthbearer.extensions",
                format!("`{pair}` is not key=value (pairs separated by commas)"),
            ));
        }
        Ok(())
    }
}

/// Plain http only to this machine (a test's identity provider): anywhere else the client secret
/// would cross the network readable.
fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(address)) => address.is_loopback(),
            Some(url::Host::Ipv6(address)) => address.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        }
}

#[cfg(test)]
mod tests {
    use crate::{KafkaSaslMechanism, KafkaSecurityProtocol, Settings};

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::load_with_environment(
            None,
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        )
        .map_err(|error| error.to_string())
    }

    fn a_file(name: &str, contents: &str) -> String {
        let path = std::env::temp_dir().join(format!("herald-{name}-{}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    #[test]
    fn kafkas_own_spellings_are_read_and_a_password_never_reaches_debug_output() {
        let settings = load(&[
            ("HERALD_KAFKA__SECURITY__PROTOCOL", "SASL_SSL"),
            ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "SCRAM-SHA-256"),
            ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
            (
                "HERALD_KAFKA__SECURITY__SASL__PASSWORD",
                "pa55-in-the-environment",
            ),
        ])
        .unwrap();
        let security = &settings.kafka.security;
        assert_eq!(security.protocol, KafkaSecurityProtocol::SaslSsl);
        assert_eq!(security.sasl.mechanism, KafkaSaslMechanism::ScramSha256);
        assert!(!format!("{settings:?}").contains("pa55"));
    }

    #[test]
    fn inconsistent_combinations_are_refused_by_name() {
        let ca = a_file("ca", "-----BEGIN CERTIFICATE-----\n");
        let password = a_file("password", "secret\n");
        let empty = a_file("empty-password", "\n");
        // The environment, the setting named, and words of the problem.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case; 13] = [
            (
                &[("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl")],
                "kafka.security.sasl.mechanism",
                "required",
            ),
            (
                &[("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "plain")],
                "kafka.security.sasl.mechanism",
                "no SASL login",
            ),
            (
                &[("HERALD_KAFKA__SECURITY__CA_FILE", &ca)],
                "kafka.security.ca_file",
                "not encrypted",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "ssl"),
                    ("HERALD_KAFKA__SECURITY__CA_FILE", "/nonexistent/ca.pem"),
                ],
                "kafka.security.ca_file",
                "cannot be read",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "ssl"),
                    ("HERALD_KAFKA__SECURITY__CERTIFICATE_FILE", &ca),
                ],
                "kafka.security.certificate_file",
                "needs its key",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "scram-sha-512"),
                    ("HERALD_KAFKA__SECURITY__SASL__PASSWORD", "secret"),
                ],
                "kafka.security.sasl.username",
                "required",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "scram-sha-512"),
                    ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
                ],
                "kafka.security.sasl.password",
                "required",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "scram-sha-512"),
                    ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
                    ("HERALD_KAFKA__SECURITY__SASL__PASSWORD", "secret"),
                    ("HERALD_KAFKA__SECURITY__SASL__PASSWORD_FILE", &password),
                ],
                "kafka.security.sasl.password",
                "not both",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "scram-sha-512"),
                    ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
                    ("HERALD_KAFKA__SECURITY__SASL__PASSWORD_FILE", &empty),
                ],
                "kafka.security.sasl.password_file",
                "is empty",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_plaintext"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "plain"),
                    ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
                    ("HERALD_KAFKA__SECURITY__SASL__PASSWORD", "secret"),
                ],
                "kafka.security.sasl.mechanism",
                "only over sasl_ssl",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "oauthbearer"),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__TOKEN_ENDPOINT_URL",
                        "http://idp.example.com/token",
                    ),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_ID",
                        "herald",
                    ),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_SECRET",
                        "s",
                    ),
                ],
                "kafka.security.sasl.oauthbearer.token_endpoint_url",
                "https",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "oauthbearer"),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__TOKEN_ENDPOINT_URL",
                        "https://idp.example.com/token",
                    ),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_ID",
                        "herald",
                    ),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_SECRET",
                        "s",
                    ),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CA_FILE",
                        "/nonexistent/idp-ca.pem",
                    ),
                ],
                "kafka.security.sasl.oauthbearer.ca_file",
                "cannot be read",
            ),
            (
                &[
                    ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
                    ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "scram-sha-512"),
                    ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
                    ("HERALD_KAFKA__SECURITY__SASL__PASSWORD", "secret"),
                    (
                        "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_ID",
                        "herald",
                    ),
                ],
                "kafka.security.sasl.oauthbearer",
                "not oauthbearer",
            ),
        ];
        for (environment, setting, problem) in cases {
            let error = load(environment).expect_err(setting);
            assert!(
                error.contains(&format!("`{setting}`")) && error.contains(problem),
                "{environment:?}: {error}"
            );
            assert!(!error.contains("secret\n"), "{error}");
        }
        // And the consistent ones load.
        load(&[
            ("HERALD_KAFKA__SECURITY__PROTOCOL", "ssl"),
            ("HERALD_KAFKA__SECURITY__CA_FILE", &ca),
        ])
        .unwrap();
        load(&[
            ("HERALD_KAFKA__SECURITY__PROTOCOL", "sasl_plaintext"),
            ("HERALD_KAFKA__SECURITY__SASL__MECHANISM", "scram-sha-512"),
            ("HERALD_KAFKA__SECURITY__SASL__USERNAME", "herald"),
            ("HERALD_KAFKA__SECURITY__SASL__PASSWORD_FILE", &password),
        ])
        .unwrap();
        for file in [ca, password, empty] {
            std::fs::remove_file(file).unwrap();
        }
    }
}
