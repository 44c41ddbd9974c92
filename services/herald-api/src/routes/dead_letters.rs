//! `GET /v1/dead-letters` and `POST /v1/dead-letters/{delivery_id}/replay`: the tenant's deliveries
//! that failed for good, and sending one again with the same reference (docs/DESIGN.md, "Dead
//! letters").

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_domain::{Channel, DeliveryStatus, NotificationStatus, ProviderId};
use herald_store::dead_letters::{self, DeadLetterRow, ReplayOutcome};
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

/// A delivery that failed for good.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterView {
    /// The delivery (also the reference given to the provider): what `replay` takes.
    pub delivery_id: Uuid,
    pub notification_id: Uuid,
    pub user_id: String,
    pub channel: Channel,
    pub provider: ProviderId,
    /// Attempts made when it failed (a replayed delivery keeps counting).
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: DateTime<Utc>,
    /// When it was replayed; absent while it was not.
    pub replayed_at: Option<DateTime<Utc>>,
}

impl From<DeadLetterRow> for DeadLetterView {
    fn from(row: DeadLetterRow) -> DeadLetterView {
        DeadLetterView {
            delivery_id: row.delivery_id,
            notification_id: row.notification_id,
            user_id: row.user_id,
            channel: row.channel,
            provider: row.provider,
            attempts: row.attempts,
            last_error: row.last_error,
            failed_at: row.failed_at,
            replayed_at: row.replayed_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersQuery {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The tenant's dead letters, newest first, keyset-paginated.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead letters",
    params(DeadLettersQuery),
    responses(
        (status = 200, body = DeadLetterPage),
        (status = 400, body = ErrorBody, description = "bad query parameter"),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "too many reads in flight, or the database is unavailable; see Retry-After"),
    ),
    security(("api_key" = [])))]
pub async fn list_dead_letters(
    tenant: Tenant,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: DeadLettersQuery = parse_query(&request)?;
    let limit = page_size(
        query.limit.as_deref(),
        "limit",
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
    )?;
    let before_id = parse_cursor(query.cursor.as_deref(), "cursor")?;
    let _read_permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    let rows =
        dead_letters::list_dead_letters(&state.database, tenant.id, before_id, limit + 1).await?;
    let (rows, next_cursor) = keyset_page(rows, limit, |row| row.id.simple());
    Ok(HttpResponse::Ok().json(DeadLetterPage {
        items: rows.into_iter().map(DeadLetterView::from).collect(),
        next_cursor,
    }))
}

/// What the replay did.
#[derive(Serialize, ToSchema)]
pub struct ReplayedView {
    pub delivery_id: Uuid,
    /// `queued`: due now, sent again with the same delivery id.
    pub status: DeliveryStatus,
    pub notification_id: Uuid,
    /// `processing` again.
    pub notification_status: NotificationStatus,
}

/// Sends a failed delivery of the authenticated tenant again, with the same delivery id.
#[utoipa::path(post, path = "/v1/dead-letters/{delivery_id}/replay", tag = "dead letters",
    params(("delivery_id" = Uuid, Path)),
    responses(
        (status = 202, body = ReplayedView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no dead letter of this tenant for this delivery"),
        (status = 409, body = ErrorBody, description = "`delivery_not_failed` (a replay is pending, or it was sent since; `details.status`) or `notification_cancelled`"),
        (status = 503, body = ErrorBody, description = "the database is unavailable; see Retry-After"),
    ),
    security(("api_key" = [])))]
pub async fn replay_dead_letter(
    tenant: Tenant,
    delivery_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let delivery_id =
        Uuid::parse_str(&delivery_id).map_err(|_| ApiError::NotFound("dead letter"))?;
    // A short transaction holding a connection: bounded with the reads, so commits keep theirs.
    let _permit = state.read_permits.try_acquire(tenant.id, PermitUse::Read)?;
    match dead_letters::replay_dead_letter(&state.database, tenant.id, delivery_id).await? {
        ReplayOutcome::Replayed {
            notification_id,
            notification_status,
        } => Ok(HttpResponse::Accepted().json(ReplayedView {
            delivery_id,
            status: DeliveryStatus::Queued,
            notification_id,
            notification_status,
        })),
        ReplayOutcome::NotFound => Err(ApiError::NotFound("dead letter")),
        ReplayOutcome::NotificationCancelled => Err(ApiError::NotificationCancelled),
        ReplayOutcome::DeliveryNotFailed(status) => Err(ApiError::DeliveryNotFailed { status }),
    }
}
