//! The web console at `/console/`: three hand-written files (HTML, CSS, one
//! vanilla JavaScript module) embedded in the binary, so nothing is fetched
//! from the network at run time and there is no front-end build step.
//!
//! The console is a client of the public REST API and of nothing else: it
//! signs in with `POST /Login` and sends the session in the `Authtoken`
//! header, keeping it in a JavaScript variable only (never in storage or a
//! cookie). Because the credential travels in a header that a browser never
//! adds by itself, state-changing calls cannot be forged by another site
//! (no CSRF token is needed).
//!
//! Every answer here carries a strict Content-Security-Policy (no inline
//! script or style, nothing from another origin, no framing),
//! `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`.

use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;

use crate::error::ApiError;

/// The page.
const INDEX_HTML: &str = include_str!("../console/index.html");
/// The style sheet.
const CONSOLE_CSS: &str = include_str!("../console/console.css");
/// The script (an ES module).
const CONSOLE_JS: &str = include_str!("../console/console.js");

/// The Content-Security-Policy of every console answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Serves the console. `raw_path` is the path as sent (to redirect
/// `/console` to `/console/`, so that the page's relative links resolve);
/// `rest` the lower-cased segments after `console`. GET and HEAD only; an
/// unknown file is the API's JSON 404.
pub fn serve(method: &Method, raw_path: &str, rest: &[&str]) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::MethodNotAllowed("GET, HEAD"));
    }
    let (body, content_type, cache) = match rest {
        [] if !raw_path.ends_with('/') => return Ok(redirect_to_directory(raw_path)),
        [] | ["index.html"] => (INDEX_HTML, "text/html; charset=utf-8", "no-store"),
        ["console.css"] => (CONSOLE_CSS, "text/css; charset=utf-8", "no-cache"),
        ["console.js"] => (CONSOLE_JS, "text/javascript; charset=utf-8", "no-cache"),
        _ => return Err(ApiError::NotFound),
    };
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(h);
    Ok(r)
}

/// `/console` → `console/`, relative, so it works under a web-service root
/// or a proxy's prefix too.
fn redirect_to_directory(raw_path: &str) -> Response {
    let last = raw_path.rsplit('/').next().unwrap_or("console");
    let mut r = Response::new(Default::default());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("{last}/"))
            .unwrap_or_else(|_| HeaderValue::from_static("console/")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(h);
    r
}

/// The security headers every console answer carries.
fn secure(h: &mut warp::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_files_with_strict_headers() {
        let r = serve(&Method::GET, "/console/", &[]).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'"));
        let r = serve(&Method::GET, "/console/console.js", &["console.js"]).unwrap();
        assert!(r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        let r = serve(&Method::GET, "/Console", &[]).unwrap();
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "Console/");
        assert!(matches!(
            serve(&Method::GET, "/console/x.js", &["x.js"]),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(
            serve(&Method::POST, "/console/", &[]),
            Err(ApiError::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("style="));
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
        assert!(!CONSOLE_JS.contains("localStorage") && !CONSOLE_JS.contains("sessionStorage"));
        assert!(!CONSOLE_JS.contains("document.cookie"));
    }
}
