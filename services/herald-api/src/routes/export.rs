//! `GET /v1/notifications/export`: every notification of the tenant accepted in `[from, to)`,
//! optionally in one status, oldest first, as NDJSON or CSV (by `Accept`), streamed page by page.
//!
//! Memory is bounded by a page: a task reads a keyset page of rows (each page one statement, holding
//! one of the tenant's read permits while it runs), writes it, and hands it to the response through
//! a channel of two pages, so a client that reads slowly holds the reads back instead of making them
//! pile up. Keyset pages rather than one server-side cursor: a cursor would hold a transaction
//! (and a snapshot that keeps vacuum from cleaning) open for the whole export, minutes for a
//! million rows; pages cost one index descent each and nothing between them. An export that stops
//! (the client, the database, a deploy) is resumed with `cursor`, the id of the last row received.
//! One export per tenant at a time, across every replica (`export_leases`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use herald_domain::{NotificationStatus, Vocabulary};
use herald_store::exports::{self, ExportRange, ExportRow};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use uuid::Uuid;

use super::pagination::{parse_cursor, parse_query};
use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::read_permits::PermitUse;
use crate::state::AppState;

/// Rows per page (one statement, one chunk of the response).
const ROWS_PER_PAGE: u64 = 1000;
/// Pages written and waiting for the client.
const PAGES_BUFFERED: usize = 2;
/// How long a page may wait for the client to take it before the export gives up (and its lease).
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The tenant's export lease; renewed with every page, so longer than the client's idle timeout.
const EXPORT_LEASE: Duration = Duration::from_secs(60);
/// How long a page waits for one of the tenant's read permits before the export gives up.
const PERMIT_PATIENCE: Duration = Duration::from_secs(10);

/// The formats, by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    NdJson,
    Csv,
}

const NDJSON: &str = "application/x-ndjson";
const CSV: &str = "text/csv";
const CSV_COLUMNS: [&str; 14] = [
    "id",
    "created_at",
    "updated_at",
    "status",
    "priority",
    "channels",
    "user_ids",
    "group_ids",
    "subject",
    "deliveries_expected",
    "deliveries_sent",
    "deliveries_failed",
    "deliveries_skipped",
    "deliveries_cancelled",
];

impl ExportFormat {
    /// NDJSON unless the request's `Accept` prefers CSV; 406 if it accepts neither.
    fn from_request(request: &HttpRequest) -> Result<ExportFormat, ApiError> {
        let Some(accept) = request.get_header::<header::Accept>() else {
            return Ok(ExportFormat::NdJson);
        };
        for preference in accept.ranked() {
            match preference.essence_str() {
                NDJSON | "application/json" | "application/*" | "*/*" => {
                    return Ok(ExportFormat::NdJson)
                }
                CSV | "text/*" => return Ok(ExportFormat::Csv),
                _ => {}
            }
        }
        Err(ApiError::NotAcceptable("application/x-ndjson or text/csv"))
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::NdJson => NDJSON,
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// RFC 3339 time: notifications accepted at or after it (default: the earliest kept).
    pub from: Option<String>,
    /// RFC 3339 time: notifications accepted before it, after `from` (default: now).
    pub to: Option<String>,
    /// Only notifications in this status (`accepted`, `delivered`, ... as `status` shows them).
    pub status: Option<String>,
    /// Resume after this row: the `id` of the last row received.
    pub cursor: Option<String>,
}

/// The smallest UUIDv7 of the millisecond of `time`: every id of a notification accepted in or
/// after that millisecond is at least this.
fn first_id_at(time: DateTime<Utc>) -> Uuid {
    let millis = u128::try_from(time.timestamp_millis().max(0)).unwrap_or(0) & ((1 << 48) - 1);
    Uuid::from_u128((millis << 80) | (0x7 << 76) | (0b10 << 62))
}

fn parse_time(text: Option<&str>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|_| ApiError::InvalidQuery(format!("`{name}` is not an RFC 3339 time")))
    })
    .transpose()
}

