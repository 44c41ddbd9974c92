//! Webhook subscriptions to delivery status events (docs/DESIGN.md, "Status events and webhook
//! subscriptions"): `POST /v1/webhooks` creates one and answers its signing secret, once;
//! `GET /v1/webhooks` lists them without secrets; `DELETE /v1/webhooks/{id}` removes one.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use herald_domain::status_events::{WebhookSubscriptionRequest, MAX_SUBSCRIPTIONS_PER_TENANT};
use herald_store::webhook_subscriptions::{self, Created, SubscriptionView};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_json_within_budget;
use crate::read_permits::PermitUse;
use crate::state::AppState;

/// Bytes of randomness in a signing secret: within Standard Webhooks' 24 to 64.
const SECRET_BYTES: usize = 32;

/// A new subscription: its id and its signing secret, shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscription {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// `whsec_` and the base64 of 32 random bytes: verify `webhook-signature` with it. Shown once.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// A subscription, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionResponse {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Events waiting to be sent to it (retries included, parked ones not); at most
    /// `status_events.max_pending_per_subscription` (10,000 by default).
    pub pending_events: i64,
    /// Events it did not take because its backlog was full: an endpoint that does not keep up
    /// loses the newest events, counted here, rather than holding an unbounded backlog.
    pub dropped_events: i64,
    /// Since when its backlog has been full and events are being dropped; null while it takes them.
    pub backlog_full_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub data: Vec<SubscriptionResponse>,
}

impl From<SubscriptionView> for SubscriptionResponse {
    fn from(view: SubscriptionView) -> SubscriptionResponse {
        SubscriptionResponse {
            id: view.id,
            url: view.url,
            events: view.events,
            created_at: view.created_at,
            pending_events: view.pending_events,
            dropped_events: view.dropped_events,
            backlog_full_since: view.backlog_full_since,
        }
    }
}

/// A fresh signing secret, from the operating system's randomness through `rand`'s CSPRNG.
fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Subscribes an endpoint to delivery status events.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body = WebhookSubscriptionRequest,
    responses(
        (status = 201, body = CreatedSubscription),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "the tenant holds as many subscriptions as it may (`limit_reached`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn create_subscription(
    tenant: Tenant,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (subscription, _bytes): (WebhookSubscriptionRequest, _) =
        read_json_within_budget(&request, payload, &state).await?;
    let filters = subscription
        .validate(state.allow_private_networks)
        .map_err(ApiError::Validation)?;
    let events: Vec<String> = filters.iter().map(|filter| filter.name()).collect();
    let secret = new_secret();
    // A short transaction holding a connection: bounded with the reads, so commits keep theirs.
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let created = webhook_subscriptions::create(
        &state.database,
        tenant.id,
        &subscription.url,
        &events,
        &secret,
        MAX_SUBSCRIPTIONS_PER_TENANT,
    )
    .await?;
    match created {
        Created::Created(view) => Ok(HttpResponse::Created().json(CreatedSubscription {
            id: view.id,
            url: view.url,
            events: view.events,
            secret,
            created_at: view.created_at,
        })),
        Created::LimitReached => Err(ApiError::LimitReached {
            what: format!(
                "a tenant may hold at most {MAX_SUBSCRIPTIONS_PER_TENANT} webhook subscriptions; \
                 delete one first"
            ),
            limit: MAX_SUBSCRIPTIONS_PER_TENANT,
        }),
    }
}

/// The tenant's subscriptions, without their secrets.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, body = SubscriptionList),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn list_subscriptions(
    tenant: Tenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let _read_permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let subscriptions = webhook_subscriptions::list(&state.database, tenant.id).await?;
    Ok(HttpResponse::Ok().json(SubscriptionList {
        data: subscriptions
            .into_iter()
            .map(SubscriptionResponse::from)
            .collect(),
    }))
}

/// Removes a subscription; events not yet sent to it are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "the subscription's id")),
    responses(
        (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn delete_subscription(
    tenant: Tenant,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id names no subscription: 404, like an unknown one (or another tenant's).
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("webhook subscription"))?;
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    if webhook_subscriptions::delete(&state.database, tenant.id, id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("webhook subscription"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_standard_webhooks_secrets_and_never_repeat() {
        let first = new_secret();
        let key = first.strip_prefix("whsec_").expect("the whsec_ prefix");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("base64");
        assert_eq!(decoded.len(), SECRET_BYTES);
        assert_ne!(first, new_secret());
    }
}
