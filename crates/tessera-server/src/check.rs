//! Forward auth at `/auth/check` (nginx `auth_request`, Traefik
//! `ForwardAuth`, Caddy `forward_auth`, Envoy): the original method and URI
//! come as the configured [`Convention`](crate::forward::Convention) says;
//! 200 with who is calling, or a refusal (400/401/403/503). Never 200
//! unless the check allowed.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tessera_core::check::CheckError;
use warp::http::{HeaderMap, HeaderValue, Method};
use warp::reply::Response;

use crate::api::App;
use crate::auth::{presented, Presented};
use crate::error::check_reply;
use crate::extract::Request;
use crate::metrics::CheckOutcome;

/// What a check reads of the request that asks for it, borrowed from it:
/// from the router's [`Request`], or from hyper's request itself
/// ([`crate::front`]), so that one function decides both.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The method as sent.
    pub method: &'a Method,
    /// The path as sent.
    pub raw_path: &'a str,
    /// The query as sent, without `?`.
    pub query: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The peer's address, when over TCP.
    pub peer: Option<SocketAddr>,
}

impl<'a> From<&'a Request> for Asked<'a> {
    fn from(req: &'a Request) -> Self {
        Asked {
            method: &req.method,
            raw_path: &req.raw_path,
            query: &req.query,
            headers: &req.headers,
            peer: req.peer,
        }
    }
}

/// A header value for a name that may hold any character (percent-encoded when not visible ASCII).
fn safe_header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        let encoded: String = text
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() || b == b' ' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static("-"))
    })
}

/// Checks the request a proxy asks about; counts the outcome.
pub async fn forward_auth(app: &App, req: Asked<'_>) -> Response {
    let h = req.headers;
    let read = crate::forward::original(app.forward, req.method, req.raw_path, req.query, h)
        .and_then(|original| Ok((original, app.addressing.client(req.peer, h)?)));
    let (original, ip) = match read {
        Ok(found) => found,
        Err(e) => {
            app.metrics.check(CheckOutcome::Unreadable);
            return e.into_response();
        }
    };
    let token = match presented(h) {
        Presented::Access(t) => t,
        // A bare Authtoken value may be a legacy access token.
        Presented::Session(t) if !t.starts_with(tessera_core::secret::PREFIX) => t,
        _ => String::new(),
    };
    let result = app
        .svc
        .checker()
        .check(&token, original.method, &original.uri, ip)
        .await;
    app.metrics.check(CheckOutcome::of(&result));
    match result {
        Ok(allowed) => {
            let mut r = Response::new(Default::default());
            let headers = r.headers_mut();
            headers.insert("x-tessera-user", safe_header(allowed.user_name()));
            headers.insert("x-tessera-user-id", HeaderValue::from(allowed.user_id().0));
            headers.insert(
                "x-tessera-token-id",
                HeaderValue::from(allowed.token_id().0),
            );
            // When it lapses, for a proxy to pass on to the client (as
            // GitHub's token-expiration header does).
            headers.insert(
                "x-tessera-token-expires",
                HeaderValue::from(allowed.expires_at()),
            );
            if let Some(until) = allowed.renewable_until() {
                headers.insert("x-tessera-renewable-until", HeaderValue::from(until));
            }
            if let Some(q) = allowed.quota() {
                crate::error::rate_limit_headers(headers, q.limit, q.remaining, q.reset);
            }
            r
        }
        Err(e) => {
            if matches!(e, CheckError::Unavailable(_)) {
                app.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            }
            check_reply(&e)
        }
    }
}
