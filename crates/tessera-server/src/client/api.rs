//! The REST calls the client makes, and the one place an answer's status
//! becomes a [`ClientError`] ([`refusal`]).

use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use tessera_core::secret::Secret;

use super::ClientError;

/// How long to wait for a connection, and for a whole answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a call presents, which decides what a 401 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// The kept session: a 401 means it is no longer valid (log in again).
    Session,
    /// The call is itself the credential (a login, a renewal): a 401 is a
    /// refusal of what was sent.
    Own,
}

/// A client of one server.
#[derive(Debug)]
pub(super) struct Api {
    http: reqwest::Client,
    base: String,
}

/// A successful login.
#[derive(Debug)]
pub(super) struct LoggedIn {
    /// The `Authtoken` value.
    pub token: Secret,
    /// The name the server knows the user by.
    pub username: String,
}

impl Api {
    /// A client of `base` (`https://host[:port][/root]`, no trailing slash).
    pub fn new(base: &str) -> Result<Api, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirect is answered, never followed: reqwest would carry the
            // `Authtoken` header, and a 307's body (a password, a refresh
            // token), to wherever the Location points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_string(),
                reason: format!("cannot set up the HTTP client: {}", innermost(&e)),
            })?;
        Ok(Api {
            http,
            base: base.to_string(),
        })
    }

    /// `POST /Login` with the password base64-encoded.
    pub async fn login(&self, username: &str, password: &Secret) -> Result<LoggedIn, ClientError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(password.expose());
        let body = json!({"username": username, "password": encoded});
        let answer = self
            .send(
                self.request(Method::POST, "/Login").json(&body),
                Credential::Own,
                None,
            )
            .await?;
        let token = answer["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.bad_answer("the login answer holds no token"))?;
        Ok(LoggedIn {
            token: Secret::from_presented(token.to_string()),
            // Shown on the terminal and kept: escaped as any server text.
            username: match answer["userName"].as_str() {
                Some(name) => super::output::printable(name),
                None => username.to_string(),
            },
        })
    }

    /// `POST /Logout` as `session`.
    pub async fn logout(&self, session: &Secret) -> Result<(), ClientError> {
        self.send(
            self.request(Method::POST, "/Logout"),
            Credential::Session,
            Some(session),
        )
        .await
        .map(drop)
    }

    /// `POST /V4/AccessToken`: the `tokenInfo` of the new token (with its secrets).
    pub async fn create_token(&self, session: &Secret, body: &Value) -> Result<Value, ClientError> {
        let mut answer = self
            .send(
                self.request(Method::POST, "/V4/AccessToken").json(body),
                Credential::Session,
                Some(session),
            )
            .await?;
        match answer.get_mut("tokenInfo").map(Value::take) {
            Some(info @ Value::Object(_)) => Ok(info),
            _ => Err(self.bad_answer("the create answer holds no tokenInfo")),
        }
    }

    /// `GET /V4/AccessToken[?userId=N]`: the answer as sent (`{"tokens": […]}`).
    pub async fn list_tokens(
        &self,
        session: &Secret,
        user: Option<u64>,
    ) -> Result<Value, ClientError> {
        let mut rb = self.request(Method::GET, "/V4/AccessToken");
        if let Some(id) = user {
            rb = rb.query(&[("userId", id)]);
        }
        let answer = self.send(rb, Credential::Session, Some(session)).await?;
        if !answer["tokens"].is_array() {
            return Err(self.bad_answer("the token list holds no tokens"));
        }
        Ok(answer)
    }

    /// `DELETE /V4/AccessToken/{id}`.
    pub async fn revoke(&self, session: &Secret, id: u64) -> Result<(), ClientError> {
        let path = format!("/V4/AccessToken/{id}");
        self.send(
            self.request(Method::DELETE, &path),
            Credential::Session,
            Some(session),
        )
        .await
        .map(drop)
    }

    /// `POST /V4/AccessToken/Renew` with a pair (no session): the answer.
    pub async fn renew(&self, access: &Secret, refresh: &Secret) -> Result<Value, ClientError> {
        let body = json!({"accessToken": access.expose(), "refreshToken": refresh.expose()});
        let answer = self
            .send(
                self.request(Method::POST, "/V4/AccessToken/Renew")
                    .json(&body),
                Credential::Own,
                None,
            )
            .await?;
        let has = |k: &str| answer[k].as_str().is_some_and(|s| !s.is_empty());
        if !has("accessToken") || !has("refreshToken") {
            return Err(self.bad_answer("the renewal answer holds no new pair"));
        }
        Ok(answer)
    }

    /// The id of the user named `name` (`GET /V4/User`, admins only).
    pub async fn user_id(&self, session: &Secret, name: &str) -> Result<u64, ClientError> {
        let answer = self
            .send(
                self.request(Method::GET, "/V4/User"),
                Credential::Session,
                Some(session),
            )
            .await?;
        let users = answer["users"]
            .as_array()
            .ok_or_else(|| self.bad_answer("the user list holds no users"))?;
        users
            .iter()
            .find(|u| u["userName"].as_str() == Some(name))
            .and_then(|u| u["userId"].as_u64())
            .ok_or_else(|| ClientError::NotFound(format!("no user named {name:?}")))
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends, with the session if given; a 2xx answer's JSON body (`Null`
    /// when empty), or the error its status means.
    async fn send(
        &self,
        mut rb: RequestBuilder,
        credential: Credential,
        session: Option<&Secret>,
    ) -> Result<Value, ClientError> {
        if let Some(s) = session {
            rb = rb.header("Authtoken", s.expose());
        }
        let answer = rb.send().await.map_err(|e| self.transport(&e))?;
        let status = answer.status();
        if status.is_redirection() {
            let to = answer
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("?");
            return Err(ClientError::Refused(format!(
                "{} answered {} with a redirect to {}: nothing is sent there; \
                 if that is the server, log in to its URL",
                self.base,
                status.as_u16(),
                super::output::printable(to)
            )));
        }
        let body = answer.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(refusal(&self.base, status, &body, credential));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body)
            .map_err(|_| self.bad_answer(&format!("a {status} answer that is not JSON")))
    }

    /// A request that got no answer: the server cannot be reached.
    fn transport(&self, e: &reqwest::Error) -> ClientError {
        let reason = if e.is_timeout() {
            format!(
                "no answer within {} s",
                if e.is_connect() {
                    CONNECT_TIMEOUT.as_secs()
                } else {
                    REQUEST_TIMEOUT.as_secs()
                }
            )
        } else {
            innermost(e)
        };
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    fn bad_answer(&self, reason: &str) -> ClientError {
        ClientError::BadAnswer {
            url: self.base.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The error a non-2xx answer means: its status decides the kind, the
/// server's own message (from whichever error shape it sent) the text.
fn refusal(base: &str, status: StatusCode, body: &[u8], credential: Credential) -> ClientError {
    let message = server_message(body).unwrap_or_else(|| {
        format!(
            "the server answered {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string()
    });
    match status {
        StatusCode::UNAUTHORIZED if credential == Credential::Session => {
            ClientError::SessionRejected {
                server: base.to_string(),
                message,
            }
        }
        StatusCode::NOT_FOUND => ClientError::NotFound(message),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            ClientError::Unavailable {
                url: base.to_string(),
                message,
            }
        }
        _ => ClientError::Refused(message),
    }
}

/// The message of an error body: `errorMessage` (the flat envelope),
/// `error.errorMessage` (the nested one), or the first `errList` entry (a
/// refused login).
fn server_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    for m in [
        &v["errorMessage"],
        &v["error"]["errorMessage"],
        &v["errList"][0]["errLogMessage"],
    ] {
        match m.as_str().map(str::trim) {
            Some(m) if !m.is_empty() => return Some(super::output::printable(m)),
            _ => {}
        }
    }
    None
}

/// The deepest cause of an error, as a person reads it: `connection refused`
/// rather than reqwest's `error sending request for url (…)`.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::ConnectionRefused {
            return "connection refused".into();
        }
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_the_kind_and_the_body_the_message() {
        let base = "http://h";
        let flat = br#"{"errorCode":404,"errorMessage":"token 9 does not exist","error":{"errorCode":404,"errorMessage":"token 9 does not exist"}}"#;
        assert!(matches!(
            refusal(base, StatusCode::NOT_FOUND, flat, Credential::Session),
            ClientError::NotFound(m) if m == "token 9 does not exist"
        ));
        let login = br#"{"errList":[{"errLogMessage":"Invalid user name or password.","errorCode":401}],"isAccountLocked":false,"remainingLockTime":0}"#;
        assert!(matches!(
            refusal(base, StatusCode::UNAUTHORIZED, login, Credential::Own),
            ClientError::Refused(m) if m == "Invalid user name or password."
        ));
        assert!(matches!(
            refusal(base, StatusCode::UNAUTHORIZED, b"", Credential::Session),
            ClientError::SessionRejected { .. }
        ));
        assert!(matches!(
            refusal(base, StatusCode::SERVICE_UNAVAILABLE, b"<html>", Credential::Own),
            ClientError::Unavailable { message, .. } if message == "the server answered 503 Service Unavailable"
        ));
        assert!(matches!(
            refusal(base, StatusCode::FORBIDDEN, b"{}", Credential::Session),
            ClientError::Refused(_)
        ));
    }
}
