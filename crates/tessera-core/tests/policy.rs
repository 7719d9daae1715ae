//! CONTRACT §2 row by row, each limit one second before and one after, through
//! the service on `MemoryStore` with an injected clock; and CONTRACT §4's rights.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tessera_core::check::{CheckError, Refusal};
use tessera_core::clock::{Clock, ManualClock};
use tessera_core::memory::MemoryStore;
use tessera_core::model::{Actor, EventKind, EventQuery, Role, TokenId, UserKind};
use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use tessera_core::service::{Caller, Issued, Tessera};
use tessera_core::store::Store;
use tessera_core::Error;

const T0: i64 = 1_767_225_600;
const MIN: i64 = 60;
const DAY: i64 = 86_400;
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct World {
    svc: Tessera,
    clock: Arc<ManualClock>,
    admin: Caller,
    alice: Caller,
}

async fn world() -> World {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let svc = Tessera::new(
        store,
        Policy::new(PolicyConfig::default()).unwrap(),
        clock.clone() as Arc<dyn Clock>,
    );
    let admin = svc.add_user("admin", "pw", Role::Admin).await.unwrap();
    let alice = svc.add_user("alice", "pw", Role::User).await.unwrap();
    let session = |user| Caller {
        user,
        credential: Credential::Session,
        address: None,
    };
    World {
        svc,
        clock,
        admin: session(admin),
        alice: session(alice),
    }
}

fn req(token_type: i64) -> TokenRequest {
    TokenRequest {
        name: Some("t".into()),
        token_type: Some(token_type),
        api_endpoints: (token_type == 3).then(|| vec!["/Client".to_string()]),
        ..TokenRequest::default()
    }
}

fn field_of(e: &Error) -> &str {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected a 400 naming a field, got {other:?}"),
    }
}

async fn check(w: &World, t: &Issued, method: &str, path: &str) -> Result<(), CheckError> {
    w.svc
        .checker()
        .check(t.access.expose(), method, path, LOCAL)
        .await
        .map(|_| ())
}

// ---- creation limits ----------------------------------------------------------

