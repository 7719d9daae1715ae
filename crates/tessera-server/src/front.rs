//! The check's own way in (and `/health/live`'s), ahead of the router.
//!
//! Every request to `/auth/check` is a proxy asking about another request,
//! so it is the one path whose cost is Tessera's overhead on every call a
//! client makes. The router ([`crate::api::routes`]) reads each request
//! into an owned `extract::Request`: the path folded into
//! segments, the query and the whole header map copied, the body taken as a
//! stream. [`Front`] answers the check straight from hyper's request
//! instead: the method, the path and the headers are borrowed, the body is
//! never read (it is dropped unread, as the router's check drops it), and
//! the same `check::forward_auth` decides. What follows the answer
//! is shared too: `api::finish` (the latency, the metrics, the
//! request's log line) here, `nosniff` and the drain's `Connection: close`
//! in [`crate::serve`] for both ways.
//!
//! Only a path the router would certainly take for the check is answered
//! here: exactly `/auth/check`, or exactly one of the policy's web-service
//! roots followed by it (as normalised: `/webconsole/api/auth/check`), with
//! no query. Anything else (`/auth/check/`, `/auth//check`, `/AUTH/check`,
//! `/auth/%63heck`, a query, Envoy's appended paths) goes to the router,
//! which answers as it always has. The router takes every method for the
//! check (HEAD is answered without a body by hyper, either way), so the
//! method is not looked at.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tessera_core::path::Normaliser;
use warp::http::{Request, Uri};
use warp::reply::Response;

use crate::api::App;
use crate::check::{forward_auth, Asked};
use crate::forward::CHECK_PREFIX;
use crate::metrics::RouteGroup;

/// Answers `/auth/check` ahead of the router (see the module's
/// documentation); cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Front {
    app: Arc<App>,
}

impl Front {
    /// The check of `app`, answered ahead of its router.
    pub fn new(app: Arc<App>) -> Self {
        Front { app }
    }

    /// Which of its requests `req` is, if the front answers it (else the
    /// router does). Decided once; [`Front::answer`] is told.
    pub fn takes<B>(&self, req: &Request<B>) -> Option<Way> {
        if is_live(req.uri()) {
            Some(Way::Live)
        } else if is_check(req.uri(), self.app.svc.policy().normaliser()) {
            Some(Way::Check)
        } else {
            None
        }
    }

    /// Answers `req`, a request [`Front::takes`] said is `way`; `peer` is
    /// the connection's other end. The body is dropped at once, unread.
    pub fn answer<B>(
        &self,
        req: Request<B>,
        way: Way,
        peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + 'static {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        drop(body);
        let app = self.app.clone();
        async move {
            let (group, response) = match way {
                Way::Live => (RouteGroup::Other, crate::handlers::operations::live()),
                Way::Check => {
                    let asked = Asked {
                        method: &parts.method,
                        raw_path: parts.uri.path(),
                        query: "",
                        headers: &parts.headers,
                        peer: Some(peer),
                    };
                    (RouteGroup::Check, forward_auth(&app, asked).await)
                }
            };
            crate::api::finish(
                &app,
                &parts.method,
                parts.uri.path(),
                group,
                started,
                response,
            )
        }
    }
}

/// What the front answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// `/auth/check` (or under a web-service root).
    Check,
    /// `/health/live`.
    Live,
}

/// Whether `uri` is exactly `/health/live`, no query: what a load balancer
/// asks many times a second, answered here as the router answers it (any
/// method; the body unread). Any other spelling goes to the router.
fn is_live(uri: &Uri) -> bool {
    uri.path() == "/health/live" && uri.query().is_none()
}

