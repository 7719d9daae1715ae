//! Forward auth (SPEC §5) behind a real nginx `auth_request`, end to end:
//! client → nginx → `/auth/check` on a real `tessera` → a small upstream run
//! by this test, which records every request it sees. Scopes of several
//! token types, missing, malformed and revoked tokens, the client address as
//! nginx reports it (`--trusted-proxies 127.0.0.1`), and the path tricks of
//! SPEC §6 sent raw on the wire: none of them may ever reach the upstream.
//!
//! The test starts its own nginx (never the system service) with everything
//! under a temporary directory. Without nginx it prints
//! `SKIPPED: nginx not installed`, and fails under CI.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{spawn, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

// ---- the upstream ------------------------------------------------------------

/// One request as the upstream received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    /// Every `X-Tessera-User` header it carried.
    users: Vec<String>,
}

/// A tiny HTTP/1 server on 127.0.0.1 that answers 200 to everything, with a
/// body naming what it received, and records each request.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut conn).await else {
                        return;
                    };
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_string();
                    let target = first.next().unwrap_or_default().to_string();
                    let users = lines
                        .filter_map(|l| l.split_once(':'))
                        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("x-tessera-user"))
                        .map(|(_, v)| v.trim().to_string())
                        .collect::<Vec<_>>();
                    let body = format!("upstream saw {method} {target} as {}", users.join(","));
                    sink.lock().unwrap().push(Seen {
                        method,
                        target,
                        users,
                    });
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Upstream { port, seen, task }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// What it received from the `from`-th request on.
    fn since(&self, from: usize) -> Vec<Seen> {
        self.seen.lock().unwrap()[from..].to_vec()
    }
}

/// Reads a request or response head (up to the blank line), bounded.
async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

// ---- nginx -------------------------------------------------------------------

/// The nginx binary, if installed (`/usr/sbin` is not on every user's PATH).
fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Our own nginx process; stopped, and its directory removed, when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master stops its worker too; SIGKILL would orphan it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_conf(dir: &Path, port: u16, tessera: &str, upstream: u16) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format seen '$status $request_method "$request_uri" uri="$uri"';
    access_log {d}/access.log seen;
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location / {{
            auth_request /_tessera;
            auth_request_set $tessera_user $upstream_http_x_tessera_user;
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Tessera-User $tessera_user;
        }}
        location = /_tessera {{
            internal;
            proxy_pass {tessera}/auth/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Real-IP $remote_addr;
            # Tessera reads X-Forwarded-For before X-Real-IP: a client's own
            # header must not pass through unchanged (it would choose the
            # client address); appending the peer makes it the nearest hop.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Authorization $http_authorization;
        }}
    }}
}}
"#
    )
}

