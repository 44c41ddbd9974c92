//! `[kafka.security]` as librdkafka's properties, for every client Herald makes (`base_config`),
//! and a connection check that names why the brokers refused (a wrong password, an untrusted CA)
//! instead of timing out without a word.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_config::{KafkaSaslMechanism, KafkaSecuritySettings, KafkaSettings};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use secrecy::ExposeSecret;

/// librdkafka probes the usual places of the system's CA bundle (Debian's
/// /etc/ssl/certs/ca-certificates.crt among them) instead of relying on the OpenSSL build's
/// default directory, which a distroless image may lack.
const SYSTEM_CA_BUNDLE: &str = "probe";

/// Sets `security` on `config`. Secrets given as files are read now: a rotated Secret applies to
/// the clients made after it.
pub(crate) fn apply(
    config: &mut ClientConfig,
    security: &KafkaSecuritySettings,
) -> anyhow::Result<()> {
    let protocol = security.protocol;
    config.set("security.protocol", protocol.as_librdkafka());
    if protocol.uses_tls() {
        let ca = match security.ca_file.as_str() {
            "" => SYSTEM_CA_BUNDLE,
            file => file,
        };
        config
            .set("ssl.ca.location", ca)
            // librdkafka's default since 2.0, set all the same: a certificate for another host
            // is refused.
            .set("ssl.endpoint.identification.algorithm", "https");
        if !security.certificate_file.is_empty() {
            config
                .set("ssl.certificate.location", &security.certificate_file)
                .set("ssl.key.location", &security.key_file);
        }
    }
    let sasl = &security.sasl;
    let Some(mechanism) = sasl.mechanism.as_librdkafka() else {
        return Ok(());
    };
    config.set("sasl.mechanism", mechanism);
    if sasl.mechanism == KafkaSaslMechanism::OauthBearer {
        let oauthbearer = &sasl.oauthbearer;
        config
            .set("sasl.oauthbearer.method", "oidc")
            .set(
                "sasl.oauthbearer.token.endpoint.url",
                &oauthbearer.token_endpoint_url,
            )
            .set("sasl.oauthbearer.client.id", &oauthbearer.client_id)
            .set(
                "sasl.oauthbearer.client.secret",
                oauthbearer.client_secret()?.expose_secret(),
            )
            // The token endpoint's certificate (libcurl's request, not the brokers' connection):
            // checked against its own CA file, or the system's CAs.
            .set(
                "https.ca.location",
                match oauthbearer.ca_file.as_str() {
                    "" => SYSTEM_CA_BUNDLE,
                    file => file,
                },
            );
        if !oauthbearer.scope.is_empty() {
            config.set("sasl.oauthbearer.scope", &oauthbearer.scope);
        }
        if !oauthbearer.extensions.is_empty() {
            config.set("sasl.oauthbearer.extensions", &oauthbearer.extensions);
        }
    } else {
        config
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password()?.expose_secret());
    }
    Ok(())
}

/// Remembers the first error librdkafka reports (through the error callback, or an error log line,
/// which carries the same reason), and whether it was a refusal: a failed login or TLS handshake,
/// which waiting will not cure.
#[derive(Default)]
struct FirstError(Mutex<Option<(bool, String)>>);

impl FirstError {
    fn keep(&self, refusal: bool, reason: String) {
        let mut first = self.0.lock().expect("first error poisoned");
        match first.as_ref() {
            // A refusal after a plain transport error (the first try of a restarting broker) is
            // the one to report.
            Some((false, _)) if refusal => *first = Some((refusal, reason)),
            Some(_) => {}
            None => *first = Some((refusal, reason)),
        }
    }

    fn first(&self) -> Option<(bool, String)> {
        self.0.lock().expect("first error poisoned").clone()
    }
}

impl ClientContext for FirstError {
    fn error(&self, error: KafkaError, reason: &str) {
        let refusal = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SSL
                    | RDKafkaErrorCode::SaslAuthenticationFailed
            )
        );
        self.keep(refusal, format!("{error}: {reason}"));
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            // OpenSSL's errors ("SSL routines::certificate verify failed", "...::sslv3 alert bad
            // certificate" from a broker that wanted a client certificate) and SASL's.
            let refusal = message.contains("SSL handshake failed")
                || message.contains("SSL routines")
                || message.contains("SASL authentication error")
                || message.contains("Authentication failed");
            self.keep(refusal, format!("{facility}: {message}"));
        }
    }
}

impl ConsumerContext for FirstError {}

