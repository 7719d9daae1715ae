//! A warp filter that another Rust service mounts to protect its own routes
//! with Tessera's check, in process, against the same store:
//!
//! ```text
//! let protected = warp::path("orders")
//!     .and(tessera_server::filter::authorized(svc.clone(), Addressing::default()))
//!     .map(|who: Allowed| format!("hello {}", who.user_name()))
//!     .recover(tessera_server::filter::recover);
//! ```
//!
//! The request's own method, path and peer address are checked (the
//! address from a forwarded header only when the peer is one of the
//! [`Addressing`]'s trusted proxies; an unreadable one refuses with 400).
//! A refusal rejects with [`Refused`]; [`recover`] answers it 400, 401, 403 or
//! 503 (with the `WWW-Authenticate` challenge for 401 and 403), never 200. See
//! `examples/protected.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_core::check::{Allowed, CheckError};
use tessera_core::service::Tessera;
use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

pub use crate::auth::Addressing;
use crate::auth::{presented, Presented};
use crate::error::{check_reply, ApiError};

/// The check refused (or could not be made); carried in a rejection.
#[derive(Debug)]
pub enum Refused {
    /// The check's answer.
    Check(CheckError),
    /// The client's address could not be read (400).
    Address(ApiError),
}

impl warp::reject::Reject for Refused {}

/// Extracts the [`Allowed`] caller, or rejects with [`Refused`].
pub fn authorized(
    svc: Arc<Tessera>,
    addressing: Addressing,
) -> impl Filter<Extract = (Allowed,), Error = Rejection> + Clone {
    let addressing = Arc::new(addressing);
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(crate::api::peer())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  peer: Option<SocketAddr>| {
                let svc = svc.clone();
                let addressing = addressing.clone();
                async move {
                    let token = match presented(&headers) {
                        Presented::Access(t) => t,
                        _ => String::new(),
                    };
                    let uri = if query.is_empty() {
                        path.as_str().to_string()
                    } else {
                        format!("{}?{query}", path.as_str())
                    };
                    let ip = addressing
                        .client(peer, &headers)
                        .map_err(|e| warp::reject::custom(Refused::Address(e)))?;
                    svc.checker()
                        .check(&token, method.as_str(), &uri, ip)
                        .await
                        .map_err(|e| warp::reject::custom(Refused::Check(e)))
                }
            },
        )
}

/// Answers a [`Refused`] rejection (pass other rejections on).
pub async fn recover(r: Rejection) -> Result<Response, Rejection> {
    match r.find::<Refused>() {
        Some(Refused::Check(e)) => Ok(check_reply(e)),
        Some(Refused::Address(e)) => Ok(ApiError::bad(None, e.to_string()).into_response()),
        None => Err(r),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_core::clock::SystemClock;
    use tessera_core::memory::MemoryStore;
    use tessera_core::model::Role;
    use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
    use tessera_core::service::{Caller, Tessera};
    use tessera_core::testkit::DownStore;

    use super::*;

    /// Serves `authorized(svc)` on a random port; returns its base URL.
    async fn serve(svc: Arc<Tessera>) -> String {
        let routes = authorized(svc, Addressing::default())
            .map(|who: Allowed| who.user_name().to_string())
            .recover(recover);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn the_filter_allows_in_scope_and_refuses_the_rest() {
        let policy = Policy::new(PolicyConfig::default()).unwrap();
        let svc = Arc::new(Tessera::new(
            Arc::new(MemoryStore::new()),
            policy,
            Arc::new(SystemClock),
        ));
        let admin = svc.add_user("admin", "pw", Role::Admin).await.unwrap();
        let caller = Caller {
            user: admin,
            credential: Credential::Session,
            address: None,
        };
        let req = TokenRequest {
            token_type: Some(4),
            ..TokenRequest::named("1-touch")
        };
        let token = svc.create_token(&caller, None, &req).await.unwrap();
        let base = serve(svc).await;
        let http = reqwest::Client::new();
        let get = |path: &str, token: Option<&str>| {
            let mut r = http.get(format!("{base}{path}"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let ok = get("/Client/5", Some(token.access.expose())).await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), "admin");
        let scope = get("/Job/1", Some(token.access.expose())).await.unwrap();
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.headers()["www-authenticate"],
            "Bearer error=\"insufficient_scope\""
        );
        let none = get("/Client/5", None).await.unwrap();
        assert_eq!(none.status(), 401);
        assert_eq!(
            none.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }

    #[tokio::test]
    async fn the_filter_answers_503_when_the_store_is_down() {
        let policy = Policy::new(PolicyConfig::default()).unwrap();
        let svc = Arc::new(Tessera::new(
            Arc::new(DownStore),
            policy,
            Arc::new(SystemClock),
        ));
        let base = serve(svc).await;
        let token = tessera_core::secret::generate(
            tessera_core::secret::SecretKind::Access,
            Some(tessera_core::model::TokenId(1)),
        )
        .unwrap();
        let r = reqwest::Client::new()
            .get(format!("{base}/Client/5"))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
}
