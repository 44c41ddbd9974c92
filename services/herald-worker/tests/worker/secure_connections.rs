//! Encrypted and authenticated connections (docs/DEPLOY.md, "Secure connections"): Apache Kafka
//! with an SSL listener that requires a client certificate and a SASL_SSL listener (SCRAM, PLAIN,
//! and OAUTHBEARER with tokens from an OIDC token endpoint of the test's own, over HTTPS), and a
//! Redis that speaks TLS only, with or without requiring client certificates, all with
//! certificates the test makes. Herald's own clients (herald-kafka's producer and consumer,
//! herald-store's Redis) carry records and commands over each, the real worker binary delivers
//! over SASL_SSL and rediss://, and a wrong password or client secret, an untrusted CA or a
//! missing client certificate is refused within seconds, with librdkafka's or rustls's reason.
//!
//! Not covered: OAUTHBEARER tokens are unsigned (the broker validates their form, not a JWKS
//! signature, which is the broker's own configuration, not Herald's), and token refresh (a token
//! outlives the test).

use std::time::{Duration, Instant};

use herald_config::{KafkaSaslMechanism, KafkaSecurityProtocol, KafkaSettings, Settings};
use herald_kafka::ProducerRole;
use herald_testing::{
    RedisClientCertificates, SecureKafka, TestCertificates, TokenEndpoint, SECURE_KAFKA_USER,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

const PASSWORD: &str = "correct-horse-battery-staple";
const OIDC_CLIENT_ID: &str = "herald-kafka";
const OIDC_CLIENT_SECRET: &str = "oidc-client-s3cret";
/// The principal the token endpoint's tokens name.
const OIDC_SUBJECT: &str = "herald-worker";
/// How long the connection check waits for an answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// How soon a refusal must be reported: a refused login or handshake ends the check at once,
/// long before its timeout (measured: about a second).
const REFUSAL_BOUND: Duration = Duration::from_secs(5);

/// Settings whose Kafka part points at `brokers` with `security`, topics made on the plaintext
/// listener (they are the cluster's, whichever listener a client uses).
async fn settings_on(kafka: &SecureKafka) -> Settings {
    let mut settings = Settings::load(None).unwrap();
    settings.kafka.brokers = kafka.plaintext_brokers();
    settings.kafka.topic = format!("secure-{}", Uuid::new_v4().simple());
    settings.kafka.partitions = 1;
    settings.kafka.message_timeout_ms = 10_000;
    herald_api::cli::create_topics(&settings).await.unwrap();
    settings
}

fn password_file(certificates: &TestCertificates, password: &str) -> String {
    let file = certificates
        .directory()
        .join(format!("password-{}", Uuid::new_v4().simple()));
    // As `kubectl create secret --from-file` keeps it: with the editor's line break.
    std::fs::write(&file, format!("{password}\n")).unwrap();
    file.display().to_string()
}

fn scram(kafka: &SecureKafka, certificates: &TestCertificates, settings: &mut KafkaSettings) {
    settings.brokers = kafka.sasl_ssl_brokers();
    let security = &mut settings.security;
    security.protocol = KafkaSecurityProtocol::SaslSsl;
    security.ca_file = certificates.ca_file();
    security.sasl.mechanism = KafkaSaslMechanism::ScramSha512;
    security.sasl.username = SECURE_KAFKA_USER.to_owned();
    security.sasl.password_file = password_file(certificates, PASSWORD);
}

/// A record produced by Herald's producer and read back by a consumer of Herald's group
/// configuration, both with `kafka`'s security.
async fn round_trip(kafka: &KafkaSettings, case: &str) {
    herald_kafka::check_connection(kafka, CHECK_TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("{case}: {error}"));
    let producer = herald_kafka::create_producer(kafka, "secure-test", ProducerRole::Api).unwrap();
    let key = format!("{case}-{}", Uuid::new_v4().simple());
    producer
        .send(
            FutureRecord::to(&kafka.topic).key(&key).payload("sealed"),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("{case}: producing failed: {error}"));
    let consumer: StreamConsumer = herald_kafka::group_consumer_config(
        kafka,
        &format!("secure-{}", Uuid::new_v4().simple()),
        "secure-test",
        10_000,
    )
    .unwrap()
    .create()
    .unwrap();
    consumer.subscribe(&[&kafka.topic]).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{case}: the record was not consumed within 60 s"))
            .unwrap_or_else(|error| panic!("{case}: consuming failed: {error}"));
        if message.key() == Some(key.as_bytes()) {
            assert_eq!(message.payload(), Some(&b"sealed"[..]), "{case}");
            return;
        }
    }
}

