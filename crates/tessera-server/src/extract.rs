//! What the handlers read from a request: the body (bounded in size and
//! time), JSON and form bodies, the query, path ids, the client's address
//! and the authenticated caller. Each refusal is an [`ApiError`] saying
//! which field or header is wrong.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{Stream, StreamExt};
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use tessera_core::check::CheckError;
use tessera_core::policy::Credential;
use tessera_core::service::Caller;
use tessera_core::Error as CoreError;
use warp::http::{header, HeaderMap, Method};
use warp::Buf;

use crate::api::App;
use crate::auth::{presented, Presented};
use crate::error::ApiError;

/// Largest request body accepted (413 past it).
pub const MAX_BODY: usize = 64 * 1024;

/// One request, as the handlers see it (its body apart, in [`Body`]).
#[derive(Debug)]
pub struct Request {
    /// The method as sent (HEAD included).
    pub method: Method,
    /// The path as sent (for the check of an access token used as caller).
    pub raw_path: String,
    /// The query as sent, without `?`.
    pub query: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The peer's address, when over TCP.
    pub peer: Option<SocketAddr>,
}

/// A request body, not read yet: read it with [`read_body`] (or
/// [`json_body`]), within the time and size bounds.
pub struct Body(Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}

impl Body {
    /// The body warp hands over, as chunks of bytes (without copying them
    /// when they are bytes already).
    pub fn of<S, B>(stream: S) -> Self
    where
        S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: Buf,
    {
        Body(Box::pin(stream.map(|chunk| {
            chunk.map(|mut b| b.copy_to_bytes(b.remaining()))
        })))
    }

    /// A body that is all there already (tests).
    #[cfg(test)]
    pub fn ready(bytes: &'static [u8]) -> Self {
        Body(Box::pin(futures_util::stream::iter([Ok(Bytes::from(
            bytes,
        ))])))
    }
}

/// Reads the body within `timeout` (408 past it), refusing more than
/// [`MAX_BODY`] bytes without reading on.
pub async fn read_body(body: Body, timeout: Duration) -> Result<Vec<u8>, ApiError> {
    tokio::time::timeout(timeout, read_all(body))
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

async fn read_all(mut body: Body) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.0.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(None, format!("cannot read the body: {e}")))?;
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge(MAX_BODY));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The client's address (through trusted proxies, as configured).
pub fn client(app: &App, req: &Request) -> Result<IpAddr, ApiError> {
    app.addressing.client(req.peer, &req.headers)
}

/// The body as JSON of type `T`: 415 for another content type, 400 naming
/// the field for malformed JSON or a wrong type. An empty body is `{}`.
pub async fn json_body<T: DeserializeOwned>(
    app: &App,
    req: &Request,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read_body(body, app.body_timeout).await?;
    if let Some(mime) = media_type(req)? {
        let is_json = matches!(mime.as_str(), "application/json") || mime.ends_with("+json");
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
pub fn media_type(req: &Request) -> Result<Option<String>, ApiError> {
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
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
pub fn query_params(query: &str) -> Result<HashMap<String, String>, ApiError> {
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
pub fn path_id(raw: &str, field: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad(Some(field), format!("{field}: {raw:?} is not a number")))
}

/// A password as the API sends it: base64 of UTF-8 (`None` if it is not).
pub fn decode_password(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A refused check of an access token used as a caller, as the core's
/// error: 403 for a valid token that does not cover the call, else 401.
pub fn check_error(e: CheckError) -> ApiError {
    match e {
        CheckError::Refused(tessera_core::check::Refusal::RateLimited { limit, reset }) => {
            ApiError::RateLimited { limit, reset }
        }
        CheckError::Refused(r) if r.insufficient_scope() => {
            ApiError::Core(CoreError::Forbidden(r.to_string()))
        }
        CheckError::Refused(r) => ApiError::Core(CoreError::Unauthorized(r.to_string())),
        CheckError::Unavailable(m) => ApiError::Core(CoreError::Unavailable(m)),
    }
}

/// The authenticated caller: a live session, or a valid access token whose
/// scope allows this very request.
pub async fn caller(app: &App, req: &Request) -> Result<Caller, ApiError> {
    match presented(&req.headers) {
        Presented::Session(s) => {
            // The address the trail records: unreadable forwarding is a
            // refusal here as at the check, never a guess.
            let address = client(app, req)?;
            Ok(Caller {
                user: app.svc.session_user(&s).await?,
                credential: Credential::Session,
                address: Some(address),
            })
        }
        Presented::Access(t) => {
            let address = client(app, req)?;
            let allowed = app
                .svc
                .checker()
                .check(&t, req.method.as_str(), &req.raw_path, address)
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
                address: Some(address),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TokenBody;

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<TokenBody>(br#"{"tokenType": [1]}"#).unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest { field, .. } if field.as_deref() == Some("tokenType")),
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
            matches!(&e, ApiError::BadRequest { field, message } if field.as_deref() == Some("tokenType") && !message.contains("enum")),
            "{e:?}"
        );
        assert_eq!(
            ok.allowed_ips,
            Some(vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()])
        );
    }
}
