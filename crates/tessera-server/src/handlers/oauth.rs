//! RFC 7662 introspection and RFC 7009 revocation, for resource servers.

use warp::http::StatusCode;
use warp::reply::Response;

use crate::api::App;
use crate::error::{json, ApiError};
use crate::extract::{caller, check_error, media_type, parse_json, read_body, Body, Request};
use crate::wire::{Introspection, TokenParam};

/// The `token` of an RFC 7662/7009 body: a form (`token=…`) or JSON.
async fn token_param(app: &App, req: &Request, body: Body) -> Result<String, ApiError> {
    let bytes = read_body(body, app.body_timeout).await?;
    let ct = media_type(req)?.unwrap_or_else(|| "application/x-www-form-urlencoded".into());
    let param: TokenParam = match ct.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::bad(Some("token"), format!("malformed form: {e}")))?,
        "application/json" => parse_json(&bytes)?,
        other => return Err(ApiError::UnsupportedMediaType(other.to_string())),
    };
    param
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad(Some("token"), "token: required"))
}

/// `POST /oauth/introspect` (RFC 7662): the token's state, for callers the
/// core lets introspect (an admin's session).
pub async fn introspect(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
    let c = caller(app, req).await?;
    app.svc.policy().may_introspect(c.credential, &c.user)?;
    let token = token_param(app, req, body).await?;
    let found = app
        .svc
        .checker()
        .introspect(&token)
        .await
        .map_err(check_error)?;
    let reply = match found {
        None => Introspection::default(),
        Some(t) => Introspection {
            active: true,
            scope: Some(t.scope.kind().label().to_string()),
            token_type: Some("access_token".into()),
            username: Some(t.user_name.clone()),
            sub: Some(t.user_id.0.to_string()),
            exp: Some(t.access_expires_at),
            iat: Some(t.created_at),
            token_id: Some(t.id.0),
            tessera_token_type: Some(t.scope.token_type().number()),
        },
    };
    Ok(json(StatusCode::OK, &reply))
}

/// `POST /oauth/revoke` (RFC 7009): the token itself is the credential;
/// unknown tokens are not an error.
pub async fn revoke(app: &App, req: &Request, body: Body) -> Result<Response, ApiError> {
    let token = token_param(app, req, body).await?;
    let ip = crate::extract::client(app, req)?;
    app.svc.revoke_by_secret(&token, Some(ip)).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}
