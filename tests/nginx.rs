//! Forward auth (CONTRACT §5) behind a real nginx `auth_request`, end to end:
//! client → nginx → `/auth/check` on a real `tessera` → a small upstream run
//! by this test, which records every request it sees. Scopes of several
//! token types, missing, malformed and revoked tokens, the client address as
//! nginx reports it (`--trusted-proxies 127.0.0.1`), and the path tricks of
//! CONTRACT §6 sent raw on the wire: none of them may ever reach the upstream.
//!
//! The test starts its own nginx (never the system service) with everything
//! under a temporary directory. Without nginx it prints
//! `SKIPPED: nginx not installed`, and fails under CI.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::proxy::{raw, through, Upstream, TRAVERSALS};
use common::spawn;
use serde_json::json;

// ---- nginx -------------------------------------------------------------------

/// Our own nginx process (`tessera_testsupport::proxy::Nginx`), with the
/// README's configuration.
struct Nginx(common::proxy::Nginx);

/// The README's `server` block; `with_method: false` leaves out the
/// `X-Original-Method` line (a mistake an operator can make).
fn nginx_conf(dir: &Path, port: u16, tessera: &str, upstream: u16, with_method: bool) -> String {
    let d = dir.display();
    let method = if with_method {
        "proxy_set_header X-Original-Method $request_method;"
    } else {
        "# (no X-Original-Method: every check must then be refused)"
    };
    format!(
        r#"    log_format seen '$status $request_method "$request_uri" uri="$uri"';
    access_log {d}/access.log seen;
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
            {method}
            # Tessera reads X-Forwarded-For (by default) right to left, past
            # trusted proxies: nginx appends the peer it saw, so whatever a
            # client wrote sits to its left and is never reached. X-Real-IP is
            # read only with --client-ip-header x-real-ip.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Authorization $http_authorization;
        }}
    }}"#
    )
}

impl Nginx {
    /// Starts nginx in front of `tessera` (a base URL) and the upstream, and
    /// waits (bounded) until it accepts connections.
    fn start(bin: &Path, tessera: &str, upstream: u16, with_method: bool) -> Nginx {
        let nginx = common::proxy::Nginx::start(bin, |dir, port| {
            nginx_conf(dir, port, tessera, upstream, with_method)
        });
        Nginx(nginx.unwrap_or_else(|e| panic!("{e}")))
    }

    fn base(&self) -> String {
        self.0.base()
    }

    fn port(&self) -> u16 {
        self.0.port()
    }

    fn access_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.0.dir().join("access.log"))
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

// ---- the test ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_nginx() {
    let Some(bin) = common::proxy::find_binary("nginx") else {
        // Panics under CI (CI=true or TESSERA_REQUIRE_BACKENDS=1).
        tessera_core::testkit::skip("nginx not installed");
        return;
    };
    let store = common::sqlite();
    let s = spawn(&store, &["--trusted-proxies", "127.0.0.1"]);
    let upstream = Upstream::start().await;
    let nginx = Nginx::start(&bin, &s.base, upstream.port, true);
    let base = nginx.base();
    let http = reqwest::Client::new();
    let local = Ipv4Addr::LOCALHOST;
    let mut requests = 0usize; // requests sent to nginx so far (access-log lines)

    let admin = s.admin().await;
    let one_touch = s
        .token(&admin, json!({"tokenName": "1-Touch", "tokenType": 4}))
        .await
        .access;

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
        nginx.port(),
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
        let r = raw(nginx.port(), local, "GET", target, Some(&one_touch), &[]).await;
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
    let custom = s
        .token(
            &admin,
            json!({"tokenName": "custom", "tokenType": 3, "apiEndpoints": ["GET /Client"]}),
        )
        .await
        .access;
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
    let all_token = s
        .token(&admin, json!({"tokenName": "all", "tokenType": 2}))
        .await;
    let all = all_token.access.clone();
    let before = upstream.count();
    let r = through(&http, &base, "GET", "/Job/1", Some(&all)).await;
    requests += 1;
    assert_eq!(r.status, 200, "All GET /Job/1: {}", r.body);
    assert_eq!(upstream.since(before)[0].target, "/Job/1");
    // ... but even an All token gets no traversal through.
    let before = upstream.count();
    let r = raw(
        nginx.port(),
        local,
        "GET",
        "/Job/../Client",
        Some(&all),
        &[],
    )
    .await;
    requests += 1;
    assert_eq!(r.status, 403, "All token, /Job/../Client");
    assert_eq!(upstream.count(), before);

    // Revoked (through Tessera directly): refused through nginx right after.
    let a = s.delete_token(&admin, all_token.id).await;
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
    let pinned = s
        .token(
            &admin,
            json!({"tokenName": "pinned", "tokenType": 2, "allowedIPs": ["127.0.0.2"]}),
        )
        .await
        .access;
    let elsewhere = s
        .token(
            &admin,
            json!({"tokenName": "elsewhere", "tokenType": 2, "allowedIPs": ["127.0.0.3"]}),
        )
        .await
        .access;
    let before = upstream.count();
    let r = raw(nginx.port(), other, "GET", "/Job/1", Some(&pinned), &[]).await;
    requests += 1;
    assert_eq!(r.status, 200, "pinned token from its address: {}", r.head);
    assert_eq!(upstream.count(), before + 1);
    let before = upstream.count();
    let r = raw(nginx.port(), local, "GET", "/Job/1", Some(&pinned), &[]).await;
    requests += 1;
    assert_eq!(r.status, 403, "pinned token from another address");
    let spoof = [("X-Forwarded-For", "127.0.0.3"), ("X-Real-IP", "127.0.0.3")];
    let r = raw(
        nginx.port(),
        other,
        "GET",
        "/Job/1",
        Some(&elsewhere),
        &spoof,
    )
    .await;
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

