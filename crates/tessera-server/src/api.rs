//! The HTTP API: one warp filter that routes every request (paths
//! case-insensitive, repeated slashes collapsed, trailing slash ignored,
//! web-service roots stripped), and the handlers, which translate HTTP to the
//! core's [`Tessera`] calls and back. No policy here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tessera_core::check::CheckError;
use tessera_core::model::{Role, TokenId, UserId, UserKind};
use tessera_core::policy::Credential;
use tessera_core::service::{Caller, RenewError, Tessera};
use tessera_core::Error as CoreError;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Buf, Filter};

use crate::auth::{presented, Addressing, Presented};
use crate::error::{check_reply, json, ApiError};
use crate::forward::Convention;
use crate::metrics::{CheckOutcome, Metrics, RouteGroup};
use crate::serve::Peer;
use crate::throttle::LoginThrottle;
use crate::wire::*;

/// Largest request body accepted (413 past it).
pub const MAX_BODY: usize = 64 * 1024;

/// Everything a request handler needs.
pub struct App {
    /// The service (policy over the store).
    pub svc: Arc<Tessera>,
    /// Web-service roots, lower-case, as path segments.
    pub roots: Vec<Vec<String>>,
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

/// One request, as the handlers see it.
struct Request {
    method: Method,
    /// The path as sent (for the check of an access token used as caller).
    raw_path: String,
    query: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
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
                handle(app, req, Box::pin(body)).await
            },
        )
        .recover(|_: warp::Rejection| async {
            Ok::<_, Infallible>(ApiError::NotFound.into_response())
        })
        .unify()
}

/// Reads the body within `timeout` (408 past it), refusing more than
/// [`MAX_BODY`] bytes without reading on.
async fn read_body<S, B>(body: S, timeout: Duration) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    tokio::time::timeout(timeout, read_all(body))
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

async fn read_all<S, B>(mut body: S) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::bad(None, format!("cannot read the body: {e}")))?;
        if out.len() + chunk.remaining() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge(MAX_BODY));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

/// The route's path segments: lower-case, empty segments dropped, one
/// web-service root stripped.
fn segments(path: &str, roots: &[Vec<String>]) -> Vec<String> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    for root in roots {
        if !root.is_empty() && segs.len() >= root.len() && segs[..root.len()] == root[..] {
            return segs[root.len()..].to_vec();
        }
    }
    segs
}

/// Routes, runs, times, counts and logs one request.
async fn handle<S, B>(app: Arc<App>, req: Request, body: S) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin + Send,
    B: Buf + Send,
{
    let started = Instant::now();
    let segs = segments(&req.raw_path, &app.roots);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, result) = dispatch(&app, &req, &segs, body).await;
    let response = result.unwrap_or_else(|e| {
        if matches!(e, ApiError::Core(CoreError::Unavailable(_))) {
            app.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
        }
        e.into_response()
    });
    let elapsed = started.elapsed();
    app.metrics.observe(group, elapsed);
    tracing::info!(
        method = %req.method,
        path = %req.raw_path,
        status = response.status().as_u16(),
        latency_us = elapsed.as_micros() as u64,
        route = group.as_str(),
        "request"
    );
    response
}

