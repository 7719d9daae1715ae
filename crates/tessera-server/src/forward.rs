//! Forward auth's one question: which request is being checked?
//!
//! A proxy asks `/auth/check` about a request it holds, and says which one in
//! headers of its own (or, for Envoy, in the check request itself). Every
//! client-written header that a proxy passes through lands beside them, so
//! the original method and URI are read from **exactly one place**, the one
//! the operator's [`Convention`] names:
//!
//! | convention | method | URI |
//! |---|---|---|
//! | `nginx` (default) | `X-Original-Method` | `X-Original-URI` |
//! | `traefik`, `caddy` | `X-Forwarded-Method` | `X-Forwarded-Uri` |
//! | `envoy` | the check request's own | the check request's path after `/auth/check` |
//!
//! The rules (CONTRACT: CONTRACT §5 "forward auth"), each a refusal (400), never
//! a fallback:
//! * the chosen header missing, empty, sent more than once, or holding bytes
//!   that are not visible ASCII (nginx passes `$request_uri` raw), or a URI
//!   with whitespace or a method that is no HTTP token;
//! * a missing method, unless the convention defines it (Envoy): nginx's and
//!   Caddy's sub-requests are always `GET`, so "the check request's method"
//!   would turn every `GET /X` rule into "any method";
//! * any other candidate header present (the other convention's pair, or for
//!   Envoy either pair) that is not one copy of exactly the chosen value: a
//!   client wrote it, and a proxy that passes client headers on would
//!   otherwise let it decide (Traefik passes every client header on).
//!
//! What the path then may be is the core's business (`Normaliser`).

use std::borrow::Cow;

use clap::ValueEnum;
use warp::http::{HeaderMap, Method};

use crate::error::ApiError;

/// The path prefix of the check; Envoy's `path_prefix` appends the original
/// path to it.
pub const CHECK_PREFIX: &str = "/auth/check";

/// Longest method accepted (the longest registered one is 17 characters).
const MAX_METHOD_LEN: usize = 32;

/// The proxy convention in front of Tessera (`--forward-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Convention {
    /// nginx `auth_request` with `X-Original-Method`/`X-Original-URI` set as
    /// in the documented configuration.
    #[default]
    Nginx,
    /// Traefik `ForwardAuth`: `X-Forwarded-Method`/`X-Forwarded-Uri`.
    Traefik,
    /// Caddy `forward_auth`: `X-Forwarded-Method`/`X-Forwarded-Uri`.
    Caddy,
    /// Envoy `ext_authz` (HTTP service, `path_prefix: /auth/check`): the
    /// check request's own method, and its path after the prefix.
    Envoy,
}

/// The two header pairs a proxy may use.
const ORIGINAL: (&str, &str) = ("x-original-method", "x-original-uri");
const FORWARDED: (&str, &str) = ("x-forwarded-method", "x-forwarded-uri");

impl Convention {
    /// The (method, URI) headers this convention reads, if it reads headers.
    fn chosen(self) -> Option<(&'static str, &'static str)> {
        match self {
            Convention::Nginx => Some(ORIGINAL),
            Convention::Traefik | Convention::Caddy => Some(FORWARDED),
            Convention::Envoy => None,
        }
    }

    /// Whether check requests arrive under [`CHECK_PREFIX`] with the
    /// original path appended (Envoy), rather than at `/auth/check` itself.
    pub fn appends_path(self) -> bool {
        self == Convention::Envoy
    }
}

/// The request a check is about: its method and its URI as sent (path and
/// query), for the core to normalise.
/// Borrowed from the check request where it can be (the hot path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original<'a> {
    /// The method, as the proxy reported it.
    pub method: &'a str,
    /// The request target.
    pub uri: Cow<'a, str>,
}

/// A 400 naming the header.
fn refuse(header: &str, what: &str) -> ApiError {
    let shown = display_name(header);
    ApiError::bad(
        Some(shown),
        format!("{shown}: {what}; the check is refused"),
    )
}

/// The conventional spelling of a header name, for messages.
fn display_name(lower: &str) -> &'static str {
    match lower {
        "x-original-method" => "X-Original-Method",
        "x-original-uri" => "X-Original-URI",
        "x-forwarded-method" => "X-Forwarded-Method",
        "x-forwarded-uri" => "X-Forwarded-Uri",
        _ => "header",
    }
}

/// One copy of `name`, readable: `Ok(None)` when absent.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refuse(name, "sent more than once"));
    }
    let text = value
        .to_str()
        .map_err(|_| refuse(name, "holds bytes that are not visible ASCII"))?;
    if text.trim().is_empty() {
        return Err(refuse(name, "empty"));
    }
    Ok(Some(text))
}