#[tokio::test]
async fn refreshable_scopes_default_and_limit_renewable_until() {
    let w = world().await;
    for t in [0, 2, 3, 5] {
        let issued = w.svc.create_token(&w.alice, None, &req(t)).await.unwrap();
        assert_eq!(issued.token.access_expires_at, T0 + 30 * MIN, "type {t}");
        assert_eq!(
            issued.token.renewable_until,
            Some(T0 + 90 * DAY),
            "type {t}"
        );
        assert!(issued.refresh.is_some(), "type {t} has a refresh token");
        // At the limit, fine; one second past, refused naming the field.
        let at_limit = TokenRequest {
            renewable_until: Some(T0 + 365 * DAY),
            ..req(t)
        };
        let ok = w.svc.create_token(&w.alice, None, &at_limit).await.unwrap();
        assert_eq!(ok.token.renewable_until, Some(T0 + 365 * DAY));
        let past = TokenRequest {
            renewable_until: Some(T0 + 365 * DAY + 1),
            ..req(t)
        };
        let e = w.svc.create_token(&w.alice, None, &past).await.unwrap_err();
        assert_eq!(field_of(&e), "renewableUntilTimestamp");
        assert!(e.to_string().contains("365 days"), "{e}");
        // In the past or now: refused; one second ahead: fine.
        for bad in [T0 - 1, T0] {
            let e = w
                .svc
                .create_token(
                    &w.alice,
                    None,
                    &TokenRequest {
                        renewable_until: Some(bad),
                        ..req(t)
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(field_of(&e), "renewableUntilTimestamp");
        }
        assert!(w
            .svc
            .create_token(
                &w.alice,
                None,
                &TokenRequest {
                    renewable_until: Some(T0 + 1),
                    ..req(t)
                }
            )
            .await
            .is_ok());
        // tokenExpiryTimestamp does not apply.
        let e = w
            .svc
            .create_token(
                &w.alice,
                None,
                &TokenRequest {
                    token_expiry: Some(T0 + DAY),
                    ..req(t)
                },
            )
            .await
            .unwrap_err();
        assert_eq!(field_of(&e), "tokenExpiryTimestamp");
    }
}

#[tokio::test]
async fn fixed_scopes_default_and_limit_expiry() {
    let w = world().await;
    for (t, default, max) in [(1, 30 * DAY, 365 * DAY), (4, 7 * DAY, 14 * DAY)] {
        let issued = w.svc.create_token(&w.alice, None, &req(t)).await.unwrap();
        assert_eq!(issued.token.access_expires_at, T0 + default, "type {t}");
        assert_eq!(issued.token.renewable_until, None);
        assert!(issued.refresh.is_none(), "type {t} has no refresh token");
        let ok = w
            .svc
            .create_token(
                &w.alice,
                None,
                &TokenRequest {
                    token_expiry: Some(T0 + max),
                    ..req(t)
                },
            )
            .await
            .unwrap();
        assert_eq!(ok.token.access_expires_at, T0 + max);
        let e = w
            .svc
            .create_token(
                &w.alice,
                None,
                &TokenRequest {
                    token_expiry: Some(T0 + max + 1),
                    ..req(t)
                },
            )
            .await
            .unwrap_err();
        assert_eq!(field_of(&e), "tokenExpiryTimestamp");
        assert!(
            e.to_string().contains(&format!("{} days", max / DAY)),
            "{e}"
        );
        for bad in [T0 - 1, T0] {
            let e = w
                .svc
                .create_token(
                    &w.alice,
                    None,
                    &TokenRequest {
                        token_expiry: Some(bad),
                        ..req(t)
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(field_of(&e), "tokenExpiryTimestamp");
        }
        let e = w
            .svc
            .create_token(
                &w.alice,
                None,
                &TokenRequest {
                    renewable_until: Some(T0 + DAY),
                    ..req(t)
                },
            )
            .await
            .unwrap_err();
        assert_eq!(field_of(&e), "renewableUntilTimestamp");
        // The fixed expiry is honoured to the second.
        let t1 = w
            .svc
            .create_token(
                &w.alice,
                None,
                &TokenRequest {
                    token_expiry: Some(T0 + 100),
                    ..req(t)
                },
            )
            .await
            .unwrap();
        let path = if t == 1 {
            "/scim/v2/Users"
        } else {
            "/Client/1"
        };
        w.clock.set(T0 + 99);
        assert_eq!(check(&w, &t1, "GET", path).await, Ok(()));
        w.clock.set(T0 + 100);
        assert_eq!(
            check(&w, &t1, "GET", path).await,
            Err(CheckError::Refused(Refusal::Expired))
        );
        w.clock.set(T0);
    }
}

#[tokio::test]
async fn bad_fields_are_refused_and_store_nothing() {
    let w = world().await;
    let cases: Vec<(TokenRequest, &str)> = vec![
        (
            TokenRequest {
                name: None,
                ..req(2)
            },
            "tokenName",
        ),
        (
            TokenRequest {
                name: Some("  ".into()),
                ..req(2)
            },
            "tokenName",
        ),
        (
            TokenRequest {
                name: Some("x".repeat(256)),
                ..req(2)
            },
            "tokenName",
        ),
        (
            TokenRequest {
                token_type: Some(6),
                ..req(2)
            },
            "tokenType",
        ),
        (
            TokenRequest {
                token_type: Some(-1),
                ..req(2)
            },
            "tokenType",
        ),
        (
            TokenRequest {
                api_endpoints: None,
                ..req(3)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                api_endpoints: Some(vec![]),
                ..req(3)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                api_endpoints: Some(vec!["/x".into(); 101]),
                ..req(3)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                api_endpoints: Some(vec!["FETCH /x".into()]),
                ..req(3)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                api_endpoints: Some(vec!["/Client/../Job".into()]),
                ..req(3)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                api_endpoints: Some(vec!["/commandcenter/api/Client".into()]),
                ..req(3)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                api_endpoints: Some(vec!["/Client".into()]),
                ..req(2)
            },
            "apiEndpoints",
        ),
        (
            TokenRequest {
                allowed_ips: Some(vec!["10.0.0.300".into()]),
                ..req(2)
            },
            "allowedIPs",
        ),
        (
            TokenRequest {
                allowed_ips: Some(vec!["10.0.0.9-10.0.0.1".into()]),
                ..req(2)
            },
            "allowedIPs",
        ),
        (
            TokenRequest {
                allowed_ips: Some(vec!["10.0.0.1".into(); 101]),
                ..req(2)
            },
            "allowedIPs",
        ),
    ];
    for (r, field) in cases {
        let e = w.svc.create_token(&w.alice, None, &r).await.unwrap_err();
        assert_eq!(field_of(&e), field, "{r:?}");
    }
    // 100 endpoints is the limit, not past it.
    let hundred = TokenRequest {
        api_endpoints: Some((0..100).map(|i| format!("/P{i}")).collect()),
        ..req(3)
    };
    assert!(w.svc.create_token(&w.alice, None, &hundred).await.is_ok());
    let listed = w.svc.list_tokens(&w.alice, None).await.unwrap();
    assert_eq!(listed.len(), 1, "refused requests stored nothing");
    // 0 counts as "not set" for timestamps, as Commvault clients send it.
    let zeros = TokenRequest {
        token_expiry: Some(0),
        renewable_until: Some(0),
        ..req(2)
    };
    assert!(w.svc.create_token(&w.alice, None, &zeros).await.is_ok());
}

// ---- renewal limits ---------------------------------------------------------------

#[tokio::test]
async fn renewal_is_refused_after_renewable_until() {
    let w = world().await;
    let r = TokenRequest {
        renewable_until: Some(T0 + 40 * MIN),
        ..req(2)
    };
    let t = w.svc.create_token(&w.alice, None, &r).await.unwrap();
    w.clock.set(T0 + 40 * MIN - 1);
    let renewed = w
        .svc
        .renew(t.access.expose(), t.refresh.as_ref().unwrap().expose())
        .await
        .unwrap();
    assert_eq!(
        renewed.token.renewable_until,
        Some(T0 + 40 * MIN),
        "kept across renewals"
    );
    assert_eq!(renewed.token.name, "t");
    w.clock.set(T0 + 40 * MIN);
    let e = w
        .svc
        .renew(
            renewed.access.expose(),
            renewed.refresh.as_ref().unwrap().expose(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unauthorized(m) if m.contains("renewableUntilTimestamp")),
        "{e:?}"
    );
    // Refused, not revoked: the access secret still works until it expires.
    assert_eq!(check(&w, &renewed, "GET", "/x").await, Ok(()));
}

#[tokio::test]
async fn renewal_is_refused_more_than_14_days_after_expiry() {
    let w = world().await;
    let t = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    let grace_end = T0 + 30 * MIN + 14 * DAY;
    w.clock.set(grace_end + 1);
    let e = w
        .svc
        .renew(t.access.expose(), t.refresh.as_ref().unwrap().expose())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unauthorized(m) if m.contains("14 days")),
        "{e:?}"
    );
    w.clock.set(grace_end);
    let renewed = w
        .svc
        .renew(t.access.expose(), t.refresh.as_ref().unwrap().expose())
        .await
        .unwrap();
    assert_eq!(renewed.token.access_expires_at, grace_end + 30 * MIN);
    assert_eq!(renewed.token.id, t.token.id);
}

#[tokio::test]
async fn renewal_needs_the_matching_pair() {
    let w = world().await;
    let a = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    let b = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    // b's access with a's refresh: refused, nothing revoked.
    assert!(w
        .svc
        .renew(b.access.expose(), a.refresh.as_ref().unwrap().expose())
        .await
        .is_err());
    assert!(w
        .svc
        .renew("garbage", a.refresh.as_ref().unwrap().expose())
        .await
        .is_err());
    assert!(w
        .svc
        .renew(a.access.expose(), a.access.expose())
        .await
        .is_err());
    assert_eq!(check(&w, &a, "GET", "/x").await, Ok(()));
    assert_eq!(check(&w, &b, "GET", "/x").await, Ok(()));
    assert!(w
        .svc
        .renew(a.access.expose(), a.refresh.as_ref().unwrap().expose())
        .await
        .is_ok());
}

// ---- edits ----------------------------------------------------------------------------

#[tokio::test]
async fn edits_count_limits_from_creation_and_keep_absent_fields() {
    let w = world().await;
    let t = w.svc.create_token(&w.alice, None, &req(3)).await.unwrap();
    w.clock.set(T0 + 10 * DAY);
    let ok = TokenRequest {
        renewable_until: Some(T0 + 365 * DAY),
        ..TokenRequest::default()
    };
    let edited = w.svc.edit_token(&w.alice, t.token.id, &ok).await.unwrap();
    assert_eq!(edited.renewable_until, Some(T0 + 365 * DAY));
    assert_eq!(edited.name, "t");
    assert_eq!(edited.scope.endpoint_strings(), vec!["/Client".to_string()]);
    let past = TokenRequest {
        renewable_until: Some(T0 + 365 * DAY + 1),
        ..TokenRequest::default()
    };
    let e = w
        .svc
        .edit_token(&w.alice, t.token.id, &past)
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "renewableUntilTimestamp");
    // Endpoints replace; the check follows at once.
    let eps = TokenRequest {
        api_endpoints: Some(vec!["GET /Job".into()]),
        allowed_ips: Some(vec!["10.0.0.0/8".into()]),
        ..TokenRequest::default()
    };
    w.svc.edit_token(&w.alice, t.token.id, &eps).await.unwrap();
    let ten = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let c = |ip, m, p| {
        let w = &w;
        let secret = t.access.expose().to_string();
        async move { w.svc.checker().check(&secret, m, p, ip).await.map(|_| ()) }
    };
    w.clock.set(T0 + 1);
    assert_eq!(c(ten, "GET", "/Job/1").await, Ok(()));
    assert_eq!(
        c(ten, "POST", "/Job/1").await,
        Err(CheckError::Refused(Refusal::Scope))
    );
    assert_eq!(
        c(ten, "GET", "/Client").await,
        Err(CheckError::Refused(Refusal::Scope))
    );
    assert_eq!(
        c(LOCAL, "GET", "/Job/1").await,
        Err(CheckError::Refused(Refusal::Address))
    );
    // A change of lifetime class is refused.
    let e = w
        .svc
        .edit_token(
            &w.alice,
            t.token.id,
            &TokenRequest {
                token_type: Some(1),
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "tokenType");
    // A fixed-expiry token edits its expiry against creation + max.
    let scim = w.svc.create_token(&w.alice, None, &req(1)).await.unwrap();
    let max = scim.token.created_at + 365 * DAY;
    let at_max = TokenRequest {
        token_expiry: Some(max),
        ..TokenRequest::default()
    };
    assert_eq!(
        w.svc
            .edit_token(&w.alice, scim.token.id, &at_max)
            .await
            .unwrap()
            .access_expires_at,
        max
    );
    let e = w
        .svc
        .edit_token(
            &w.alice,
            scim.token.id,
            &TokenRequest {
                token_expiry: Some(max + 1),
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "tokenExpiryTimestamp");
}

// ---- §4 rights --------------------------------------------------------------------

#[tokio::test]
async fn tokens_are_created_for_oneself_or_an_owned_service_account() {
    let w = world().await;
    let bob = w.svc.add_user("bob", "pw", Role::User).await.unwrap();
    // Nobody, not even an admin, creates a token for another person.
    for (caller, target) in [
        (&w.admin, w.alice.user.id),
        (&w.alice, bob.id),
        (&w.alice, w.admin.user.id),
    ] {
        let e = w
            .svc
            .create_token(caller, Some(target), &req(2))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    }
    // Service accounts: the owner may; another user may not; an admin may.
    let svc_acct = w
        .svc
        .create_user(&w.admin, "bot", None, Role::User, UserKind::Service)
        .await
        .unwrap();
    assert_eq!(svc_acct.owner, Some(w.admin.user.id));
    assert!(w
        .svc
        .create_token(&w.admin, Some(svc_acct.id), &req(2))
        .await
        .is_ok());
    let e = w
        .svc
        .create_token(&w.alice, Some(svc_acct.id), &req(2))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    // A service account cannot log in.
    assert!(w.svc.login("bot", "").await.is_err());
    // An access token cannot manage tokens.
    let token_caller = Caller {
        user: w.alice.user.clone(),
        credential: Credential::AccessToken,
        address: None,
    };
    for e in [
        w.svc
            .create_token(&token_caller, None, &req(2))
            .await
            .unwrap_err(),
        w.svc.list_tokens(&token_caller, None).await.unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::Forbidden(m) if m.contains("access token")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn users_manage_their_own_tokens_and_admins_anyones() {
    let w = world().await;
    let bob = w.svc.add_user("bob", "pw", Role::User).await.unwrap();
    let bob = Caller {
        user: bob,
        credential: Credential::Session,
        address: None,
    };
    let t = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    // Bob can neither list, edit nor revoke Alice's tokens; he learns nothing of them.
    assert!(matches!(
        w.svc.list_tokens(&bob, Some(w.alice.user.id)).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.svc
            .edit_token(&bob, t.token.id, &TokenRequest::named("x"))
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        w.svc.revoke_token(&bob, t.token.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(check(&w, &t, "GET", "/x").await, Ok(()));
    // The admin can.
    assert_eq!(
        w.svc
            .list_tokens(&w.admin, Some(w.alice.user.id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        w.svc
            .edit_token(&w.admin, t.token.id, &TokenRequest::named("by admin"))
            .await
            .unwrap()
            .name,
        "by admin"
    );
    w.svc.revoke_token(&w.admin, t.token.id).await.unwrap();
    assert_eq!(
        check(&w, &t, "GET", "/x").await,
        Err(CheckError::Refused(Refusal::Revoked))
    );
    assert!(matches!(
        w.svc.revoke_token(&w.admin, t.token.id).await,
        Err(Error::NotFound(_))
    ));
    // Only admins administer users.
    assert!(matches!(
        w.svc
            .create_user(&bob, "eve", Some("pw"), Role::Admin, UserKind::Person)
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.svc.list_users(&bob).await,
        Err(Error::Forbidden(_))
    ));
}

// ---- sessions ---------------------------------------------------------------------

#[tokio::test]
async fn sessions_slide_and_expire_after_30_idle_minutes() {
    let w = world().await;
    let (s, user) = w.svc.login("alice", "pw").await.unwrap();
    assert_eq!(user.name, "alice");
    assert!(w.svc.login("alice", "wrong").await.is_err());
    assert!(w.svc.login("nobody", "pw").await.is_err());
    w.clock.set(T0 + 30 * MIN - 1);
    assert!(
        w.svc.session_user(s.expose()).await.is_ok(),
        "used: slides to T0+30m-1"
    );
    w.clock.set(T0 + 60 * MIN - 2);
    assert!(w.svc.session_user(s.expose()).await.is_ok());
    w.clock.set(T0 + 90 * MIN - 2);
    assert!(
        w.svc.session_user(s.expose()).await.is_err(),
        "idle 30 minutes: gone"
    );
    let (s2, _) = w.svc.login("alice", "pw").await.unwrap();
    w.svc.logout(s2.expose(), None).await.unwrap();
    assert!(w.svc.session_user(s2.expose()).await.is_err());
}

// ---- the check --------------------------------------------------------------------

#[tokio::test]
async fn the_check_refuses_malformed_and_traversal_without_the_store() {
    let w = world().await;
    let one_touch = w.svc.create_token(&w.alice, None, &req(4)).await.unwrap();
    for path in [
        "/Client/5",
        "/commandcenter/api/client/5?x=1",
        "//webconsole/api//MediaAgent/",
        "/V4/ServerGroup/1",
    ] {
        assert_eq!(check(&w, &one_touch, "GET", path).await, Ok(()), "{path}");
    }
    for path in ["/Job", "/ClientX", "/Clients", "/V4/Server"] {
        assert_eq!(
            check(&w, &one_touch, "GET", path).await,
            Err(CheckError::Refused(Refusal::Scope)),
            "{path}"
        );
    }
    for path in [
        "/Client/../Job",
        "/Client/%2e%2e/Job",
        "/Client%2fJob",
        "/Client/..;/Job",
        "/Client\\Job",
    ] {
        assert!(
            matches!(
                check(&w, &one_touch, "GET", path).await,
                Err(CheckError::Refused(Refusal::Path(_)))
            ),
            "{path}"
        );
    }
    // Malformed and typo'd tokens; and a prefix-less token while no legacy token exists.
    let mut typo = one_touch.access.expose().to_string();
    typo.pop();
    typo.push('!');
    for bad in ["", "Bearer x", &typo, "some-legacy-looking-token"] {
        let r = w.svc.checker().check(bad, "GET", "/Client", LOCAL).await;
        assert_eq!(r, Err(CheckError::Refused(Refusal::Malformed)), "{bad:?}");
    }
    // A refresh token is not an access token.
    let all = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    let r = w
        .svc
        .checker()
        .check(all.refresh.unwrap().expose(), "GET", "/x", LOCAL)
        .await;
    assert_eq!(r, Err(CheckError::Refused(Refusal::Malformed)));
    // SCIM and Hyperscale prefixes.
    let scim = w.svc.create_token(&w.alice, None, &req(1)).await.unwrap();
    assert_eq!(check(&w, &scim, "POST", "/scim/v2/Users").await, Ok(()));
    assert_eq!(
        check(&w, &scim, "GET", "/scimx").await,
        Err(CheckError::Refused(Refusal::Scope))
    );
    let hs = w.svc.create_token(&w.alice, None, &req(5)).await.unwrap();
    assert_eq!(check(&w, &hs, "GET", "/V4/Hyperscale/Nodes").await, Ok(()));
    assert_eq!(
        check(&w, &hs, "GET", "/V4/Other").await,
        Err(CheckError::Refused(Refusal::Scope))
    );
}

#[tokio::test]
async fn the_check_applies_allowed_ips_for_both_families() {
    let w = world().await;
    let r = TokenRequest {
        allowed_ips: Some(vec![
            "192.168.1.0/24".into(),
            "2001:db8::/32".into(),
            "10.0.0.1-10.0.0.5".into(),
        ]),
        ..req(2)
    };
    let t = w.svc.create_token(&w.alice, None, &r).await.unwrap();
    let at = |ip: IpAddr| {
        let w = &w;
        let s = t.access.expose().to_string();
        async move { w.svc.checker().check(&s, "GET", "/x", ip).await.map(|_| ()) }
    };
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 168, 1, 9).to_ipv6_mapped());
    for ok in [
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 255)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
        IpAddr::V6("2001:db8::7".parse::<Ipv6Addr>().unwrap()),
        mapped,
    ] {
        assert_eq!(at(ok).await, Ok(()), "{ok}");
    }
    for bad in [
        IpAddr::V4(Ipv4Addr::new(192, 168, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6)),
        IpAddr::V6("2001:db9::1".parse::<Ipv6Addr>().unwrap()),
        LOCAL,
    ] {
        assert_eq!(
            at(bad).await,
            Err(CheckError::Refused(Refusal::Address)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn last_used_is_coalesced_off_the_request_path() {
    let w = world().await;
    let t = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    assert_eq!(w.svc.checker().take_usage(), vec![]);
    for _ in 0..3 {
        assert_eq!(check(&w, &t, "GET", "/x").await, Ok(()));
    }
    // The check wrote nothing; one pending use, however many checks.
    let listed = w.svc.list_tokens(&w.alice, None).await.unwrap();
    assert_eq!(listed[0].last_used_at, None);
    assert_eq!(w.svc.checker().usage_backlog(), 1);
    assert_eq!(w.svc.checker().flush_usage().await.unwrap(), 1);
    assert_eq!(w.svc.checker().usage_backlog(), 0);
    let listed = w.svc.list_tokens(&w.alice, None).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(T0));
    // Within the minute: nothing more to write; a minute later: one more.
    w.clock.set(T0 + 59);
    check(&w, &t, "GET", "/x").await.unwrap();
    assert_eq!(w.svc.checker().take_usage(), vec![]);
    w.clock.set(T0 + 60);
    check(&w, &t, "GET", "/x").await.unwrap();
    assert_eq!(uses(&w), vec![(t.token.id, T0 + 60)]);
    // A refused check is not a use.
    w.clock.set(T0 + 200);
    assert!(check(&w, &t, "GET", "/Client/../x").await.is_err());
    w.clock.set(T0 + 1800);
    assert_eq!(
        check(&w, &t, "GET", "/x").await,
        Err(CheckError::Refused(Refusal::Expired))
    );
    assert_eq!(w.svc.checker().take_usage(), vec![]);
}

#[tokio::test]
async fn last_used_tracking_can_be_turned_off() {
    let w = world().await;
    let t = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    w.svc.checker().set_usage_tracking(false);
    check(&w, &t, "GET", "/x").await.unwrap();
    assert_eq!(w.svc.checker().take_usage(), vec![]);
    w.svc.checker().set_usage_tracking(true);
    check(&w, &t, "GET", "/x").await.unwrap();
    assert_eq!(uses(&w), vec![(t.token.id, T0)]);
}

/// The uses the checks noted, as (token, time).
fn uses(w: &World) -> Vec<(TokenId, i64)> {
    w.svc
        .checker()
        .take_usage()
        .iter()
        .map(|u| (u.id, u.at))
        .collect()
}

/// A token allowed from an address it was not used from before is one
/// `token.new_address`, written off the check's path by the flush; its
/// first address is none, and a second node that meets a known pair says
/// nothing. The address of the latest use is `last_used_ip`.
#[tokio::test]
async fn a_new_address_is_one_event_written_by_the_flush() {
    let w = world().await;
    let t = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    let (a, b): (std::net::IpAddr, std::net::IpAddr) =
        ("10.0.0.1".parse().unwrap(), "2001:db8::9".parse().unwrap());
    let from = |ip| w.svc.checker().check(t.access.expose(), "GET", "/x", ip);
    let new_addresses = || async {
        w.svc
            .store()
            .events(&EventQuery::newest(100))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event.kind == EventKind::NewAddress)
            .map(|e| e.event)
            .collect::<Vec<_>>()
    };
    from(a).await.unwrap();
    from(a).await.unwrap();
    assert!(new_addresses().await.is_empty(), "the check writes nothing");
    w.svc.flush_usage().await.unwrap();
    assert!(
        new_addresses().await.is_empty(),
        "a first address is no new one"
    );
    let listed = w.svc.list_tokens(&w.alice, None).await.unwrap();
    assert_eq!(listed[0].last_used_ip, Some(a));
    w.clock.set(T0 + 60);
    from(b).await.unwrap();
    from(b).await.unwrap();
    from(a).await.unwrap();
    w.svc.flush_usage().await.unwrap();
    let events = new_addresses().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].address, Some(b));
    assert_eq!(events[0].actor, Actor::Token(t.token.id));
    assert_eq!(events[0].token_id, Some(t.token.id));
    assert_eq!(events[0].user_id, Some(w.alice.user.id));
    assert_eq!(events[0].at, T0 + 60);
    let listed = w.svc.list_tokens(&w.alice, None).await.unwrap();
    assert_eq!(
        listed[0].last_used_ip,
        Some(b),
        "the first use of the minute"
    );
    // Another node over the same store: the pair is known there.
    let other = Tessera::new(
        w.svc.store().clone(),
        Policy::new(PolicyConfig::default()).unwrap(),
        w.clock.clone() as Arc<dyn Clock>,
    );
    other
        .checker()
        .check(t.access.expose(), "GET", "/x", b)
        .await
        .unwrap();
    other.flush_usage().await.unwrap();
    w.svc.flush_usage().await.unwrap();
    assert_eq!(new_addresses().await.len(), 1);
    // Refused checks are no use from anywhere.
    let c: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    w.clock.set(T0 + 100_000);
    assert!(from(c).await.is_err());
    w.svc.flush_usage().await.unwrap();
    assert_eq!(new_addresses().await.len(), 1);
}

/// A rate limit at its boundaries: `requests` checks a window, the next
/// refused until the window ends (one second before: still refused, with
/// `reset` 1), allowed again from the next window; a refused check is no
/// use; edit removes the limit.
#[tokio::test]
async fn a_rate_limit_holds_to_the_second() {
    use tessera_core::check::Quota;
    use tessera_core::policy::RateLimitRequest;
    let w = world().await;
    assert_eq!(T0 % 10, 0, "T0 starts a window of 10 s");
    let limited = TokenRequest {
        rate_limit: Some(RateLimitRequest::Set {
            requests: Some(2),
            per_seconds: Some(10),
        }),
        ..req(2)
    };
    let t = w.svc.create_token(&w.alice, None, &limited).await.unwrap();
    let at = || w.svc.checker().check(t.access.expose(), "GET", "/x", LOCAL);
    let quota = |r: Result<tessera_core::check::Allowed, CheckError>| r.unwrap().quota();
    assert_eq!(
        quota(at().await),
        Some(Quota {
            limit: 2,
            remaining: 1,
            reset: 10
        })
    );
    w.clock.set(T0 + 3);
    assert_eq!(
        quota(at().await),
        Some(Quota {
            limit: 2,
            remaining: 0,
            reset: 7
        })
    );
    assert_eq!(
        at().await.unwrap_err(),
        CheckError::Refused(Refusal::RateLimited { limit: 2, reset: 7 })
    );
    w.clock.set(T0 + 9);
    assert_eq!(
        at().await.unwrap_err(),
        CheckError::Refused(Refusal::RateLimited { limit: 2, reset: 1 })
    );
    w.clock.set(T0 + 10);
    assert_eq!(
        quota(at().await),
        Some(Quota {
            limit: 2,
            remaining: 1,
            reset: 10
        })
    );
    // Other tokens, other counts; an unlimited token has no quota.
    let free = w.svc.create_token(&w.alice, None, &req(2)).await.unwrap();
    let r = w
        .svc
        .checker()
        .check(free.access.expose(), "GET", "/x", LOCAL)
        .await;
    assert_eq!(r.unwrap().quota(), None);
    // Bad figures are 400s naming the figure, never clamped.
    for (requests, per, field) in [
        (Some(0), Some(10), "rateLimit.requests"),
        (Some(1_000_001), Some(10), "rateLimit.requests"),
        (Some(5), Some(0), "rateLimit.perSeconds"),
        (Some(5), Some(86_401), "rateLimit.perSeconds"),
        (None, Some(10), "rateLimit.requests"),
        (Some(5), None, "rateLimit.perSeconds"),
        (Some(-1), Some(10), "rateLimit.requests"),
    ] {
        let bad = TokenRequest {
            rate_limit: Some(RateLimitRequest::Set {
                requests,
                per_seconds: per,
            }),
            ..req(2)
        };
        match w.svc.create_token(&w.alice, None, &bad).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{requests:?}/{per:?}: {other:?}"),
        }
    }
    // An edit without rateLimit keeps it; `null` removes it.
    let kept = w
        .svc
        .edit_token(&w.alice, t.token.id, &TokenRequest::named("renamed"))
        .await
        .unwrap();
    assert!(kept.rate_limit.is_some());
    let removed = TokenRequest {
        rate_limit: Some(RateLimitRequest::Remove),
        ..TokenRequest::default()
    };
    let edited = w
        .svc
        .edit_token(&w.alice, t.token.id, &removed)
        .await
        .unwrap();
    assert_eq!(edited.rate_limit, None);
}

/// A large limit is taken from the store a share at a time (a hundredth,
/// at most 100): two nodes over one store never allow more than the limit,
/// refuse early by less than their unused shares, and write the count once
/// per share, not once per check (nor once per refused check: a node that
/// saw the count reach the limit refuses from memory until the window
/// ends). A limit under 200 stays exact; an edit of the limit starts the
/// node's share afresh.
#[tokio::test]
async fn a_large_rate_limit_is_counted_a_share_at_a_time_and_never_exceeded() {
    use tessera_core::model::RateLimit;
    use tessera_core::policy::RateLimitRequest;
    assert_eq!(
        RateLimit {
            requests: 199,
            per_seconds: 1
        }
        .share(),
        1
    );
    assert_eq!(
        RateLimit {
            requests: 200,
            per_seconds: 1
        }
        .share(),
        2
    );
    assert_eq!(
        RateLimit {
            requests: 1_000,
            per_seconds: 1
        }
        .share(),
        10
    );
    assert_eq!(
        RateLimit {
            requests: 1_000_000,
            per_seconds: 1
        }
        .share(),
        100
    );
    let w = world().await;
    let limited = TokenRequest {
        rate_limit: Some(RateLimitRequest::Set {
            requests: Some(1_000),
            per_seconds: Some(86_400),
        }),
        ..req(2)
    };
    let t = w.svc.create_token(&w.alice, None, &limited).await.unwrap();
    let other = Tessera::new(
        w.svc.store().clone(),
        Policy::new(PolicyConfig::default()).unwrap(),
        w.clock.clone() as Arc<dyn Clock>,
    );
    let window = T0.div_euclid(86_400);
    let count = || {
        w.svc
            .store()
            .count_use(t.token.id, window, (window + 1) * 86_400, 0)
    };
    w.svc
        .checker()
        .check(t.access.expose(), "GET", "/x", LOCAL)
        .await
        .unwrap();
    assert_eq!(
        count().await.unwrap(),
        10,
        "the first check took a share of 10"
    );
    // Alternate nodes, so that each holds a share the other cannot use.
    let alternate = |checks: usize| {
        let (a, b, secret) = (&w.svc, &other, t.access.expose());
        async move {
            let mut allowed = 0;
            for i in 0..checks {
                let node = if i % 2 == 0 { a } else { b };
                allowed += usize::from(
                    node.checker()
                        .check(secret, "GET", "/x", LOCAL)
                        .await
                        .is_ok(),
                );
            }
            allowed
        }
    };
    let allowed = 1 + alternate(1_100).await;
    assert!(allowed <= 1_000, "never more than the limit: {allowed}");
    assert!(
        allowed > 1_000 - 2 * 9,
        "early by less than two unused shares: {allowed}"
    );
    // Shares of 10, and past the limit each node refuses from memory: the
    // store counted the limit and one share more per node, not each check.
    let counted = count().await.unwrap();
    assert!((1_000..=1_000 + 2 * 10).contains(&counted), "{counted}");
    // An edit to a small limit: exact from the next check on.
    let small = TokenRequest {
        rate_limit: Some(RateLimitRequest::Set {
            requests: Some(3),
            per_seconds: Some(60),
        }),
        ..TokenRequest::default()
    };
    w.svc
        .edit_token(&w.alice, t.token.id, &small)
        .await
        .unwrap();
    w.clock.set(T0 + 120);
    assert_eq!(
        alternate(10).await,
        3,
        "a small limit is exact across nodes"
    );
}