async fn dispatch<S, B>(
    app: &App,
    req: &Request,
    segs: &[&str],
    body: S,
) -> (RouteGroup, Result<Response, ApiError>)
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin + Send,
    B: Buf + Send,
{
    // HEAD answers wherever GET does (hyper sends no body for it); the
    // check keeps the method as sent.
    let m = if req.method == Method::HEAD {
        &Method::GET
    } else {
        &req.method
    };
    match segs {
        ["auth", "check"] => (RouteGroup::Check, Ok(forward_auth(app, req).await)),
        ["auth", "check", ..] if app.forward.appends_path() => {
            (RouteGroup::Check, Ok(forward_auth(app, req).await))
        }
        ["login"] if m == Method::POST => (RouteGroup::Login, login(app, req, body).await),
        ["logout"] if m == Method::POST => (RouteGroup::Login, logout(app, req).await),
        ["whoami"] if m == Method::POST || m == Method::GET => {
            (RouteGroup::Other, whoami(app, req).await)
        }
        ["v4", "accesstoken", "renew"] if m == Method::POST => {
            (RouteGroup::Renew, renew(app, req, body).await)
        }
        ["v4", "accesstoken", "policy"] if m == Method::GET => {
            (RouteGroup::Tokens, token_policy(app, req).await)
        }
        ["v4", "accesstoken"] if m == Method::GET => {
            (RouteGroup::Tokens, list_tokens(app, req).await)
        }
        ["v4", "accesstoken"] if m == Method::POST => {
            (RouteGroup::Tokens, create_token(app, req, body).await)
        }
        // Words of their own, not token ids: a wrong method is a 405.
        ["v4", "accesstoken", "renew" | "policy"] => (
            RouteGroup::Other,
            Err(ApiError::MethodNotAllowed(
                allowed_methods(segs).unwrap_or("GET"),
            )),
        ),
        ["v4", "accesstoken", id] if m == Method::PUT => {
            (RouteGroup::Tokens, edit_token(app, req, id, body).await)
        }
        ["v4", "accesstoken", id] if m == Method::DELETE => {
            (RouteGroup::Tokens, revoke_token(app, req, id).await)
        }
        ["v4", "user"] if m == Method::GET => (RouteGroup::Users, list_users(app, req).await),
        ["v4", "user"] if m == Method::POST => {
            (RouteGroup::Users, create_user(app, req, body).await)
        }
        ["v4", "user", id] if m == Method::DELETE => {
            (RouteGroup::Users, delete_user(app, req, id).await)
        }
        ["oauth", "introspect"] if m == Method::POST => {
            (RouteGroup::Check, introspect(app, req, body).await)
        }
        ["oauth", "revoke"] if m == Method::POST => {
            (RouteGroup::Check, oauth_revoke(app, req, body).await)
        }
        ["health", "live"] => (
            RouteGroup::Other,
            Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        ),
        ["health", "ready"] => (RouteGroup::Other, Ok(ready(app).await)),
        ["metrics"] => (RouteGroup::Other, Ok(metrics(app))),
        ["openapi.json"] => (
            RouteGroup::Other,
            Ok(json(StatusCode::OK, &crate::openapi::document())),
        ),
        ["console", rest @ ..] => (
            RouteGroup::Other,
            crate::console::serve(m, &req.raw_path, rest),
        ),
        other => match allowed_methods(other) {
            Some(allow) => (RouteGroup::Other, Err(ApiError::MethodNotAllowed(allow))),
            None => (RouteGroup::Other, Err(ApiError::NotFound)),
        },
    }
}

/// The methods a known path answers (the `Allow` of its 405), matching the
/// dispatch above; `None` for paths that do not exist.
fn allowed_methods(segs: &[&str]) -> Option<&'static str> {
    Some(match segs {
        ["login"] | ["logout"] | ["v4", "accesstoken", "renew"] => "POST",
        ["whoami"] | ["v4", "accesstoken"] | ["v4", "user"] => "GET, HEAD, POST",
        ["v4", "accesstoken", "policy"] => "GET, HEAD",
        ["v4", "accesstoken", _] => "PUT, DELETE",
        ["v4", "user", _] => "DELETE",
        ["oauth", "introspect"] | ["oauth", "revoke"] => "POST",
        _ => return None,
    })
}

// ---- request helpers ---------------------------------------------------------

fn client(app: &App, req: &Request) -> Result<IpAddr, ApiError> {
    app.addressing.client(req.peer, &req.headers)
}

/// The body as JSON of type `T`: 415 for another content type, 400 naming
/// the field for malformed JSON or a wrong type. An empty body is `{}`.
async fn json_body<T, S, B>(app: &App, req: &Request, body: S) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let bytes = read_body(body, app.body_timeout).await?;
    if let Some(mime) = media_type(req)? {
        let is_json = mime == "application/json" || mime.ends_with("+json");
        if !is_json && !bytes.is_empty() {
            return Err(ApiError::UnsupportedMediaType(mime));
        }
    }
    parse_json(if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    })
}

