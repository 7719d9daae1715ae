//! The route table: every path and method the API answers, what runs for
//! it, the group its latency is counted under and its OpenAPI operation.
//! Dispatch, the 405 answers (`Allow`) and `/openapi.json`'s paths are all
//! read from [`ROUTES`], so a route is added, or changed, in one place.
//!
//! Paths match case-insensitively, repeated slashes count as one, a
//! trailing slash is insignificant and one web-service root is stripped
//! (by the core's [`Normaliser`], as the check strips it). A literal
//! segment wins over a `{parameter}` (`/V4/AccessToken/Renew` is no token
//! id). HEAD is answered wherever GET is.

use std::sync::LazyLock;

use tessera_core::path::Normaliser;
use warp::http::Method;

use crate::metrics::RouteGroup;
use crate::openapi::{ops, Doc};

/// What runs for a route (see `crate::handlers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `POST /Login`.
    Login,
    /// `POST /Logout`.
    Logout,
    /// `GET`/`POST /WhoAmI`.
    WhoAmI,
    /// `GET /V4/AccessToken`.
    ListTokens,
    /// `GET /V4/AccessToken/Policy`.
    TokenPolicy,
    /// `GET /V4/AccessToken/Events`.
    ListEvents,
    /// `POST /V4/AccessToken`.
    CreateToken,
    /// `PUT /V4/AccessToken/{tokenId}`.
    EditToken,
    /// `DELETE /V4/AccessToken/{tokenId}`.
    RevokeToken,
    /// `POST /V4/AccessToken/Renew`.
    Renew,
    /// `GET /V4/User`.
    ListUsers,
    /// `POST /V4/User`.
    CreateUser,
    /// `DELETE /V4/User/{userId}`.
    DeleteUser,
    /// `POST /V4/User/Password`.
    ChangePassword,
    /// `POST /V4/User/{userId}/Password`.
    ResetPassword,
    /// `/auth/check`, any method.
    ForwardAuth,
    /// `POST /oauth/introspect` (RFC 7662).
    Introspect,
    /// `POST /oauth/revoke` (RFC 7009).
    OAuthRevoke,
    /// `/health/live`, any method.
    Live,
    /// `/health/ready`, any method.
    Ready,
    /// `/metrics`, any method.
    Metrics,
    /// `/openapi.json`, any method.
    OpenApi,
    /// `/console/…` (it answers GET and HEAD, and its own 405).
    Console,
}

/// What may follow a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the path is the whole path.
    None,
    /// Any further segments (the console's files).
    Any,
    /// Any further segments when the forward-auth convention appends the
    /// original path to the check's (Envoy); otherwise nothing.
    ForwardedPath,
}

/// One route and method.
#[derive(Debug)]
pub struct Route {
    /// The path as documented; `{name}` is a segment that takes any value.
    pub path: &'static str,
    /// The method; `None` for any (documented as GET).
    pub method: Option<Method>,
    /// What may follow the path.
    pub tail: Tail,
    /// What runs.
    pub handler: Handler,
    /// The latency group (`tessera_request_duration_seconds{route=…}`).
    pub group: RouteGroup,
    /// Its OpenAPI operation; `None` for what the document leaves out (the
    /// console).
    pub doc: Option<fn() -> Doc>,
}

/// A route of exactly `path` and `method`.
const fn route(
    path: &'static str,
    method: Method,
    handler: Handler,
    group: RouteGroup,
    doc: fn() -> Doc,
) -> Route {
    Route {
        path,
        method: Some(method),
        tail: Tail::None,
        handler,
        group,
        doc: Some(doc),
    }
}

/// A route of `path` that answers any method.
const fn any_method(
    path: &'static str,
    tail: Tail,
    handler: Handler,
    group: RouteGroup,
    doc: Option<fn() -> Doc>,
) -> Route {
    Route {
        path,
        method: None,
        tail,
        handler,
        group,
        doc,
    }
}

