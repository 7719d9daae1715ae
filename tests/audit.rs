//! The audit trail end to end (issue 14): every kind of event appears once,
//! with the actor, the target and the client address the server resolved;
//! who may read whose trail; paging; bad queries; the retention sweep; one
//! JSON log line per event. On every backend compiled in.

mod common;

use std::time::{Duration, Instant};

use common::{all_stores, base64, launch, ADMIN_PASSWORD};
use serde_json::{json, Value};

/// A client address the proxy (this test, on a trusted loopback) forwards.
fn addr(n: u8) -> String {
    format!("203.0.113.{n}")
}

/// An event expected: kind, actor user, actor token, user, token, address.
type Expected = (
    &'static str,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
);

/// Whether `e` has exactly these fields (`None`: absent).
fn is(
    e: &Value,
    kind: &str,
    actor_user: Option<u64>,
    actor_token: Option<u64>,
    user: Option<u64>,
    token: Option<u64>,
    address: Option<&str>,
) -> bool {
    e["event"] == kind
        && e["actorUserId"].as_u64() == actor_user
        && e["actorTokenId"].as_u64() == actor_token
        && e["userId"].as_u64() == user
        && e["tokenId"].as_u64() == token
        && e["address"].as_str() == address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_appears_once_with_its_actor_target_and_address() {
    for store in all_stores().await {
        let s = launch(&store)
            .args([
                "--trusted-proxies",
                "127.0.0.1",
                "--login-max-failures",
                "2",
                "--log-format",
                "json",
            ])
            .keep_log_lines(2000)
            .start()
            .unwrap();
        let name = &store.name;
        let from = |n: u8| addr(n);
        // Requests as a proxy sends them: the client's address appended.
        let call = |method: &'static str,
                    path: String,
                    session: Option<String>,
                    n: u8,
                    body: Option<Value>| {
            let s = &s;
            async move {
                let ip = from(n);
                let mut headers = vec![("X-Forwarded-For", ip.as_str())];
                let auth;
                if let Some(a) = session {
                    auth = a;
                    headers.push(("Authtoken", auth.as_str()));
                }
                s.call(method, &path, &headers, body).await
            }
        };
        let login = |user: &'static str, pw: String, n: u8| {
            let body = json!({"username": user, "password": base64(&pw)});
            call("POST", "/Login".into(), None, n, Some(body))
        };

        let a = login("admin", ADMIN_PASSWORD.into(), 1).await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);
        let admin = a.json["token"].as_str().unwrap().to_string();
        let admin_id = a.json["userId"].as_u64().unwrap();
        let body = json!({"userName": "alice", "password": base64("pw-alice"), "role": "user", "kind": "person"});
        let a = call(
            "POST",
            "/V4/User".into(),
            Some(admin.clone()),
            2,
            Some(body),
        )
        .await;
        let alice_id = a.json["userId"].as_u64().unwrap();
        assert_eq!(login("alice", "wrong".into(), 3).await.status, 401);
        let a = login("alice", "pw-alice".into(), 4).await;
        let alice = a.json["token"].as_str().unwrap().to_string();
        let body = json!({"tokenName": "ci", "tokenType": 0});
        let a = call(
            "POST",
            "/V4/AccessToken".into(),
            Some(alice.clone()),
            5,
            Some(body),
        )
        .await;
        let t = common::Token::from_info(&a.json["tokenInfo"]);
        let body = json!({"tokenName": "ci 2"});
        let a = call(
            "PUT",
            format!("/V4/AccessToken/{}", t.id),
            Some(alice.clone()),
            6,
            Some(body),
        )
        .await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);
        let pair = json!({"accessToken": t.access, "refreshToken": t.refresh});
        let a = call(
            "POST",
            "/V4/AccessToken/Renew".into(),
            None,
            7,
            Some(pair.clone()),
        )
        .await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);
        // The old pair again: a replay, the chain revoked.
        assert_eq!(
            call("POST", "/V4/AccessToken/Renew".into(), None, 8, Some(pair))
                .await
                .status,
            401
        );
        let t2 = s.token(&alice, json!({"tokenName": "t2"})).await;
        let a = call(
            "DELETE",
            format!("/V4/AccessToken/{}", t2.id),
            Some(alice.clone()),
            9,
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);
        let t3 = s.token(&alice, json!({"tokenName": "t3"})).await;
        let form = format!("token={}", t3.access);
        let ip = from(10);
        let a = s
            .send(
                "POST",
                "/oauth/revoke",
                &[("X-Forwarded-For", ip.as_bytes())],
                Some(("application/x-www-form-urlencoded", form.as_bytes())),
            )
            .await;
        assert_eq!(a.status, 200, "{name}: {}", a.text);
        assert_eq!(
            call("POST", "/Logout".into(), Some(alice.clone()), 11, None)
                .await
                .status,
            200
        );
        let (bob_id, _) = s.person(&admin, "bob", "user").await;
        assert_eq!(login("bob", "x".into(), 12).await.status, 401);
        assert_eq!(
            login("bob", "y".into(), 12).await.status,
            429,
            "the second failure locks"
        );
        let a = call(
            "DELETE",
            format!("/V4/User/{bob_id}"),
            Some(admin.clone()),
            13,
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);

        let all = s.all_events(&admin, "").await;
        let (a_, b_) = (Some(alice_id), Some(bob_id));
        let ad = Some(admin_id);
        let expected: Vec<Expected> = vec![
            ("user.created", None, None, ad, None, None),
            ("login.succeeded", ad, None, ad, None, Some(from(1))),
            ("user.created", ad, None, a_, None, Some(from(2))),
            ("login.failed", None, None, a_, None, Some(from(3))),
            ("login.succeeded", a_, None, a_, None, Some(from(4))),
            ("token.created", a_, None, a_, Some(t.id), Some(from(5))),
            ("token.edited", a_, None, a_, Some(t.id), Some(from(6))),
            (
                "token.renewed",
                None,
                Some(t.id),
                a_,
                Some(t.id),
                Some(from(7)),
            ),
            (
                "token.reuse_detected",
                None,
                Some(t.id),
                a_,
                Some(t.id),
                Some(from(8)),
            ),
            ("token.revoked", a_, None, a_, Some(t2.id), Some(from(9))),
            (
                "token.revoked",
                None,
                Some(t3.id),
                a_,
                Some(t3.id),
                Some(from(10)),
            ),
            ("session.ended", a_, None, a_, None, Some(from(11))),
            ("login.locked", None, None, b_, None, Some(from(12))),
            ("user.deleted", ad, None, b_, None, Some(from(13))),
        ];
        for (kind, au, at, u, tk, ip) in &expected {
            let n = all
                .iter()
                .filter(|e| is(e, kind, *au, *at, *u, *tk, ip.as_deref()))
                .count();
            assert_eq!(
                n, 1,
                "{name}: {kind} {au:?} {at:?} {u:?} {tk:?} {ip:?} once in {all:#?}"
            );
        }
        assert_eq!(
            all.iter().filter(|e| e["event"] == "login.failed").count(),
            3,
            "{name}: alice's one and bob's two"
        );
        assert_eq!(
            all.iter()
                .filter(|e| e["event"] == "login.failed" && e["userId"].as_u64() == b_)
                .count(),
            2
        );
        let failed = all.iter().find(|e| e["event"] == "login.failed").unwrap();
        assert_eq!(failed["outcome"], "failure");
        assert!(all
            .iter()
            .any(|e| e["event"] == "token.created" && e["detail"] == "ci"));
        let ids: Vec<u64> = all.iter().map(|e| e["eventId"].as_u64().unwrap()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] > w[1]),
            "{name}: newest first, each once"
        );

        // Paged three at a time: the same trail.
        let mut paged = Vec::new();
        let mut q = "limit=3".to_string();
        loop {
            let a = s.events(&admin, &q).await;
            assert_eq!(a.status, 200, "{name}: {}", a.json);
            let page = a.json["events"].as_array().unwrap().clone();
            assert!(page.len() <= 3);
            paged.extend(page);
            match a.json["nextCursor"].as_str() {
                Some(c) => q = format!("limit=3&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(paged, all, "{name}");

        // Alice's trail: what concerns her or what she did, nothing of bob's.
        let alice2 = s.login("alice", "pw-alice").await;
        let mine = s.all_events(&alice2, "").await;
        assert!(!mine.is_empty());
        for e in &mine {
            assert!(
                e["userId"].as_u64() == a_ || e["actorUserId"].as_u64() == a_,
                "{name}: alice sees only her own: {e}"
            );
        }
        assert_eq!(
            s.all_events(&alice2, &format!("userId={alice_id}"))
                .await
                .len(),
            mine.len()
        );
        let theirs = s.events(&alice2, &format!("userId={bob_id}")).await;
        assert_eq!(theirs.status, 403, "{name}: {}", theirs.json);
        let theirs = s.events(&alice2, &format!("userId={admin_id}")).await;
        assert_eq!(theirs.status, 403, "{name}");
        // A token filter narrows her own trail; it never widens it.
        let of_t = s.all_events(&alice2, &format!("tokenId={}", t.id)).await;
        assert_eq!(
            of_t.len(),
            4,
            "{name}: created, edited, renewed, reuse: {of_t:#?}"
        );
        let admins = s.all_events(&alice2, "tokenId=999999").await;
        assert!(admins.is_empty());
        let bobs = s.all_events(&admin, &format!("userId={bob_id}")).await;
        assert_eq!(bobs.len(), 6, "{name}: created, logged in, failed twice, locked, deleted: a deleted user's trail stays for admins: {bobs:#?}");
        let since = all[2]["timestamp"].as_i64().unwrap();
        let recent = s.all_events(&admin, &format!("since={since}")).await;
        assert!(recent
            .iter()
            .all(|e| e["timestamp"].as_i64().unwrap() >= since));
        // An access token is no credential for the trail.
        let t4 = s.token(&alice2, json!({"tokenName": "t4"})).await;
        let a = s
            .call(
                "GET",
                "/V4/AccessToken/Events",
                &[("Authorization", &format!("Bearer {}", t4.access))],
                None,
            )
            .await;
        assert_eq!(a.status, 403, "{name}: {}", a.json);
        assert_eq!(s.events("", "").await.status, 401);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "cursor=-1",
            "since=soon",
            "userId=1&userid=2",
        ] {
            let a = s.events(&admin, bad).await;
            assert_eq!(a.status, 400, "{name}: {bad}: {}", a.json);
            assert_eq!(a.json["errorCode"], 400, "{name}: {bad}: {}", a.json);
        }

        // One JSON log line per event, on the audit target.
        let lines = s.log_lines();
        let audit: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "tessera::audit" && l["fields"]["message"] == "audit")
            .collect();
        assert_eq!(
            audit
                .iter()
                .filter(|l| l["fields"]["event"] == "token.reuse_detected")
                .count(),
            1,
            "{name}: {lines:#?}"
        );
        assert_eq!(
            audit
                .iter()
                .filter(|l| l["fields"]["event"] == "token.created")
                .count(),
            4
        );
        let failed = audit
            .iter()
            .find(|l| l["fields"]["event"] == "login.failed")
            .unwrap();
        assert_eq!(failed["fields"]["address"], from(3), "{failed}");
        assert_eq!(failed["fields"]["detail"], "alice");
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("pw-alice") || l.contains(&t.access)),
            "{name}: no secret in the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_audit_retention_are_swept() {
    for store in all_stores().await {
        let s = launch(&store)
            .args(["--audit-retention", "1s", "--sweep-interval", "1s"])
            .start()
            .unwrap();
        let admin = s.admin().await;
        let first = s.all_events(&admin, "").await;
        assert!(
            first.iter().any(|e| e["event"] == "login.succeeded"),
            "{first:#?}"
        );
        let oldest = first.last().unwrap()["eventId"].as_u64().unwrap();
        // Reading writes no event; poll until the sweep has taken the first ones.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = s.all_events(&admin, "").await;
            if now.iter().all(|e| e["eventId"].as_u64().unwrap() != oldest) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: never swept: {now:#?}",
                store.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[test]
fn a_legacy_import_is_in_the_trail() {
    let store = common::sqlite();
    // The first start creates the admin; the import names them.
    let s = launch(&store).start().unwrap();
    s.stop();
    common::import_legacy(
        &store,
        &[
            json!({"userName": "admin", "tokenName": "old", "tokenType": 1,
                 "accessToken": "legacy-secret-0001", "tokenExpiryTimestamp": 4_000_000_000i64}),
        ],
    );
    let s = launch(&store).start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let admin = s.admin().await;
        let all = s.all_events(&admin, "").await;
        let imports: Vec<&Value> = all
            .iter()
            .filter(|e| e["event"] == "legacy.imported")
            .collect();
        assert_eq!(imports.len(), 1, "{all:#?}");
        assert_eq!(imports[0]["detail"], "1 tokens");
        assert!(imports[0].get("actorUserId").is_none());
    });
}

