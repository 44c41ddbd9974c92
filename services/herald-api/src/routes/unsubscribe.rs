//! One-click unsubscribe (RFC 8058; docs/DESIGN.md, "Unsubscribe links"): the link in an email's
//! `List-Unsubscribe` header and in a template's `unsubscribe_url`. No tenant key: the token's
//! signature is the authority, and it names the tenant, the user and what they opt out of.
//!
//! `POST` records the opt-out (what a mailbox provider's "Unsubscribe" button sends, with the
//! body `List-Unsubscribe=One-Click`); `GET` only shows a page whose button POSTs, because mail
//! scanners and link previews visit links nobody clicked.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use herald_domain::preferences::RecordedOptOut;
use herald_domain::unsubscribe::{OptOut, UnsubscribeToken};
use herald_store::users::{find_user, set_preferences};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::json_body::read_any_body_within_budget;
use crate::metrics::UNSUBSCRIBES;
use crate::read_permits::PermitUse;
use crate::routes::users::user_changed;
use crate::state::AppState;

/// RFC 8058's body is `List-Unsubscribe=One-Click`; anything much longer is not a mail client's.
const MAX_UNSUBSCRIBE_BODY_BYTES: usize = 1024;
/// Writes lost to a concurrent change of the same user's preferences before the request fails.
const MAX_WRITE_ATTEMPTS: usize = 3;

/// What the recipient was opted out of.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unsubscribed {
    pub user_id: String,
    /// The category opted out of, when the email had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The channel opted out of (`email`), when the email had no category or the recipient's
    /// category opt-outs were full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<herald_domain::Channel>,
    /// False when the opt-out had already been recorded.
    pub changed: bool,
}

fn verified(state: &AppState, token: &str) -> Result<UnsubscribeToken, ApiError> {
    let verified = state
        .unsubscribe_links
        .as_ref()
        .and_then(|links| links.signer.verify(token).ok());
    verified.ok_or_else(|| {
        UNSUBSCRIBES.with_label_values(&["invalid"]).inc();
        ApiError::NotFound("unsubscribe link")
    })
}

/// A page asking to confirm, whose button POSTs to the same link (a visit changes nothing).
#[utoipa::path(get, path = "/v1/unsubscribe/{token}", tag = "unsubscribe",
    params(("token" = String, Path, description = "the signed token of an email's unsubscribe link")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a confirmation page"),
        (status = 404, body = ErrorBody, description = "not a link Herald signed"),
    ))]
pub async fn unsubscribe_page(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    verified(&state, &token)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>\
             <body><form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" \
             value=\"One-Click\"><p>Stop receiving these emails?</p>\
             <button type=\"submit\">Unsubscribe</button></form></body></html>",
        ))
}

/// Records the link's opt-out in the user's preferences (idempotent): their deliveries of that
/// category, or by email, are `skipped` from the next one on.
#[utoipa::path(post, path = "/v1/unsubscribe/{token}", tag = "unsubscribe",
    params(("token" = String, Path, description = "the signed token of an email's unsubscribe link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`List-Unsubscribe=One-Click` (RFC 8058); any short body is accepted"),
    responses(
        (status = 200, body = Unsubscribed),
        (status = 404, body = ErrorBody, description = "not a link Herald signed, or its user was deleted"),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn unsubscribe(
    token: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = verified(&state, &token)?;
    // Read (and bounded) before anything is written; what it says changes nothing.
    let _body =
        read_any_body_within_budget(&request, payload, &state, MAX_UNSUBSCRIBE_BODY_BYTES).await?;
    let _permit = state
        .read_permits
        .try_acquire(token.tenant_id, PermitUse::Read)?;
    let RecordedOptOut { recorded, changed } = record_opt_out(&state, &token).await?;
    UNSUBSCRIBES
        .with_label_values(&[if changed { "opted_out" } else { "already" }])
        .inc();
    let (category, channel) = match recorded {
        OptOut::Category(category) => (Some(category), None),
        OptOut::Channel(channel) => (None, Some(channel)),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Unsubscribed {
            user_id: token.user_id,
            category,
            channel,
            changed,
        }))
}

/// The opt-out that holds, and whether this request recorded it. A change of the same user
/// written meanwhile is read again, never overwritten.
async fn record_opt_out(
    state: &AppState,
    token: &UnsubscribeToken,
) -> Result<RecordedOptOut, ApiError> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(user) = find_user(&state.database, token.tenant_id, &token.user_id).await? else {
            UNSUBSCRIBES.with_label_values(&["unknown_user"]).inc();
            return Err(ApiError::NotFound("user"));
        };
        let mut preferences = user.preferences;
        let recorded = preferences.opt_out(&token.opt_out);
        if !recorded.changed {
            return Ok(recorded);
        }
        let written = set_preferences(
            &state.database,
            token.tenant_id,
            &token.user_id,
            &preferences,
            Some(user.version),
        )
        .await?;
        if written.is_some() {
            user_changed(state, token.tenant_id, &token.user_id).await;
            return Ok(recorded);
        }
    }
    Err(ApiError::Overloaded("the user's preferences kept changing"))
}
