//! Plain SMTP (via `lettre`), the email failover: when SendGrid's circuit is open, the email lane
//! sends through it instead of waiting (see docs/DESIGN.md, "Email failover"). Configured by
//! `providers.smtp.url` (`smtp://host:port`, `smtp://…?tls=required` for STARTTLS, `smtps://` for
//! implicit TLS, credentials as `user:password@`) and `providers.smtp.from`; an empty URL turns
//! it off. A 5xx reply fails the delivery for good; a 4xx reply, a timeout or no connection is
//! retried.
//!
//! `lettre` rather than a hand-written client: the dialogue (EHLO, STARTTLS, AUTH, dot-stuffing,
//! pipelining) and the MIME encoding of non-ASCII subjects and bodies are where mistakes hide.

use std::time::Duration;

use async_trait::async_trait;
use herald_domain::ProviderId;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::message::MultiPart;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::provider::{
    list_unsubscribe_headers, wrong_contact, OutgoingMessage, Provider, ProviderIdentity,
    SendOutcome, DELIVERY_ID_HEADER,
};
use crate::Contact;

/// Plain SMTP: `url` is `smtp://host:port` (`?tls=required` for STARTTLS), `smtps://host:port`
/// for implicit TLS, with optional `user:password@`; empty turns the failover off. It sends within
/// SendGrid's lane (its bounds and rate), so it has only a timeout of its own.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SmtpSettings {
    /// Secret: it may carry credentials.
    pub url: SecretString,
    pub from: String,
    pub timeout_ms: u64,
}

pub const PROVIDER: ProviderId = ProviderId::Smtp;

