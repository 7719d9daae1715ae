//! What a client writes must not steer the check, and bad input must be
//! refused cleanly: each finding of the attack review (issue 10) against a
//! real `tessera` process, talking to it directly (the proxies in front are
//! in `nginx.rs` and `caddy.rs`).
//!
//! * forward auth reads the original request from the one place its
//!   convention names: never a fallback, never a contradiction;
//! * the client address from trusted proxies only, every forwarded line
//!   read, an unreadable hop refused;
//! * ids past the store's range, lax JSON, repeated query parameters;
//! * what non-admins learn of other users; 405 with `Allow`; `nosniff`;
//! * logins: the lockout under concurrency, a full hashing queue.

mod common;

use std::collections::HashMap;

use common::{all_stores, spawn, Client, Server};
use serde_json::{json, Value};

/// The check as a proxy of any convention would send it: `method` on
/// `path`, with the bearer token and the raw header lines given.
async fn check(s: &Server, method: &str, path: &str, token: &str, extra: &[(&str, &[u8])]) -> u16 {
    let bearer = format!("Bearer {token}");
    let mut headers: Vec<(&str, &[u8])> = vec![("Authorization", bearer.as_bytes())];
    headers.extend_from_slice(extra);
    s.send(method, path, &headers, None).await.status
}

