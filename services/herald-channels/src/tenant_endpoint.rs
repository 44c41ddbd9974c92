//! Requests to URLs that tenants gave (Slack and Discord webhooks, their own endpoints): checked
//! against SSRF before each call (the URL's text here, its resolved addresses by the guarded
//! client's resolver), sent without following redirects, and marked with the delivery's reference.

use std::time::Duration;

use herald_domain::ProviderId;
use uuid::Uuid;

use crate::classify::classify_transport_error;
use crate::outbound;
use crate::provider::{SendOutcome, DELIVERY_ID_HEADER};

/// Sends the request `build` makes from a `POST` to `url`, or says why not: a refused URL is a
/// permanent failure (retrying cannot make it safe), no answer a retryable one.
pub async fn post_to_tenant_url(
    client: &reqwest::Client,
    provider: ProviderId,
    url: &str,
    allow_private_networks: bool,
    delivery_id: Uuid,
    timeout: Duration,
    build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, SendOutcome> {
    let url = reqwest::Url::parse(url).map_err(|error| SendOutcome::Permanent {
        error: format!("the recipient's {provider} URL is not a URL: {error}"),
        http_status: None,
    })?;
    outbound::check_url(&url, allow_private_networks).map_err(|refusal| {
        SendOutcome::Permanent {
            error: format!("the recipient's {provider} URL is refused: {refusal}"),
            http_status: None,
        }
    })?;
    let request = client
        .post(url)
        .header(DELIVERY_ID_HEADER, delivery_id.to_string())
        .timeout(timeout);
    match build(request).send().await {
        Ok(response) => Ok(response),
        Err(error) => match outbound::find_forbidden_resolution(&error) {
            Some(refusal) => Err(SendOutcome::Permanent {
                error: format!("the recipient's {provider} URL is refused: {refusal}"),
                http_status: None,
            }),
            None => Err(classify_transport_error(provider, error)),
        },
    }
}
