//! A warp filter that another Rust service mounts to protect its own routes
//! with Tessera's check, in process, against the same store:
//!
//! ```text
//! let protected = warp::path("orders")
//!     .and(tessera_server::filter::authorized(svc.clone(), vec![]))
//!     .map(|who: Allowed| format!("hello {}", who.user_name()))
//!     .recover(tessera_server::filter::recover);
//! ```
//!
//! The request's own method, path and peer address are checked (the
//! address from `X-Forwarded-For` only when the peer is in `trusted_proxies`).
//! A refusal rejects with [`Refused`]; [`recover`] answers it 401, 403 or 503
//! with the `WWW-Authenticate` challenge, never 200. See
//! `examples/protected.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tessera_core::check::{Allowed, CheckError};
use tessera_core::service::Tessera;
use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::{client_ip, presented, Presented};
use crate::error::check_reply;

/// The check refused (or could not be made); carried in a rejection.
#[derive(Debug)]
pub struct Refused(pub CheckError);

impl warp::reject::Reject for Refused {}

/// Extracts the [`Allowed`] caller, or rejects with [`Refused`].
pub fn authorized(
    svc: Arc<Tessera>,
    trusted_proxies: Vec<IpNet>,
) -> impl Filter<Extract = (Allowed,), Error = Rejection> + Clone {
    let trusted = Arc::new(trusted_proxies);
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  peer: Option<SocketAddr>| {
                let svc = svc.clone();
                let trusted = trusted.clone();
                async move {
                    let token = match presented(&headers) {
                        Presented::Access(t) => t,
                        _ => String::new(),
                    };
                    let uri = if query.is_empty() {
                        path.as_str().to_string()
                    } else {
                        format!("{}?{query}", path.as_str())
                    };
                    let ip = client_ip(peer, &headers, &trusted);
                    svc.checker()
                        .check(&token, method.as_str(), &uri, ip)
                        .await
                        .map_err(|e| warp::reject::custom(Refused(e)))
                }
            },
        )
}

/// Answers a [`Refused`] rejection (pass other rejections on).
pub async fn recover(r: Rejection) -> Result<Response, Rejection> {
    match r.find::<Refused>() {
        Some(Refused(e)) => Ok(check_reply(e)),
        None => Err(r),
    }
}
