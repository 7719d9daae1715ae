//! A typed client for Tessera's REST API, so that a test reads as what it
//! does (`login`, `token`, `renew`, `check`…) rather than as requests.
//!
//! Each call returns the [`Answer`] (status, headers, JSON body) for the test
//! to judge; the helpers that a test only needs to succeed (`login`, `token`,
//! `person`, `tokens`) assert a 200 themselves. A request that gets no answer
//! at all panics, except through [`Client::try_send`]. [`Client::send`] stays
//! for hostile input: headers that repeat or hold any bytes, raw bodies.

use std::fmt::Display;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

/// An answer: status, headers, and the body as JSON (`Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON.
    pub json: Value,
    /// Body as text.
    pub text: String,
}

/// A token as created: its id and secrets, and the whole `tokenInfo`.
#[derive(Debug, Clone)]
pub struct Token {
    /// `tokenId`.
    pub id: u64,
    /// The access secret.
    pub access: String,
    /// The refresh secret (refreshable scopes only; an empty one is none).
    pub refresh: Option<String>,
    /// `tokenInfo` as answered.
    pub info: Value,
}

/// Standard base64, as the login body carries passwords.
pub fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Text headers as the byte pairs [`Client::send`] takes.
fn as_bytes<'a>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect()
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    /// The HTTP client (for requests no helper covers).
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin's password, if known (see [`Client::admin`]).
    pub admin_password: Option<String>,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.to_string(),
            admin_password: None,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    // ---- raw requests ---------------------------------------------------------

    /// Sends a request whose headers may repeat and hold any bytes (each
    /// pair is appended as given), with an optional raw body and its
    /// content type (`""`: none added); the error when no answer came.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_bytes(v).map_err(|e| e.to_string())?,
            );
        }
        let mut rb = self.http.request(method, self.url(path)).headers(map);
        if let Some((ct, b)) = body {
            if !ct.is_empty() {
                rb = rb.header("Content-Type", ct);
            }
            rb = rb.body(b.to_vec());
        }
        let r = rb.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Ok(Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        })
    }

    /// [`Client::try_send`]; panics when no answer came.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Option<(&str, &[u8])>,
    ) -> Answer {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {e}"))
    }

    /// Sends a request with text headers and an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let body = body.map(|b| b.to_string());
        self.send(
            method,
            path,
            &as_bytes(headers),
            body.as_deref().map(|b| ("application/json", b.as_bytes())),
        )
        .await
    }

    /// A request as `session` (the `Authtoken` header, sent even when empty).
    async fn as_session(
        &self,
        session: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.call(method, path, &[("Authtoken", session)], body)
            .await
    }

    /// A form-encoded `token=…` POST to `path`, with optional headers.
    async fn form(&self, path: &str, headers: &[(&str, &str)], token: &str) -> Answer {
        let body = format!("token={token}");
        self.send(
            "POST",
            path,
            &as_bytes(headers),
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
        .await
    }

    // ---- sessions -------------------------------------------------------------

    /// `POST /Login` with the password base64-encoded, as Commvault clients send it.
    pub async fn login_attempt(&self, user: &str, password: &str) -> Answer {
        let body = json!({"username": user, "password": base64(password)});
        self.call("POST", "/Login", &[], Some(body)).await
    }

    /// Logs in; the `Authtoken` value (`QSDK …`). Panics unless 200.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let a = self.login_attempt(user, password).await;
        assert_eq!(a.status, 200, "login {user}: {}", a.json);
        a.json["token"].as_str().expect("a session").to_string()
    }

    /// The admin's session (the password the server was started with).
    pub async fn admin(&self) -> String {
        let pw = self
            .admin_password
            .clone()
            .expect("started without a known admin password");
        self.login("admin", &pw).await
    }

    /// `GET /WhoAmI` as `session`.
    pub async fn whoami(&self, session: &str) -> Answer {
        self.as_session(session, "GET", "/WhoAmI", None).await
    }

    /// `POST /Logout` as `session`.
    pub async fn logout(&self, session: &str) -> Answer {
        self.as_session(session, "POST", "/Logout", None).await
    }

    // ---- tokens ---------------------------------------------------------------

    /// `POST /V4/AccessToken` as `session`.
    pub async fn create_token(&self, session: &str, body: Value) -> Answer {
        self.as_session(session, "POST", "/V4/AccessToken", Some(body))
            .await
    }

    /// Creates a token; panics unless 200.
    pub async fn token(&self, session: &str, body: Value) -> Token {
        let a = self.create_token(session, body).await;
        assert_eq!(a.status, 200, "create token: {}", a.json);
        Token::from_info(&a.json["tokenInfo"])
    }

    /// `POST /V4/AccessToken/Renew` with a pair.
    pub async fn renew(&self, access: &str, refresh: &str) -> Answer {
        let body = json!({"accessToken": access, "refreshToken": refresh});
        self.call("POST", "/V4/AccessToken/Renew", &[], Some(body))
            .await
    }

    /// `PUT /V4/AccessToken/{id}` as `session`.
    pub async fn edit_token(&self, session: &str, id: impl Display, body: Value) -> Answer {
        let path = format!("/V4/AccessToken/{id}");
        self.as_session(session, "PUT", &path, Some(body)).await
    }

    /// `DELETE /V4/AccessToken/{id}` as `session` (revocation).
    pub async fn delete_token(&self, session: &str, id: impl Display) -> Answer {
        let path = format!("/V4/AccessToken/{id}");
        self.as_session(session, "DELETE", &path, None).await
    }

    /// `GET /V4/AccessToken[?userId=…]` as `session`.
    pub async fn list_tokens(&self, session: &str, user: Option<u64>) -> Answer {
        let path = match user {
            Some(u) => format!("/V4/AccessToken?userId={u}"),
            None => "/V4/AccessToken".into(),
        };
        self.as_session(session, "GET", &path, None).await
    }

    /// The tokens listed; panics unless 200.
    pub async fn tokens(&self, session: &str, user: Option<u64>) -> Vec<Value> {
        let a = self.list_tokens(session, user).await;
        assert_eq!(a.status, 200, "list tokens: {}", a.json);
        a.json["tokens"].as_array().cloned().unwrap_or_default()
    }

    /// `GET /V4/AccessToken/Events?<query>` as `session` (`query` as
    /// written, e.g. `userId=3&limit=10`; `""`: none).
    pub async fn events(&self, session: &str, query: &str) -> Answer {
        let path = match query {
            "" => "/V4/AccessToken/Events".to_string(),
            q => format!("/V4/AccessToken/Events?{q}"),
        };
        self.as_session(session, "GET", &path, None).await
    }

    /// Every event `session` may read with `query`, newest first, following
    /// `nextCursor` to the end; panics unless each page is a 200.
    pub async fn all_events(&self, session: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) if query.is_empty() => format!("cursor={c}"),
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_string(),
            };
            let a = self.events(session, &q).await;
            assert_eq!(a.status, 200, "events {q}: {}", a.json);
            out.extend(a.json["events"].as_array().cloned().unwrap_or_default());
            match a.json["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    /// `GET /V4/AccessToken/Policy` as `session`.
    pub async fn token_policy(&self, session: &str) -> Answer {
        self.as_session(session, "GET", "/V4/AccessToken/Policy", None)
            .await
    }

    // ---- users ----------------------------------------------------------------

    /// `POST /V4/User` as `session`.
    pub async fn create_user(&self, session: &str, body: Value) -> Answer {
        self.as_session(session, "POST", "/V4/User", Some(body))
            .await
    }

    /// Creates a person (as `admin`) with the password `pw-<name>`; their id
    /// and session. Panics unless both succeed.
    pub async fn person(&self, admin: &str, name: &str, role: &str) -> (u64, String) {
        let password = format!("pw-{name}");
        let body = json!({"userName": name, "password": base64(&password), "role": role, "kind": "person"});
        let a = self.create_user(admin, body).await;
        assert_eq!(a.status, 200, "create user {name}: {}", a.json);
        let id = a.json["userId"].as_u64().expect("a user id");
        (id, self.login(name, &password).await)
    }

    /// Creates a service account (as `session`); its id. Panics unless 200.
    pub async fn service_account(&self, session: &str, name: &str) -> u64 {
        let a = self
            .create_user(session, json!({"userName": name, "kind": "service"}))
            .await;
        assert_eq!(a.status, 200, "create service account {name}: {}", a.json);
        a.json["userId"].as_u64().expect("a user id")
    }

    /// `GET /V4/User` as `session`.
    pub async fn list_users(&self, session: &str) -> Answer {
        self.as_session(session, "GET", "/V4/User", None).await
    }

    /// The user names listed; panics unless 200.
    pub async fn user_names(&self, session: &str) -> Vec<String> {
        let a = self.list_users(session).await;
        assert_eq!(a.status, 200, "list users: {}", a.json);
        a.json["users"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u["userName"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `DELETE /V4/User/{id}` as `session`.
    pub async fn delete_user(&self, session: &str, id: impl Display) -> Answer {
        let path = format!("/V4/User/{id}");
        self.as_session(session, "DELETE", &path, None).await
    }

    // ---- the check, OAuth -----------------------------------------------------

    /// Forward auth, as nginx asks it: may `token` call `method uri`? The
    /// status; the error when no answer came.
    pub async fn try_check(&self, token: &str, method: &str, uri: &str) -> Result<u16, String> {
        self.try_check_answer(token, method, uri)
            .await
            .map(|a| a.status)
    }

    /// [`Client::try_check`], the whole answer (its headers: who was
    /// allowed, or which node answered behind a balancer).
    pub async fn try_check_answer(
        &self,
        token: &str,
        method: &str,
        uri: &str,
    ) -> Result<Answer, String> {
        let bearer = format!("Bearer {token}");
        let headers: [(&str, &[u8]); 3] = [
            ("Authorization", bearer.as_bytes()),
            ("X-Original-Method", method.as_bytes()),
            ("X-Original-URI", uri.as_bytes()),
        ];
        self.try_send("GET", "/auth/check", &headers, None).await
    }

    /// [`Client::try_check`]; panics when no answer came.
    pub async fn check(&self, token: &str, method: &str, uri: &str) -> u16 {
        self.try_check(token, method, uri)
            .await
            .unwrap_or_else(|e| panic!("check: {e}"))
    }

    /// RFC 7662 introspection of `token` (a form), as `session`.
    pub async fn introspect(&self, session: &str, token: &str) -> Answer {
        self.form("/oauth/introspect", &[("Authtoken", session)], token)
            .await
    }

    /// RFC 7009 revocation of `token` (a form; the token is its own credential).
    pub async fn oauth_revoke(&self, token: &str) -> Answer {
        self.form("/oauth/revoke", &[], token).await
    }

    // ---- operations -----------------------------------------------------------

    /// `/health/live`'s status.
    pub async fn live(&self) -> u16 {
        self.call("GET", "/health/live", &[], None).await.status
    }

    /// `/health/ready`'s status.
    pub async fn ready(&self) -> u16 {
        self.call("GET", "/health/ready", &[], None).await.status
    }

    /// `/metrics`, as text; the error when no answer came.
    pub async fn try_metrics_text(&self) -> Result<String, String> {
        self.try_send("GET", "/metrics", &[], None)
            .await
            .map(|a| a.text)
    }

    /// `/metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        self.try_metrics_text()
            .await
            .unwrap_or_else(|e| panic!("GET {e}"))
    }
}

impl Token {
    /// The token in a `tokenInfo` object; panics without an id or access secret.
    pub fn from_info(info: &Value) -> Token {
        Token {
            id: info["tokenId"].as_u64().expect("a tokenId"),
            access: info["accessToken"]
                .as_str()
                .expect("an accessToken")
                .to_string(),
            refresh: info["refreshToken"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            info: info.clone(),
        }
    }
}
