//! Provider callbacks: SendGrid's Event Webhook and Twilio's status callbacks report what became
//! of messages the providers accepted. No tenant key guards them; the provider's signature does
//! (docs/DESIGN.md, "Provider callbacks"). A well-signed callback is answered 204 whatever it
//! reports, since providers retry anything else.

pub mod sendgrid;
pub mod sendgrid_signature;
pub mod twilio;
pub mod twilio_signature;

use actix_web::HttpResponse;
use herald_config::ProvidersSettings;
use herald_domain::{ProviderId, ProviderReport};
use herald_store::provider_reports::{apply_reports, AppliedReports, DeliveryReport};
use secrecy::SecretString;

use crate::error::ApiError;
use crate::metrics::{PROVIDER_CALLBACKS_REFUSED, PROVIDER_EVENTS_IGNORED, PROVIDER_REPORTS};
use crate::state::AppState;
use sendgrid_signature::SendGridEventVerifier;

/// What the callback routes verify with, built once from `[providers]`.
pub struct ProviderCallbacks {
    /// `None` while `providers.sendgrid.event_webhook_public_key` is empty.
    pub sendgrid: Option<SendGridEventVerifier>,
    pub twilio_auth_token: SecretString,
    /// Where Twilio calls the API from outside, without a trailing `/`; `None` while
    /// `providers.twilio.status_callback_base_url` is empty.
    pub twilio_public_base_url: Option<String>,
}

impl ProviderCallbacks {
    /// Fails on a SendGrid key that is not a P-256 public key, naming the setting.
    pub fn from_settings(providers: &ProvidersSettings) -> anyhow::Result<ProviderCallbacks> {
        let key = providers.sendgrid.event_webhook_public_key.trim();
        let sendgrid = if key.is_empty() {
            None
        } else {
            Some(
                SendGridEventVerifier::from_base64_der(key).map_err(|problem| {
                    anyhow::anyhow!(
                        "invalid setting `providers.sendgrid.event_webhook_public_key`: {problem}"
                    )
                })?,
            )
        };
        let base_url = providers.twilio.status_callback_base_url.trim();
        Ok(ProviderCallbacks {
            sendgrid,
            twilio_auth_token: providers.twilio.auth_token.clone(),
            twilio_public_base_url: (!base_url.is_empty())
                .then(|| base_url.trim_end_matches('/').to_owned()),
        })
    }
}

/// The providers that call back (the others have no delivery reports).
const CALLBACK_PROVIDERS: [ProviderId; 2] = [ProviderId::SendGrid, ProviderId::Twilio];

/// Why a callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No signature header (or, for SendGrid, no timestamp header).
    Unsigned,
    BadSignature,
    /// SendGrid's timestamp is too far from now.
    Stale,
    /// The route's key or public URL is not configured: nothing can be verified.
    NotConfigured,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::Unsigned,
        Refusal::BadSignature,
        Refusal::Stale,
        Refusal::NotConfigured,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::BadSignature => "bad_signature",
            Refusal::Stale => "stale",
            Refusal::NotConfigured => "not_configured",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::Unsigned => "the signature header is missing",
            Refusal::BadSignature => "the signature does not verify",
            Refusal::Stale => "the signed timestamp is missing or too far from now",
            Refusal::NotConfigured => "this route's verification is not configured",
        }
    }
}

const REPORTS: [ProviderReport; 3] = [
    ProviderReport::Delivered,
    ProviderReport::Bounced,
    ProviderReport::Failed,
];

fn report_name(report: ProviderReport) -> &'static str {
    match report {
        ProviderReport::Delivered => "delivered",
        ProviderReport::Bounced => "bounced",
        ProviderReport::Failed => "failed",
    }
}

/// The 401 for a refused callback, counted.
pub fn refuse(provider: ProviderId, refusal: Refusal) -> ApiError {
    PROVIDER_CALLBACKS_REFUSED
        .with_label_values(&[provider.as_str(), refusal.as_str()])
        .inc();
    ApiError::UnsignedCallback(refusal.message())
}

/// The 400 for a well-signed callback whose body is not the provider's shape, counted.
pub fn malformed(provider: ProviderId, problem: String) -> ApiError {
    PROVIDER_CALLBACKS_REFUSED
        .with_label_values(&[provider.as_str(), "malformed"])
        .inc();
    ApiError::MalformedCallback(problem)
}

