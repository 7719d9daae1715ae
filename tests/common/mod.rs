//! The end-to-end harness: a real `tessera` process on a random port per
//! test, on a fresh store (a temporary SQLite file; a PostgreSQL schema or a
//! Redis key prefix when those backends are compiled in and reachable),
//! removed afterwards. Readiness is the line the server prints when it
//! listens, never a fixed sleep.

#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-pw-for-tests";

/// A fresh store for one server.
pub struct StoreFixture {
    /// The store URL.
    pub url: String,
    /// Extra `serve` arguments (the Redis prefix).
    pub args: Vec<String>,
    /// Which backend, for messages.
    pub name: &'static str,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for StoreFixture {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            c();
        }
    }
}

impl StoreFixture {
    /// A store the test manages itself (nothing to clean up here).
    pub fn external(url: String, args: Vec<String>) -> Self {
        StoreFixture {
            url,
            args,
            name: "external",
            cleanup: None,
        }
    }
}

/// A temporary SQLite file.
pub fn sqlite() -> StoreFixture {
    let dir = std::env::temp_dir().join(format!(
        "tessera-e2e-{}",
        tessera_core::testkit::unique_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    StoreFixture {
        url,
        args: vec![],
        name: "sqlite",
        cleanup: Some(Box::new(move || {
            let _ = std::fs::remove_dir_all(&dir);
        })),
    }
}

/// A fresh PostgreSQL schema, or `None` (SKIPPED; a failure under CI).
#[cfg(feature = "postgres")]
pub async fn postgres() -> Option<StoreFixture> {
    use sqlx::Connection;
    let base = std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("tessera_e2e_{}", tessera_core::testkit::unique_suffix());
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => {
            tessera_core::testkit::skip(&format!("PostgreSQL at {base} unreachable: {e}"));
            return None;
        }
    };
    let sql = sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""));
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    Some(StoreFixture {
        url,
        args: vec![],
        name: "postgres",
        cleanup: Some(Box::new(move || {
            // Drop may run inside the test's runtime: clean up on a thread
            // with a small runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                        ));
                        let _ = sqlx::query(sql).execute(&mut c).await;
                    }
                });
            })
            .join();
        })),
    })
}

/// A fresh Redis key prefix, or `None` (SKIPPED; a failure under CI).
#[cfg(feature = "redis")]
pub async fn redis() -> Option<StoreFixture> {
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tess-e2e-{}:", tessera_core::testkit::unique_suffix());
    let reachable = match redis::Client::open(url.as_str()) {
        Ok(c) => c
            .get_multiplexed_async_connection()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = reachable {
        tessera_core::testkit::skip(&format!("Redis at {url} unreachable: {e}"));
        return None;
    }
    let cleanup_url = url.clone();
    let cleanup_prefix = prefix.clone();
    Some(StoreFixture {
        url,
        args: vec!["--redis-prefix".into(), prefix],
        name: "redis",
        cleanup: Some(Box::new(move || {
            if let Ok(client) = redis::Client::open(cleanup_url.as_str()) {
                if let Ok(mut c) = client.get_connection() {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{cleanup_prefix}*"))
                        .query(&mut c)
                        .unwrap_or_default();
                    for chunk in keys.chunks(500) {
                        let _: Result<i64, _> = redis::cmd("DEL").arg(chunk).query(&mut c);
                    }
                }
            }
        })),
    })
}

/// Every backend compiled in and reachable, each fresh.
pub async fn all_stores() -> Vec<StoreFixture> {
    #[allow(unused_mut)]
    let mut v = vec![sqlite()];
    #[cfg(feature = "postgres")]
    v.extend(postgres().await);
    #[cfg(feature = "redis")]
    v.extend(redis().await);
    v
}

/// A running `tessera serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything the server wrote to standard error so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` (`-TERM`, `-STOP`, …) to process `pid`; panics if `kill` fails.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// The `tessera` binary built with this test, or the one `TESSERA_TEST_BINARY`
/// names (to run the suites against another build, e.g. to see a new test
/// fail on the code before a fix).
pub fn binary() -> String {
    std::env::var("TESSERA_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tessera").to_string())
}