/// The body's media type, lower-case, without parameters; `None` when no
/// `Content-Type` was sent. Two of them, or one that cannot be read, is a
/// 415: the body is not taken for JSON (or a form) by default.
fn media_type(req: &Request) -> Result<Option<String>, ApiError> {
    let mut values = req.headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let unreadable = || ApiError::UnsupportedMediaType("(unreadable or repeated)".into());
    if values.next().is_some() {
        return Err(unreadable());
    }
    let text = value.to_str().map_err(|_| unreadable())?;
    Ok(Some(
        text.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    ))
}

/// One JSON object and nothing after it (serde would take an array for a
/// struct, and stop reading after the first value).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad(None, "the body must be one JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let message = match &field {
            Some(f) => format!("{f}: {}", e.inner()),
            None => format!("malformed JSON: {}", e.inner()),
        };
        ApiError::BadRequest { field, message }
    })?;
    de.end().map_err(|_| {
        ApiError::bad(
            None,
            "the body must be one JSON object, with nothing after it",
        )
    })?;
    Ok(value)
}

/// The query's parameters by lower-case name; a parameter given twice (in
/// any case) is a 400, never "the last one wins".
fn query_params(query: &str) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::bad(None, format!("malformed query: {e}")))?;
    let mut params = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        let key = k.to_ascii_lowercase();
        if params.insert(key, v).is_some() {
            return Err(ApiError::bad(
                Some(&k),
                format!("{k}: given more than once"),
            ));
        }
    }
    Ok(params)
}

/// A path id: a non-number is a 400 naming `field`.
fn path_id(raw: &str, field: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad(Some(field), format!("{field}: {raw:?} is not a number")))
}

fn decode_password(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn check_error(e: CheckError) -> ApiError {
    match e {
        CheckError::Refused(r) if r.insufficient_scope() => {
            ApiError::Core(CoreError::Forbidden(r.to_string()))
        }
        CheckError::Refused(r) => ApiError::Core(CoreError::Unauthorized(r.to_string())),
        CheckError::Unavailable(m) => ApiError::Core(CoreError::Unavailable(m)),
    }
}

/// The authenticated caller: a live session, or a valid access token whose
/// scope allows this very request.
async fn caller(app: &App, req: &Request) -> Result<Caller, ApiError> {
    match presented(&req.headers) {
        Presented::Session(s) => Ok(Caller {
            user: app.svc.session_user(&s).await?,
            credential: Credential::Session,
        }),
        Presented::Access(t) => {
            let allowed = app
                .svc
                .checker()
                .check(&t, req.method.as_str(), &req.raw_path, client(app, req)?)
                .await
                .map_err(check_error)?;
            let user = app
                .svc
                .store()
                .user_by_id(allowed.user_id())
                .await
                .map_err(CoreError::from)?
                .ok_or_else(|| {
                    CoreError::Unauthorized("the token's user no longer exists".into())
                })?;
            Ok(Caller {
                user,
                credential: Credential::AccessToken,
            })
        }
        Presented::None => Err(CoreError::Unauthorized(
            "log in first and send the session as Authtoken: QSDK <token>".into(),
        )
        .into()),
        Presented::Ambiguous => Err(CoreError::Unauthorized(
            "the credential headers are repeated, unreadable or contradict each other".into(),
        )
        .into()),
    }
}

fn ok_envelope() -> Response {
    json(StatusCode::OK, &ErrorInfo::ok())
}

// ---- sessions -------------------------------------------------------------------

async fn login<S, B>(app: &App, req: &Request, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let body: LoginRequest = json_body(app, req, body).await?;
    let name = body.username.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ApiError::bad(Some("username"), "username: required"));
    }
    let ip = client(app, req)?;
    let now = app.svc.now();
    // Counted before the (slow) verification, so that concurrent attempts
    // cannot overrun the limit.
    let attempt = match app.throttle.begin(&name, ip, now) {
        Ok(a) => a,
        Err(refused) => {
            app.metrics.logins_failed.fetch_add(1, Ordering::Relaxed);
            return Err(refused.into());
        }
    };
    // A password that is not base64 of UTF-8 matches nothing.
    let password = body
        .password
        .as_deref()
        .and_then(decode_password)
        .unwrap_or_default();
    match app.svc.login(&name, &password).await {
        Ok((secret, user)) => {
            attempt.succeeded();
            app.metrics.logins_ok.fetch_add(1, Ordering::Relaxed);
            Ok(json(
                StatusCode::OK,
                &LoginReply {
                    token: format!("QSDK {}", secret.expose()),
                    user_name: user.name,
                    user_id: user.id.0,
                },
            ))
        }
        Err(CoreError::Unauthorized(_)) => {
            app.metrics.logins_failed.fetch_add(1, Ordering::Relaxed);
            match attempt.failed(app.svc.now()) {
                Some(lock) => Err(ApiError::Locked(lock)),
                None => Err(ApiError::LoginFailed),
            }
        }
        // Busy or unavailable: not a failure of the password (the attempt,
        // dropped undecided, no longer counts).
        Err(e) => Err(e.into()),
    }
}

