//! The HTTP API as one warp filter: it reads each request, finds its route
//! in `crate::routes`, runs its handler (`crate::handlers`), and times,
//! counts and logs it. Every error becomes HTTP in one place,
//! [`ApiError::into_response`]; warp's own rejections (there are none past
//! the one filter) answer the API's 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::service::Tessera;
use tessera_core::Error as CoreError;
use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::reply::Response;
use warp::Filter;

use crate::auth::Addressing;
use crate::error::ApiError;
use crate::extract::{Body, Request};
use crate::forward::Convention;
use crate::metrics::{Metrics, RouteGroup};
use crate::routes::{find, segments, Lookup};
use crate::serve::Peer;
use crate::throttle::LoginThrottle;

/// Everything a request handler needs.
pub struct App {
    /// The service (policy over the store); its policy's normaliser also
    /// strips the web-service roots from the routes' paths.
    pub svc: Arc<Tessera>,
    /// Where the client's address comes from (trusted proxies, which header).
    pub addressing: Addressing,
    /// Which headers (or path) carry the request a forward-auth check is about.
    pub forward: Convention,
    /// Login rate limiting.
    pub throttle: LoginThrottle,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Set when shutdown begins: readiness answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    /// Bound on the readiness probe's store reads.
    pub ready_timeout: Duration,
    /// A request body must arrive within this (408 past it), so that one
    /// trickling in cannot hold a connection (`--header-read-timeout`).
    pub body_timeout: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// The peer's address: from [`crate::serve`]'s connections, or warp's own
/// server when the API is mounted elsewhere.
pub fn peer() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<Peer>()
        .and(warp::addr::remote())
        .map(|ours: Option<Peer>, warps: Option<SocketAddr>| ours.map(|p| p.0).or(warps))
}

/// The whole API as one filter.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(peer())
        .and(warp::body::stream())
        .and(warp::any().map(move || app.clone()))
        .then(
            |method: Method,
             path: FullPath,
             query: String,
             headers: HeaderMap,
             peer,
             body,
             app: Arc<App>| async move {
                let req = Request {
                    method,
                    raw_path: path.as_str().to_string(),
                    query,
                    headers,
                    peer,
                };
                handle(&app, req, Body::of(body)).await
            },
        )
        .recover(|_: warp::Rejection| async {
            Ok::<_, Infallible>(ApiError::NotFound.into_response())
        })
        .unify()
}

/// Routes, runs, times, counts and logs one request.
pub(crate) async fn handle(app: &App, req: Request, body: Body) -> Response {
    let started = Instant::now();
    let segs = segments(&req.raw_path, app.svc.policy().normaliser());
    let (group, result) = match find(&segs, &req.method, app.forward.appends_path()) {
        Lookup::Route {
            route,
            params,
            tail,
        } => (
            route.group,
            crate::handlers::run(route.handler, app, &req, &params, tail, body).await,
        ),
        Lookup::MethodNotAllowed(allow) => {
            (RouteGroup::Other, Err(ApiError::MethodNotAllowed(allow)))
        }
        Lookup::NotFound => (RouteGroup::Other, Err(ApiError::NotFound)),
    };
    let response = result.unwrap_or_else(|e| {
        if matches!(e, ApiError::Core(CoreError::Unavailable(_))) {
            app.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
        }
        e.into_response()
    });
    finish(app, &req.method, &req.raw_path, group, started, response)
}

/// What follows every answer, the router's and [`crate::front`]'s alike:
/// its latency since `started` observed under `group`, and the request's
/// log line (method, path as sent, status, latency, route group).
pub(crate) fn finish(
    app: &App,
    method: &Method,
    raw_path: &str,
    group: RouteGroup,
    started: Instant,
    response: Response,
) -> Response {
    let elapsed = started.elapsed();
    app.metrics.observe(group, elapsed);
    tracing::info!(
        method = %method,
        path = %raw_path,
        status = response.status().as_u16(),
        latency_us = elapsed.as_micros() as u64,
        route = group.as_str(),
        "request"
    );
    response
}
