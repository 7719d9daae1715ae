//! Operations: liveness, readiness, metrics and the OpenAPI document.

use std::sync::atomic::Ordering;

use tessera_core::service::Readiness;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::api::App;
use crate::error::json;

/// Liveness: the process answers. The body is a constant (a load balancer
/// asks often): the bytes `json` would write, built once.
pub fn live() -> Response {
    use warp::Reply;
    warp::reply::with_header(
        r#"{"status":"ok"}"#,
        header::CONTENT_TYPE,
        "application/json",
    )
    .into_response()
}

/// Readiness, for a load balancer: 503 once shutdown has begun, or when
/// the store does not answer what the check reads within the bound.
pub async fn ready(app: &App) -> Response {
    let not_ready = |why: &str| {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "unavailable", "reason": why}),
        )
    };
    if app.draining.load(Ordering::Relaxed) {
        return not_ready("shutting down");
    }
    match app.svc.ready(app.ready_timeout).await {
        Readiness::Ready => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Readiness::Unavailable(e) => {
            tracing::warn!(error = %e, "readiness: store unavailable");
            not_ready("store unavailable")
        }
        Readiness::TooSlow => {
            tracing::warn!(
                timeout_ms = app.ready_timeout.as_millis() as u64,
                "readiness: the store did not answer in time"
            );
            not_ready("store too slow")
        }
    }
}

/// The Prometheus text exposition.
pub fn metrics(app: &App) -> Response {
    let mut text = app.metrics.render();
    text.push_str(&crate::metrics::usage_backlog(
        app.svc.checker().usage_backlog(),
    ));
    text.push_str(&crate::metrics::cache(
        app.svc.checker().cache().map(|c| c.status()),
    ));
    if let Some(w) = app.metrics.webhooks.get() {
        text.push_str(&w.render());
    }
    text_reply(text, "text/plain; version=0.0.4; charset=utf-8")
}

/// `/openapi.json`, as built once ([`crate::openapi::served`]).
pub fn openapi() -> Response {
    text_reply(crate::openapi::served(), "application/json")
}

/// A 200 of `body` with `content_type`.
fn text_reply(body: impl Into<hyper::body::Bytes>, content_type: &'static str) -> Response {
    let mut r = Response::new(body.into().into());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn live_answers_the_bytes_and_headers_json_would() {
        let ours = live();
        let theirs = json(StatusCode::OK, &serde_json::json!({"status": "ok"}));
        assert_eq!(ours.status(), theirs.status());
        assert_eq!(ours.headers(), theirs.headers());
        let body = crate::handlers::testing::body_bytes;
        assert_eq!(body(ours).await, body(theirs).await);
    }
}