/// Polls `f` until it gives `Some`, for at most 30 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_from_a_new_address_is_one_event_and_its_last_address_is_listed() {
    for store in all_stores().await {
        let name = store.name;
        let s = launch(&store)
            .args([
                "--trusted-proxies",
                "127.0.0.1",
                "--last-used-flush",
                "200ms",
            ])
            .start()
            .unwrap();
        let admin = s.admin().await;
        let t = s.token(&admin, json!({"tokenName": "roaming"})).await;
        // A second token, whose new address later tells that a flush after
        // every check below has run (a flush takes all that is pending).
        let marker = s.token(&admin, json!({"tokenName": "marker"})).await;
        let check_from = |token: &common::Token, ip: &'static str| {
            let bearer = format!("Bearer {}", token.access);
            let s = &s;
            async move {
                let headers: [(&str, &[u8]); 4] = [
                    ("Authorization", bearer.as_bytes()),
                    ("X-Original-Method", b"GET"),
                    ("X-Original-URI", b"/Client"),
                    ("X-Forwarded-For", ip.as_bytes()),
                ];
                s.send("GET", "/auth/check", &headers, None).await.status
            }
        };
        let listed_ip = |id: u64| {
            let s = &s;
            let admin = &admin;
            async move {
                let tokens = s.tokens(admin, None).await;
                let mine = tokens
                    .iter()
                    .find(|x| x["tokenId"].as_u64() == Some(id))
                    .cloned();
                mine.map(|m| m["lastUsedIp"].as_str().unwrap_or_default().to_string())
            }
        };
        assert_eq!(
            listed_ip(t.id).await.as_deref(),
            Some(""),
            "{name}: never used"
        );
        assert_eq!(check_from(&t, "198.51.100.7").await, 200);
        assert_eq!(check_from(&marker, "198.51.100.8").await, 200);
        for (id, ip) in [(t.id, "198.51.100.7"), (marker.id, "198.51.100.8")] {
            eventually("the first address listed", || async {
                (listed_ip(id).await.as_deref() == Some(ip)).then_some(())
            })
            .await;
        }
        let new_address = |id: u64| {
            let s = &s;
            let admin = &admin;
            async move {
                s.all_events(admin, &format!("tokenId={id}"))
                    .await
                    .into_iter()
                    .filter(|e| e["event"] == "token.new_address")
                    .collect::<Vec<Value>>()
            }
        };
        assert!(
            new_address(t.id).await.is_empty(),
            "{name}: a first use is no new address"
        );
        for _ in 0..3 {
            assert_eq!(check_from(&t, "2001:db8::77").await, 200);
        }
        let events = eventually("token.new_address", || async {
            let e = new_address(t.id).await;
            (!e.is_empty()).then_some(e)
        })
        .await;
        // Known pairs again, then the marker from a new place: once its
        // event is in, every check before it has been flushed.
        assert_eq!(check_from(&t, "2001:db8::77").await, 200);
        assert_eq!(check_from(&t, "198.51.100.7").await, 200);
        assert_eq!(check_from(&marker, "203.0.113.99").await, 200);
        eventually("the marker's new address", || async {
            (!new_address(marker.id).await.is_empty()).then_some(())
        })
        .await;
        let again = new_address(t.id).await;
        assert_eq!(again.len(), 1, "{name}: {again:#?}");
        let e = &events[0];
        assert_eq!(e["address"], "2001:db8::77", "{name}: {e}");
        assert_eq!(e["actorTokenId"].as_u64(), Some(t.id));
        assert_eq!(e["tokenId"].as_u64(), Some(t.id));
        assert!(e["userId"].as_u64().is_some());
        assert_eq!(e["outcome"], "success");
        // A refused check (an address the token does not allow) is no use.
        let fenced = s
            .token(
                &admin,
                json!({"tokenName": "fenced", "allowedIPs": ["10.0.0.0/8"]}),
            )
            .await;
        let bearer = format!("Bearer {}", fenced.access);
        let headers: [(&str, &[u8]); 4] = [
            ("Authorization", bearer.as_bytes()),
            ("X-Original-Method", b"GET"),
            ("X-Original-URI", b"/Client"),
            ("X-Forwarded-For", b"192.0.2.1"),
        ];
        assert_eq!(
            s.send("GET", "/auth/check", &headers, None).await.status,
            403
        );
        let listed = s.tokens(&admin, None).await;
        let f = listed
            .iter()
            .find(|x| x["tokenId"].as_u64() == Some(fenced.id))
            .unwrap();
        assert_eq!(f["lastUsedIp"], "", "{name}: {f}");
    }
}

