//! The audit trail: `GET /V4/AccessToken/Events`.

use tessera_core::model::{EventId, EventQuery, TokenId, UserId};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::api::App;
use crate::error::{json, ApiError};
use crate::extract::{caller, path_id, query_params, Request};
use crate::wire::{EventInfo, EventList};

/// Events per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most events one page holds.
pub const MAX_LIMIT: usize = 1000;

/// `GET /V4/AccessToken/Events?userId=&tokenId=&since=&limit=&cursor=`:
/// the trail, newest first; who may read whose is the core's to say.
pub async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let query = query_params(&req.query)?;
    // Numbers as the document says: 0 to i64::MAX (every store's range).
    let number = |name: &str, key: &str| -> Result<Option<u64>, ApiError> {
        match query.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => match path_id(v, name)? {
                n if n <= i64::MAX as u64 => Ok(Some(n)),
                _ => Err(ApiError::bad(Some(name), format!("{name}: out of range"))),
            },
        }
    };
    let limit = match number("limit", "limit")? {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::bad(
                Some("limit"),
                format!("limit: 1 to {MAX_LIMIT}"),
            ))
        }
    };
    let since = number("since", "since")?.map(|s| s as i64);
    let q = EventQuery {
        user: number("userId", "userid")?.map(UserId),
        token: number("tokenId", "tokenid")?.map(TokenId),
        since,
        before: number("cursor", "cursor")?.map(EventId),
        limit,
    };
    let events = app.svc.events(&c, &q).await?;
    let next_cursor = (events.len() == limit)
        .then(|| events.last().map(|e| e.id.0.to_string()))
        .flatten();
    Ok(json(
        StatusCode::OK,
        &EventList {
            events: events.iter().map(EventInfo::of).collect(),
            next_cursor,
        },
    ))
}