/// Applies a verified callback's reports (one statement) and counts them; `ignored` events
/// reported nothing Herald tracks. Answers 204.
pub async fn apply_and_acknowledge(
    state: &AppState,
    provider: ProviderId,
    reports: &[DeliveryReport],
    ignored: usize,
) -> Result<HttpResponse, ApiError> {
    let applied = apply_reports(&state.database, provider, reports).await?;
    count_reports(provider, reports, &applied);
    PROVIDER_EVENTS_IGNORED
        .with_label_values(&[provider.as_str()])
        .inc_by(ignored as u64);
    tracing::debug!(
        provider = provider.as_str(),
        reports = reports.len(),
        unchanged = applied.unchanged,
        ignored,
        "provider callback applied"
    );
    Ok(HttpResponse::NoContent().finish())
}

/// Reports applied per pass of [`run_early_reports`], at most.
const EARLY_REPORTS_PER_PASS: u64 = 1000;
const EARLY_REPORTS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Applies, every second until `shutdown`, the reports that arrived before their send was recorded
/// (`herald_store::provider_reports::apply_early_reports`). Every replica runs it; the statement
/// skips rows another holds.
pub async fn run_early_reports(
    database: herald_store::Database,
    shutdown: tokio_util::sync::CancellationToken,
) {
    herald_telemetry::supervise::every(EARLY_REPORTS_INTERVAL, &shutdown, || async {
        match herald_store::provider_reports::apply_early_reports(&database, EARLY_REPORTS_PER_PASS)
            .await
        {
            Ok(0) => {}
            Ok(applied) => tracing::debug!(applied, "early provider reports applied"),
            Err(error) => tracing::warn!(%error, "applying early provider reports failed"),
        }
    })
    .await
}

fn count_reports(provider: ProviderId, reports: &[DeliveryReport], applied: &AppliedReports) {
    for report in REPORTS {
        let received = reports.iter().filter(|each| each.report == report).count() as u64;
        let moved = applied.applied(report).min(received);
        let deferred = applied.deferred(report).min(received - moved);
        let labels = |outcome| [provider.as_str(), report_name(report), outcome];
        PROVIDER_REPORTS
            .with_label_values(&labels("applied"))
            .inc_by(moved);
        PROVIDER_REPORTS
            .with_label_values(&labels("deferred"))
            .inc_by(deferred);
        PROVIDER_REPORTS
            .with_label_values(&labels("unchanged"))
            .inc_by(received - moved - deferred);
    }
}

/// Lists every series at zero, so dashboards and alerts see them before the first callback.
pub fn declare_metrics() {
    for provider in CALLBACK_PROVIDERS {
        let provider = provider.as_str();
        for report in REPORTS {
            for outcome in ["applied", "deferred", "unchanged"] {
                let _ =
                    PROVIDER_REPORTS.with_label_values(&[provider, report_name(report), outcome]);
            }
        }
        for refusal in Refusal::ALL {
            let _ = PROVIDER_CALLBACKS_REFUSED.with_label_values(&[provider, refusal.as_str()]);
        }
        let _ = PROVIDER_CALLBACKS_REFUSED.with_label_values(&[provider, "malformed"]);
        let _ = PROVIDER_EVENTS_IGNORED.with_label_values(&[provider]);
    }
}

/// A request header as text; absent or not visible ASCII reads as absent (the callback is then
/// unsigned).
pub(super) fn header<'a>(request: &'a actix_web::HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_sendgrid_key_stops_the_start_naming_its_setting() {
        let mut settings = herald_config::Settings::load(None).unwrap();
        let callbacks = ProviderCallbacks::from_settings(&settings.providers).unwrap();
        assert!(callbacks.sendgrid.is_none() && callbacks.twilio_public_base_url.is_none());

        settings.providers.sendgrid.event_webhook_public_key = "bm90IGEga2V5".into();
        let error = ProviderCallbacks::from_settings(&settings.providers)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("providers.sendgrid.event_webhook_public_key"),
            "{error}"
        );

        settings.providers.sendgrid.event_webhook_public_key = String::new();
        settings.providers.twilio.status_callback_base_url = "https://herald.example.com/".into();
        let callbacks = ProviderCallbacks::from_settings(&settings.providers).unwrap();
        assert_eq!(
            callbacks.twilio_public_base_url.as_deref(),
            Some("https://herald.example.com")
        );
    }
}
