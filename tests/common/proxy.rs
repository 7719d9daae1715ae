//! What the proxy suites share (`nginx.rs`, `caddy.rs`): an upstream that
//! records what reaches it, a client that writes requests byte for byte;
//! finding a proxy's binary and starting nginx (`tessera_testsupport::proxy`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

pub use tessera_testsupport::proxy::{find_binary, free_port, wait_listening, Nginx};

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Every `X-Tessera-User` header it carried.
    pub users: Vec<String>,
}

/// A tiny HTTP/1 server on 127.0.0.1 that answers 200 to everything, with a
/// body naming what it received, and records each request.
pub struct Upstream {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
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

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// What it received from the `from`-th request on.
    pub fn since(&self, from: usize) -> Vec<Seen> {
        self.seen.lock().unwrap()[from..].to_vec()
    }
}

/// Reads a request or response head (up to the blank line), bounded.
pub async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<String> {
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

/// The path tricks of CONTRACT §6. Tessera gets the raw target (nginx's
/// `$request_uri`, Caddy's `{http.request.uri}`), so each must be refused
/// there, whatever the proxy makes of the path.
pub const TRAVERSALS: &[&str] = &[
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
    // dots beside whitespace, which an upstream that trims turns into ".."
    "/Client/..%20/Job",
    "/Client/%20../Job",
    "/Client/..%09/Job",
    "/Client/.%2e%20/Job",
    // a raw '#', where upstreams disagree on where the path ends
    "/Client/5#/../../Job",
];

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `method target` to nginx byte for byte (no URL library between, so
/// `..` and `%2e` reach nginx as written), from the local address `from`,
/// with `Authorization: Bearer token` when given and `extra` header lines.
pub async fn raw(
    port: u16,
    from: Ipv4Addr,
    method: &str,
    target: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    exchange(port, from, req.as_bytes())
        .await
        .unwrap_or_else(|| panic!("no status line in the answer to {method} {target}"))
}

/// Writes `request` (whole, `Connection: close`) to 127.0.0.1:`port` from the
/// local address `from` and reads the answer to its end; `None` when the
/// connection closed without a status line.
pub async fn exchange(port: u16, from: Ipv4Addr, request: &[u8]) -> Option<Reply> {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    let mut conn = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect");
    conn.write_all(request).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf))
        .await
        .expect("answered in time")
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    Some(Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// A request through nginx with reqwest (for ordinary paths).
pub async fn through(
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
