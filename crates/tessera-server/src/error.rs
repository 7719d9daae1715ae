//! Every error the server answers, and the one place they become HTTP.
//!
//! The core's [`tessera_core::Error`] has one variant per status; the
//! server adds what only HTTP has (bad JSON, a wrong content type, a body too
//! large, an unknown route, a locked login). [`ApiError::into_response`] is
//! the single mapping; check refusals map in [`check_reply`].

use tessera_core::check::{CheckError, Refusal};
use tessera_core::lockout::Refused;
use tessera_core::Error as CoreError;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::wire::{ErrListEntry, ErrorInfo, ErrorReply, LoginFailure};

/// What a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Anything the core refused or failed with.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Malformed JSON or a field of the wrong type; names the field when known.
    #[error("{message}")]
    BadRequest {
        /// The field concerned, if known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The request body did not arrive in time.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// A body over the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A body that is not JSON (or a form, where one is accepted).
    #[error("unsupported content type {0:?}: send application/json")]
    UnsupportedMediaType(String),
    /// No such route.
    #[error("no such resource")]
    NotFound,
    /// The route exists, not with this method; holds the `Allow` value.
    #[error("method not allowed; this resource answers {0}")]
    MethodNotAllowed(&'static str),
    /// A failed login, in Commvault's `errList` shape.
    #[error("invalid user name or password")]
    LoginFailed,
    /// Too many failed logins for this user or address.
    #[error("too many failed logins; try again in {0} seconds")]
    Locked(u64),
    /// As many logins for this user or address as the limit allows are
    /// being verified right now.
    #[error("too many login attempts at once for this user or address; try again shortly")]
    LoginsPending,
    /// An access token's rate limit is spent for this window.
    #[error(
        "the token's rate limit ({limit} requests a window) is reached; retry in {reset} seconds"
    )]
    RateLimited {
        /// Allowed checks per window.
        limit: u32,
        /// Seconds until the window ends.
        reset: u32,
    },
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad(field: Option<&str>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => match e {
                CoreError::Invalid { .. } => StatusCode::BAD_REQUEST,
                CoreError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
                CoreError::NotFound(_) => StatusCode::NOT_FOUND,
                CoreError::Conflict(_) => StatusCode::CONFLICT,
                CoreError::Unavailable(_) | CoreError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
                CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::LoginFailed => StatusCode::UNAUTHORIZED,
            ApiError::Locked(_) | ApiError::LoginsPending | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
        }
    }

    /// The JSON answer. Internal details of a 500 or 503 are logged, not sent.
    pub fn into_response(self) -> Response {
        let status = self.status();
        match self {
            ApiError::LoginFailed => login_failure(status, "Invalid user name or password.", 0),
            ApiError::Locked(secs) => with_retry_after(
                login_failure(
                    status,
                    &format!("Too many failed logins; try again in {secs} seconds."),
                    secs,
                ),
                secs,
            ),
            ApiError::LoginsPending => with_retry_after(
                login_failure(
                    status,
                    "Too many login attempts at once for this user or address; try again shortly.",
                    0,
                ),
                1,
            ),
            other => {
                let (field, message) = match &other {
                    ApiError::Core(CoreError::Invalid { field, message }) => {
                        (Some(field.clone()), format!("{field}: {message}"))
                    }
                    ApiError::Core(CoreError::Unavailable(detail)) => {
                        tracing::warn!(%detail, "store unavailable");
                        (
                            None,
                            "The token store is unavailable; try again shortly.".to_string(),
                        )
                    }
                    ApiError::Core(CoreError::Busy(detail)) => {
                        tracing::warn!(%detail, "busy");
                        (None, "The server is busy; try again shortly.".to_string())
                    }
                    ApiError::Core(CoreError::Internal(detail)) => {
                        tracing::error!(%detail, "internal error");
                        (None, "Internal error.".to_string())
                    }
                    ApiError::BadRequest { field, message } => (field.clone(), message.clone()),
                    e => (None, e.to_string()),
                };
                let code = status.as_u16();
                let retry = matches!(other, ApiError::Core(CoreError::Busy(_)));
                let limited = match other {
                    ApiError::RateLimited { limit, reset } => Some((limit, reset)),
                    _ => None,
                };
                let allow = match other {
                    ApiError::MethodNotAllowed(allow) => Some(allow),
                    _ => None,
                };
                let body = ErrorReply {
                    error_code: code,
                    error_message: message.clone(),
                    error: ErrorInfo {
                        error_code: code,
                        error_message: message,
                    },
                    field,
                };
                let mut r = json(status, &body);
                if let Some(allow) = allow {
                    r.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static(allow));
                }
                if retry {
                    r = with_retry_after(r, 1);
                }
                if let Some((limit, reset)) = limited {
                    rate_limit_headers(r.headers_mut(), limit, 0, reset);
                    r = with_retry_after(r, u64::from(reset));
                }
                r
            }
        }
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Locked(left) => ApiError::Locked(left),
            Refused::Pending => ApiError::LoginsPending,
        }
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds),
/// as the IETF draft and GitHub name them.
pub fn rate_limit_headers(h: &mut warp::http::HeaderMap, limit: u32, remaining: u32, reset: u32) {
    h.insert("ratelimit-limit", HeaderValue::from(limit));
    h.insert("ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("ratelimit-reset", HeaderValue::from(reset));
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn login_failure(status: StatusCode, message: &str, remaining: u64) -> Response {
    json(
        status,
        &LoginFailure {
            err_list: vec![ErrListEntry {
                err_log_message: message.to_string(),
                error_code: status.as_u16(),
            }],
            is_account_locked: remaining > 0,
            remaining_lock_time: remaining,
        },
    )
}

/// A JSON answer with `status`.
pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::Reply::into_response(warp::reply::with_status(warp::reply::json(body), status))
}

/// The answer of a refused check (forward auth and the embedded filter):
/// 401 with `Bearer error="invalid_token"`, 403 with
/// `error="insufficient_scope"`, 503 when the store cannot be asked. Never 200.
pub fn check_reply(e: &CheckError) -> Response {
    if let CheckError::Refused(Refusal::RateLimited { limit, reset }) = e {
        let mut r = Response::new(Default::default());
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        rate_limit_headers(r.headers_mut(), *limit, 0, *reset);
        return with_retry_after(r, u64::from(*reset));
    }
    let (status, challenge) = match e {
        CheckError::Refused(r) if r.insufficient_scope() => (
            StatusCode::FORBIDDEN,
            Some("Bearer error=\"insufficient_scope\""),
        ),
        CheckError::Refused(_) => (
            StatusCode::UNAUTHORIZED,
            Some("Bearer error=\"invalid_token\""),
        ),
        CheckError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let mut r = Response::new(Default::default());
    *r.status_mut() = status;
    if let Some(c) = challenge {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    r
}
