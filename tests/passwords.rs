//! Passwords (issue 14): a user changes their own (the old one required,
//! every other session ended, wrong guesses counted as failed logins), an
//! admin sets another's, an operator sets one with `tessera user passwd`;
//! each is one `user.password_changed` in the trail. On every backend.

mod common;

use std::process::Command;

use common::{all_stores, base64, launch};
use serde_json::{json, Value};

/// `POST path` as `session` with a password body.
async fn post(s: &common::Server, session: &str, path: &str, body: Value) -> common::Answer {
    s.call("POST", path, &[("Authtoken", session)], Some(body))
        .await
}

fn change(old: &str, new: &str) -> Value {
    json!({"oldPassword": base64(old), "newPassword": base64(new)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changes_their_password_and_their_other_sessions_end() {
    for store in all_stores().await {
        let name = store.name;
        let s = launch(&store)
            .args(["--login-max-failures", "5"])
            .start()
            .unwrap();
        let admin = s.admin().await;
        let (alice_id, s1) = s.person(&admin, "alice", "user").await;
        let s2 = s.login("alice", "pw-alice").await;
        let p = "/V4/User/Password";
        // Refused, changing nothing: a wrong old password, bad fields.
        let a = post(&s, &s1, p, change("wrong", "new-pw")).await;
        assert_eq!(a.status, 403, "{name}: {}", a.json);
        for (body, field) in [
            (json!({"oldPassword": base64("pw-alice")}), "newPassword"),
            (json!({"newPassword": base64("x")}), "oldPassword"),
            (
                json!({"oldPassword": base64("pw-alice"), "newPassword": ""}),
                "newPassword",
            ),
            (
                json!({"oldPassword": "%%%", "newPassword": base64("x")}),
                "oldPassword",
            ),
            (
                json!({"oldPassword": base64("pw-alice"), "newPassword": 5}),
                "newPassword",
            ),
        ] {
            let a = post(&s, &s1, p, body.clone()).await;
            assert_eq!(a.status, 400, "{name}: {body}: {}", a.json);
            assert_eq!(a.json["field"], field, "{name}: {body}: {}", a.json);
        }
        assert_eq!(s.whoami(&s2).await.status, 200, "{name}: nothing changed");
        let t = s.token(&s1, json!({"tokenName": "t"})).await;
        let bearer = format!("Bearer {}", t.access);
        let a = s
            .call(
                "POST",
                p,
                &[("Authorization", &bearer)],
                Some(change("pw-alice", "x")),
            )
            .await;
        assert_eq!(a.status, 403, "{name}: an access token may not: {}", a.json);
        assert_eq!(post(&s, "", p, change("pw-alice", "x")).await.status, 401);

        let a = post(&s, &s1, p, change("pw-alice", "alice-new")).await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);
        assert_eq!(
            s.whoami(&s1).await.status,
            200,
            "{name}: this session stays"
        );
        assert_eq!(
            s.whoami(&s2).await.status,
            401,
            "{name}: the other one ends"
        );
        assert_eq!(s.login_attempt("alice", "pw-alice").await.status, 401);
        s.login("alice", "alice-new").await;
        assert_eq!(
            s.check(&t.access, "GET", "/Client").await,
            200,
            "{name}: tokens are not sessions: they stay"
        );

        // Guessing the old password through a session is a failed login,
        // counted per user and per address: this address has failed twice
        // already (the first wrong guess, the old password at login), so
        // the third guess is its fifth failure and locks.
        for expected in [403, 403, 429] {
            let a = post(&s, &s1, p, change("guess", "x")).await;
            assert_eq!(a.status, expected, "{name}: {}", a.json);
        }
        assert_eq!(
            s.login_attempt("alice", "alice-new").await.status,
            429,
            "{name}: locked"
        );

        let mine = s.all_events(&admin, &format!("userId={alice_id}")).await;
        let changed: Vec<&Value> = mine
            .iter()
            .filter(|e| e["event"] == "user.password_changed")
            .collect();
        assert_eq!(changed.len(), 1, "{name}: {mine:#?}");
        assert_eq!(changed[0]["actorUserId"].as_u64(), Some(alice_id));
        assert_eq!(changed[0]["address"], "127.0.0.1");
        assert_eq!(
            mine.iter().filter(|e| e["event"] == "login.locked").count(),
            1,
            "{name}: {mine:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_another_persons_password() {
    for store in all_stores().await {
        let name = store.name;
        let s = launch(&store).start().unwrap();
        let admin = s.admin().await;
        let admin_id = s.whoami(&admin).await.json["user"]["userId"]
            .as_u64()
            .unwrap();
        let (bob_id, bob) = s.person(&admin, "bob", "user").await;
        let (_, carol) = s.person(&admin, "carol", "user").await;
        let svc = s.service_account(&admin, "robot").await;
        let reset = |id: u64| format!("/V4/User/{id}/Password");
        let new = json!({"newPassword": base64("bob-new")});
        for (session, path, body, status) in [
            (&carol, reset(bob_id), new.clone(), 403),
            (&admin, reset(admin_id), new.clone(), 403),
            (&admin, reset(svc), new.clone(), 400),
            (&admin, reset(987_654), new.clone(), 404),
            (
                &admin,
                "/V4/User/abc/Password".to_string(),
                new.clone(),
                400,
            ),
            (&admin, reset(bob_id), json!({}), 400),
        ] {
            let a = post(&s, session, &path, body.clone()).await;
            assert_eq!(a.status, status, "{name}: {path} {body}: {}", a.json);
        }
        assert_eq!(s.whoami(&bob).await.status, 200, "{name}: nothing changed");
        let a = post(&s, &admin, &reset(bob_id), new).await;
        assert_eq!(a.status, 200, "{name}: {}", a.json);
        assert_eq!(
            s.whoami(&bob).await.status,
            401,
            "{name}: every session ends"
        );
        assert_eq!(s.whoami(&admin).await.status, 200);
        s.login("bob", "bob-new").await;
        let trail = s.all_events(&admin, &format!("userId={bob_id}")).await;
        let changed: Vec<&Value> = trail
            .iter()
            .filter(|e| e["event"] == "user.password_changed")
            .collect();
        assert_eq!(changed.len(), 1, "{name}: {trail:#?}");
        assert_eq!(changed[0]["actorUserId"].as_u64(), Some(admin_id));
        assert_eq!(changed[0]["userId"].as_u64(), Some(bob_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_passwd_sets_a_password_at_the_command_line() {
    let store = common::sqlite();
    let s = launch(&store).start().unwrap();
    let admin = s.admin().await;
    let (dave_id, dave) = s.person(&admin, "dave", "user").await;
    let passwd = |user: &str, pw: Option<&str>| {
        let mut c = Command::new(common::binary());
        c.args(["user", "passwd", user, "--store", &store.url])
            .args(&store.args);
        match pw {
            Some(p) => c.env("TESSERA_PASSWORD", p),
            None => c.env_remove("TESSERA_PASSWORD"),
        };
        c.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let out = passwd("dave", Some("dave-new"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dave"));
    assert_eq!(s.whoami(&dave).await.status, 401, "his sessions end");
    s.login("dave", "dave-new").await;
    // Refused, with a message and a failing exit: no password, no such user.
    let out = passwd("dave", None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_PASSWORD"));
    let out = passwd("nobody", Some("x"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trail = s.all_events(&admin, &format!("userId={dave_id}")).await;
    let changed: Vec<&Value> = trail
        .iter()
        .filter(|e| e["event"] == "user.password_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{trail:#?}");
    assert!(
        changed[0].get("actorUserId").is_none(),
        "the command line is nobody"
    );
}