/// Whether the brokers of `settings` answer a metadata request within `timeout`, with the
/// configured protocol, certificates and login. A refused login or TLS handshake ends the wait
/// at once; the error says why, in librdkafka's words ("SASL authentication error: Authentication
/// failed ... invalid credentials", "SSL handshake failed: ... certificate verify failed"), or
/// that nothing answered.
pub async fn check_connection(settings: &KafkaSettings, timeout: Duration) -> anyhow::Result<()> {
    let mut config = crate::base_config(settings)?;
    // librdkafka logs at the level the `log` facade allows, which may be none: the refusals'
    // reasons are error lines.
    config.set_log_level(RDKafkaLogLevel::Error);
    let client: BaseConsumer<FirstError> = config.create_with_context(FirstError::default())?;
    let brokers = settings.brokers.clone();
    let protocol = settings.security.protocol.as_librdkafka();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let fetched = client.fetch_metadata(None, left.min(Duration::from_secs(1)));
            // Serves the error callback (a consumer's errors wait in its queue).
            let _ = client.poll(Duration::ZERO);
            let first = client.context().first();
            match (fetched, first) {
                (Ok(_), _) => return Ok(()),
                (Err(error), Some((true, reason))) => {
                    return Err(anyhow::anyhow!(
                        "the Kafka brokers {brokers} ({protocol}) refused the connection: {reason} ({error})"
                    ))
                }
                (Err(error), first) if Instant::now() >= deadline => {
                    let reason = first.map_or_else(|| error.to_string(), |(_, reason)| reason);
                    return Err(anyhow::anyhow!(
                        "the Kafka brokers {brokers} ({protocol}) did not answer within {timeout:?}: {reason}"
                    ));
                }
                (Err(_), _) => {}
            }
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    use herald_config::{KafkaSecurityProtocol, Settings};
    use rdkafka::producer::BaseProducer;
    use secrecy::SecretString;

    use super::*;

    fn properties(settings: &KafkaSettings) -> (ClientConfig, String) {
        let config = crate::base_config(settings).unwrap();
        let debug = format!("{config:?}");
        (config, debug)
    }

    #[test]
    fn plaintext_sets_only_the_protocol() {
        let settings = Settings::load(None).unwrap();
        let (config, _) = properties(&settings.kafka);
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
        assert_eq!(config.get("ssl.ca.location"), None);
        assert_eq!(config.get("sasl.mechanism"), None);
    }

    #[test]
    fn a_scram_password_from_a_file_reaches_librdkafka_and_no_debug_output() {
        let mut settings = Settings::load(None).unwrap();
        let file = std::env::temp_dir().join(format!("herald-scram-{}", std::process::id()));
        std::fs::write(&file, "s3cret-from-a-file\n").unwrap();
        let security = &mut settings.kafka.security;
        security.protocol = KafkaSecurityProtocol::SaslSsl;
        security.sasl.mechanism = KafkaSaslMechanism::ScramSha512;
        security.sasl.username = "herald".into();
        security.sasl.password_file = file.display().to_string();
        settings.validate().unwrap();
        let (config, debug) = properties(&settings.kafka);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("herald"));
        assert_eq!(
            config.get("sasl.password"),
            Some("s3cret-from-a-file"),
            "the file's trailing line break is no part of the password"
        );
        assert_eq!(config.get("ssl.ca.location"), Some(SYSTEM_CA_BUNDLE));
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!format!("{settings:?}").contains("s3cret"));
        // librdkafka itself takes every property (a build without OpenSSL would refuse them).
        let _: BaseProducer = config.create().unwrap();
    }

    #[test]
    fn oidc_client_credentials_are_librdkafkas_own_and_the_secret_stays_out_of_debug_output() {
        let mut settings = Settings::load(None).unwrap();
        let security = &mut settings.kafka.security;
        security.protocol = KafkaSecurityProtocol::SaslSsl;
        security.sasl.mechanism = KafkaSaslMechanism::OauthBearer;
        let oauthbearer = &mut security.sasl.oauthbearer;
        // Nothing listens there: the client's background token request fails at once.
        oauthbearer.token_endpoint_url = "https://127.0.0.1:9/oauth2/token".into();
        oauthbearer.client_id = "herald".into();
        oauthbearer.client_secret = SecretString::from("client-s3cret");
        oauthbearer.scope = "kafka".into();
        oauthbearer.extensions = "logicalCluster=lkc-1,identityPoolId=pool-2".into();
        settings.validate().unwrap();
        let (config, debug) = properties(&settings.kafka);
        assert_eq!(config.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(config.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(
            config.get("sasl.oauthbearer.extensions"),
            Some("logicalCluster=lkc-1,identityPoolId=pool-2")
        );
        assert_eq!(config.get("sasl.username"), None);
        assert!(!debug.contains("client-s3cret"), "{debug}");
        // Accepted by librdkafka: it was built with libcurl, which the OIDC flow needs.
        let _: BaseProducer = config.create().unwrap();
    }
}
