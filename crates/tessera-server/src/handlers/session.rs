//! Sessions: `POST /Login` (rate-limited, CONTRACT §6), `POST /Logout`, and
//! `/WhoAmI`.

use std::sync::atomic::Ordering;

use tessera_core::Error as CoreError;
use warp::http::StatusCode;
use warp::reply::Response;

use super::ok_envelope;
use crate::api::App;
use crate::auth::{presented, Presented};
use crate::error::{json, ApiError};
use crate::extract::{caller, client, decode_password, json_body, Body, Request};
use crate::wire::{LoginReply, LoginRequest, UserRef, WhoAmIReply};

/// `POST /Login`: a session for a person whose password matches.
pub async fn login(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
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
    match app.svc.login_from(&name, &password, Some(ip)).await {
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
                Some(lock) => {
                    app.svc.login_locked(&name, Some(ip)).await;
                    Err(ApiError::Locked(lock))
                }
                None => Err(ApiError::LoginFailed),
            }
        }
        // Busy or unavailable: not a failure of the password (the attempt,
        // dropped undecided, no longer counts).
        Err(e) => Err(e.into()),
    }
}

/// `POST /Logout`: ends the session sent.
pub async fn logout(app: &App, req: &Request) -> Result<Response, ApiError> {
    match presented(&req.headers) {
        Presented::Session(s) => {
            app.svc.logout(&s, Some(client(app, req)?)).await?;
            Ok(ok_envelope())
        }
        _ => Err(CoreError::Unauthorized("no session to end".into()).into()),
    }
}

/// `GET`/`POST /WhoAmI`: the caller, and whether they are an admin (for a
/// client that shows admin views).
pub async fn whoami(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    Ok(json(
        StatusCode::OK,
        &WhoAmIReply {
            error_code: 0,
            is_admin: app.svc.policy().is_admin(&c.user),
            user: UserRef {
                user_name: c.user.name,
                user_id: c.user.id.0,
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use tessera_core::model::Role;
    use warp::http::Method;

    use super::*;
    use crate::handlers::testing::{app, call, session};

    #[tokio::test]
    async fn whoami_says_whether_the_caller_is_an_admin() {
        let app = app();
        for (name, role, admin) in [("root", Role::Admin, true), ("alice", Role::User, false)] {
            let auth = session(&app, name, role).await;
            for method in [Method::GET, Method::POST, Method::HEAD] {
                let (status, answer) = call(&app, method.clone(), "/WhoAmI", Some(&auth)).await;
                assert_eq!(status, StatusCode::OK, "{method} {answer}");
                assert_eq!(answer["isAdmin"], admin, "{name}: {answer}");
                assert_eq!(answer["user"]["userName"], name);
                assert_eq!(answer["errorCode"], 0);
            }
        }
    }
}