/// The connection check fails within [`REFUSAL_BOUND`], naming one of `reasons`; its error.
async fn refused(kafka: &KafkaSettings, case: &str, reasons: &[&str]) -> String {
    let started = Instant::now();
    let error = herald_kafka::check_connection(kafka, CHECK_TIMEOUT)
        .await
        .expect_err(case)
        .to_string();
    assert!(
        started.elapsed() < REFUSAL_BOUND,
        "{case}: refused only after {:?}",
        started.elapsed()
    );
    assert!(
        reasons.iter().any(|reason| error.contains(reason)),
        "{case}: the error names none of {reasons:?}: {error}"
    );
    assert!(
        error.contains("refused the connection"),
        "{case}: not taken for a refusal: {error}"
    );
    for secret in [PASSWORD, OIDC_CLIENT_SECRET] {
        assert!(!error.contains(secret), "{case}: a secret in {error}");
    }
    error
}

/// OAUTHBEARER over SASL_SSL with tokens from `endpoint` (its CA given, as for a private identity
/// provider), the client secret in a file.
fn oauthbearer(
    kafka: &SecureKafka,
    certificates: &TestCertificates,
    endpoint: &TokenEndpoint,
    settings: &mut KafkaSettings,
) {
    settings.brokers = kafka.sasl_ssl_brokers();
    let security = &mut settings.security;
    security.protocol = KafkaSecurityProtocol::SaslSsl;
    security.ca_file = certificates.ca_file();
    security.sasl.mechanism = KafkaSaslMechanism::OauthBearer;
    let oauthbearer = &mut security.sasl.oauthbearer;
    oauthbearer.token_endpoint_url = endpoint.url().to_owned();
    oauthbearer.client_id = OIDC_CLIENT_ID.to_owned();
    oauthbearer.client_secret_file = password_file(certificates, OIDC_CLIENT_SECRET);
    oauthbearer.scope = "kafka".to_owned();
    oauthbearer.ca_file = certificates.ca_file();
}

