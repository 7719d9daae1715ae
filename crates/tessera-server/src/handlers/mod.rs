//! The handlers: each translates one call's HTTP to the core's
//! [`Tessera`](tessera_core::service::Tessera) calls and back. No policy
//! here: who may do what is the core's to say.

mod events;
mod oauth;
pub(crate) mod operations;
mod session;
mod tokens;
mod users;

use warp::http::StatusCode;
use warp::reply::Response;

use crate::api::App;
use crate::error::{json, ApiError};
use crate::extract::{Body, Request};
use crate::routes::Handler;
use crate::wire::ErrorInfo;

/// Runs `handler` for `req`; `params` are the route's `{parameter}` values
/// in order, `tail` the segments after its path.
pub async fn run(
    handler: Handler,
    app: &App,
    req: &Request,
    params: &[&str],
    tail: &[String],
    body: Body,
) -> Result<Response, ApiError> {
    let id = params.first().copied().unwrap_or_default();
    match handler {
        Handler::Login => session::login(app, req, body).await,
        Handler::Logout => session::logout(app, req).await,
        Handler::WhoAmI => session::whoami(app, req).await,
        Handler::ListTokens => tokens::list(app, req).await,
        Handler::TokenPolicy => tokens::policy(app, req).await,
        Handler::ListEvents => events::list(app, req).await,
        Handler::CreateToken => tokens::create(app, req, body).await,
        Handler::EditToken => tokens::edit(app, req, id, body).await,
        Handler::RevokeToken => tokens::revoke(app, req, id).await,
        Handler::Renew => tokens::renew(app, req, body).await,
        Handler::ListUsers => users::list(app, req).await,
        Handler::CreateUser => users::create(app, req, body).await,
        Handler::DeleteUser => users::delete(app, req, id).await,
        Handler::ChangePassword => users::change_password(app, req, body).await,
        Handler::ResetPassword => users::reset_password(app, req, id, body).await,
        Handler::ForwardAuth => Ok(crate::check::forward_auth(app, req.into()).await),
        Handler::Introspect => oauth::introspect(app, req, body).await,
        Handler::OAuthRevoke => oauth::revoke(app, req, body).await,
        Handler::Live => Ok(operations::live()),
        Handler::Ready => Ok(operations::ready(app).await),
        Handler::Metrics => Ok(operations::metrics(app)),
        Handler::OpenApi => Ok(operations::openapi()),
        Handler::Console => {
            let rest: Vec<&str> = tail.iter().map(String::as_str).collect();
            crate::console::serve(&req.method, &req.raw_path, &rest)
        }
    }
}

/// `{"errorCode": 0, "errorMessage": ""}`: the answer of a call that only
/// says it succeeded.
fn ok_envelope() -> Response {
    json(StatusCode::OK, &ErrorInfo::ok())
}

#[cfg(test)]
pub(crate) mod testing {
    //! An [`App`] over the in-memory store, and requests to it, for the
    //! handlers' tests.

    use std::sync::Arc;
    use std::time::Duration;

    use tessera_core::clock::SystemClock;
    use tessera_core::memory::MemoryStore;
    use tessera_core::policy::{Policy, PolicyConfig};
    use tessera_core::service::Tessera;
    use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};

    use crate::api::App;
    use crate::auth::Addressing;
    use crate::extract::{Body, Request};
    use crate::forward::Convention;
    use crate::metrics::Metrics;
    use crate::throttle::{Lockout, LoginThrottle};

    /// An app with the default policy over an empty memory store.
    pub fn app() -> App {
        let policy = Policy::new(PolicyConfig::default()).unwrap();
        let svc = Tessera::new(Arc::new(MemoryStore::new()), policy, Arc::new(SystemClock));
        App {
            svc: Arc::new(svc),
            addressing: Addressing::default(),
            forward: Convention::default(),
            throttle: LoginThrottle::new(Lockout {
                max_failures: 5,
                window: 60,
                lockout: 60,
            }),
            metrics: Arc::new(Metrics::default()),
            draining: Arc::default(),
            ready_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
        }
    }

    /// `method path` with an `Authtoken` header of `session` (if any).
    pub fn request(method: Method, path: &str, session: Option<&str>) -> Request {
        let mut headers = HeaderMap::new();
        if let Some(s) = session {
            headers.insert("authtoken", HeaderValue::from_str(s).unwrap());
        }
        Request {
            method,
            raw_path: path.to_string(),
            query: String::new(),
            headers,
            peer: None,
        }
    }

    /// `method path` through the whole API (routing included), with an
    /// `Authtoken` of `session` and no body: the status and the JSON body.
    pub async fn call(
        app: &App,
        method: Method,
        path: &str,
        session: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let r = crate::api::handle(app, request(method, path, session), Body::ready(b"")).await;
        let status = r.status();
        let bytes = body_bytes(r).await;
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// A response's whole body.
    pub async fn body_bytes(r: warp::reply::Response) -> Vec<u8> {
        use hyper::body::Body as _;
        let mut body = r.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.unwrap().into_data() {
                bytes.extend_from_slice(&data);
            }
        }
        bytes
    }

    /// A session of a new user `name` with `role`, as the `Authtoken` value.
    pub async fn session(app: &App, name: &str, role: tessera_core::model::Role) -> String {
        app.svc.add_user(name, "pw", role).await.unwrap();
        let (secret, _) = app.svc.login(name, "pw").await.unwrap();
        format!("QSDK {}", secret.expose())
    }
}