const OM: &str = "X-Original-Method";
const OU: &str = "X-Original-URI";
const FM: &str = "X-Forwarded-Method";
const FU: &str = "X-Forwarded-Uri";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_reads_exactly_one_place() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let t = s
        .token(
            &admin,
            json!({"tokenName": "c", "tokenType": 3, "apiEndpoints": ["GET /Client"]}),
        )
        .await
        .access;
    let c = "/auth/check";

    // The default convention, nginx: X-Original-Method / X-Original-URI.
    assert_eq!(
        check(&s, "GET", c, &t, &[(OM, b"GET"), (OU, b"/Client/5")]).await,
        200
    );
    assert_eq!(
        check(&s, "GET", c, &t, &[(OM, b"DELETE"), (OU, b"/Client/5")]).await,
        403
    );
    // Finding 1: an unreadable X-Original-URI (nginx passes $request_uri raw)
    // never falls back to a client-written X-Forwarded-Uri.
    for (m, uri) in [
        (&b"GET"[..], &b"/Admin/5?q=\xc3\xa9"[..]),
        (b"POST", b"/V4/AccessToken?\xff"),
        (b"DELETE", b"/Client/5?\xc3\xa9"),
    ] {
        let r = check(
            &s,
            "GET",
            c,
            &t,
            &[(OM, m), (OU, uri), (FU, b"/Client/5"), (FM, b"GET")],
        )
        .await;
        assert_eq!(r, 400, "{}", String::from_utf8_lossy(uri));
    }
    // Each: the check request's method, the header lines, the answer.
    type Case = (&'static str, Vec<(&'static str, &'static [u8])>, u16);
    let cases: Vec<Case> = vec![
        // Finding 2: the other pair present and different is refused, not preferred.
        (
            "GET",
            vec![(OM, b"DELETE"), (OU, b"/Admin/5"), (FU, b"/Client/5")],
            400,
        ),
        (
            "GET",
            vec![(OM, b"DELETE"), (OU, b"/Client/5"), (FM, b"GET")],
            400,
        ),
        // ... and agreeing copies are fine.
        (
            "GET",
            vec![(OM, b"GET"), (OU, b"/Client/5"), (FU, b"/Client/5")],
            200,
        ),
        // Finding 3: a missing method is not the check request's own.
        ("DELETE", vec![(OU, b"/Client/5")], 400),
        ("GET", vec![(OU, b"/Client/5")], 400),
        // Empty, doubled, whitespace; the other convention's pair alone.
        ("GET", vec![(OM, b"GET"), (OU, b"")], 400),
        (
            "GET",
            vec![(OM, b"GET"), (OU, b"/Client/5"), (OU, b"/Client/5")],
            400,
        ),
        (
            "GET",
            vec![(OM, b"GET"), (OM, b"GET"), (OU, b"/Client/5")],
            400,
        ),
        ("GET", vec![(OM, b"GET"), (OU, b"/Client/5 /Admin")], 400),
        ("GET", vec![(FM, b"GET"), (FU, b"/Client/5")], 400),
    ];
    for (method, headers, want) in &cases {
        assert_eq!(
            check(&s, method, c, &t, headers).await,
            *want,
            "{method} {headers:?}"
        );
    }
    // The extra path refusals: dots with whitespace, a raw '#'.
    for uri in [
        &b"/Client/..%20/Admin"[..],
        b"/Client/%20../Admin",
        b"/Client/..%09/Admin",
        b"/Client#/../Admin",
    ] {
        let r = check(&s, "GET", c, &t, &[(OM, b"GET"), (OU, uri)]).await;
        assert_eq!(r, 403, "{}", String::from_utf8_lossy(uri));
    }
    // The token itself: sent twice, or two different ones, is no token.
    let bearer = format!("Bearer {t}");
    let ok: [(&str, &[u8]); 2] = [(OM, b"GET"), (OU, b"/Client/5")];
    for extra in [
        vec![("Authorization", bearer.as_bytes())],
        vec![("Authtoken", b"Bearer tess_at_1_other".as_slice())],
        vec![("Authorization", b"Bearer \xc3\xa9".as_slice())],
    ] {
        let mut headers = ok.to_vec();
        headers.push(("Authorization", bearer.as_bytes()));
        headers.extend(extra);
        let a = s.send("GET", c, &headers, None).await;
        assert_eq!(a.status, 401, "{headers:?}");
    }
    drop(s);

    // Traefik and Caddy: X-Forwarded-Method / X-Forwarded-Uri.
    for convention in ["traefik", "caddy"] {
        let s = spawn(&store, &["--forward-auth", convention]);
        assert_eq!(
            check(&s, "GET", c, &t, &[(FM, b"GET"), (FU, b"/Client/5")]).await,
            200
        );
        assert_eq!(
            check(&s, "GET", c, &t, &[(FM, b"DELETE"), (FU, b"/Admin/5")]).await,
            403
        );
        // Traefik passes every client header on: a client's X-Original-* is refused.
        assert_eq!(
            check(
                &s,
                "GET",
                c,
                &t,
                &[
                    (FM, b"DELETE"),
                    (FU, b"/Admin/5"),
                    (OM, b"GET"),
                    (OU, b"/Client/5")
                ]
            )
            .await,
            400,
            "{convention}"
        );
        assert_eq!(
            check(&s, "GET", c, &t, &[(FU, b"/Client/5")]).await,
            400,
            "{convention}"
        );
        assert_eq!(
            check(&s, "GET", c, &t, &[(OM, b"GET"), (OU, b"/Client/5")]).await,
            400
        );
        assert_eq!(
            check(&s, "GET", c, &t, &[(FM, b"GET"), (FU, b"/Client/\xc3\xa9")]).await,
            400
        );
    }

    // Envoy: the check request's own method, its path after /auth/check.
    let s = spawn(&store, &["--forward-auth", "envoy"]);
    assert_eq!(
        check(&s, "GET", "/auth/check/Client/5?x=1", &t, &[]).await,
        200
    );
    assert_eq!(
        check(&s, "DELETE", "/auth/check/Client/5", &t, &[]).await,
        403
    );
    assert_eq!(check(&s, "GET", "/auth/check/Admin/5", &t, &[]).await, 403);
    assert_eq!(
        check(&s, "GET", "/auth/check/Admin/5", &t, &[(OU, b"/Client/5")]).await,
        400,
        "a client-written X-Original-URI that disagrees"
    );
    assert_eq!(check(&s, "GET", "/auth/check", &t, &[]).await, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_cannot_be_forged() {
    let store = common::sqlite();
    // The test's requests come from 127.0.0.1: a trusted proxy here.
    let s = spawn(&store, &["--trusted-proxies", "127.0.0.1"]);
    let admin = s.admin().await;
    let t = s
        .token(
            &admin,
            json!({"tokenName": "ten", "tokenType": 2, "allowedIPs": ["10.0.0.0/8"]}),
        )
        .await
        .access;
    let ok: [(&str, &[u8]); 2] = [(OM, b"GET"), (OU, b"/Job/1")];
    let with = |extra: &[(&'static str, &'static [u8])]| {
        let mut v = ok.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let xff = "X-Forwarded-For";
    // A proxy appended the client 10.1.1.1: allowed.
    assert_eq!(
        check(&s, "GET", "/auth/check", &t, &with(&[(xff, b"10.1.1.1")])).await,
        200
    );
    // Two lines: the client's own first, the proxy's second (HAProxy).
    assert_eq!(
        check(
            &s,
            "GET",
            "/auth/check",
            &t,
            &with(&[(xff, b"10.1.1.1"), (xff, b"198.51.100.4")])
        )
        .await,
        403
    );
    // An unparsable right-most hop is refused, not skipped.
    assert_eq!(
        check(
            &s,
            "GET",
            "/auth/check",
            &t,
            &with(&[(xff, b"10.1.1.1, garbage")])
        )
        .await,
        400
    );
    assert_eq!(
        check(
            &s,
            "GET",
            "/auth/check",
            &t,
            &with(&[(xff, b"10.1.1.1, \xff")])
        )
        .await,
        400
    );
    // A client-sent X-Real-IP beside a proxy that only appends X-Forwarded-For.
    assert_eq!(
        check(
            &s,
            "GET",
            "/auth/check",
            &t,
            &with(&[("X-Real-IP", b"10.0.0.1"), (xff, b"198.51.100.4")])
        )
        .await,
        403
    );
    // Logins read the same address: an unreadable one is refused.
    let pw = b"{\"username\":\"admin\",\"password\":\"eA==\"}";
    let a = s
        .send(
            "POST",
            "/Login",
            &[(xff, b"garbage")],
            Some(("application/json", pw)),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.json);
    drop(s);

    // Where the operator says the proxy overwrites X-Real-IP.
    let s = spawn(
        &store,
        &[
            "--trusted-proxies",
            "127.0.0.1",
            "--client-ip-header",
            "x-real-ip",
        ],
    );
    assert_eq!(
        check(
            &s,
            "GET",
            "/auth/check",
            &t,
            &with(&[("X-Real-IP", b"10.0.0.1")])
        )
        .await,
        200
    );
    assert_eq!(
        check(&s, "GET", "/auth/check", &t, &with(&[(xff, b"10.0.0.1")])).await,
        403
    );
    assert_eq!(
        check(
            &s,
            "GET",
            "/auth/check",
            &t,
            &with(&[("X-Real-IP", b"10.0.0.1"), ("X-Real-IP", b"10.0.0.2")])
        )
        .await,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_past_the_store_range_are_not_found() {
    for store in all_stores().await {
        let s = spawn(&store, &[]);
        let admin = s.admin().await;
        let auth = [("Authtoken", admin.as_str())];
        let big = "9223372036854775808";
        for (method, path) in [
            ("DELETE", format!("/V4/AccessToken/{big}")),
            ("DELETE", format!("/V4/User/{big}")),
            ("GET", format!("/V4/AccessToken?userId={big}")),
            ("DELETE", format!("/V4/AccessToken/{}", u64::MAX)),
        ] {
            let a = s.call(method, &path, &auth, None).await;
            assert_eq!(
                a.status, 404,
                "[{}] {method} {path}: {}",
                store.name, a.json
            );
        }
        let a = s.edit_token(&admin, big, json!({"tokenName": "x"})).await;
        assert_eq!(a.status, 404, "[{}] PUT: {}", store.name, a.json);
        // Past u64: not a number at all.
        let a = s.delete_token(&admin, "18446744073709551616").await;
        assert_eq!(a.status, 400, "{}", a.json);
        let log = s.log_text();
        assert!(
            !log.contains("ERROR") && !log.contains("internal error"),
            "[{}] {log}",
            store.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_one_json_object_and_parameters_come_once() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let auth = ("Authtoken", admin.as_bytes());
    let count = |a: &common::Answer| a.json["tokens"].as_array().map(Vec::len);
    let before = s.list_tokens(&admin, None).await;
    for body in [
        &br#"{"tokenName":"x"}{"b":2}"#[..],
        br#"{"tokenName":"x"} 1"#,
        br#"[]"#,
        br#"["x"]"#,
        br#""x""#,
        b"null",
    ] {
        let a = s
            .send(
                "POST",
                "/V4/AccessToken",
                &[auth],
                Some(("application/json", body)),
            )
            .await;
        assert_eq!(
            a.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            a.json
        );
    }
    let after = s.list_tokens(&admin, None).await;
    assert_eq!(
        count(&before),
        count(&after),
        "a refused body created a token"
    );
    // Whitespace around the one object is fine.
    let a = s
        .send(
            "POST",
            "/V4/AccessToken",
            &[auth],
            Some(("application/json", b" {\"tokenName\":\"ok\"} \n")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let id = a.json["tokenInfo"]["tokenId"].as_u64().unwrap();
    let a = s
        .send(
            "PUT",
            &format!("/V4/AccessToken/{id}"),
            &[auth],
            Some(("application/json", b"[]")),
        )
        .await;
    assert_eq!(a.status, 400, "PUT []: {}", a.json);
    // Two Content-Type headers, or an unreadable one: 415, not "JSON anyway".
    for ct in [
        vec![
            ("Content-Type", b"application/json".as_slice()),
            ("Content-Type", b"text/plain".as_slice()),
        ],
        vec![("Content-Type", b"application/\xffjson".as_slice())],
    ] {
        let mut headers = vec![auth];
        headers.extend(ct);
        let a = s
            .send(
                "POST",
                "/V4/AccessToken",
                &headers,
                Some(("", br#"{"tokenName":"x"}"#)),
            )
            .await;
        assert_eq!(a.status, 415, "{headers:?}: {}", a.json);
    }
    // RFC 7662/7009 JSON bodies too.
    let a = s
        .send(
            "POST",
            "/oauth/revoke",
            &[],
            Some(("application/json", br#"{"token":"a"}{"token":"b"}"#)),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.json);
    // A repeated query parameter, in any case, is refused.
    for q in [
        "userId=1&userId=2",
        "userId=1&userid=1",
        "USERID=1&userId=1",
    ] {
        let a = s
            .call(
                "GET",
                &format!("/V4/AccessToken?{q}"),
                &[("Authtoken", &admin)],
                None,
            )
            .await;
        assert_eq!(a.status, 400, "{q}: {}", a.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_admins_learn_nothing_of_other_users() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let (alice, _) = s.person(&admin, "alice", "user").await;
    let (_, bob) = s.person(&admin, "bob", "user").await;
    let robot = s.service_account(&admin, "robot").await;
    let missing = 999_999u64;
    let answer = |a: &common::Answer| (a.status, a.json["errorMessage"].clone());
    // Listing another's tokens: a missing user and a real one answer alike.
    let mut lists = Vec::new();
    for id in [missing, alice, robot] {
        lists.push(answer(&s.list_tokens(&bob, Some(id)).await));
    }
    assert_eq!(lists[0].0, 403, "{lists:?}");
    assert!(lists.iter().all(|l| *l == lists[0]), "{lists:?}");
    // Creating for another: the same.
    let mut creates = Vec::new();
    for id in [missing, alice, robot] {
        let a = s
            .create_token(&bob, json!({"tokenName": "t", "userId": id}))
            .await;
        creates.push(answer(&a));
    }
    assert_eq!(creates[0].0, 403, "{creates:?}");
    assert!(creates.iter().all(|c| *c == creates[0]), "{creates:?}");
    // An admin, who may list every user anyway, hears that one is missing.
    assert_eq!(s.list_tokens(&admin, Some(missing)).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_say_allow_and_nosniff() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    for (method, path, allow) in [
        ("DELETE", "/Login", "POST"),
        ("PATCH", "/V4/AccessToken", "GET, HEAD, POST"),
        ("PUT", "/V4/AccessToken/Policy", "GET, HEAD"),
        ("DELETE", "/V4/AccessToken/Renew", "POST"),
        ("GET", "/V4/AccessToken/5", "PUT, DELETE"),
        ("POST", "/V4/User/5", "DELETE"),
        ("GET", "/oauth/introspect", "POST"),
        ("POST", "/console/", "GET, HEAD"),
    ] {
        let a = s.call(method, path, &[], None).await;
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(a.headers["allow"], allow, "{method} {path}");
    }
    // HEAD answers where GET does.
    assert_eq!(s.call("HEAD", "/V4/User", &[], None).await.status, 401);
    assert_eq!(s.call("HEAD", "/health/live", &[], None).await.status, 200);
    for (method, path) in [
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/auth/check"),
        ("GET", "/nowhere"),
        ("DELETE", "/Login"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/console/"),
        ("POST", "/Login"),
    ] {
        let a = s.call(method, path, &[], None).await;
        assert_eq!(
            a.headers
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{method} {path} ({})",
            a.status
        );
    }
}

/// Wrong logins for `user` from the one address, all at once.
async fn wrong_logins(s: &Server, user: &str, n: usize) -> HashMap<u16, Vec<Value>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, user) = (Client::clone(s), user.to_string());
            tokio::spawn(async move {
                let a = client.login_attempt(&user, "wrong").await;
                (a.status, a.json)
            })
        })
        .collect();
    let mut by_status: HashMap<u16, Vec<Value>> = HashMap::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        by_status.entry(status).or_default().push(body);
    }
    by_status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_logins_cannot_overrun_the_lock() {
    let store = common::sqlite();
    let s = spawn(&store, &["--login-max-failures", "5"]);
    let by_status = wrong_logins(&s, "admin", 100).await;
    let statuses: Vec<(u16, usize)> = by_status.iter().map(|(k, v)| (*k, v.len())).collect();
    assert!(!by_status.contains_key(&200), "{statuses:?}");
    // At most 5 passwords were verified: 4 plain failures, the 5th locks.
    let failed = by_status.get(&401).map_or(0, Vec::len);
    assert!(
        failed <= 4,
        "{failed} failures answered before the lock: {statuses:?}"
    );
    assert_eq!(
        failed + by_status.get(&429).map_or(0, Vec::len),
        100,
        "{statuses:?}"
    );
    // The lock holds even for the right password.
    let a = s.login_attempt("admin", common::ADMIN_PASSWORD).await;
    assert_eq!(a.status, 429, "{}", a.json);
    assert_eq!(a.json["isAccountLocked"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_queue_answers_busy_not_later() {
    let store = common::sqlite();
    // One hashing thread and no queue: while it verifies, other logins are
    // answered 503 at once. Each login below names another user, so the
    // throttle lets them all through to the hashing.
    let s = spawn(
        &store,
        &[
            "--hash-workers",
            "1",
            "--hash-queue",
            "0",
            "--login-max-failures",
            "1000",
        ],
    );
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let client = Client::clone(&s);
            tokio::spawn(async move {
                let a = client.login_attempt(&format!("nobody-{i}"), "x").await;
                (a.status, a.headers.get("retry-after").is_some())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers.iter().all(|(st, _)| *st == 401 || *st == 503),
        "{answers:?}"
    );
    let busy: Vec<_> = answers.iter().filter(|(st, _)| *st == 503).collect();
    assert!(!busy.is_empty(), "nothing was refused: {answers:?}");
    assert!(
        busy.iter().all(|(_, retry)| *retry),
        "503 without Retry-After"
    );
    // Once it is quiet, a login goes through (as a client that retries on
    // 503 sees it: with no queue, a login meets "busy" until the thread is
    // back waiting).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = s.login_attempt("admin", common::ADMIN_PASSWORD).await;
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503, "{}", a.json);
        assert!(std::time::Instant::now() < deadline, "logins stayed busy");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