/// Every route (CONTRACT §5), in the document's order. The methods of one path
/// are listed in the order its `Allow` names them.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &{
    use Handler as H;
    use RouteGroup as G;
    use Method as M;
    [
        route("/Login",                     M::POST,   H::Login,       G::Login,  ops::login),
        route("/Logout",                    M::POST,   H::Logout,      G::Login,  ops::logout),
        route("/WhoAmI",                    M::GET,    H::WhoAmI,      G::Other,  ops::whoami_get),
        route("/WhoAmI",                    M::POST,   H::WhoAmI,      G::Other,  ops::whoami_post),
        route("/V4/AccessToken",            M::GET,    H::ListTokens,  G::Tokens, ops::list_tokens),
        route("/V4/AccessToken/Policy",     M::GET,    H::TokenPolicy, G::Tokens, ops::token_policy),
        route("/V4/AccessToken/Events",     M::GET,    H::ListEvents,  G::Tokens, ops::list_events),
        route("/V4/AccessToken",            M::POST,   H::CreateToken, G::Tokens, ops::create_token),
        route("/V4/AccessToken/{tokenId}",  M::PUT,    H::EditToken,   G::Tokens, ops::edit_token),
        route("/V4/AccessToken/{tokenId}",  M::DELETE, H::RevokeToken, G::Tokens, ops::revoke_token),
        route("/V4/AccessToken/Renew",      M::POST,   H::Renew,       G::Renew,  ops::renew_token),
        route("/V4/User",                   M::GET,    H::ListUsers,   G::Users,  ops::list_users),
        route("/V4/User",                   M::POST,   H::CreateUser,  G::Users,  ops::create_user),
        route("/V4/User/{userId}",          M::DELETE, H::DeleteUser,  G::Users,  ops::delete_user),
        route("/V4/User/Password",          M::POST,   H::ChangePassword, G::Users, ops::change_password),
        route("/V4/User/{userId}/Password", M::POST,   H::ResetPassword, G::Users, ops::reset_password),
        any_method("/auth/check", Tail::ForwardedPath, H::ForwardAuth, G::Check,  Some(ops::forward_auth)),
        route("/oauth/introspect",          M::POST,   H::Introspect,  G::Check,  ops::introspect),
        route("/oauth/revoke",              M::POST,   H::OAuthRevoke, G::Check,  ops::oauth_revoke),
        any_method("/health/live",   Tail::None,       H::Live,        G::Other,  Some(ops::live)),
        any_method("/health/ready",  Tail::None,       H::Ready,       G::Other,  Some(ops::ready)),
        any_method("/metrics",       Tail::None,       H::Metrics,     G::Other,  Some(ops::metrics)),
        any_method("/openapi.json",  Tail::None,       H::OpenApi,     G::Other,  Some(ops::openapi)),
        // Not documented: a client of the API, not part of it.
        any_method("/console",       Tail::Any,        H::Console,     G::Other,  None),
    ]
};

/// One segment of a path pattern.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    /// This word, lower-case.
    Word(String),
    /// Any value (`{name}`).
    Param,
}

/// The routes of one path, as matched.
#[derive(Debug)]
struct PathRoutes {
    segments: Vec<Segment>,
    tail: Tail,
    /// Indexes in [`ROUTES`], in table order.
    routes: Vec<usize>,
    /// The `Allow` of its 405 (`None`: it answers any method).
    allow: Option<String>,
}

/// [`ROUTES`] grouped by path, once.
static PATHS: LazyLock<Vec<PathRoutes>> = LazyLock::new(|| {
    let mut paths: Vec<PathRoutes> = Vec::new();
    for (i, r) in ROUTES.iter().enumerate() {
        let segments = pattern(r.path);
        match paths.iter_mut().find(|p| p.segments == segments) {
            Some(p) => p.routes.push(i),
            None => paths.push(PathRoutes {
                segments,
                tail: r.tail,
                routes: vec![i],
                allow: None,
            }),
        }
    }
    for p in &mut paths {
        let methods: Option<Vec<&Method>> = p
            .routes
            .iter()
            .map(|i| ROUTES[*i].method.as_ref())
            .collect();
        p.allow = methods.map(|methods| {
            let mut names = Vec::new();
            for m in methods {
                names.push(m.as_str());
                if *m == Method::GET {
                    names.push(Method::HEAD.as_str());
                }
            }
            names.join(", ")
        });
    }
    paths
});

fn pattern(path: &str) -> Vec<Segment> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Word(s.to_ascii_lowercase())
            }
        })
        .collect()
}

/// What a request's path and method lead to.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// This route, with the values of its `{parameters}` in order and the
    /// segments after its path (for a route with a tail).
    Route {
        /// The route.
        route: &'static Route,
        /// The `{parameter}` values.
        params: Vec<&'a str>,
        /// The segments after the path.
        tail: &'a [String],
    },
    /// The path exists, not with this method: the `Allow` to answer.
    MethodNotAllowed(&'static str),
    /// No such path.
    NotFound,
}

