//! User administration (admins only, as the core decides).

use tessera_core::model::{Role, UserId, UserKind};
use warp::http::StatusCode;
use warp::reply::Response;

use super::ok_envelope;
use crate::api::App;
use crate::auth::{presented, Presented};
use crate::error::{json, ApiError};
use crate::extract::{caller, decode_password, json_body, path_id, Body, Request};
use crate::wire::{PasswordBody, UserBody, UserCreated, UserInfo, UserList};
use tessera_core::service::PasswordError;

/// `GET /V4/User`: every user.
pub async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let users = app.svc.list_users(&c).await?;
    Ok(json(
        StatusCode::OK,
        &UserList {
            users: users.iter().map(UserInfo::of).collect(),
        },
    ))
}

/// `POST /V4/User`: a person (with a password) or a service account.
pub async fn create(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
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

/// A base64 password field of a [`PasswordBody`], required.
fn password_field(value: Option<&str>, field: &str) -> Result<String, ApiError> {
    let b64 = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad(Some(field), format!("{field}: required")))?;
    decode_password(b64).ok_or_else(|| {
        ApiError::bad(
            Some(field),
            format!("{field}: base64 of the UTF-8 password"),
        )
    })
}

/// `POST /V4/User/Password`: the caller's own password, given the old one.
/// A wrong old password counts against the login limits as a failed login
/// does (per user and per address), so a stolen session cannot guess it.
pub async fn change_password(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let body: PasswordBody = json_body(app, req, body).await?;
    let old = password_field(body.old_password.as_deref(), "oldPassword")?;
    let new = password_field(body.new_password.as_deref(), "newPassword")?;
    // The address the caller was resolved from (the same one the trail records).
    let ip = c
        .address
        .ok_or_else(|| ApiError::bad(None, "no client address"))?;
    let now = app.svc.now();
    let attempt = app.throttle.begin(&c.user.name, ip, now)?;
    let session = match presented(&req.headers) {
        Presented::Session(s) => Some(s),
        _ => None,
    };
    match app
        .svc
        .change_password(&c, session.as_deref(), &old, &new)
        .await
    {
        Ok(()) => {
            attempt.succeeded();
            Ok(ok_envelope())
        }
        Err(PasswordError::WrongPassword) => match attempt.failed(app.svc.now()) {
            Some(lock) => {
                app.svc.login_locked(&c.user.name, Some(ip)).await;
                Err(ApiError::Locked(lock))
            }
            None => Err(tessera_core::Error::from(PasswordError::WrongPassword).into()),
        },
        // Refused for another reason, or not decided: not a failure of the
        // password (the attempt, dropped undecided, no longer counts).
        Err(e) => Err(tessera_core::Error::from(e).into()),
    }
}

/// `POST /V4/User/{userId}/Password`: an admin sets another person's password.
pub async fn reset_password(
    app: &App,
    req: &Request,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let id = UserId(path_id(id, "userId")?);
    let c = caller(app, req).await?;
    let body: PasswordBody = json_body(app, req, body).await?;
    let new = password_field(body.new_password.as_deref(), "newPassword")?;
    app.svc.reset_password(&c, id, &new).await?;
    Ok(ok_envelope())
}

/// `DELETE /V4/User/{userId}`: a user with their tokens and sessions.
pub async fn delete(app: &App, req: &Request, id: &str) -> Result<Response, ApiError> {
    let id = UserId(path_id(id, "userId")?);
    let c = caller(app, req).await?;
    app.svc.delete_user(&c, id).await?;
    Ok(ok_envelope())
}
