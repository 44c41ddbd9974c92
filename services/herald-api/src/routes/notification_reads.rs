//! `GET /v1/notifications/{id}` and the keyset-paginated `GET /v1/notifications`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_store::deliveries::{self, DeliveryRow};
use herald_store::notifications::{self, ListFilter, NotificationRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub const KNOWN_STATUSES: [&str; 6] = [
    "accepted",
    "scheduled",
    "processing",
    "delivered",
    "partially_delivered",
    "failed",
];
const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 500;

#[derive(Serialize, ToSchema)]
pub struct ContentView {
    pub subject: Option<String>,
    pub body: String,
}

/// One delivery (recipient × channel), as the worker recorded it.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub user_id: String,
    pub channel: String,
    /// `sending`, `pending` (retry scheduled), `sent`, `failed`, `skipped`.
    pub status: String,
    pub attempts: i32,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> DeliveryView {
        DeliveryView {
            user_id: row.user_id,
            channel: row.channel,
            status: row.status,
            attempts: row.attempts,
            provider: row.provider,
            provider_message_id: row.provider_message_id,
            last_error: row.last_error,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    pub status: String,
    pub user_ids: Vec<String>,
    pub channels: Vec<String>,
    pub content: ContentView,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub priority: String,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deliveries: Vec<DeliveryView>,
}

impl From<NotificationRow> for NotificationView {
    fn from(row: NotificationRow) -> NotificationView {
        NotificationView {
            id: row.id,
            status: row.status,
            user_ids: row.user_ids,
            channels: row.channels,
            content: ContentView {
                subject: row.subject,
                body: row.body,
            },
            data: row.data,
            priority: row.priority,
            scheduled_for: row.scheduled_for,
            idempotency_key: row.idempotency_key,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deliveries: Vec::new(),
        }
    }
}

/// A notification of the authenticated tenant, with its deliveries.
#[utoipa::path(get, path = "/v1/notifications/{id}", tag = "notifications",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = NotificationView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such notification for this tenant"),
    ),
    security(("api_key" = [])))]
pub async fn get_notification(
    tenant: Tenant,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id names no notification: 404, like an unknown one.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("notification"))?;
    let row = notifications::find_notification(&state.database, tenant.id, id)
        .await?
        .ok_or(ApiError::NotFound("notification"))?;
    let mut view = NotificationView::from(row);
    view.deliveries = deliveries::deliveries_of(&state.database, id)
        .await?
        .into_iter()
        .map(DeliveryView::from)
        .collect();
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
    let query = web::Query::<ListQuery>::from_query(request.query_string())
        .map_err(|error| ApiError::InvalidQuery(format!("invalid query string: {error}")))?
        .into_inner();
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| {
                ApiError::InvalidQuery(format!(
                    "`limit` must be an integer from 1 to {MAX_PAGE_SIZE}"
                ))
            })?,
    };
    if let Some(status) = query.status.as_deref() {
        if !KNOWN_STATUSES.contains(&status) {
            return Err(ApiError::InvalidQuery(format!(
                "unknown `status` `{status}` (known: {})",
                KNOWN_STATUSES.join(", ")
            )));
        }
    }
    let before_id = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(Uuid::try_parse(cursor).map_err(|_| {
            ApiError::InvalidQuery("`cursor` is not a cursor this API returned".into())
        })?),
    };
    let mut rows = notifications::list_notifications(
        &state.database,
        ListFilter {
            tenant_id: tenant.id,
            user_id: query.user_id.as_deref(),
            status: query.status.as_deref(),
            before_id,
            limit: limit + 1,
        },
    )
    .await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|row| row.id.simple().to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(NotificationPage {
        items: rows.into_iter().map(NotificationView::from).collect(),
        next_cursor,
    }))
}
