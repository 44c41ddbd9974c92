//! `POST /v1/notifications/{id}/cancel`: every delivery of the notification not yet sent is
//! cancelled (docs/DESIGN.md, "Cancellation").

use actix_web::{web, HttpResponse};
use herald_domain::NotificationStatus;
use herald_store::cancellation::{self, CancelOutcome};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::read_permits::PermitUse;
use crate::state::AppState;

/// What the cancellation did.
#[derive(Serialize, ToSchema)]
pub struct CancelledView {
    pub id: Uuid,
    /// `cancelled`.
    pub status: NotificationStatus,
    /// Deliveries that were waiting (`queued`, `retrying`) and are now `cancelled`.
    pub deliveries_cancelled: i32,
    /// Deliveries a worker had already claimed (`sending`). Those whose provider call has not
    /// started when the worker learns of the cancellation (within `worker.sweep_interval_ms`) are
    /// cancelled too; the others end as their calls end (`sent` or `failed`). All are counted; the
    /// status stays `cancelled`.
    pub deliveries_in_flight: i32,
    /// Deliveries not created yet (their records are still on their way to a worker): they are
    /// created `cancelled` and counted.
    pub deliveries_not_created: i32,
}

/// Cancels a notification of the authenticated tenant that is not final yet.
#[utoipa::path(post, path = "/v1/notifications/{id}/cancel", tag = "notifications",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CancelledView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such notification for this tenant"),
        (status = 409, body = ErrorBody, description = "`notification_final`: it is final already; `details.status` names its status"),
        (status = 503, body = ErrorBody, description = "the database is unavailable; see Retry-After"),
    ),
    security(("api_key" = [])))]
pub async fn cancel_notification(
    tenant: Tenant,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id names no notification: 404, like an unknown one (as `GET`).
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("notification"))?;
    // A short transaction holding a connection: bounded with the reads, so commits keep theirs,
    // and allowed the permits reads cannot take, so no tenant's reads stand before a cancel.
    let _permit = state
        .read_permits
        .try_acquire(tenant.id, PermitUse::Cancel)?;
    match cancellation::cancel_notification(&state.database, tenant.id, id).await? {
        CancelOutcome::Cancelled(report) => Ok(HttpResponse::Ok().json(CancelledView {
            id,
            status: NotificationStatus::Cancelled,
            deliveries_cancelled: report.deliveries_cancelled,
            deliveries_in_flight: report.deliveries_in_flight,
            deliveries_not_created: report.deliveries_not_created,
        })),
        CancelOutcome::NotFound => Err(ApiError::NotFound("notification")),
        CancelOutcome::AlreadyFinal(status) => Err(ApiError::NotificationFinal { status }),
    }
}
