//! The REST API of CONTRACT §5 against a real `tessera` process, on every store
//! compiled in (SQLite always; PostgreSQL and Redis when reachable, and
//! required under CI): the lifecycle of each scope type, every refusal of
//! §2–§4 through HTTP, rights, legacy tokens, bad input that changes nothing.

mod common;

use common::{all_stores, spawn, Token};
use serde_json::json;

/// The exact answer to any edit of a legacy token (CONTRACT §5).
fn legacy_edit_refusal() -> serde_json::Value {
    let message = "This token was upgraded from an older format and cannot be edited.";
    json!({
        "errorCode": 409,
        "errorMessage": message,
        "error": {"errorCode": 409, "errorMessage": message},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_of_every_scope_type() {
    for store in all_stores().await {
        let s = spawn(&store, &[]);
        let admin = s.admin().await;
        // (tokenType, a path it may call, a path it may not, extra fields)
        let cases: Vec<(i64, &str, &str, serde_json::Value)> = vec![
            (2, "/Job/1", "", json!({})),
            (0, "/Anything", "", json!({})),
            (1, "/scim/v2/Users", "/Client", json!({})),
            (
                3,
                "/Client/5",
                "/Job",
                json!({"apiEndpoints": ["GET /Client", "/Job/7"]}),
            ),
            (4, "/V4/ServerGroup/2", "/Job", json!({})),
            (5, "/V4/Hyperscale/Nodes", "/Client", json!({})),
        ];
        for (t, allowed, refused, extra) in cases {
            let mut body = json!({"tokenName": format!("type {t}"), "tokenType": t});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let a = s.create_token(&admin, body).await;
            assert_eq!(
                a.status, 200,
                "[{}] create type {t}: {}",
                store.name, a.json
            );
            assert_eq!(a.json["error"]["errorCode"], 0);
            let token = Token::from_info(&a.json["tokenInfo"]);
            let (id, access) = (token.id, token.access.clone());
            assert_eq!(token.info["tokenType"], t);
            let refreshable = matches!(t, 0 | 2 | 3 | 5);
            assert_eq!(
                token.refresh.is_some(),
                refreshable,
                "type {t} refresh token"
            );
            assert_eq!(
                s.check(&access, "GET", allowed).await,
                200,
                "[{}] type {t} on {allowed}",
                store.name
            );
            if !refused.is_empty() {
                assert_eq!(
                    s.check(&access, "GET", refused).await,
                    403,
                    "type {t} on {refused}"
                );
            }
            // Listed, without secrets.
            let listed = s.tokens(&admin, None).await;
            let mine = listed.iter().find(|x| x["tokenId"] == id).expect("listed");
            assert!(mine.get("accessToken").is_none() && mine.get("refreshToken").is_none());
            // Edit the name.
            let e = s
                .edit_token(&admin, id, json!({"tokenName": "renamed"}))
                .await;
            assert_eq!(e.status, 200, "{}", e.json);
            assert_eq!(e.json["tokenInfo"]["tokenName"], "renamed");
            assert!(e.json["tokenInfo"].get("accessToken").is_none());
            if let Some(refresh) = &token.refresh {
                // Renew: both secrets rotate, the old pair stops at once.
                let r = s.renew(&access, refresh).await;
                assert_eq!(r.status, 200, "{}", r.json);
                assert_eq!(r.json["tokenId"], id);
                let new_access = r.json["accessToken"].as_str().unwrap().to_string();
                let new_refresh = r.json["refreshToken"].as_str().unwrap().to_string();
                assert_ne!(new_access, access);
                assert_eq!(s.check(&access, "GET", allowed).await, 401);
                assert_eq!(s.check(&new_access, "GET", allowed).await, 200);
                // Reuse detection: the old pair again revokes the whole token.
                let replay = s.renew(&access, refresh).await;
                assert_eq!(replay.status, 401, "{}", replay.json);
                assert_eq!(
                    s.check(&new_access, "GET", allowed).await,
                    401,
                    "chain revoked"
                );
                let again = s.renew(&new_access, &new_refresh).await;
                assert_eq!(again.status, 401);
            } else {
                let r = s.renew(&access, "tess_rt_1_x").await;
                assert_eq!(r.status, 401);
                // Delete.
                let d = s.delete_token(&admin, id).await;
                assert_eq!(d.status, 200, "{}", d.json);
                assert_eq!(d.json, json!({"errorCode": 0, "errorMessage": ""}));
                assert_eq!(s.check(&access, "GET", allowed).await, 401);
                let d = s.delete_token(&admin, id).await;
                assert_eq!(d.status, 404);
            }
        }
        // The metrics saw it all.
        let m = s.metrics_text().await;
        assert!(m.contains("tessera_reuse_detections_total 4"), "{m}");
        assert!(m.contains("tessera_checks_total{outcome=\"allowed\"}"));
        // No secret in the log.
        assert!(!s.log_text().contains("tess_at_") && !s.log_text().contains("tess_rt_"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_of_spec_2_through_http() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = 86_400;
    let cases = [
        (
            json!({"tokenName": "x", "tokenType": 2, "renewableUntilTimestamp": now + 366 * day}),
            "renewableUntilTimestamp",
        ),
        (
            json!({"tokenName": "x", "tokenType": 2, "renewableUntilTimestamp": now - 10}),
            "renewableUntilTimestamp",
        ),
        (
            json!({"tokenName": "x", "tokenType": 2, "tokenExpiryTimestamp": now + day}),
            "tokenExpiryTimestamp",
        ),
        (
            json!({"tokenName": "x", "tokenType": 1, "tokenExpiryTimestamp": now + 366 * day}),
            "tokenExpiryTimestamp",
        ),
        (
            json!({"tokenName": "x", "tokenType": 4, "tokenExpiryTimestamp": now + 15 * day}),
            "tokenExpiryTimestamp",
        ),
        (
            json!({"tokenName": "x", "tokenType": 4, "renewableUntilTimestamp": now + day}),
            "renewableUntilTimestamp",
        ),
        (json!({"tokenName": "x", "tokenType": 3}), "apiEndpoints"),
        (
            json!({"tokenName": "x", "tokenType": 3, "apiEndpoints": (0..101).map(|i| format!("/P{i}")).collect::<Vec<_>>()}),
            "apiEndpoints",
        ),
        (json!({"tokenName": "x", "tokenType": 9}), "tokenType"),
        (json!({"tokenType": 2}), "tokenName"),
        (
            json!({"tokenName": "x", "allowedIPs": ["10.0.0.300"]}),
            "allowedIPs",
        ),
    ];
    for (body, field) in cases {
        let a = s.create_token(&admin, body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.json);
        assert_eq!(a.json["field"], field, "{body}: {}", a.json);
        assert!(a.json["errorMessage"].as_str().unwrap().contains(field));
        assert_ne!(a.json["errorCode"], 0);
        assert_ne!(a.json["error"]["errorCode"], 0);
    }
    assert!(
        s.tokens(&admin, None).await.is_empty(),
        "nothing was stored"
    );
    // At the limits, fine.
    let ok = s
        .create_token(
            &admin,
            json!({"tokenName": "x", "tokenType": 4, "tokenExpiryTimestamp": now + 13 * day}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    // allowedIPs: used from outside the list → 403.
    let t = s
        .token(
            &admin,
            json!({"tokenName": "ip", "allowedIPs": ["192.0.2.0/24"]}),
        )
        .await;
    assert_eq!(s.check(&t.access, "GET", "/Job").await, 403);
    let t = s
        .token(
            &admin,
            json!({"tokenName": "ip", "allowedIPs": ["127.0.0.1", "::1"]}),
        )
        .await;
    assert_eq!(s.check(&t.access, "GET", "/Job").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_of_spec_4() {
    for store in all_stores().await {
        let s = spawn(&store, &[]);
        let admin = s.admin().await;
        let (alice_id, alice) = s.person(&admin, "alice", "user").await;
        let (bob_id, bob) = s.person(&admin, "bob", "user").await;
        // Nobody creates a token for another person, admins included.
        for (caller, target) in [(&admin, alice_id), (&alice, bob_id)] {
            let a = s
                .create_token(caller, json!({"tokenName": "x", "userId": target}))
                .await;
            assert_eq!(a.status, 403, "[{}] {}", store.name, a.json);
        }
        // A user cannot list, edit or delete another user's tokens.
        let t = s.token(&alice, json!({"tokenName": "alice's"})).await;
        let id = t.id;
        assert_eq!(s.list_tokens(&bob, Some(alice_id)).await.status, 403);
        let a = s
            .edit_token(&bob, id, json!({"tokenName": "mine now"}))
            .await;
        assert_eq!(a.status, 404);
        assert_eq!(s.delete_token(&bob, id).await.status, 404);
        assert_eq!(s.check(&t.access, "GET", "/Job").await, 200);
        // An admin lists, edits and revokes anyone's.
        assert_eq!(s.tokens(&admin, Some(alice_id)).await.len(), 1);
        let a = s
            .edit_token(&admin, id, json!({"tokenName": "by admin"}))
            .await;
        assert_eq!(a.status, 200);
        // An access token cannot manage tokens.
        let bearer = format!("Bearer {}", t.access);
        let a = s.create_token(&bearer, json!({"tokenName": "x"})).await;
        assert_eq!(a.status, 403, "{}", a.json);
        assert!(a.json["errorMessage"]
            .as_str()
            .unwrap()
            .contains("access token"));
        let a = s
            .call(
                "DELETE",
                &format!("/V4/AccessToken/{id}"),
                &[("Authorization", &bearer)],
                None,
            )
            .await;
        assert_eq!(a.status, 403);
        assert_eq!(s.delete_token(&admin, id).await.status, 200);
        // A service account's owner creates its tokens; nobody else but an admin.
        let robot = s.service_account(&admin, "robot").await;
        let a = s
            .create_token(&admin, json!({"tokenName": "robot's", "userId": robot}))
            .await;
        assert_eq!(a.status, 200, "{}", a.json);
        assert_eq!(a.json["tokenInfo"]["userId"], robot);
        let a = s
            .create_token(&alice, json!({"tokenName": "x", "userId": robot}))
            .await;
        assert_eq!(a.status, 403);
        // Only admins administer users; deleting a user stops their tokens.
        assert_eq!(s.list_users(&alice).await.status, 403);
        let t = s.token(&bob, json!({"tokenName": "bob's"})).await;
        let a = s.delete_user(&admin, bob_id).await;
        assert_eq!(a.status, 200, "{}", a.json);
        assert_eq!(s.check(&t.access, "GET", "/Job").await, 401);
        assert_eq!(s.user_names(&admin).await, ["admin", "alice", "robot"]);
        // Logout ends the session.
        assert_eq!(s.logout(&alice).await.status, 200);
        assert_eq!(
            s.call("POST", "/WhoAmI", &[("Authtoken", &alice)], None)
                .await
                .status,
            401
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commvault_client_request_shapes() {
    // cvpysdk 11.x: base64 password, extra login fields, `Authtoken: QSDK …`,
    // `Authtoken: Bearer …`, `<root>//V4/AccessToken/?userId=N`, extra fields.
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let pw = common::base64(common::ADMIN_PASSWORD);
    let login = s
        .call(
            "POST",
            "/webconsole/api/Login",
            &[("Accept", "application/json")],
            Some(json!({"domain": "", "username": "admin", "password": pw, "commserver": "", "deviceId": "abc", "clientType": 30})),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.json);
    let session = login.json["token"].as_str().unwrap().to_string();
    assert!(session.starts_with("QSDK "));
    assert_eq!(login.json["userName"], "admin");
    let who = s
        .call(
            "GET",
            "/commandcenter/api/WhoAmI",
            &[("Authtoken", &session)],
            None,
        )
        .await;
    assert_eq!(who.status, 200);
    assert_eq!(who.json["user"]["userName"], "admin");
    let uid = login.json["userId"].as_u64().unwrap();
    let created = s
        .call(
            "POST",
            "/commandcenter/api//V4/AccessToken",
            &[("Authtoken", &session)],
            Some(json!({"tokenName": "cv", "tokenType": 3, "apiEndpoints": ["GET /Client"], "mode": 1, "renewableUntilTimestamp": 0})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let listed = s
        .call(
            "GET",
            &format!("/commandcenter/api//V4/AccessToken/?userId={uid}"),
            &[("Authtoken", &session)],
            None,
        )
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["tokens"].as_array().unwrap().len(), 1);
    // The access token in cvpysdk's header form, and bare session tokens.
    let bearer = format!(
        "Bearer {}",
        Token::from_info(&created.json["tokenInfo"]).access
    );
    let who = s
        .call("POST", "/WhoAmI", &[("Authtoken", &bearer)], None)
        .await;
    assert_eq!(
        who.status, 403,
        "a Custom GET /Client token does not cover /WhoAmI: {}",
        who.json
    );
    let bare = session.trim_start_matches("QSDK ").to_string();
    assert_eq!(
        s.call("GET", "/whoami", &[("Authtoken", &bare)], None)
            .await
            .status,
        200
    );
    // Failed login: Commvault's errList shape; then a lock-out that says so.
    let mut last = None;
    for _ in 0..5 {
        last = Some(s.login_attempt("admin", "wrong").await);
    }
    let locked = last.unwrap();
    assert_eq!(locked.status, 429, "{}", locked.json);
    assert_eq!(locked.json["isAccountLocked"], true);
    assert!(locked.json["remainingLockTime"].as_u64().unwrap() > 0);
    assert!(locked.json["errList"][0]["errLogMessage"].is_string());
    // Even the right password is refused while locked.
    let right = s.login_attempt("admin", common::ADMIN_PASSWORD).await;
    assert_eq!(right.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let before = s.tokens(&admin, None).await.len();
    let auth = [("Authtoken", admin.as_bytes())];
    let raw = |ct: &'static str, body: String| {
        let s = &s;
        async move {
            s.send(
                "POST",
                "/V4/AccessToken",
                &auth,
                Some((ct, body.as_bytes())),
            )
            .await
            .status
        }
    };
    // Over 64 KiB → 413.
    let big = json!({"tokenName": "x".repeat(70 * 1024)}).to_string();
    assert_eq!(raw("application/json", big).await, 413);
    // Malformed JSON, a wrong type → 400 naming the field.
    assert_eq!(
        raw("application/json", "{\"tokenName\": ".into()).await,
        400
    );
    let a = s
        .create_token(&admin, json!({"tokenName": "x", "tokenType": {"a": 1}}))
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json["field"], "tokenType");
    // Another content type → 415.
    assert_eq!(raw("text/plain", "tokenName=x".into()).await, 415);
    // Unknown or non-numeric ids.
    let a = s.edit_token(&admin, "abc", json!({"tokenName": "y"})).await;
    assert_eq!(a.status, 400);
    assert_eq!(s.delete_token(&admin, 999999).await.status, 404);
    // No credential, a bogus one.
    let x = json!({"tokenName": "x"});
    assert_eq!(s.create_token("", x.clone()).await.status, 401);
    assert_eq!(s.create_token("QSDK tess_ss_nope", x).await.status, 401);
    // Unknown route, wrong method.
    assert_eq!(s.call("GET", "/V4/Nothing", &[], None).await.status, 404);
    assert_eq!(
        s.call("PATCH", "/V4/AccessToken", &[("Authtoken", &admin)], None)
            .await
            .status,
        405
    );
    // None of it changed anything.
    assert_eq!(s.tokens(&admin, None).await.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_tokens_import_check_and_refuse_edits() {
    for store in all_stores().await {
        // Import with the CLI while no server runs, then serve.
        let far = 4_102_444_800i64; // 2100-01-01
                                    // The admin must exist first: a server's first start creates it.
        drop(spawn(&store, &[]));
        let out = common::run_import(
            &store,
            &[
                json!({"userName": "admin", "tokenName": "old one", "tokenType": 4, "tokenExpiryTimestamp": far, "accessToken": "0123456789ABCDEFOLDTOKEN"}),
                json!({"userName": "admin", "tokenName": "old two", "tokenType": 3, "apiEndpoints": ["GET /Job"], "tokenExpiryTimestamp": far,
                       "accessTokenSha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}),
            ],
        );
        assert!(
            out.status.success(),
            "[{}] {}",
            store.name,
            String::from_utf8_lossy(&out.stderr)
        );
        // A file with a bad line imports nothing and names the line.
        let out = common::run_import(&store, &[json!({"userName": "admin"})]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));

        let s = spawn(&store, &[]);
        let admin = s.admin().await;
        assert_eq!(
            s.check("0123456789ABCDEFOLDTOKEN", "GET", "/Client/3")
                .await,
            200,
            "[{}]",
            store.name
        );
        assert_eq!(
            s.check("0123456789ABCDEFOLDTOKEN", "GET", "/Job").await,
            403
        );
        assert_eq!(s.check("abc", "GET", "/Job/1").await, 200);
        assert_eq!(s.check("abc", "POST", "/Job/1").await, 403);
        let tokens = s.tokens(&admin, None).await;
        let old = tokens.iter().find(|t| t["tokenName"] == "old one").unwrap();
        assert_eq!(old["isLegacy"], true);
        let id = old["tokenId"].as_u64().unwrap();
        let e = s.edit_token(&admin, id, json!({"tokenName": "new"})).await;
        assert_eq!(e.status, 409);
        assert_eq!(e.json, legacy_edit_refusal());
        let d = s.delete_token(&admin, id).await;
        assert_eq!(d.status, 200);
        assert_eq!(
            s.check("0123456789ABCDEFOLDTOKEN", "GET", "/Client/3")
                .await,
            401
        );
    }
}

/// Every kind of edit of a legacy token, by its owner or an admin, is
/// answered 409 with exactly CONTRACT §5's message, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_token_edit_answers_the_exact_message() {
    for store in all_stores().await {
        // The first start creates the admin, whom the legacy token belongs to.
        drop(spawn(&store, &[]));
        common::import_legacy(
            &store,
            &[
                json!({"userName": "admin", "tokenName": "old", "tokenType": 3, "apiEndpoints": ["GET /Job"],
                       "tokenExpiryTimestamp": 4_102_444_800i64, "accessToken": "0123456789ABCDEFLEGACYEDIT"}),
            ],
        );
        let s = spawn(&store, &[]);
        let admin = s.admin().await;
        let listed = s.tokens(&admin, None).await;
        let id = listed[0]["tokenId"].as_u64().unwrap();
        for edit in [
            json!({"tokenName": "renamed"}),
            json!({"apiEndpoints": ["/Client"]}),
            json!({"allowedIPs": ["10.0.0.0/8"]}),
            json!({"tokenExpiryTimestamp": 4_102_444_000i64}),
            json!({}),
        ] {
            let a = s.edit_token(&admin, id, edit.clone()).await;
            assert_eq!(a.status, 409, "[{}] {edit}: {}", store.name, a.json);
            assert_eq!(a.json, legacy_edit_refusal(), "[{}] {edit}", store.name);
        }
        assert_eq!(s.tokens(&admin, None).await, listed, "nothing changed");
        assert_eq!(
            s.check("0123456789ABCDEFLEGACYEDIT", "GET", "/Job/1").await,
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_revocation() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let access = s.token(&admin, json!({"tokenName": "x"})).await.access;
    // A form body sent without a Content-Type, as some clients do.
    let untyped = |path: &'static str, session: Option<String>, token: String| {
        let s = &s;
        async move {
            let headers: Vec<(&str, &[u8])> = session
                .iter()
                .map(|v| ("Authtoken", v.as_bytes()))
                .collect();
            let body = format!("token={token}");
            s.send("POST", path, &headers, Some(("", body.as_bytes())))
                .await
        }
    };
    let r = s.introspect(&admin, &access).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["username"], "admin");
    // A non-admin, or no session: refused.
    let (_, alice) = s.person(&admin, "alice", "user").await;
    let r = untyped("/oauth/introspect", Some(alice), access.clone()).await;
    assert_eq!(r.status, 403);
    // RFC 7009: the token is its own credential; unknown tokens are fine.
    let r = untyped("/oauth/revoke", None, "tess_at_1_nonsense".into()).await;
    assert_eq!(r.status, 200);
    let r = untyped("/oauth/revoke", None, access.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.check(&access, "GET", "/Job").await, 401);
    let r = untyped("/oauth/introspect", Some(admin.clone()), access.clone()).await;
    assert_eq!(r.json, json!({"active": false}));
    // Health.
    assert_eq!(s.live().await, 200);
    assert_eq!(s.ready().await, 200);
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds
/// (waiting for the clock to pass a limit, not a fixed sleep).
async fn poll<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the limit never passed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_limits_through_http() {
    // Short policy figures, so the limits pass within the test.
    let store = common::sqlite();
    let s = spawn(&store, &["--access-lifetime", "1s", "--session-idle", "2s"]);
    let admin = s.admin().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // An access token stops at its expiry: 401 invalid_token.
    let t = s
        .token(
            &admin,
            json!({"tokenName": "short", "renewableUntilTimestamp": now + 3}),
        )
        .await;
    let access = t.access.clone();
    poll(10, || async {
        (s.check(&access, "GET", "/Job").await == 401).then_some(())
    })
    .await;
    // Renewal works until renewableUntil, then says which limit passed.
    let renewed = s
        .renew(&access, t.refresh.as_deref().expect("refreshable"))
        .await;
    assert_eq!(
        renewed.status, 200,
        "renewal after expiry, within the limits: {}",
        renewed.json
    );
    let mut pair = (
        renewed.json["accessToken"].as_str().unwrap().to_string(),
        renewed.json["refreshToken"].as_str().unwrap().to_string(),
    );
    // Keep renewing (each success rotates the pair) until the limit passes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let ans = s.renew(&pair.0, &pair.1).await;
        if ans.status != 200 {
            break ans;
        }
        pair = (
            ans.json["accessToken"].as_str().unwrap().to_string(),
            ans.json["refreshToken"].as_str().unwrap().to_string(),
        );
        assert!(
            std::time::Instant::now() < deadline,
            "renewableUntil never passed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(refused.status, 401);
    assert!(
        refused.json["errorMessage"]
            .as_str()
            .unwrap()
            .contains("renewableUntilTimestamp"),
        "{}",
        refused.json
    );
    // A session in use stays alive past its idle limit (it slides)...
    let admin = s.admin().await;
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        assert_eq!(s.whoami(&admin).await.status, 200);
    }
    // ...and one left idle ends after it. (Any use would slide it, so this
    // waits out the idle limit instead of polling.)
    let (_, alice) = s.person(&admin, "alice", "user").await;
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    assert_eq!(s.whoami(&alice).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_endpoint_reports_the_configured_figures() {
    const DAY: i64 = 86_400;
    let store = common::sqlite();
    let s = spawn(
        &store,
        &[
            "--renewable-default",
            "10d",
            "--renewable-max",
            "20d",
            "--scim-max",
            "40d",
            "--one-touch-default",
            "36h",
            "--access-lifetime",
            "45m",
        ],
    );
    let admin = s.admin().await;
    let (_, alice) = s.person(&admin, "alice", "user").await;
    // The scopes a token may have, whatever the figures.
    let scopes = json!([
        {"tokenType": 0, "name": "All", "refreshable": true, "takesEndpoints": false},
        {"tokenType": 1, "name": "Microsoft SCIM", "refreshable": false, "takesEndpoints": false},
        {"tokenType": 2, "name": "All", "refreshable": true, "takesEndpoints": false, "sameAs": 0},
        {"tokenType": 3, "name": "Custom", "refreshable": true, "takesEndpoints": true},
        {"tokenType": 4, "name": "1-Touch recovery", "refreshable": false, "takesEndpoints": false},
        {"tokenType": 5, "name": "Hyperscale", "refreshable": true, "takesEndpoints": false},
    ]);
    let expected = json!({
        "renewableUntil": {"defaultSeconds": 10 * DAY, "maxSeconds": 20 * DAY},
        "tokenExpiry": {
            "1": {"defaultSeconds": 30 * DAY, "maxSeconds": 40 * DAY},
            "4": {"defaultSeconds": 36 * 3600, "maxSeconds": 14 * DAY},
        },
        "accessTokenSeconds": 45 * 60,
        "renewalGraceSeconds": 14 * DAY,
        "scopes": scopes,
    });
    // Any session (not only an admin's), at any spelling and web root.
    for (session, path) in [
        (&admin, "/V4/AccessToken/Policy"),
        (&alice, "/v4/accesstoken/policy/"),
        (&alice, "/webconsole/api//V4/AccessToken/POLICY"),
    ] {
        let a = s.call("GET", path, &[("Authtoken", session)], None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.json);
        assert_eq!(a.json, expected, "{path}");
    }
    // No session, or not a valid one: 401.
    for headers in [&[][..], &[("Authtoken", "QSDK nonsense")][..]] {
        let a = s.call("GET", "/V4/AccessToken/Policy", headers, None).await;
        assert_eq!(a.status, 401, "{}", a.json);
        assert_eq!(a.json["errorCode"], 401);
    }
    // An access token is no session: 403, as for listing tokens.
    let t = s
        .token(&alice, json!({"tokenName": "all", "tokenType": 0}))
        .await;
    let bearer = format!("Bearer {}", t.access);
    let a = s
        .call(
            "GET",
            "/V4/AccessToken/Policy",
            &[("Authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.json);
    // Only GET (and HEAD): "Policy" is no token id, so every other method
    // is a 405 (it used to be taken for an id and answer 400).
    for (method, status) in [("POST", 405), ("PUT", 405), ("DELETE", 405)] {
        let a = s
            .call(
                method,
                "/V4/AccessToken/Policy",
                &[("Authtoken", &alice)],
                Some(json!({})),
            )
            .await;
        assert_eq!(a.status, status, "{method}: {}", a.json);
    }
    // The figures reported are the ones creation applies.
    let info = &t.info;
    let created = info["createdTimestamp"].as_i64().unwrap();
    assert_eq!(info["renewableUntilTimestamp"], created + 10 * DAY);
    assert_eq!(info["tokenExpiryTimestamp"], created + 45 * 60);
    let t = s
        .token(&alice, json!({"tokenName": "scim", "tokenType": 1}))
        .await;
    let created = t.info["createdTimestamp"].as_i64().unwrap();
    assert_eq!(t.info["tokenExpiryTimestamp"], created + 30 * DAY);
    let t = s
        .create_token(
            &alice,
            json!({"tokenName": "too late", "renewableUntilTimestamp": created + 20 * DAY + 60}),
        )
        .await;
    assert_eq!(t.status, 400, "{}", t.json);
    assert_eq!(t.json["field"], "renewableUntilTimestamp");

    // Unconfigured: CONTRACT §2's defaults.
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let admin = s.admin().await;
    let a = s.token_policy(&admin).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(
        a.json,
        json!({
            "renewableUntil": {"defaultSeconds": 90 * DAY, "maxSeconds": 365 * DAY},
            "tokenExpiry": {
                "1": {"defaultSeconds": 30 * DAY, "maxSeconds": 365 * DAY},
                "4": {"defaultSeconds": 7 * DAY, "maxSeconds": 14 * DAY},
            },
            "accessTokenSeconds": 30 * 60,
            "renewalGraceSeconds": 14 * DAY,
            "scopes": scopes,
        })
    );
}

/// An allowed check says when the token lapses (issue 14), for a proxy to
/// pass on: the access expiry always, the renewal limit for refreshable
/// scopes only; a renewal moves the expiry, and a refusal says neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_check_says_when_the_token_lapses() {
    let store = common::sqlite();
    let s = common::spawn(&store, &[]);
    let admin = s.admin().await;
    let header = |a: &common::Answer, h: &str| {
        a.headers
            .get(h)
            .map(|v| v.to_str().unwrap().parse::<i64>().unwrap())
    };
    let all = s
        .token(&admin, json!({"tokenName": "all", "tokenType": 0}))
        .await;
    let a = s
        .try_check_answer(&all.access, "GET", "/Client")
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(
        header(&a, "x-tessera-token-expires"),
        all.info["tokenExpiryTimestamp"].as_i64()
    );
    assert_eq!(
        header(&a, "x-tessera-renewable-until"),
        all.info["renewableUntilTimestamp"].as_i64()
    );
    let scim = s
        .token(&admin, json!({"tokenName": "scim", "tokenType": 1}))
        .await;
    let a = s
        .try_check_answer(&scim.access, "GET", "/scim/Users")
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(
        header(&a, "x-tessera-token-expires"),
        scim.info["tokenExpiryTimestamp"].as_i64()
    );
    assert_eq!(
        header(&a, "x-tessera-renewable-until"),
        None,
        "not refreshable"
    );
    let refused = s
        .try_check_answer(&scim.access, "GET", "/Client")
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(header(&refused, "x-tessera-token-expires"), None);
    let renewed = s.renew(&all.access, all.refresh.as_deref().unwrap()).await;
    assert_eq!(renewed.status, 200, "{}", renewed.json);
    let access = renewed.json["accessToken"].as_str().unwrap();
    let a = s.try_check_answer(access, "GET", "/Client").await.unwrap();
    assert_eq!(
        header(&a, "x-tessera-token-expires"),
        renewed.json["tokenExpiryTimestamp"].as_i64()
    );
}