/// The trail's address comes from the one place the check reads it: behind
/// a trusted proxy, an unreadable forwarded address (garbage, an empty
/// hop, a second line that does not parse, two `X-Real-IP` where that
/// header is chosen) refuses the call with a 400 and records nothing; no
/// fallback to the peer's address (CONTRACT §6.6: only an absent header
/// means the peer itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_forwarded_address_refuses_the_call_and_records_nothing() {
    for (header_flag, cases) in [
        (
            "x-forwarded-for",
            vec![
                vec![("X-Forwarded-For", "not-an-address")],
                vec![("X-Forwarded-For", "203.0.113.1,,")],
                vec![
                    ("X-Forwarded-For", "203.0.113.1"),
                    ("X-Forwarded-For", "bogus"),
                ],
            ],
        ),
        (
            "x-real-ip",
            vec![
                vec![("X-Real-IP", "nope")],
                vec![("X-Real-IP", "203.0.113.1"), ("X-Real-IP", "203.0.113.2")],
            ],
        ),
    ] {
        let store = common::sqlite();
        let s = launch(&store)
            .args([
                "--trusted-proxies",
                "127.0.0.1",
                "--client-ip-header",
                header_flag,
            ])
            .start()
            .unwrap();
        let admin = s.admin().await;
        let before = s.all_events(&admin, "").await.len();
        for extra in cases {
            let mut headers = vec![("Authtoken", admin.as_str())];
            headers.extend(extra.iter().copied());
            let body = json!({"tokenName": "via a broken proxy"});
            let a = s
                .call("POST", "/V4/AccessToken", &headers, Some(body))
                .await;
            assert_eq!(a.status, 400, "{header_flag}: {extra:?}: {}", a.json);
            let login = json!({"username": "admin", "password": base64(ADMIN_PASSWORD)});
            let a = s.call("POST", "/Login", &extra, Some(login)).await;
            assert_eq!(a.status, 400, "{header_flag}: login {extra:?}: {}", a.json);
        }
        let after = s.all_events(&admin, "").await;
        assert_eq!(
            after.len(),
            before,
            "{header_flag}: nothing recorded: {after:#?}"
        );
        assert!(s.tokens(&admin, None).await.is_empty(), "nothing created");
    }
}
