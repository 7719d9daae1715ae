//! Access tokens: list, create, edit, revoke, renew, and the validity
//! policy the forms fill in defaults from.

use std::sync::atomic::Ordering;

use tessera_core::model::{TokenId, UserId};
use tessera_core::service::RenewError;
use tessera_core::Error as CoreError;
use warp::http::StatusCode;
use warp::reply::Response;

use super::ok_envelope;
use crate::api::App;
use crate::error::{json, ApiError};
use crate::extract::{caller, client, json_body, path_id, query_params, Body, Request};
use crate::wire::{
    ErrorInfo, RenewBody, RenewReply, TokenBody, TokenInfo, TokenList, TokenPolicy, TokenReply,
};

/// `GET /V4/AccessToken?userId=N`: the tokens of a user (default: the caller).
pub async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
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

/// `GET /V4/AccessToken/Policy`: the validity figures in force and the
/// scopes a token may have, for clients that fill in defaults and show
/// limits (the console). Reported from the core's configuration as is.
pub async fn policy(app: &App, req: &Request) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    let policy = app.svc.policy();
    policy.may_read_policy(c.credential)?;
    Ok(json(StatusCode::OK, &TokenPolicy::of(policy.config())))
}

/// `POST /V4/AccessToken`: a new token; the answer holds its secrets, once.
pub async fn create(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
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

/// `PUT /V4/AccessToken/{tokenId}`.
pub async fn edit(app: &App, req: &Request, id: &str, body: Body) -> Result<Response, ApiError> {
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

/// `DELETE /V4/AccessToken/{tokenId}`.
pub async fn revoke(app: &App, req: &Request, id: &str) -> Result<Response, ApiError> {
    let id = TokenId(path_id(id, "tokenId")?);
    let c = caller(app, req).await?;
    app.svc.revoke_token(&c, id).await?;
    Ok(ok_envelope())
}

/// `POST /V4/AccessToken/Renew`: rotates both secrets; counts renewals and
/// reuse detections (a replay revokes the token).
pub async fn renew(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
    let body: RenewBody = json_body(app, req, body).await?;
    let access = body
        .access_token
        .ok_or_else(|| ApiError::bad(Some("accessToken"), "accessToken: required"))?;
    let refresh = body
        .refresh_token
        .ok_or_else(|| ApiError::bad(Some("refreshToken"), "refreshToken: required"))?;
    let ip = client(app, req)?;
    match app.svc.try_renew(&access, &refresh, Some(ip)).await {
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

#[cfg(test)]
mod tests {
    use tessera_core::model::Role;
    use tessera_core::policy::{Credential, TokenRequest};
    use tessera_core::service::Caller;
    use warp::http::Method;

    use super::*;
    use crate::handlers::testing::{app, call, session};

    /// The exact entries are asserted end to end (`tests/api.rs`); here,
    /// that each says what creating a token of that type does.
    #[tokio::test]
    async fn the_policy_lists_every_scope_a_token_may_have() {
        let app = app();
        let auth = session(&app, "alice", Role::User).await;
        let (status, answer) = call(&app, Method::GET, "/V4/AccessToken/Policy", Some(&auth)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let scopes = answer["scopes"].as_array().unwrap();
        let numbers: Vec<i64> = scopes
            .iter()
            .map(|s| s["tokenType"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5], "every type create accepts");
        let user = app
            .svc
            .store()
            .user_by_name("alice")
            .await
            .unwrap()
            .unwrap();
        let caller = Caller {
            user,
            credential: Credential::Session,
            address: None,
        };
        for scope in scopes {
            let n = scope["tokenType"].as_i64().unwrap();
            let endpoints = scope["takesEndpoints"].as_bool().unwrap();
            let req = TokenRequest {
                token_type: Some(n),
                api_endpoints: endpoints.then(|| vec!["GET /Client".to_string()]),
                ..TokenRequest::named(&format!("type {n}"))
            };
            let issued = app.svc.create_token(&caller, None, &req).await.unwrap();
            let refreshable = scope["refreshable"].as_bool().unwrap();
            assert_eq!(issued.refresh.is_some(), refreshable, "{scope}");
            assert_eq!(
                issued.token.renewable_until.is_some(),
                refreshable,
                "{scope}"
            );
            assert_eq!(
                !issued.token.scope.endpoints().is_empty(),
                endpoints,
                "{scope}"
            );
            assert!(
                scope["name"].as_str().is_some_and(|s| !s.is_empty()),
                "{scope}"
            );
            if let Some(same) = scope["sameAs"].as_i64() {
                let other = &scopes[usize::try_from(same).unwrap()];
                assert_eq!(other["name"], scope["name"]);
                assert!(other.get("sameAs").is_none(), "{other}");
            }
        }
        assert_eq!(
            scopes.iter().filter(|s| s.get("sameAs").is_some()).count(),
            1
        );
    }
}