async fn logout(app: &App, req: &Request) -> Result<Response, ApiError> {
    match presented(&req.headers) {
        Presented::Session(s) => {
            app.svc.logout(&s).await?;
            Ok(ok_envelope())
        }
        _ => Err(CoreError::Unauthorized("no session to end".into()).into()),
    }
}

async fn whoami(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    Ok(json(
        StatusCode::OK,
        &WhoAmIReply {
            error_code: 0,
            user: UserRef {
                user_name: c.user.name,
                user_id: c.user.id.0,
            },
        },
    ))
}

// ---- tokens -----------------------------------------------------------------------

async fn list_tokens(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let query = query_params(&req.query)?;
    let user = match query.get("userid") {
        None => None,
        Some(v) if v.trim().is_empty() => None,
        Some(v) => Some(UserId(path_id(v.trim(), "userId")?)),
    };
    let tokens = app.svc.list_tokens(&c, user).await?;
    Ok(json(
        StatusCode::OK,
        &TokenList {
            tokens: tokens.iter().map(TokenInfo::of).collect(),
        },
    ))
}

/// The validity figures in force, for clients that fill in defaults and show
/// limits (the console). Reported from the core's configuration as is.
async fn token_policy(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let policy = app.svc.policy();
    policy.may_read_policy(c.credential)?;
    Ok(json(StatusCode::OK, &TokenPolicy::of(policy.config())))
}

async fn create_token<S, B>(app: &App, req: &Request, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let c = caller(app, req).await?;
    let body: TokenBody = json_body(app, req, body).await?;
    let owner = match body.user_id {
        None | Some(0) => None,
        Some(n) => {
            Some(UserId(u64::try_from(n).map_err(|_| {
                ApiError::bad(Some("userId"), "userId: not a user id")
            })?))
        }
    };
    let issued = app.svc.create_token(&c, owner, &body.to_request()).await?;
    let mut info = TokenInfo::of(&issued.token);
    info.access_token = Some(issued.access.expose().to_string());
    info.refresh_token = issued.refresh.as_ref().map(|r| r.expose().to_string());
    Ok(json(
        StatusCode::OK,
        &TokenReply {
            error: ErrorInfo::ok(),
            token_info: info,
        },
    ))
}

async fn edit_token<S, B>(app: &App, req: &Request, id: &str, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let id = TokenId(path_id(id, "tokenId")?);
    let c = caller(app, req).await?;
    let body: TokenBody = json_body(app, req, body).await?;
    let token = app.svc.edit_token(&c, id, &body.to_request()).await?;
    Ok(json(
        StatusCode::OK,
        &TokenReply {
            error: ErrorInfo::ok(),
            token_info: TokenInfo::of(&token),
        },
    ))
}

async fn revoke_token(app: &App, req: &Request, id: &str) -> Result<Response, ApiError> {
    let id = TokenId(path_id(id, "tokenId")?);
    let c = caller(app, req).await?;
    app.svc.revoke_token(&c, id).await?;
    Ok(ok_envelope())
}