/// Starts `tessera serve` on a random port over `store`, with `extra` arguments.
pub fn spawn(store: &StoreFixture, extra: &[&str]) -> Server {
    let mut cmd = Command::new(binary());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", &store.url])
        .args(&store.args)
        .args(extra)
        .env("TESSERA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TESSERA_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start tessera");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("tessera listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let base = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(base) => base,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "tessera did not start on {}: {:?}",
                store.name,
                log.lock().unwrap()
            );
        }
    };
    Server {
        child,
        base,
        log,
        http: reqwest::Client::new(),
    }
}

/// An answer: status, headers, and the body as JSON (Null when not JSON).
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub json: Value,
}

impl Server {
    /// The server's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for the process to exit; its status, if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with optional headers and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let body = body.map(|b| b.to_string());
        self.send(
            method,
            path,
            &headers,
            body.as_deref().map(|b| ("application/json", b.as_bytes())),
        )
        .await
    }

    /// Sends a request whose headers may repeat and hold any bytes (each
    /// pair is appended as given), with an optional raw body and its
    /// content type (`""`: none added).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Option<(&str, &[u8])>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        let mut rb = self.http.request(method, self.url(path)).headers(map);
        if let Some((ct, b)) = body {
            if !ct.is_empty() {
                rb = rb.header("Content-Type", ct);
            }
            rb = rb.body(b.to_vec());
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// Creates a token as `session`; panics unless 200. Returns (id, access token).
    pub async fn token(&self, session: &str, body: Value) -> (u64, String) {
        let a = self
            .call(
                "POST",
                "/V4/AccessToken",
                &[("Authtoken", session)],
                Some(body),
            )
            .await;
        assert_eq!(a.status, 200, "create token: {}", a.json);
        let info = &a.json["tokenInfo"];
        (
            info["tokenId"].as_u64().unwrap(),
            info["accessToken"].as_str().unwrap().to_string(),
        )
    }

    /// Logs in; returns the `Authtoken` header value (`QSDK …`).
    pub async fn login(&self, user: &str, password: &str) -> String {
        let pw = base64::engine::general_purpose::STANDARD.encode(password);
        let a = self
            .call(
                "POST",
                "/Login",
                &[],
                Some(json!({"username": user, "password": pw})),
            )
            .await;
        assert_eq!(a.status, 200, "login {user}: {}", a.json);
        a.json["token"].as_str().unwrap().to_string()
    }

    /// The admin's session.
    pub async fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a person (as the admin) and returns (id, session).
    pub async fn person(&self, admin: &str, name: &str, role: &str) -> (u64, String) {
        let pw = base64::engine::general_purpose::STANDARD.encode(format!("pw-{name}"));
        let a = self
            .call(
                "POST",
                "/V4/User",
                &[("Authtoken", admin)],
                Some(json!({"userName": name, "password": pw, "role": role, "kind": "person"})),
            )
            .await;
        assert_eq!(a.status, 200, "create user {name}: {}", a.json);
        let id = a.json["userId"].as_u64().unwrap();
        (id, self.login(name, &format!("pw-{name}")).await)
    }

    /// Forward auth for `method uri` with `token`: the status.
    pub async fn check(&self, token: &str, method: &str, uri: &str) -> u16 {
        let bearer = format!("Bearer {token}");
        self.call(
            "GET",
            "/auth/check",
            &[
                ("Authorization", &bearer),
                ("X-Original-Method", method),
                ("X-Original-URI", uri),
            ],
            None,
        )
        .await
        .status
    }

    /// `/metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics' text")
    }

    /// The server's log so far, as one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Imports legacy tokens (one JSON object per `lines` entry) into `store`
/// with `tessera import-legacy`, while no server runs; panics on failure.
/// The file exists only for the import.
pub fn import_legacy(store: &StoreFixture, lines: &[Value]) {
    let dir = std::env::temp_dir().join(format!(
        "tessera-legacy-{}",
        tessera_core::testkit::unique_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("legacy.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = Command::new(binary())
        .args([
            "import-legacy",
            file.to_str().unwrap(),
            "--store",
            &store.url,
        ])
        .args(&store.args)
        .output()
        .unwrap();
    // Removed now, pass or fail.
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "import-legacy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