#[tokio::test]
async fn records_cross_mutual_tls_scram_plain_and_oauthbearer_and_a_wrong_secret_or_ca_is_refused_at_once(
) {
    let certificates = TestCertificates::generate();
    let kafka = SecureKafka::start(&certificates, PASSWORD).await;
    let settings = settings_on(&kafka).await;
    let token_endpoint = TokenEndpoint::start(
        &certificates,
        OIDC_CLIENT_ID,
        OIDC_CLIENT_SECRET,
        OIDC_SUBJECT,
    );

    let mut mutual_tls = settings.kafka.clone();
    mutual_tls.brokers = kafka.ssl_brokers();
    mutual_tls.security.protocol = KafkaSecurityProtocol::Ssl;
    mutual_tls.security.ca_file = certificates.ca_file();
    mutual_tls.security.certificate_file = certificates.client_certificate_file();
    mutual_tls.security.key_file = certificates.client_key_file();

    let mut scram_512 = settings.kafka.clone();
    scram(&kafka, &certificates, &mut scram_512);
    let mut scram_256 = scram_512.clone();
    scram_256.security.sasl.mechanism = KafkaSaslMechanism::ScramSha256;
    // From the environment this time, not a file.
    scram_256.security.sasl.password_file = String::new();
    scram_256.security.sasl.password = SecretString::from(PASSWORD);
    let mut plain = scram_256.clone();
    plain.security.sasl.mechanism = KafkaSaslMechanism::Plain;
    let mut oidc = settings.kafka.clone();
    oauthbearer(&kafka, &certificates, &token_endpoint, &mut oidc);

    for (case, kafka_settings) in [
        ("mutual-tls", &mutual_tls),
        ("scram-sha-512", &scram_512),
        ("scram-sha-256", &scram_256),
        ("plain", &plain),
        ("oauthbearer", &oidc),
    ] {
        let mut whole = settings.clone();
        whole.kafka = kafka_settings.clone();
        whole
            .validate()
            .unwrap_or_else(|error| panic!("{case}: {error}"));
        round_trip(kafka_settings, case).await;
    }
    // The broker took tokens the endpoint issued (no other source of them), and asked for no
    // refusal on the way.
    assert!(token_endpoint.issued() >= 1, "no token was fetched");
    assert_eq!(token_endpoint.refused(), 0);

    let mut wrong_client_secret = oidc.clone();
    wrong_client_secret
        .security
        .sasl
        .oauthbearer
        .client_secret_file = password_file(&certificates, "oidc-client-s3cret-expired");
    refused(
        &wrong_client_secret,
        "a wrong OIDC client secret",
        // librdkafka quotes the endpoint's 401 answer.
        &[r#"Failed to acquire SASL OAUTHBEARER token: {"error":"invalid_client""#],
    )
    .await;
    assert!(
        token_endpoint.refused() >= 1,
        "the token endpoint was not asked"
    );
    let mut untrusted_identity_provider = oidc.clone();
    untrusted_identity_provider
        .security
        .sasl
        .oauthbearer
        .ca_file = certificates.other_ca_file();
    let error = refused(
        &untrusted_identity_provider,
        "a CA that did not sign the token endpoint's certificate",
        &["Failed to acquire SASL OAUTHBEARER token"],
    )
    .await;
    // libcurl's verification of the token endpoint, not the brokers' (their CA is right).
    assert!(
        error.contains("unable to get local issuer certificate"),
        "{error}"
    );

    let mut wrong_password = scram_512.clone();
    wrong_password.security.sasl.password_file =
        password_file(&certificates, "correct-horse-battery-stapler");
    refused(
        &wrong_password,
        "a wrong password",
        &["Authentication failed during authentication due to invalid credentials"],
    )
    .await;
    // `create-topics` (the chart's migrations Job) says the same, instead of an admin timeout.
    let error = herald_kafka::create_topics(&wrong_password, &settings.retention, "x", 3_600_000)
        .await
        .expect_err("create-topics with a wrong password")
        .to_string();
    assert!(error.contains("Authentication failed"), "{error}");

    let mut untrusted = scram_512.clone();
    untrusted.security.ca_file = certificates.other_ca_file();
    refused(
        &untrusted,
        "a CA that did not sign the brokers' certificates",
        &["certificate verify failed"],
    )
    .await;
    // Without a CA file: the system's CAs, none of which signed the test's.
    let mut public_cas_only = scram_512.clone();
    public_cas_only.security.ca_file = String::new();
    refused(
        &public_cas_only,
        "the system's CAs only",
        &["certificate verify failed"],
    )
    .await;

    let mut no_client_certificate = mutual_tls.clone();
    no_client_certificate.security.certificate_file = String::new();
    no_client_certificate.security.key_file = String::new();
    refused(
        &no_client_certificate,
        "no client certificate where the broker requires one",
        &["alert bad certificate"],
    )
    .await;
}

#[tokio::test]
async fn the_worker_process_delivers_over_sasl_ssl_kafka_and_tls_redis_and_refuses_an_untrusted_redis(
) {
    let certificates = TestCertificates::generate();
    let kafka = SecureKafka::start(&certificates, PASSWORD).await;
    let redis = RedisServer::start_tls(&certificates).await;
    let servers = Servers {
        postgres_admin_url: env("HERALD_TEST_DATABASE_URL"),
        redis_url: redis.url(),
    };
    // The API in process and the worker as a process of its own, both on SASL_SSL (SCRAM-SHA-512,
    // the password in a file) and rediss:// with the test's CA.
    let stack = start_stack_with(
        Some(&kafka.plaintext_brokers()),
        Some(&servers),
        |settings| {
            scram(&kafka, &certificates, &mut settings.kafka);
            settings.redis.ca_file = certificates.ca_file();
            settings.validate().unwrap();
        },
    )
    .await;

    // herald-store's Redis, the one place Herald connects to Redis, over TLS.
    let connected = herald_store::cache::Redis::new(&stack.settings.redis).unwrap();
    assert!(
        herald_testing::eventually(Duration::from_secs(15), || connected.ping()).await,
        "no PING over rediss:// with the test CA: {:?}",
        connected.connect_failure()
    );
    for (case, ca_file) in [
        (
            "a CA that did not sign Redis's certificate",
            certificates.other_ca_file(),
        ),
        ("the public CAs only", String::new()),
    ] {
        let mut untrusted = stack.settings.redis.clone();
        untrusted.ca_file = ca_file;
        let refused = herald_store::cache::Redis::new(&untrusted).unwrap();
        let reason = async {
            loop {
                assert!(!refused.ping().await, "{case}: Redis answered");
                if let Some(reason) = refused.connect_failure() {
                    return reason;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let reason = tokio::time::timeout(Duration::from_secs(10), reason)
            .await
            .unwrap_or_else(|_| panic!("{case}: no reason within 10 s"));
        assert!(
            reason.contains("UnknownIssuer") || reason.contains("certificate"),
            "{case}: {reason}"
        );
    }

    let metrics_port = free_port();
    let mut worker = worker_process(&stack.settings, metrics_port);
    wait_until_ready(metrics_port).await;
    stack
        .put_user("sealed", json!({"email": "sealed@example.com"}))
        .await;
    let id = stack.notify(alert(&["sealed"], &["email"])).await;
    let view = stack.wait_until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "delivered", "{view}");
    let email = &stack.received("sendgrid").await["messages"][0];
    assert_eq!(email["recipient"], "sealed@example.com");
    worker.kill().await.unwrap();
}

#[tokio::test]
async fn a_redis_that_requires_client_certificates_answers_with_one_and_refuses_without_at_once() {
    let certificates = TestCertificates::generate();
    let redis = RedisServer::start_tls_with(&certificates, RedisClientCertificates::Required).await;
    let mut settings = Settings::load(None).unwrap();
    settings.redis.url = SecretString::from(redis.url());
    settings.redis.ca_file = certificates.ca_file();
    settings.redis.certificate_file = certificates.client_certificate_file();
    settings.redis.key_file = certificates.client_key_file();
    settings.validate().unwrap();

    // herald-store's Redis, the one place Herald connects to Redis: a write and its read back.
    let with_certificate = herald_store::cache::Redis::new(&settings.redis).unwrap();
    let key = format!("sealed-{}", Uuid::new_v4().simple());
    let round_trip = || async {
        with_certificate
            .call(|mut connection| {
                let key = key.clone();
                async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg("sealed")
                        .query_async::<()>(&mut connection)
                        .await?;
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async::<String>(&mut connection)
                        .await
                }
            })
            .await
            .is_ok_and(|value| value == "sealed")
    };
    assert!(
        herald_testing::eventually(Duration::from_secs(15), round_trip).await,
        "no SET and GET with the client certificate: {:?}",
        with_certificate.connect_failure()
    );

    let mut without_certificate = settings.redis.clone();
    without_certificate.certificate_file = String::new();
    without_certificate.key_file = String::new();
    let refused = herald_store::cache::Redis::new(&without_certificate).unwrap();
    let reason = async {
        loop {
            // Fails ("not connected" while the first attempt is under way), never answers.
            let answer = refused
                .call(|mut connection| async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await
                })
                .await;
            assert!(
                answer.is_err(),
                "Redis answered without a client certificate"
            );
            if let Some(reason) = refused.connect_failure() {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let reason = tokio::time::timeout(REFUSAL_BOUND, reason)
        .await
        .unwrap_or_else(|_| panic!("no reason within {REFUSAL_BOUND:?}"));
    // rustls's words for the server's TLS 1.3 alert (measured: about 1.5 s after the start).
    assert!(reason.contains("CertificateRequired"), "{reason}");
}
