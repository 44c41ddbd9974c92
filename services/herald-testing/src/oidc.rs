//! An identity provider's OIDC token endpoint of a test's own, over HTTPS with the server
//! certificate of [`TestCertificates`]: the client credentials grant (RFC 6749, 4.4) as
//! librdkafka's `sasl.oauthbearer.method=oidc` asks for it (`POST`, the client id and secret in
//! HTTP Basic authentication, `grant_type=client_credentials`), answered with an unsigned JWT
//! that Kafka's validator of unsecured tokens accepts (`alg: none`, `sub`, `iat`, `exp`;
//! [`crate::SecureKafka`]'s OAUTHBEARER login). A wrong client id or secret gets 401, as from a
//! real provider.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use crate::TestCertificates;

/// How long an issued token lives: longer than any test, so librdkafka does not refresh it midway.
const TOKEN_LIFETIME_SECONDS: u64 = 3600;

pub struct TokenEndpoint {
    url: String,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    server: actix_web::dev::ServerHandle,
}

struct Client {
    id: String,
    secret: String,
    /// The token's `sub`: the principal Kafka sees.
    subject: String,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl TokenEndpoint {
    /// Serves `https://127.0.0.1:<port>/oauth2/token` on the current Tokio runtime, issuing tokens
    /// for `subject` to the client `client_id` with `client_secret`.
    pub fn start(
        certificates: &TestCertificates,
        client_id: &str,
        client_secret: &str,
        subject: &str,
    ) -> TokenEndpoint {
        let chain = CertificateDer::pem_file_iter(certificates.server_certificate_file())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(certificates.server_key_file()).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let (issued, refused) = (Arc::default(), Arc::default());
        let client = web::Data::new(Client {
            id: client_id.to_owned(),
            secret: client_secret.to_owned(),
            subject: subject.to_owned(),
            issued: Arc::clone(&issued),
            refused: Arc::clone(&refused),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://127.0.0.1:{}/oauth2/token",
            listener.local_addr().unwrap().port()
        );
        let server = HttpServer::new(move || {
            App::new()
                .app_data(client.clone())
                .route("/oauth2/token", web::post().to(issue_token))
        })
        .workers(1)
        .disable_signals()
        .listen_rustls_0_23(listener, tls)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        TokenEndpoint {
            url,
            issued,
            refused,
            server: handle,
        }
    }

    /// The `token_endpoint_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// Requests answered with 401 so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        // Stops accepting at once; the returned future need not be awaited.
        drop(self.server.stop(false));
    }
}

async fn issue_token(
    request: HttpRequest,
    form: web::Form<std::collections::HashMap<String, String>>,
    client: web::Data<Client>,
) -> HttpResponse {
    let expected = format!("{}:{}", client.id, client.secret);
    let authenticated = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .is_some_and(|decoded| decoded == expected.as_bytes());
    if !authenticated {
        client.refused.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().json(json!({
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let mut claims = json!({
        "sub": client.subject,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
    });
    if let Some(scope) = form.get("scope") {
        claims["scope"] = json!(scope);
    }
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    client.issued.fetch_add(1, Ordering::SeqCst);
    // An unsecured JWS: header, claims and an empty signature.
    HttpResponse::Ok().json(json!({
        "access_token": format!("{header}.{claims}."),
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECONDS,
    }))
}