/// The rows the query asks for, or 400 naming what is wrong.
fn export_range(tenant_id: Uuid, query: &ExportQuery) -> Result<ExportRange, ApiError> {
    let from = parse_time(query.from.as_deref(), "from")?;
    let to = parse_time(query.to.as_deref(), "to")?.unwrap_or_else(Utc::now);
    if from.is_some_and(|from| from >= to) {
        return Err(ApiError::InvalidQuery("`from` must be before `to`".into()));
    }
    let status = query
        .status
        .as_deref()
        .map(|name| {
            NotificationStatus::parse(name)
                .ok_or_else(|| ApiError::InvalidQuery(format!("unknown `status` `{name}`")))
        })
        .transpose()?;
    // `id > after`: one below the first id of `from`'s millisecond.
    let after_from = from.map_or(Uuid::nil(), |from| {
        Uuid::from_u128(first_id_at(from).as_u128() - 1)
    });
    let after_cursor = parse_cursor(query.cursor.as_deref(), "cursor")?.unwrap_or(Uuid::nil());
    Ok(ExportRange {
        tenant_id,
        after: after_from.max(after_cursor),
        before: first_id_at(to),
        status,
    })
}

/// The tenant's notifications accepted in `[from, to)`, oldest first, as NDJSON (one object per
/// line) or CSV (with a header line; list columns hold JSON arrays). Streamed: an interrupted
/// export is resumed with `cursor` = the last `id` received. One export per tenant at a time.
#[utoipa::path(get, path = "/v1/notifications/export", tag = "notifications",
    params(ExportQuery),
    responses(
        (status = 200, description = "the rows, streamed", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, body = ErrorBody, description = "bad query parameter"),
        (status = 401, body = ErrorBody),
        (status = 406, body = ErrorBody, description = "`Accept` names neither NDJSON nor CSV"),
        (status = 429, body = ErrorBody, description = "`export_in_progress`: the tenant's export runs; see Retry-After"),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn export_notifications(
    tenant: Tenant,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: ExportQuery = parse_query(&request)?;
    let range = export_range(tenant.id, &query)?;
    let format = ExportFormat::from_request(&request)?;
    let holder = Uuid::new_v4();
    if !exports::take_lease(&state.database, tenant.id, holder, EXPORT_LEASE).await? {
        return Err(ApiError::ExportInProgress);
    }
    let (pages, received) = mpsc::channel::<Bytes>(PAGES_BUFFERED);
    let finished = Arc::new(AtomicBool::new(false));
    actix_web::rt::spawn(run_export(
        state.into_inner(),
        range,
        format,
        holder,
        pages,
        finished.clone(),
    ));
    // The pages, then the end; or, if the export stopped before its end (a page not read, the
    // lease lost, the client idle too long), an error after the pages written: the response is
    // cut without its last chunk, so the client sees it incomplete, never short and whole.
    let body = futures::stream::unfold(Some(received), move |received| {
        let finished = finished.clone();
        async move {
            let mut received = received?;
            match received.recv().await {
                Some(page) => Some((Ok(page), Some(received))),
                None if finished.load(Ordering::Acquire) => None,
                None => Some((
                    Err(std::io::Error::other("the export stopped before its end")),
                    None,
                )),
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// Reads, writes and hands over the pages of `range` until the last, then gives the lease back.
/// `finished` is set only when the last page was handed over: anything else ends the response as
/// incomplete.
async fn run_export(
    state: std::sync::Arc<AppState>,
    mut range: ExportRange,
    format: ExportFormat,
    holder: Uuid,
    pages: mpsc::Sender<Bytes>,
    finished: Arc<AtomicBool>,
) {
    let mut first_page = true;
    loop {
        let rows = match read_page(&state, range).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, tenant_id = %range.tenant_id, "an export stopped: a page could not be read");
                break;
            }
        };
        let Some(last) = rows.last() else {
            let header_only = first_page && format == ExportFormat::Csv;
            if !header_only || pages.send(write_page(format, &[], true)).await.is_ok() {
                finished.store(true, Ordering::Release);
            }
            break;
        };
        range.after = last.id;
        let last_page = (rows.len() as u64) < ROWS_PER_PAGE;
        let chunk = write_page(format, &rows, first_page);
        first_page = false;
        drop(rows);
        match tokio::time::timeout(CLIENT_IDLE_TIMEOUT, pages.send(chunk)).await {
            Ok(Ok(())) => {}
            // The client went away, or stopped reading.
            Ok(Err(_)) | Err(_) => break,
        }
        if last_page {
            finished.store(true, Ordering::Release);
            break;
        }
        match exports::take_lease(&state.database, range.tenant_id, holder, EXPORT_LEASE).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                tracing::warn!(tenant_id = %range.tenant_id, "an export stopped: it lost its lease");
                break;
            }
        }
    }
    if let Err(error) = exports::release_lease(&state.database, range.tenant_id, holder).await {
        tracing::warn!(%error, "giving an export lease back failed; it expires");
    }
}

/// One page, under one of the tenant's read permits (waited for a little: the export is one of the
/// tenant's reads, and takes its turn with them).
async fn read_page(state: &AppState, range: ExportRange) -> Result<Vec<ExportRow>, ApiError> {
    let deadline = tokio::time::Instant::now() + PERMIT_PATIENCE;
    let _permit = loop {
        match state
            .read_permits
            .try_acquire(range.tenant_id, PermitUse::Read)
        {
            Ok(permit) => break permit,
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    Ok(exports::export_page(&state.database, range, ROWS_PER_PAGE).await?)
}

fn write_page(format: ExportFormat, rows: &[ExportRow], with_header: bool) -> Bytes {
    let mut out = Vec::with_capacity(rows.len() * 256);
    match format {
        ExportFormat::NdJson => {
            for row in rows {
                serde_json::to_writer(&mut out, row).expect("an export row is JSON");
                out.push(b'\n');
            }
        }
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            if with_header {
                writer.write_record(CSV_COLUMNS).expect("writing to memory");
            }
            for row in rows {
                writer
                    .write_record(csv_record(row))
                    .expect("writing to memory");
            }
            writer.flush().expect("writing to memory");
        }
    }
    Bytes::from(out)
}

/// A list column as the JSON array its CSV cell holds.
fn json_list<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).expect("a list of strings is JSON")
}

/// A row's CSV cells, in [`CSV_COLUMNS`] order.
fn csv_record(row: &ExportRow) -> [String; 14] {
    [
        row.id.to_string(),
        row.created_at.to_rfc3339(),
        row.updated_at.to_rfc3339(),
        row.status.spelling().to_owned(),
        row.priority.spelling().to_owned(),
        json_list(&row.channels),
        json_list(&row.user_ids),
        json_list(&row.group_ids),
        row.subject.clone().unwrap_or_default(),
        row.deliveries_expected.to_string(),
        row.deliveries_sent.to_string(),
        row.deliveries_failed.to_string(),
        row.deliveries_skipped.to_string(),
        row.deliveries_cancelled.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_of_a_millisecond_orders_before_every_id_of_it_and_after_every_earlier_one() {
        let time = DateTime::parse_from_rfc3339("2026-12-07T03:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let millis = time.timestamp_millis() as u64;
        let at = |millis: u64| {
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                millis / 1000,
                (millis % 1000) as u32 * 1_000_000,
            ))
        };
        let first = first_id_at(time);
        assert_eq!(first.get_version_num(), 7);
        for _ in 0..100 {
            assert!(at(millis) >= first);
            assert!(at(millis - 1) < first);
        }
    }
}