/// A request target: visible ASCII without whitespace (header values may
/// hold spaces and tabs; a request line cannot).
fn valid_uri(name: &str, uri: &str) -> Result<(), ApiError> {
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(refuse(name, "holds whitespace"));
    }
    Ok(())
}

/// An HTTP method token (RFC 9110 `tchar`s), of sensible length.
fn valid_method(name: &str, method: &str) -> Result<(), ApiError> {
    if method.len() > MAX_METHOD_LEN || Method::from_bytes(method.as_bytes()).is_err() {
        return Err(refuse(name, "is not an HTTP method"));
    }
    Ok(())
}

/// A candidate header not chosen: absent, or one copy of exactly the
/// chosen value.
fn agrees(headers: &HeaderMap, name: &str, chosen: &str) -> Result<(), ApiError> {
    match single(headers, name)? {
        None => Ok(()),
        Some(v) if v == chosen => Ok(()),
        Some(_) => Err(refuse(
            name,
            "contradicts the original request the proxy reported (a client may have written it)",
        )),
    }
}

/// The request a check is about, read as `convention` says, from the check
/// request's `method`, raw `path` and `query` and its `headers`.
pub fn original<'a>(
    convention: Convention,
    method: &'a Method,
    path: &'a str,
    query: &str,
    headers: &'a HeaderMap,
) -> Result<Original<'a>, ApiError> {
    let found = match convention.chosen() {
        Some((method_h, uri_h)) => {
            let uri = single(headers, uri_h)?.ok_or_else(|| refuse(uri_h, "required"))?;
            valid_uri(uri_h, uri)?;
            let method = single(headers, method_h)?.ok_or_else(|| refuse(method_h, "required"))?;
            valid_method(method_h, method)?;
            Original {
                method,
                uri: Cow::Borrowed(uri),
            }
        }
        None => {
            let rest = path
                .strip_prefix(CHECK_PREFIX)
                .filter(|r| r.starts_with('/'))
                .ok_or_else(|| {
                    ApiError::bad(
                        None,
                        format!(
                            "an Envoy check request's path is {CHECK_PREFIX} followed by the original path"
                        ),
                    )
                })?;
            let uri = if query.is_empty() {
                Cow::Borrowed(rest)
            } else {
                Cow::Owned(format!("{rest}?{query}"))
            };
            Original {
                method: method.as_str(),
                uri,
            }
        }
    };
    // Every other candidate may only repeat what was chosen.
    for (method_h, uri_h) in [ORIGINAL, FORWARDED] {
        if convention.chosen() == Some((method_h, uri_h)) {
            continue;
        }
        agrees(headers, method_h, found.method)?;
        agrees(headers, uri_h, &found.uri)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use warp::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    /// What a check reads, owned (the method and the URI).
    type Read = Result<(String, String), ApiError>;

    fn read(
        convention: Convention,
        method: &Method,
        path: &str,
        query: &str,
        pairs: &[(&'static str, &[u8])],
    ) -> Read {
        let h = headers(pairs);
        original(convention, method, path, query, &h)
            .map(|o| (o.method.to_string(), o.uri.into_owned()))
    }

    fn nginx(pairs: &[(&'static str, &[u8])]) -> Read {
        read(Convention::Nginx, &Method::GET, "/auth/check", "", pairs)
    }

    fn field(r: Read) -> String {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field.unwrap_or_default(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn nginx_reads_its_own_pair() {
        let o = nginx(&[
            ("x-original-method", b"DELETE"),
            ("x-original-uri", b"/Client/5?x=1"),
        ])
        .unwrap();
        assert_eq!((o.0.as_str(), o.1.as_str()), ("DELETE", "/Client/5?x=1"));
    }

    #[test]
    fn an_unreadable_uri_never_falls_back() {
        // nginx passes $request_uri raw; a client adds X-Forwarded-Uri.
        let r = nginx(&[
            ("x-original-method", b"GET"),
            ("x-original-uri", b"/Admin/5?q=\xc3\xa9"),
            ("x-forwarded-uri", b"/Client/5"),
        ]);
        assert_eq!(field(r), "X-Original-URI");
    }

    #[test]
    fn missing_empty_doubled_and_spaced_are_refused() {
        let m: (&'static str, &[u8]) = ("x-original-method", b"GET");
        assert_eq!(field(nginx(&[m])), "X-Original-URI");
        assert_eq!(
            field(nginx(&[m, ("x-original-uri", b"")])),
            "X-Original-URI"
        );
        assert_eq!(
            field(nginx(&[m, ("x-original-uri", b"  ")])),
            "X-Original-URI"
        );
        assert_eq!(
            field(nginx(&[
                m,
                ("x-original-uri", b"/Client/5"),
                ("x-original-uri", b"/Admin")
            ])),
            "X-Original-URI"
        );
        assert_eq!(
            field(nginx(&[m, ("x-original-uri", b"/Client/.. /Admin")])),
            "X-Original-URI"
        );
        assert_eq!(
            field(nginx(&[m, ("x-original-uri", b"/Client/5\t")])),
            "X-Original-URI"
        );
        // The method: missing (nginx's sub-request is always GET), doubled, junk.
        let u: (&'static str, &[u8]) = ("x-original-uri", b"/Client/5");
        assert_eq!(field(nginx(&[u])), "X-Original-Method");
        assert_eq!(
            field(nginx(&[u, m, ("x-original-method", b"DELETE")])),
            "X-Original-Method"
        );
        assert_eq!(
            field(nginx(&[u, ("x-original-method", b"GET /x")])),
            "X-Original-Method"
        );
        assert_eq!(
            field(nginx(&[u, ("x-original-method", b"G\xc3\xa9T")])),
            "X-Original-Method"
        );
    }

    #[test]
    fn the_other_pair_may_only_agree() {
        let base: [(&'static str, &[u8]); 2] = [
            ("x-original-method", b"GET"),
            ("x-original-uri", b"/Client/5"),
        ];
        let with = |extra: (&'static str, &'static [u8])| {
            let mut v = base.to_vec();
            v.push(extra);
            nginx(&v)
        };
        assert!(with(("x-forwarded-uri", b"/Client/5")).is_ok());
        assert!(with(("x-forwarded-method", b"GET")).is_ok());
        assert_eq!(
            field(with(("x-forwarded-uri", b"/Job/1"))),
            "X-Forwarded-Uri"
        );
        assert_eq!(
            field(with(("x-forwarded-method", b"POST"))),
            "X-Forwarded-Method"
        );
        assert_eq!(
            field(with(("x-forwarded-uri", b"/Client/5\xff"))),
            "X-Forwarded-Uri"
        );
        // Traefik passes client headers on: a client's X-Original-* is refused.
        let traefik = |pairs: &[(&'static str, &[u8])]| {
            read(Convention::Traefik, &Method::GET, "/auth/check", "", pairs)
        };
        let ok = traefik(&[
            ("x-forwarded-method", b"DELETE"),
            ("x-forwarded-uri", b"/Admin/1"),
        ])
        .unwrap();
        assert_eq!((ok.0.as_str(), ok.1.as_str()), ("DELETE", "/Admin/1"));
        assert_eq!(
            field(traefik(&[
                ("x-forwarded-method", b"DELETE"),
                ("x-forwarded-uri", b"/Admin/1"),
                ("x-original-uri", b"/Client/5"),
                ("x-original-method", b"GET"),
            ])),
            "X-Original-Method"
        );
        // Nor is a missing X-Forwarded-Method replaced by X-Original-Method.
        assert_eq!(
            field(traefik(&[
                ("x-forwarded-uri", b"/Admin/1"),
                ("x-original-method", b"GET"),
            ])),
            "X-Forwarded-Method"
        );
    }

    #[test]
    fn envoy_takes_the_check_request_itself() {
        let envoy = |method: Method, path: &str, query: &str, pairs: &[(&'static str, &[u8])]| {
            read(Convention::Envoy, &method, path, query, pairs)
        };
        let o = envoy(Method::DELETE, "/auth/check/Client/5", "x=1", &[]).unwrap();
        assert_eq!((o.0.as_str(), o.1.as_str()), ("DELETE", "/Client/5?x=1"));
        let o = envoy(Method::GET, "/auth/check/", "", &[]).unwrap();
        assert_eq!(o.1, "/");
        assert!(envoy(Method::GET, "/auth/check", "", &[]).is_err());
        assert!(envoy(Method::GET, "/auth/checkClient", "", &[]).is_err());
        // Client-written headers that disagree are refused.
        assert_eq!(
            field(envoy(
                Method::DELETE,
                "/auth/check/Admin",
                "",
                &[("x-original-uri", b"/Client")]
            )),
            "X-Original-URI"
        );
        assert_eq!(
            field(envoy(
                Method::DELETE,
                "/auth/check/Admin",
                "",
                &[("x-forwarded-method", b"GET")]
            )),
            "X-Forwarded-Method"
        );
    }
}
