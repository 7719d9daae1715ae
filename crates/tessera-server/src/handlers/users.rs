//! User administration (admins only, as the core decides).

use tessera_core::model::{Role, UserId, UserKind};
use warp::http::StatusCode;
use warp::reply::Response;

use super::ok_envelope;
use crate::api::App;
use crate::error::{json, ApiError};
use crate::extract::{caller, decode_password, json_body, path_id, Body, Request};
use crate::wire::{UserBody, UserCreated, UserInfo, UserList};

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

/// `DELETE /V4/User/{userId}`: a user with their tokens and sessions.
pub async fn delete(app: &App, req: &Request, id: &str) -> Result<Response, ApiError> {
    let id = UserId(path_id(id, "userId")?);
    let c = caller(app, req).await?;
    app.svc.delete_user(&c, id).await?;
    Ok(ok_envelope())
}