impl Nginx {
    /// Starts nginx in front of `tessera` (a base URL) and the upstream, and
    /// waits (bounded) until it accepts connections.
    fn start(bin: &Path, tessera: &str, upstream: u16) -> Nginx {
        let dir = std::env::temp_dir().join(format!(
            "tessera-nginx-{}",
            tessera_core::testkit::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(&dir, port, tessera, upstream)).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            // The error log nginx uses before it has read the configuration.
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            let exited = nginx.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "nginx did not start on port {port} ({exited:?}); error log:\n{}",
                    nginx.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn access_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The access-log line of request number `n` (from 1), waiting briefly
    /// for nginx to write it.
    fn access_line(&self, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let lines = self.access_lines();
            if lines.len() >= n || Instant::now() > deadline {
                return lines.get(n - 1).cloned().unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ---- clients -----------------------------------------------------------------

/// A response: status and body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends `method target` to nginx byte for byte (no URL library between, so
/// `..` and `%2e` reach nginx as written), from the local address `from`,
/// with `Authorization: Bearer token` when given and `extra` header lines.
async fn raw(
    port: u16,
    from: Ipv4Addr,
    method: &str,
    target: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    let mut conn = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect to nginx");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf))
        .await
        .expect("nginx answered in time")
        .expect("read nginx's answer");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A request through nginx with reqwest (for ordinary paths).
async fn through(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = http.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("request through nginx");
    let status = r.status().as_u16();
    let head = format!("{:?}", r.headers());
    Reply {
        status,
        head,
        body: r.text().await.unwrap_or_default(),
    }
}

async fn create_token(s: &Server, admin: &str, body: Value) -> (u64, String) {
    let a = s
        .call(
            "POST",
            "/V4/AccessToken",
            &[("Authtoken", admin)],
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

// ---- the test ----------------------------------------------------------------

/// The path tricks of SPEC §6. Tessera gets nginx's `$request_uri` (the raw
/// target), so each must be refused there, whatever nginx makes of `$uri`.
const TRAVERSALS: &[&str] = &[
    "/Client/../Job",
    "/Client/%2e%2e/Job",
    "/Client/%2E%2E/Job",
    "/Client/..%2fJob",
    "/Client%2f..%2fJob",
    "/Client/.%2e/Job",
    "/Client/..;/Job",
    "//Client/../Job",
    // and a few more of the same family
    "/Client/5/../../Job/1",
    "/commandcenter/api/Client/../Job",
    "/Client/./5",
    "/Client/%252e%252e/Job",
    "/Client/..%5cJob",
    "/Client\\..\\Job",
    "/Client/%00/../Job",
    "/Client/..",
    "/Client/../../../Job",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_nginx() {
    let Some(bin) = nginx_binary() else {
        // Panics under CI (CI=true or TESSERA_REQUIRE_BACKENDS=1).
        tessera_core::testkit::skip("nginx not installed");
        return;
    };
    let store = common::sqlite();
    let s = spawn(&store, &["--trusted-proxies", "127.0.0.1"]);
    let upstream = Upstream::start().await;
    let nginx = Nginx::start(&bin, &s.base, upstream.port);
    let base = nginx.base();
    let http = reqwest::Client::new();
    let local = Ipv4Addr::LOCALHOST;
    let mut requests = 0usize; // requests sent to nginx so far (access-log lines)

    let admin = s.admin().await;
    let (_, one_touch) =
        create_token(&s, &admin, json!({"tokenName": "1-Touch", "tokenType": 4})).await;

    // 1-Touch: its paths reach the upstream, unchanged, as the token's owner.
    for path in ["/Client/5", "/commandcenter/api/Client/5?x=1"] {
        let before = upstream.count();
        let r = through(&http, &base, "GET", path, Some(&one_touch)).await;
        requests += 1;
        assert_eq!(r.status, 200, "1-Touch GET {path}: {}", r.body);
        let seen = upstream.since(before);
        assert_eq!(seen.len(), 1, "1-Touch GET {path}: upstream saw {seen:?}");
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].target, path);
        assert_eq!(seen[0].users, ["admin"], "X-Tessera-User for {path}");
        assert_eq!(r.body, format!("upstream saw GET {path} as admin"));
    }

    // ... and nothing else.
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Job/1", Some(&one_touch)).await;
    requests += 1;
    assert_eq!(r.status, 403, "1-Touch GET /Job/1");
    assert_eq!(
        upstream.count(),
        before,
        "1-Touch /Job/1 reached the upstream"
    );

    // A client's own X-Tessera-User never reaches the upstream.
    let before = upstream.count();
    let r = raw(
        nginx.port,
        local,
        "GET",
        "/Client/7",
        Some(&one_touch),
        &[("X-Tessera-User", "root")],
    )
    .await;
    requests += 1;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(upstream.since(before)[0].users, ["admin"], "spoofed user");

    // Path tricks, raw on the wire, with the 1-Touch token: never upstream.
    println!("traversal forms through nginx (status, nginx's $request_uri and $uri):");
    for target in TRAVERSALS {
        let before = upstream.count();
        let r = raw(nginx.port, local, "GET", target, Some(&one_touch), &[]).await;
        requests += 1;
        let line = nginx.access_line(requests);
        println!("  {target:<36} -> {line}");
        let seen = upstream.since(before);
        assert!(
            seen.is_empty(),
            "{target} reached the upstream as {seen:?} (status {}, nginx: {line})",
            r.status
        );
        assert!(
            matches!(r.status, 400 | 403),
            "{target}: status {} (nginx: {line})\n{}",
            r.status,
            r.head
        );
        // The refusal comes from Tessera (its challenge), unless nginx itself
        // rejected the request line (400).
        assert!(line.starts_with(&r.status.to_string()), "{line}");
    }

    // No token, a malformed one, a well-formed unknown one: 401, nothing upstream.
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Client/5", None).await;
    requests += 1;
    assert_eq!(r.status, 401, "no token");
    let r = through(&http, &base, "GET", "/Client/5", Some("not-a-token")).await;
    requests += 1;
    assert_eq!(r.status, 401, "malformed token");
    assert!(
        r.head.to_ascii_lowercase().contains("invalid_token"),
        "WWW-Authenticate passed on by nginx: {}",
        r.head
    );
    let mut wrong = one_touch.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let r = through(&http, &base, "GET", "/Client/5", Some(&wrong)).await;
    requests += 1;
    assert_eq!(r.status, 401, "mistyped token");
    assert_eq!(
        upstream.count(),
        before,
        "a refused request reached the upstream"
    );

    // Custom: method and path both count.
    let (_, custom) = create_token(
        &s,
        &admin,
        json!({"tokenName": "custom", "tokenType": 3, "apiEndpoints": ["GET /Client"]}),
    )
    .await;
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Client/1", Some(&custom)).await;
    requests += 1;
    assert_eq!(r.status, 200, "Custom GET /Client/1: {}", r.body);
    let r = through(&http, &base, "POST", "/Client/1", Some(&custom)).await;
    requests += 1;
    assert_eq!(r.status, 403, "Custom POST /Client/1");
    let seen = upstream.since(before);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("GET", "/Client/1")
    );

    // All: reaches what 1-Touch may not.
    let (all_id, all) = create_token(&s, &admin, json!({"tokenName": "all", "tokenType": 2})).await;
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Job/1", Some(&all)).await;
    requests += 1;
    assert_eq!(r.status, 200, "All GET /Job/1: {}", r.body);
    assert_eq!(upstream.since(before)[0].target, "/Job/1");
    // ... but even an All token gets no traversal through.
    let before = upstream.count();
    let r = raw(nginx.port, local, "GET", "/Job/../Client", Some(&all), &[]).await;
    requests += 1;
    assert_eq!(r.status, 403, "All token, /Job/../Client");
    assert_eq!(upstream.count(), before);

    // Revoked (through Tessera directly): refused through nginx right after.
    let a = s
        .call(
            "DELETE",
            &format!("/V4/AccessToken/{all_id}"),
            &[("Authtoken", &admin)],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "revoke: {}", a.json);
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Job/1", Some(&all)).await;
    requests += 1;
    assert_eq!(r.status, 401, "revoked token");
    assert_eq!(
        upstream.count(),
        before,
        "revoked token reached the upstream"
    );

    // The client address is the one nginx saw (X-Real-IP / X-Forwarded-For
    // from the trusted proxy 127.0.0.1), not one the client claims. The
    // client speaks from 127.0.0.2, which is not a trusted proxy.
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let (_, pinned) = create_token(
        &s,
        &admin,
        json!({"tokenName": "pinned", "tokenType": 2, "allowedIPs": ["127.0.0.2"]}),
    )
    .await;
    let (_, elsewhere) = create_token(
        &s,
        &admin,
        json!({"tokenName": "elsewhere", "tokenType": 2, "allowedIPs": ["127.0.0.3"]}),
    )
    .await;
    let before = upstream.count();
    let r = raw(nginx.port, other, "GET", "/Job/1", Some(&pinned), &[]).await;
    requests += 1;
    assert_eq!(r.status, 200, "pinned token from its address: {}", r.head);
    assert_eq!(upstream.count(), before + 1);
    let before = upstream.count();
    let r = raw(nginx.port, local, "GET", "/Job/1", Some(&pinned), &[]).await;
    requests += 1;
    assert_eq!(r.status, 403, "pinned token from another address");
    let spoof = [("X-Forwarded-For", "127.0.0.3"), ("X-Real-IP", "127.0.0.3")];
    let r = raw(nginx.port, other, "GET", "/Job/1", Some(&elsewhere), &spoof).await;
    requests += 1;
    assert_eq!(r.status, 403, "a client-claimed address was believed");
    assert_eq!(
        upstream.count(),
        before,
        "address refusals reached the upstream"
    );

    // Tessera gone: nginx fails closed (auth_request turns the failed
    // sub-request into 500), nothing upstream.
    drop(s);
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Client/5", Some(&one_touch)).await;
    requests += 1;
    assert_eq!(r.status, 500, "Tessera down");
    assert_eq!(
        upstream.count(),
        before,
        "Tessera down, yet upstream reached"
    );
    // (nginx writes a line after it answered: wait for the last one.)
    assert!(!nginx.access_line(requests).is_empty(), "no log line");
    assert_eq!(
        nginx.access_lines().len(),
        requests,
        "one log line per request"
    );
}