async fn renew<S, B>(app: &App, req: &Request, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let body: RenewBody = json_body(app, req, body).await?;
    let access = body
        .access_token
        .ok_or_else(|| ApiError::bad(Some("accessToken"), "accessToken: required"))?;
    let refresh = body
        .refresh_token
        .ok_or_else(|| ApiError::bad(Some("refreshToken"), "refreshToken: required"))?;
    match app.svc.try_renew(&access, &refresh).await {
        Ok(issued) => {
            app.metrics.renewals_ok.fetch_add(1, Ordering::Relaxed);
            Ok(json(
                StatusCode::OK,
                &RenewReply {
                    error_code: 0,
                    token_id: issued.token.id.0,
                    access_token: issued.access.expose().to_string(),
                    refresh_token: issued
                        .refresh
                        .as_ref()
                        .map(|r| r.expose().to_string())
                        .unwrap_or_default(),
                    token_expiry_timestamp: issued.token.access_expires_at,
                    renewable_until_timestamp: issued.token.renewable_until.unwrap_or(0),
                },
            ))
        }
        Err(e) => {
            app.metrics.renewals_refused.fetch_add(1, Ordering::Relaxed);
            if e == RenewError::Reused {
                app.metrics.reuse_detections.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    event = "token.reuse_detected",
                    "a rotated-out refresh token was presented; token revoked"
                );
            }
            Err(CoreError::from(e).into())
        }
    }
}

// ---- users ----------------------------------------------------------------------

async fn list_users(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let users = app.svc.list_users(&c).await?;
    Ok(json(
        StatusCode::OK,
        &UserList {
            users: users.iter().map(UserInfo::of).collect(),
        },
    ))
}

async fn create_user<S, B>(app: &App, req: &Request, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let c = caller(app, req).await?;
    let body: UserBody = json_body(app, req, body).await?;
    let name = body
        .user_name
        .ok_or_else(|| ApiError::bad(Some("userName"), "userName: required"))?;
    let role = match body.role.as_deref() {
        None | Some("") => Role::User,
        Some(r) => Role::parse(r)
            .ok_or_else(|| ApiError::bad(Some("role"), "role: \"user\" or \"admin\""))?,
    };
    let kind = match body.kind.as_deref() {
        None | Some("") => UserKind::Person,
        Some(k) => UserKind::parse(k)
            .ok_or_else(|| ApiError::bad(Some("kind"), "kind: \"person\" or \"service\""))?,
    };
    let password = match body.password.as_deref() {
        None | Some("") => None,
        Some(b64) => Some(decode_password(b64).ok_or_else(|| {
            ApiError::bad(Some("password"), "password: base64 of the UTF-8 password")
        })?),
    };
    let user = app
        .svc
        .create_user(&c, &name, password.as_deref(), role, kind)
        .await?;
    Ok(json(
        StatusCode::OK,
        &UserCreated {
            user_id: user.id.0,
            user_name: user.name,
        },
    ))
}

async fn delete_user(app: &App, req: &Request, id: &str) -> Result<Response, ApiError> {
    let id = UserId(path_id(id, "userId")?);
    let c = caller(app, req).await?;
    app.svc.delete_user(&c, id).await?;
    Ok(ok_envelope())
}

// ---- the check three ways ---------------------------------------------------

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

/// Forward auth (nginx `auth_request`, Traefik `ForwardAuth`, Envoy): the
/// original method and URI come in headers; 200 with who is calling, or a
/// refusal (401/403/503). Never 200 unless the check allowed.
async fn forward_auth(app: &App, req: &Request) -> Response {
    let h = &req.headers;
    let read = crate::forward::original(app.forward, &req.method, &req.raw_path, &req.query, h)
        .and_then(|original| Ok((original, client(app, req)?)));
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
        .check(&token, &original.method, &original.uri, ip)
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

/// The `token` of an RFC 7662/7009 body: a form (`token=…`) or JSON.
async fn token_param<S, B>(app: &App, req: &Request, body: S) -> Result<String, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let bytes = read_body(body, app.body_timeout).await?;
    let ct = media_type(req)?.unwrap_or_else(|| "application/x-www-form-urlencoded".into());
    let param: TokenParam = match ct.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::bad(Some("token"), format!("malformed form: {e}")))?,
        "application/json" => parse_json(&bytes)?,
        other => return Err(ApiError::UnsupportedMediaType(other.to_string())),
    };
    param
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad(Some("token"), "token: required"))
}

