//! Forward auth behind a real Caddy `forward_auth` (the convention Traefik
//! shares: `X-Forwarded-Method`/`X-Forwarded-Uri`), end to end: client →
//! Caddy → `/auth/check` on a real `tessera --forward-auth caddy` → a small
//! upstream that records every request it sees. Caddy passes every client
//! header on to the check, so a client's own `X-Original-*` lands beside
//! Caddy's headers: it must be refused, never believed. Raw bytes in the
//! request line, the path tricks, forged addresses, Tessera down: none of
//! it may reach the upstream.
//!
//! The test starts its own Caddy (admin API off, its data under a temporary
//! directory). Without Caddy it prints `SKIPPED: caddy not installed`, and
//! fails under CI.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::proxy::{free_port, raw, wait_listening, Upstream, TRAVERSALS};
use common::spawn;
use serde_json::json;

/// Our own Caddy process; stopped, and its directory removed, when dropped.
struct Caddy {
    child: Child,
    /// Its configuration, logs and state; removed after the process stops.
    dir: common::TempDir,
    port: u16,
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Caddy {
    /// Starts Caddy with `forward_auth` to `tessera` (host:port) in front of
    /// the upstream, and waits (bounded) until it accepts connections.
    fn start(bin: &Path, tessera: &str, upstream: u16) -> Caddy {
        let dir = common::TempDir::new("tessera-caddy");
        let port = free_port();
        let conf = dir.join("Caddyfile");
        std::fs::write(
            &conf,
            format!(
                r#"{{
    admin off
    auto_https off
    storage file_system {d}/data
}}
http://127.0.0.1:{port} {{
    forward_auth {tessera} {{
        uri /auth/check
        copy_headers X-Tessera-User X-Tessera-User-Id X-Tessera-Token-Id
    }}
    reverse_proxy 127.0.0.1:{upstream}
}}
"#,
                d = dir.path().display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("caddy.log")).unwrap();
        let child = Command::new(bin)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&conf)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start caddy");
        let mut caddy = Caddy { child, dir, port };
        let log = caddy.dir.join("caddy.log");
        wait_listening(
            "caddy",
            port,
            &mut caddy.child,
            Duration::from_secs(15),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        caddy
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_caddy() {
    let Some(bin) = common::proxy::find_binary("caddy") else {
        // Panics under CI (CI=true or TESSERA_REQUIRE_BACKENDS=1).
        tessera_core::testkit::skip("caddy not installed");
        return;
    };
    let store = common::sqlite();
    let s = spawn(
        &store,
        &["--forward-auth", "caddy", "--trusted-proxies", "127.0.0.1"],
    );
    let upstream = Upstream::start().await;
    let caddy = Caddy::start(&bin, s.addr(), upstream.port);
    let port = caddy.port;
    let local = Ipv4Addr::LOCALHOST;
    let admin = s.admin().await;
    let custom = s
        .token(
            &admin,
            json!({"tokenName": "c", "tokenType": 3, "apiEndpoints": ["GET /Client", "/Job"]}),
        )
        .await
        .access;
    let never = |what: &str, before: usize, status: u16| {
        let seen = upstream.since(before);
        assert!(
            seen.is_empty(),
            "{what} reached the upstream as {seen:?} (status {status})"
        );
    };

    // In scope: reaches the upstream unchanged, as the token's owner.
    for target in ["/Client/5", "/commandcenter/api/Client/5?x=1", "/Job/1"] {
        let before = upstream.count();
        let r = raw(port, local, "GET", target, Some(&custom), &[]).await;
        assert_eq!(r.status, 200, "GET {target}: {}", r.head);
        let seen = upstream.since(before);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].target.as_str()),
            ("GET", target)
        );
        assert_eq!(seen[0].users, ["admin"]);
    }
    // Out of scope: the method counts, the path counts.
    for (method, target) in [
        ("DELETE", "/Client/5"),
        ("GET", "/Admin/1"),
        ("POST", "/Client/5"),
    ] {
        let before = upstream.count();
        let r = raw(port, local, method, target, Some(&custom), &[]).await;
        assert_eq!(r.status, 403, "{method} {target}: {}", r.head);
        never(&format!("{method} {target}"), before, r.status);
    }
    // A client's own X-Original-* beside Caddy's headers: refused (400).
    let before = upstream.count();
    let forged = [
        ("X-Original-URI", "/Client/5"),
        ("X-Original-Method", "GET"),
    ];
    let r = raw(port, local, "DELETE", "/Admin/1", Some(&custom), &forged).await;
    assert_eq!(r.status, 400, "{}", r.head);
    never(
        "DELETE /Admin/1 with a client's X-Original-*",
        before,
        r.status,
    );
    // A client's own X-Forwarded-*: Caddy sets its own; they never decide.
    let before = upstream.count();
    let forged = [
        ("X-Forwarded-Uri", "/Client/5"),
        ("X-Forwarded-Method", "GET"),
    ];
    let r = raw(port, local, "DELETE", "/Admin/1", Some(&custom), &forged).await;
    never(
        "DELETE /Admin/1 with a client's X-Forwarded-*",
        before,
        r.status,
    );
    // Raw bytes in the request line.
    for (method, target) in [
        ("GET", "/Admin/5?q=é"),
        ("POST", "/V4/AccessToken?ÿ"),
        ("DELETE", "/Client/5?é"),
    ] {
        let before = upstream.count();
        let forged = [("X-Original-URI", "/Job/1"), ("X-Original-Method", "GET")];
        let r = raw(port, local, method, target, Some(&custom), &forged).await;
        never(&format!("{method} {target}"), before, r.status);
    }
    // The path tricks, raw on the wire, with a token for /Client and /Job.
    for target in TRAVERSALS {
        let before = upstream.count();
        let r = raw(port, local, "GET", target, Some(&custom), &[]).await;
        never(target, before, r.status);
        assert!(matches!(r.status, 400 | 403), "{target}: {}", r.head);
    }
    // No token, a malformed one: 401 with the challenge.
    let before = upstream.count();
    let r = raw(port, local, "GET", "/Client/5", None, &[]).await;
    assert_eq!(r.status, 401);
    let r = raw(port, local, "GET", "/Client/5", Some("not-a-token"), &[]).await;
    assert_eq!(r.status, 401);
    assert!(
        r.head.to_ascii_lowercase().contains("invalid_token"),
        "{}",
        r.head
    );
    never("a refused token", before, r.status);

    // Addresses: Caddy reports the peer it saw; what a client claims is not
    // believed. The token may be used from 127.0.0.3 only.
    let pinned = s
        .token(
            &admin,
            json!({"tokenName": "pinned", "tokenType": 2, "allowedIPs": ["127.0.0.3"]}),
        )
        .await
        .access;
    let other = Ipv4Addr::new(127, 0, 0, 2);
    for forged in [
        vec![("X-Forwarded-For", "127.0.0.3")],
        vec![
            ("X-Forwarded-For", "127.0.0.3"),
            ("X-Forwarded-For", "127.0.0.3"),
        ],
        vec![("X-Forwarded-For", "127.0.0.3, garbage")],
        vec![("X-Real-IP", "127.0.0.3")],
    ] {
        let before = upstream.count();
        let r = raw(port, other, "GET", "/Job/1", Some(&pinned), &forged).await;
        never(&format!("{forged:?}"), before, r.status);
    }
    let r = raw(
        port,
        Ipv4Addr::new(127, 0, 0, 3),
        "GET",
        "/Job/1",
        Some(&pinned),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "from the pinned address: {}", r.head);

    // Tessera gone: Caddy fails closed, nothing upstream.
    drop(s);
    let before = upstream.count();
    let r = raw(port, local, "GET", "/Client/5", Some(&custom), &[]).await;
    assert!(r.status >= 500, "Tessera down: {}", r.head);
    never("a check with Tessera down", before, r.status);
}