pub struct Smtp {
    identity: ProviderIdentity,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// `X-Herald-Delivery-Id`: the delivery's reference, as the other providers carry it.
#[derive(Clone)]
struct DeliveryIdHeader(String);

impl Header for DeliveryIdHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(DELIVERY_ID_HEADER)
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(DeliveryIdHeader(text.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Smtp {
    /// The SMTP provider, or `None` when no URL is configured.
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Option<Smtp>> {
        let url = settings.url.expose_secret();
        if url.is_empty() {
            return Ok(None);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| anyhow::anyhow!("providers.smtp.url is not an SMTP URL: {error}"))?
            .timeout(Some(Duration::from_millis(settings.timeout_ms)))
            .build();
        let from = settings.from.parse::<Mailbox>().map_err(|error| {
            anyhow::anyhow!("providers.smtp.from is not an email address: {error}")
        })?;
        // The endpoint names the server without the credentials a URL may carry.
        let endpoint = reqwest::Url::parse(url)
            .ok()
            .map(|url| {
                format!(
                    "{}://{}:{}",
                    url.scheme(),
                    url.host_str().unwrap_or_default(),
                    url.port_or_known_default().unwrap_or(25)
                )
            })
            .unwrap_or_else(|| "smtp".to_owned());
        Ok(Some(Smtp {
            identity: ProviderIdentity {
                id: PROVIDER,
                endpoint,
            },
            transport,
            from,
        }))
    }

    /// The email for `message`: all that `send` does before the transport formats it
    /// (`Message::formatted`) and talks to the server. A recipient that is not an address, or a
    /// message that cannot be built, fails for good.
    pub fn request_body(&self, message: &OutgoingMessage) -> Result<Message, SendOutcome> {
        let Contact::Email(to) = &message.contact else {
            return Err(wrong_contact(PROVIDER, message));
        };
        let permanent = |error: String| SendOutcome::Permanent {
            error,
            http_status: None,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|error| permanent(format!("`{to}` is not an email address: {error}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_deref().unwrap_or("(no subject)"))
            .message_id(Some(format!("<{}@herald>", message.delivery_id)))
            .header(DeliveryIdHeader(message.delivery_id.to_string()));
        for (name, value) in message
            .unsubscribe_url
            .as_deref()
            .map(list_unsubscribe_headers)
            .into_iter()
            .flatten()
        {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(name),
                value,
            ));
        }
        let built = match &message.html {
            // Both, as multipart/alternative: the client shows the HTML, or the text without it.
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.body.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(message.body.clone()),
        };
        built.map_err(|error| permanent(format!("the email cannot be built: {error}")))
    }
}

#[async_trait]
impl Provider for Smtp {
    fn identity(&self) -> &ProviderIdentity {
        &self.identity
    }

    async fn send(&self, message: &OutgoingMessage, timeout: Duration) -> SendOutcome {
        let email = match self.request_body(message) {
            Ok(email) => email,
            Err(outcome) => return outcome,
        };
        let sent = match tokio::time::timeout(timeout, self.transport.send(email)).await {
            Err(_) => {
                return SendOutcome::Retryable {
                    error: format!("{PROVIDER} timed out after {} ms", timeout.as_millis()),
                    http_status: None,
                    retry_after: None,
                }
            }
            Ok(sent) => sent,
        };
        match sent {
            Ok(response) => SendOutcome::Sent {
                // "2.0.0 Ok: queued as <id>": the server's own reference, whatever its shape.
                provider_message_id: Some(response.message().collect::<Vec<_>>().join(" ")),
                http_status: 250,
            },
            // SMTP replies are not HTTP statuses: the code goes into the error, none into the
            // status, so a 4xx reply counts against the circuit like a timeout does.
            Err(error) if error.is_permanent() => SendOutcome::Permanent {
                error: format!("{PROVIDER} refused the message: {error}"),
                http_status: None,
            },
            Err(error) => SendOutcome::Retryable {
                error: format!("{PROVIDER} failed: {error}"),
                http_status: None,
                retry_after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built email names the delivery twice (Message-ID and header), as receipts and the
    /// simulator's exactly-once count rely on, and a recipient that is no address fails for good.
    #[tokio::test]
    async fn the_email_names_the_delivery_and_a_bad_address_fails_for_good() {
        let smtp = Smtp::new(&SmtpSettings {
            url: secrecy::SecretString::from("smtp://127.0.0.1:2525"),
            from: "alerts@herald.local".into(),
            timeout_ms: 1000,
        })
        .unwrap()
        .unwrap();
        let mut message = OutgoingMessage::example_email();
        let formatted =
            String::from_utf8(smtp.request_body(&message).unwrap().formatted()).unwrap();
        let id = message.delivery_id;
        assert!(
            formatted.contains(&format!("Message-ID: <{id}@herald>")),
            "{formatted}"
        );
        assert!(
            formatted.contains(&format!("{DELIVERY_ID_HEADER}: {id}")),
            "{formatted}"
        );
        assert!(formatted.contains("Subject: Disk full"), "{formatted}");
        assert!(
            formatted.contains("Content-Type: text/plain"),
            "{formatted}"
        );
        // With an HTML part: both, as alternatives of one message.
        message.html = Some("<p>Free some <b>space</b></p>".into());
        let formatted =
            String::from_utf8(smtp.request_body(&message).unwrap().formatted()).unwrap();
        assert!(
            formatted.contains("Content-Type: multipart/alternative"),
            "{formatted}"
        );
        assert!(formatted.contains("Content-Type: text/html"), "{formatted}");
        assert!(formatted.contains("Free some space"), "{formatted}");
        assert!(!formatted.contains("List-Unsubscribe"), "{formatted}");
        // With an unsubscribe link: RFC 8058's two headers.
        let link = format!(
            "https://herald.example.com/v1/unsubscribe/{}.tag",
            "a".repeat(150)
        );
        message.unsubscribe_url = Some(link.clone());
        let formatted =
            String::from_utf8(smtp.request_body(&message).unwrap().formatted()).unwrap();
        let unfolded = formatted.replace("\r\n ", " ");
        assert!(
            unfolded.contains(&format!("List-Unsubscribe: <{link}>\r\n")),
            "{formatted}"
        );
        assert!(
            unfolded.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{formatted}"
        );
        message.contact = Contact::Email("not an address".into());
        let Err(SendOutcome::Permanent { error, .. }) = smtp.request_body(&message) else {
            panic!("an unusable address fails for good");
        };
        assert!(error.contains("not an email address"), "{error}");
    }
}