/// RFC 7662 introspection, for resource servers; the caller authenticates
/// with an admin's session.
async fn introspect<S, B>(app: &App, req: &Request, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let c = caller(app, req).await?;
    app.svc.policy().may_introspect(c.credential, &c.user)?;
    let token = token_param(app, req, body).await?;
    let found = app
        .svc
        .checker()
        .introspect(&token)
        .await
        .map_err(check_error)?;
    let reply = match found {
        None => Introspection::default(),
        Some(t) => Introspection {
            active: true,
            scope: Some(t.scope.kind().label().to_string()),
            token_type: Some("access_token".into()),
            username: Some(t.user_name.clone()),
            sub: Some(t.user_id.0.to_string()),
            exp: Some(t.access_expires_at),
            iat: Some(t.created_at),
            token_id: Some(t.id.0),
            tessera_token_type: Some(t.scope.token_type().number()),
        },
    };
    Ok(json(StatusCode::OK, &reply))
}

/// RFC 7009 revocation: the token itself is the credential; unknown tokens
/// are not an error.
async fn oauth_revoke<S, B>(app: &App, req: &Request, body: S) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let token = token_param(app, req, body).await?;
    app.svc.revoke_by_secret(&token).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

// ---- operations ---------------------------------------------------------------

/// Readiness, for a load balancer: 503 once shutdown has begun, or when
/// the store does not answer what the check reads within the bound.
async fn ready(app: &App) -> Response {
    let not_ready = |why: &str| {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "unavailable", "reason": why}),
        )
    };
    if app.draining.load(Ordering::Relaxed) {
        return not_ready("shutting down");
    }
    match tokio::time::timeout(app.ready_timeout, app.svc.ready()).await {
        Ok(Ok(())) => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store unavailable");
            not_ready("store unavailable")
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = app.ready_timeout.as_millis() as u64,
                "readiness: the store did not answer in time"
            );
            not_ready("store too slow")
        }
    }
}

fn metrics(app: &App) -> Response {
    let mut text = app.metrics.render();
    text.push_str(&crate::metrics::usage_backlog(
        app.svc.checker().usage_backlog(),
    ));
    let mut r = Response::new(text.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_case_insensitive_and_root_agnostic() {
        let roots = vec![
            vec!["commandcenter".to_string(), "api".to_string()],
            vec!["webconsole".to_string(), "api".to_string()],
        ];
        assert_eq!(
            segments("//V4/AccessToken/", &roots),
            vec!["v4", "accesstoken"]
        );
        assert_eq!(
            segments("/commandcenter/api//V4/AccessToken/5", &roots),
            vec!["v4", "accesstoken", "5"]
        );
        assert_eq!(segments("/WebConsole/API/Login", &roots), vec!["login"]);
        assert_eq!(
            segments("/commandcenter/apix/Login", &roots),
            vec!["commandcenter", "apix", "login"]
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<TokenBody>(br#"{"tokenType": [1]}"#).unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest { field: Some(f), .. } if f == "tokenType"),
            "{e:?}"
        );
        let e = parse_json::<TokenBody>(br#"{"tokenName": "x", "#).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { .. }), "{e:?}");
        let ok = parse_json::<TokenBody>(
            br#"{"tokenName":"x","tokenType":"3","mode":4,"allowedIPs":"10.0.0.1, 10.0.0.2"}"#,
        )
        .unwrap();
        assert_eq!(ok.token_type, Some(3));
        let whole = parse_json::<TokenBody>(br#"{"tokenType": 2.0, "userId": "7"}"#).unwrap();
        assert_eq!((whole.token_type, whole.user_id), (Some(2), Some(7)));
        let e = parse_json::<TokenBody>(br#"{"tokenType": 2.5}"#).unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest { field: Some(f), message } if f == "tokenType" && !message.contains("enum")),
            "{e:?}"
        );
        assert_eq!(
            ok.allowed_ips,
            Some(vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()])
        );
    }
}
