//! Tessera's HTTP layer: warp over the core's [`Tessera`] service, with one
//! store chosen by URL among the backends compiled in (features `sqlite`,
//! `postgres`, `redis`).
//!
//! * [`api`] — the one warp filter: route, run, time, count, log;
//! * `routes` — the route table (paths, methods, handlers, metric groups,
//!   OpenAPI operations) and matching;
//! * `extract` — body, JSON, query, client address, caller;
//! * `handlers` — the calls of CONTRACT §5 (sessions, tokens, users, RFC
//!   7662/7009, operations); `check` — forward auth at `/auth/check`;
//! * [`wire`] — the JSON shapes; [`error`] — the one mapping to HTTP;
//! * [`forward`] — which request a forward-auth check is about;
//! * [`auth`] — credentials and client addresses; [`throttle`] — login limits;
//! * [`hashing`] — where Argon2 runs (bounded, low priority);
//! * [`front`] — `/auth/check` answered ahead of the router (borrowed
//!   headers, no body);
//! * [`serve`] — connections: timeouts, a bound, the drain on shutdown;
//! * [`metrics`] — Prometheus counters; [`openapi`] — `/openapi.json`;
//! * [`stores`] — opening a store by URL;
//! * [`filter`] — a warp filter other Rust services embed;
//! * [`console`] — the web console at `/console/` (embedded, a client of the API);
//! * [`webhook`] — outbound webhooks: receivers, signature, the sender;
//! * [`legacy`] — the legacy import file; [`config`] — the command line;
//! * [`client`] — `tessera login`, `logout`, `token …`: a terminal client of the API;
//! * [`systemd`] — readiness and stopping told to systemd (`Type=notify`).
//!
//! [`run`] serves on a bound listener until `shutdown` resolves, so tests run
//! it on port 0.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "redis")))]
compile_error!("Tessera needs a storage backend: build with --features sqlite, postgres or redis (sqlite is the default).");

pub mod api;
pub mod audit;
pub mod auth;
mod check;
pub mod client;
pub mod config;
pub mod console;
pub mod error;
mod extract;
pub mod filter;
pub mod forward;
pub mod front;
mod handlers;
pub mod hashing;
pub mod legacy;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod serve;
pub mod stores;
pub mod systemd;
pub mod throttle;
pub mod webhook;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use api::App;
use tessera_core::service::Tessera;

/// Serves the API on `listener` until `shutdown` resolves, then drains
/// within `options.shutdown_grace` (see [`serve`]).
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    options: serve::ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Built here, before the first request, not on it.
    openapi::served();
    serve::serve(
        listener,
        api::routes(app.clone()),
        Some(front::Front::new(app.clone())),
        options,
        app.draining.clone(),
        app.metrics.clone(),
        shutdown,
    )
    .await;
}

/// Background upkeep while serving: the sweep of dead records every
/// `sweep_every` (keeping them listable for `retention` seconds, and audit
/// events for `audit_retention`), a refresh
/// of the legacy horizon every 30 s (another node may import), and the
/// coalesced last-used times written every `usage_every` (never on the
/// request path; `None`: tracking is off, nothing to write).
pub fn spawn_upkeep(
    svc: Arc<Tessera>,
    sweep_every: Duration,
    retention: i64,
    audit_retention: i64,
    usage_every: Option<Duration>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(sweep_every);
        let mut legacy = tokio::time::interval(Duration::from_secs(30));
        let mut usage = usage_every.map(tokio::time::interval);
        loop {
            tokio::select! {
                Some(_) = async {
                    match usage.as_mut() {
                        Some(i) => Some(i.tick().await),
                        None => None,
                    }
                } => {
                    if let Err(e) = svc.flush_usage().await {
                        tracing::warn!(error = %e, "writing last-used times failed");
                    }
                }
                _ = sweep.tick() => {
                    match svc.sweep(retention).await {
                        Ok(n) if n > 0 => tracing::info!(removed = n, "sweep"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "sweep failed"),
                    }
                    match svc.sweep_events(audit_retention).await {
                        Ok(n) if n > 0 => tracing::info!(removed = n, "audit events swept"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "sweeping audit events failed"),
                    }
                }
                _ = legacy.tick() => {
                    if let Err(e) = svc.checker().refresh_legacy_horizon().await {
                        tracing::warn!(error = %e, "legacy horizon refresh failed");
                    }
                }
            }
        }
    })
}

/// Keeps the check's cache, if it has one, exact: follows the store's
/// change stream on its own task (see `tessera_core::cache::follow`). A cut
/// stream is logged (the first of a run of failures, then every 100th), and
/// the check reads the store until the stream is back.
pub fn spawn_follower(svc: Arc<Tessera>) -> Option<tokio::task::JoinHandle<()>> {
    let cache = svc.checker().cache()?.clone();
    Some(tokio::spawn(async move {
        let failures = std::sync::atomic::AtomicU64::new(0);
        let on_cut = |e: &tessera_core::StoreError| {
            let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_multiple_of(100) {
                tracing::warn!(error = %e, failures = n + 1, "the store's change stream is cut: checks read the store until it is back");
            }
        };
        let feed: &dyn tessera_core::feed::ChangeFeed = &**svc.store();
        tessera_core::cache::follow(&cache, feed, Duration::from_millis(100), &on_cut).await;
    }))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