/// What a client may write, through nginx as the README configures it: raw
/// bytes nginx passes on in `$request_uri`, its own `X-Forwarded-*` and
/// `X-Original-*`, forged addresses in every form. None of it reaches the
/// upstream. And nginx without `X-Original-Method`: nothing passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_client_writes_steers_the_check_behind_nginx() {
    let Some(bin) = common::proxy::find_binary("nginx") else {
        tessera_core::testkit::skip("nginx not installed");
        return;
    };
    let store = common::sqlite();
    let s = spawn(&store, &["--trusted-proxies", "127.0.0.1"]);
    let upstream = Upstream::start().await;
    let nginx = Nginx::start(&bin, &s.base, upstream.port, true);
    let admin = s.admin().await;
    let local = Ipv4Addr::LOCALHOST;
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
    // Allowed as it should be.
    let before = upstream.count();
    let r = raw(nginx.port(), local, "GET", "/Client/5", Some(&custom), &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(upstream.since(before).len(), 1);

    // Finding 1: raw bytes in the request line, a client's X-Forwarded-Uri beside.
    for (method, target) in [
        ("GET", "/Admin/5?q=é"),
        ("POST", "/V4/AccessToken?ÿ"),
        ("DELETE", "/Client/5?é"),
        ("DELETE", "/Admin/5?\u{1}"),
    ] {
        let before = upstream.count();
        let forged = [("X-Forwarded-Uri", "/Job/1"), ("X-Forwarded-Method", "GET")];
        let r = raw(nginx.port(), local, method, target, Some(&custom), &forged).await;
        never(&format!("{method} {target}"), before, r.status);
        assert_ne!(r.status, 200, "{method} {target}: {}", r.head);
    }
    // Finding 2: a client's X-Forwarded-* (nginx passes them on) or
    // X-Original-* (nginx overwrites those) never decide.
    for (method, target, forged) in [
        (
            "DELETE",
            "/Admin/1",
            [
                ("X-Forwarded-Uri", "/Client/1"),
                ("X-Forwarded-Method", "GET"),
            ],
        ),
        (
            "DELETE",
            "/Admin/1",
            [
                ("X-Original-URI", "/Client/1"),
                ("X-Original-Method", "GET"),
            ],
        ),
        (
            "POST",
            "/Client/1",
            [
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/Client/1"),
            ],
        ),
    ] {
        let before = upstream.count();
        let r = raw(nginx.port(), local, method, target, Some(&custom), &forged).await;
        never(
            &format!("{method} {target} with {forged:?}"),
            before,
            r.status,
        );
    }

    // Finding 4: forged client addresses. The token may be used from
    // 127.0.0.3 only; the client speaks from 127.0.0.2.
    let pinned = s
        .token(
            &admin,
            json!({"tokenName": "pinned", "tokenType": 2, "allowedIPs": ["127.0.0.3"]}),
        )
        .await
        .access;
    let other = Ipv4Addr::new(127, 0, 0, 2);
    for forged in [
        vec![
            ("X-Forwarded-For", "127.0.0.3"),
            ("X-Forwarded-For", "127.0.0.3"),
        ],
        vec![("X-Forwarded-For", "127.0.0.3, garbage")],
        vec![("X-Forwarded-For", "127.0.0.3, 127.0.0.1")],
        vec![("X-Real-IP", "127.0.0.3")],
        vec![("X-Real-IP", "127.0.0.3"), ("X-Forwarded-For", "127.0.0.3")],
    ] {
        let before = upstream.count();
        let r = raw(nginx.port(), other, "GET", "/Job/1", Some(&pinned), &forged).await;
        never(&format!("{forged:?}"), before, r.status);
    }
    // From the address itself: allowed.
    let third = Ipv4Addr::new(127, 0, 0, 3);
    let r = raw(nginx.port(), third, "GET", "/Job/1", Some(&pinned), &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);

    // Finding 3: nginx configured without X-Original-Method. Its
    // sub-request is always GET: Tessera must not take that for the method.
    let careless = Nginx::start(&bin, &s.base, upstream.port, false);
    for method in ["DELETE", "POST", "GET"] {
        let before = upstream.count();
        let r = raw(
            careless.port(),
            local,
            method,
            "/Client/5",
            Some(&custom),
            &[],
        )
        .await;
        never(
            &format!("{method} /Client/5 without X-Original-Method"),
            before,
            r.status,
        );
        assert_eq!(
            r.status, 500,
            "nginx turns the check's 400 into 500: {}",
            r.head
        );
    }
}
