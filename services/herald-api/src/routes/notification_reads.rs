//! `GET /v1/notifications/{id}` and the keyset-paginated `GET /v1/notifications`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_domain::{Channel, DeliveryStatus, NotificationStatus, Priority, ProviderId};
use herald_store::deliveries::{self, DeliveryRow};
use herald_store::notifications::{self, ListFilter, NotificationRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::pagination::{
    keyset_page, page_size, parse_cursor, parse_query, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::read_permits::PermitUse;
use crate::state::AppState;

const DEFAULT_DELIVERIES_PAGE_SIZE: u64 = 100;
const MAX_DELIVERIES_PAGE_SIZE: u64 = 1000;

/// The inline content, or (with empty text) the template the notification renders.
#[derive(Serialize, ToSchema)]
pub struct ContentView {
    pub subject: Option<String>,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// The version it renders, resolved at acceptance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_version: Option<i32>,
}

/// One delivery (recipient × channel), as the worker recorded it.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// Also the reference given to the provider.
    pub id: Uuid,
    pub user_id: String,
    pub channel: Channel,
    /// `queued`, `sending`, `retrying` (at `next_attempt_at`), `sent`, `failed`, `skipped`,
    /// `cancelled` (with its notification, before it was sent).
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub provider: ProviderId,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> DeliveryView {
        DeliveryView {
            id: row.id,
            user_id: row.user_id,
            channel: row.channel,
            status: row.status,
            attempts: row.attempts,
            provider: row.provider,
            provider_message_id: row.provider_message_id,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            updated_at: row.updated_at,
        }
    }
}

/// How many of the notification's deliveries are final, and how.
#[derive(Serialize, ToSchema)]
pub struct DeliverySummary {
    /// Recipients × channels: the named users', and the members' of each group expanded so far.
    pub expected: i32,
    pub sent: i32,
    pub failed: i32,
    pub skipped: i32,
    /// Cancelled with the notification before they were sent.
    pub cancelled: i32,
    /// Groups not yet fully expanded into their members: `expected` grows until this is 0, and the
    /// status is not final before.
    pub expansions_pending: i32,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    pub status: NotificationStatus,
    pub user_ids: Vec<String>,
    /// The groups whose members (as of acceptance) are recipients too.
    pub group_ids: Vec<String>,
    pub channels: Vec<Channel>,
    pub content: ContentView,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub priority: Priority,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivery_summary: DeliverySummary,
    /// Present on `GET /v1/notifications/{id}`: one page of deliveries, in delivery id order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView>>,
    /// Pass as `deliveries_cursor` for the next page of deliveries; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries_next_cursor: Option<String>,
}

impl From<NotificationRow> for NotificationView {
    fn from(row: NotificationRow) -> NotificationView {
        NotificationView {
            id: row.id,
            status: row.status,
            user_ids: row.user_ids,
            group_ids: row.group_ids,
            channels: row.channels,
            content: ContentView {
                subject: row.subject,
                body: row.body,
                template_id: row.template_id,
                template_version: row.template_version,
            },
            data: row.data,
            priority: row.priority,
            category: row.category,
            scheduled_for: row.scheduled_for,
            idempotency_key: row.idempotency_key,
            created_at: row.created_at,
            updated_at: row.updated_at,
            delivery_summary: DeliverySummary {
                expected: row.deliveries_expected,
                sent: row.deliveries_sent,
                failed: row.deliveries_failed,
                skipped: row.deliveries_skipped,
                cancelled: row.deliveries_cancelled,
                expansions_pending: row.expansions_pending,
            },
            deliveries: None,
            deliveries_next_cursor: None,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Deliveries per page, 1 to 1000 (default 100).
    pub deliveries_limit: Option<String>,
    /// `deliveries_next_cursor` of the previous page.
    pub deliveries_cursor: Option<String>,
}

/// A notification of the authenticated tenant, with a page of its deliveries.
#[utoipa::path(get, path = "/v1/notifications/{id}", tag = "notifications",
    params(("id" = Uuid, Path), DeliveriesQuery),
    responses(
        (status = 200, body = NotificationView),
        (status = 400, body = ErrorBody, description = "bad query parameter"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such notification for this tenant"),
    ),
    security(("api_key" = [])))]
pub async fn get_notification(
    tenant: Tenant,
    id: web::Path<String>,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: DeliveriesQuery = parse_query(&request)?;
    let limit = page_size(
        query.deliveries_limit.as_deref(),
        "deliveries_limit",
        DEFAULT_DELIVERIES_PAGE_SIZE,
        MAX_DELIVERIES_PAGE_SIZE,
    )?;
    let after_id = parse_cursor(query.deliveries_cursor.as_deref(), "deliveries_cursor")?;
    // A malformed id names no notification: 404, like an unknown one.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("notification"))?;
    let _read_permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let row = notifications::find_notification(&state.database, tenant.id, id)
        .await?
        .ok_or(ApiError::NotFound("notification"))?;
    let mut view = NotificationView::from(row);
    let rows = deliveries::deliveries_of(&state.database, id, after_id, limit + 1).await?;
    let (page, next_cursor) = keyset_page(rows, limit, |delivery| delivery.id.simple());
    view.deliveries_next_cursor = next_cursor;
    view.deliveries = Some(page.into_iter().map(DeliveryView::from).collect());
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only notifications to this recipient.
    pub user_id: Option<String>,
    /// Only notifications in this status.
    pub status: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The tenant's notifications, newest first, keyset-paginated.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications",
    params(ListQuery),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, body = ErrorBody, description = "bad query parameter"),
        (status = 401, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn list_notifications(
    tenant: Tenant,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = parse_query(&request)?;
    let limit = page_size(
        query.limit.as_deref(),
        "limit",
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
    )?;
    let status = query
        .status
        .as_deref()
        .map(|name| {
            NotificationStatus::parse(name).ok_or_else(|| {
                let known: Vec<&str> = NotificationStatus::ALL
                    .map(NotificationStatus::as_str)
                    .to_vec();
                ApiError::InvalidQuery(format!(
                    "unknown `status` `{name}` (known: {})",
                    known.join(", ")
                ))
            })
        })
        .transpose()?;
    let before_id = parse_cursor(query.cursor.as_deref(), "cursor")?;
    let _read_permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let rows = notifications::list_notifications(
        &state.database,
        ListFilter {
            tenant_id: tenant.id,
            user_id: query.user_id.as_deref(),
            status,
            before_id,
            limit: limit + 1,
        },
    )
    .await?;
    let (rows, next_cursor) = keyset_page(rows, limit, |row| row.id.simple());
    Ok(HttpResponse::Ok().json(NotificationPage {
        items: rows.into_iter().map(NotificationView::from).collect(),
        next_cursor,
    }))
}
