//! Keyset pagination shared by the list endpoints: the query's page size and cursor, checked into
//! clear 400s, and the page cut from one row more than asked for (that extra row says whether a
//! next page exists, without a count).

use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// The list endpoints' page size: default and largest.
pub(crate) const DEFAULT_PAGE_SIZE: u64 = 50;
pub(crate) const MAX_PAGE_SIZE: u64 = 500;

/// The request's query string as `Query`, or 400 naming what is wrong.
pub(crate) fn parse_query<Query: DeserializeOwned>(
    request: &HttpRequest,
) -> Result<Query, ApiError> {
    web::Query::<Query>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|error| ApiError::InvalidQuery(format!("invalid query string: {error}")))
}

/// The page size a query asks for: `default` without one, 400 outside `1..=max`.
pub(crate) fn page_size(
    text: Option<&str>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match text {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| {
                ApiError::InvalidQuery(format!("`{name}` must be an integer from 1 to {max}"))
            }),
    }
}

/// A keyset cursor this API returned (an id in its simple form), or 400.
pub(crate) fn parse_cursor(text: Option<&str>, name: &str) -> Result<Option<Uuid>, ApiError> {
    text.map(|cursor| {
        Uuid::try_parse(cursor).map_err(|_| {
            ApiError::InvalidQuery(format!("`{name}` is not a cursor this API returned"))
        })
    })
    .transpose()
}

/// Cuts `rows` (read with a limit of `limit + 1`) to `limit` and returns the cursor of the next
/// page: the last row's id, if the extra row showed there is more.
pub(crate) fn keyset_page<Row, Cursor: std::fmt::Display>(
    mut rows: Vec<Row>,
    limit: u64,
    cursor_of: impl Fn(&Row) -> Cursor,
) -> (Vec<Row>, Option<String>) {
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|row| cursor_of(row).to_string()))
        .flatten();
    (rows, next_cursor)
}