/// The route's path segments: lower-case, empty segments dropped, one
/// web-service root stripped by `roots` (the policy's normaliser).
pub fn segments(path: &str, roots: &Normaliser) -> Vec<String> {
    let mut folded = String::with_capacity(path.len() + 1);
    for s in path.split('/').filter(|s| !s.is_empty()) {
        folded.push('/');
        folded.push_str(&s.to_ascii_lowercase());
    }
    roots
        .without_root(&folded)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The route for `segs` (from [`segments`]) and `method`; `forwarded_path`:
/// whether the forward-auth convention appends the original path.
pub fn find<'a>(segs: &'a [String], method: &Method, forwarded_path: bool) -> Lookup<'a> {
    // HEAD answers wherever GET does (hyper sends no body for it); the
    // check keeps the method as sent.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let mut best: Option<(&PathRoutes, usize)> = None;
    for p in PATHS.iter() {
        let Some(words) = matches(p, segs, forwarded_path) else {
            continue;
        };
        if best.is_none_or(|(_, w)| words > w) {
            best = Some((p, words));
        }
    }
    let Some((p, _)) = best else {
        return Lookup::NotFound;
    };
    let chosen = p
        .routes
        .iter()
        .map(|i| &ROUTES[*i])
        .find(|r| r.method.as_ref().is_none_or(|m| m == method));
    match (chosen, &p.allow) {
        (Some(route), _) => Lookup::Route {
            route,
            params: p
                .segments
                .iter()
                .zip(segs)
                .filter(|(s, _)| **s == Segment::Param)
                .map(|(_, v)| v.as_str())
                .collect(),
            tail: &segs[p.segments.len()..],
        },
        (None, Some(allow)) => Lookup::MethodNotAllowed(allow.as_str()),
        (None, None) => Lookup::NotFound,
    }
}

/// Whether `segs` is `p`'s path: the number of its words if so (a literal
/// segment is more specific than a parameter).
fn matches(p: &PathRoutes, segs: &[String], forwarded_path: bool) -> Option<usize> {
    let n = p.segments.len();
    let tail_allowed = match p.tail {
        Tail::None => false,
        Tail::Any => true,
        Tail::ForwardedPath => forwarded_path,
    };
    if segs.len() < n || (segs.len() > n && !tail_allowed) {
        return None;
    }
    let mut words = 0;
    for (s, v) in p.segments.iter().zip(segs) {
        match s {
            Segment::Word(w) if w == v => words += 1,
            Segment::Word(_) => return None,
            Segment::Param => {}
        }
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, method: Method) -> String {
        let roots = Normaliser::new(["/commandcenter/api", "/webconsole/api"]).unwrap();
        let segs = segments(path, &roots);
        match find(&segs, &method, false) {
            Lookup::Route {
                route,
                params,
                tail,
            } => format!("{:?} {params:?} {tail:?}", route.handler),
            Lookup::MethodNotAllowed(allow) => format!("405 {allow}"),
            Lookup::NotFound => "404".into(),
        }
    }

    #[test]
    fn routes_are_case_insensitive_and_root_agnostic() {
        let roots = Normaliser::new(["/commandcenter/api", "/webconsole/api"]).unwrap();
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
    fn words_win_over_parameters_and_405s_say_allow() {
        assert_eq!(found("/V4/AccessToken/Renew", Method::POST), "Renew [] []");
        assert_eq!(found("/V4/AccessToken/Renew", Method::PUT), "405 POST");
        assert_eq!(
            found("/V4/AccessToken/Policy", Method::HEAD),
            "TokenPolicy [] []"
        );
        assert_eq!(
            found("/V4/AccessToken/Policy", Method::DELETE),
            "405 GET, HEAD"
        );
        assert_eq!(
            found("/V4/AccessToken/7", Method::PUT),
            "EditToken [\"7\"] []"
        );
        assert_eq!(found("/V4/AccessToken/7", Method::GET), "405 PUT, DELETE");
        assert_eq!(
            found("/V4/AccessToken", Method::PATCH),
            "405 GET, HEAD, POST"
        );
        assert_eq!(found("/whoami", Method::POST), "WhoAmI [] []");
        assert_eq!(found("/V4/User/3", Method::POST), "405 DELETE");
        assert_eq!(
            found("/console/console.js", Method::POST),
            "Console [] [\"console.js\"]"
        );
        assert_eq!(found("/auth/check", Method::PATCH), "ForwardAuth [] []");
        assert_eq!(found("/auth/check/x", Method::GET), "404");
        assert_eq!(found("/health/live/x", Method::GET), "404");
        assert_eq!(found("/commandcenter/api", Method::GET), "404");
        assert_eq!(found("/V4/AccessToken/Renew/x", Method::POST), "404");
    }

    #[test]
    fn the_forwarded_path_follows_the_check_only_when_appended() {
        let roots = Normaliser::without_roots();
        let segs = segments("/auth/check/V4/Client", &roots);
        assert!(matches!(
            find(&segs, &Method::DELETE, true),
            Lookup::Route { route, tail, .. } if route.handler == Handler::ForwardAuth && tail.len() == 2
        ));
        assert!(matches!(
            find(&segs, &Method::DELETE, false),
            Lookup::NotFound
        ));
    }
}