/// Whether the router would take `uri` for the check with its path as
/// sent: `/auth/check`, or one web-service root of `roots` before it,
/// with no query.
///
/// The router folds a path (lower case, empty segments dropped) before it
/// strips a root (`routes::segments`); a path without upper case or an
/// empty segment is its own folded form, so stripping the root from the
/// path as sent is what the router does. Roots are normalised (lower case,
/// slashes collapsed), so a path this takes has no such segment anyway;
/// the test is kept so that this never depends on that.
fn is_check(uri: &Uri, roots: &Normaliser) -> bool {
    let path = uri.path();
    uri.query().is_none()
        && path.ends_with(CHECK_PREFIX)
        && roots.without_root(path) == CHECK_PREFIX
        && !path.contains("//")
        && !path.bytes().any(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    use tessera_core::model::Role;
    use tessera_core::policy::{Credential, TokenRequest};
    use tessera_core::service::{Caller, Tessera};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::serve::{serve, ServeOptions};

    #[test]
    fn only_the_exact_check_paths_are_taken() {
        let roots = Normaliser::new(["/commandcenter/api", "/webconsole/api"]).unwrap();
        let taken = |uri: &str| is_check(&uri.parse::<Uri>().unwrap(), &roots);
        for yes in [
            "/auth/check",
            "/webconsole/api/auth/check",
            "/commandcenter/api/auth/check",
            "http://example.invalid/auth/check",
        ] {
            assert!(taken(yes), "{yes}");
        }
        for no in [
            "/auth/check/",
            "/auth/check/x",
            "/auth//check",
            "//auth/check",
            "/auth/check?",
            "/auth/check?x",
            "/Auth/check",
            "/AUTH/CHECK",
            "/auth/%63heck",
            "/auth/check%2F",
            "/auth/checks",
            "/xauth/check",
            "/x/auth/check",
            "/webconsole/api//auth/check",
            "/webconsole//api/auth/check",
            "/WebConsole/API/auth/check",
            "/webconsole/auth/check",
            "/webconsole/api/webconsole/api/auth/check",
            "/health/live",
            "*",
        ] {
            assert!(!taken(no), "{no}");
        }
        assert!(is_live(&"/health/live".parse::<Uri>().unwrap()));
        for no in [
            "/health/live/",
            "/health/live?x",
            "/Health/live",
            "/health//live",
        ] {
            assert!(!is_live(&no.parse::<Uri>().unwrap()), "{no}");
        }
    }

    /// The log lines written while a test runs on this thread.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// The lines so far, emptied, without the latency (which differs).
        fn take(&self) -> Vec<String> {
            let bytes = std::mem::take(&mut *self.0.lock().unwrap());
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| {
                    l.split(' ')
                        .filter(|w| !w.starts_with("latency_us="))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        }
    }

    /// An app over `svc`, as `tessera serve` builds it.
    fn app(svc: &Arc<Tessera>) -> Arc<App> {
        let mut app = crate::handlers::testing::app();
        app.svc = svc.clone();
        Arc::new(app)
    }

    /// Serves `app` on a port of its own, with the front or without it.
    async fn start(app: &Arc<App>, front: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            crate::api::routes(app.clone()),
            front.then(|| Front::new(app.clone())),
            ServeOptions::default(),
            app.draining.clone(),
            app.metrics.clone(),
            std::future::pending(),
        ));
        addr
    }

    /// The whole answer to `request` (sent as is), without its `Date`.
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer)
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    /// The metrics that count (not the latencies, nor open connections).
    fn counted(app: &App) -> Vec<String> {
        app.metrics
            .render()
            .lines()
            .filter(|l| {
                !l.starts_with('#')
                    && !l.contains("_bucket")
                    && !l.contains("_sum")
                    && !l.contains("connections_open")
            })
            .map(str::to_string)
            .collect()
    }

    /// Every answer, log line and count of the front is the router's.
    #[tokio::test]
    async fn the_front_answers_exactly_as_the_router() {
        let log = Captured::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);

        let svc = Arc::new(Tessera::new(
            Arc::new(tessera_core::memory::MemoryStore::new()),
            tessera_core::policy::Policy::new(Default::default()).unwrap(),
            Arc::new(tessera_core::clock::SystemClock),
        ));
        let admin = svc.add_user("admin", "pw", Role::Admin).await.unwrap();
        let caller = Caller {
            user: admin,
            credential: Credential::Session,
            address: None,
        };
        let all = svc
            .create_token(&caller, None, &TokenRequest::named("all"))
            .await
            .unwrap();
        let one_touch = TokenRequest {
            token_type: Some(4),
            ..TokenRequest::named("1-touch")
        };
        let one_touch = svc.create_token(&caller, None, &one_touch).await.unwrap();
        let (all, one_touch) = (all.access.expose(), one_touch.access.expose());

        let (fast_app, router_app) = (app(&svc), app(&svc));
        let fast = start(&fast_app, true).await;
        let router = start(&router_app, false).await;

        let asks = "X-Original-Method: GET\r\nX-Original-URI: /Client/5\r\n";
        let cases: Vec<String> = [
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthtoken: {all}\r\n{asks}"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {one_touch}\r\nX-Original-Method: GET\r\nX-Original-URI: /Job/1\r\n"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\n{asks}"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer tess_at_1_nonsense\r\n{asks}"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\nX-Original-URI: /Client/5\r\n"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}X-Forwarded-Uri: /Admin\r\n"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\nX-Original-Method: GET\r\nX-Original-URI: /Client/../Admin\r\n"),
            format!("GET /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}X-Forwarded-For: 203.0.113.9\r\n"),
            format!("HEAD /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("HEAD /auth/check HTTP/1.1\r\nHost: h\r\n{asks}"),
            format!("PATCH /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("FROB /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("POST /auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}Content-Length: 5\r\n\r\nhello"),
            format!("GET /webconsole/api/auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /commandcenter/api/auth/check HTTP/1.1\r\nHost: h\r\n{asks}"),
            format!("GET /WebConsole/API/auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET http://h/auth/check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/check HTTP/1.0\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/check/ HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth//check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /Auth/Check HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/check?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/%63heck HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/check/Client/5 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n"),
            format!("GET /auth/check/client/5 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            format!("GET /auth/checks HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {all}\r\n{asks}"),
            "GET /health/live HTTP/1.1\r\nHost: h\r\n".to_string(),
            "HEAD /health/live HTTP/1.1\r\nHost: h\r\n".to_string(),
            "DELETE /health/live HTTP/1.1\r\nHost: h\r\n".to_string(),
            "POST /health/live HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}".to_string(),
            "GET /health/live?x=1 HTTP/1.1\r\nHost: h\r\n".to_string(),
            "GET /health/live/ HTTP/1.1\r\nHost: h\r\n".to_string(),
            "GET /Health/Live HTTP/1.1\r\nHost: h\r\n".to_string(),
            "GET /webconsole/api/health/live HTTP/1.1\r\nHost: h\r\n".to_string(),
        ]
        .into_iter()
        .map(|c| {
            // Every request closes its connection (HTTP/1.0 does anyway).
            let c = if c.contains("HTTP/1.1\r\n") {
                c.replacen("Host: h\r\n", "Host: h\r\nConnection: close\r\n", 1)
            } else {
                c
            };
            if c.contains("\r\n\r\n") {
                c
            } else {
                format!("{c}\r\n")
            }
        })
        .collect();

        for draining in [false, true] {
            for app in [&fast_app, &router_app] {
                app.draining.store(draining, Ordering::SeqCst);
            }
            for case in &cases {
                let by_front = exchange(fast, case).await;
                let front_log = log.take();
                let by_router = exchange(router, case).await;
                let router_log = log.take();
                assert_eq!(by_front, by_router, "{case}");
                assert!(by_front.starts_with("HTTP/1."), "{by_front}");
                assert_eq!(front_log, router_log, "{case}");
                assert_eq!(front_log.len(), 1, "one line per request: {front_log:?}");
            }
        }
        assert_eq!(counted(&fast_app), counted(&router_app));
        // What was compared: an allowed check, refusals that say why.
        let allowed = exchange(fast, &cases[0]).await;
        assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
        assert!(allowed.contains("x-tessera-user: admin"), "{allowed}");
        let refused = exchange(fast, &cases[3]).await;
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        let scope = exchange(fast, &cases[2]).await;
        assert!(scope.starts_with("HTTP/1.1 403"), "{scope}");
    }
}
