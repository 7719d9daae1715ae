//! Faults: an unreachable server fails within the timeout instead of
//! hanging; a connection killed mid-run fails calls with `Unavailable` (never
//! a wrong answer), and the same store recovers by itself.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::model::{NewUser, Role, UserKind};
use tessera_core::store::{Store, TokenStore, UserStore};
use tessera_core::testkit::new_token;
use tessera_core::StoreError;
use tessera_redis::{RedisConfig, RedisStore, RedisStoreError};

/// A bound on hanging, not a performance target.
const HANG_BOUND: Duration = Duration::from_secs(10);

/// Short timeouts, under a prefix that is never written (these stores
/// cannot connect, or are refused before they do).
fn quick(url: String) -> RedisConfig {
    RedisConfig {
        url,
        prefix: "tess-test-unwritten:".into(),
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        ..RedisConfig::default()
    }
}

#[tokio::test]
async fn a_closed_port_fails_within_the_timeout() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let start = Instant::now();
    let r = RedisStore::connect(quick(format!("redis://127.0.0.1:{port}"))).await;
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(RedisStoreError::Connect(_))), "{r:?}");
    assert!(elapsed < HANG_BOUND, "took {elapsed:?}");
    // As the core sees it: unavailable.
    let e: StoreError = r.unwrap_err().into();
    assert!(matches!(e, StoreError::Unavailable(_)));
}

#[tokio::test]
async fn an_unanswering_address_fails_within_the_timeout() {
    // A TEST-NET-1 address (RFC 5737): nothing answers there; depending on
    // the network the attempt is refused at once or times out.
    let start = Instant::now();
    let r = RedisStore::connect(quick("redis://192.0.2.1:6379".into())).await;
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(RedisStoreError::Connect(_))), "{r:?}");
    assert!(elapsed < HANG_BOUND, "took {elapsed:?}");
}

#[tokio::test]
async fn a_bad_url_or_prefix_is_refused() {
    let r = RedisStore::connect(quick("not a url".into())).await;
    assert!(matches!(r, Err(RedisStoreError::Url(_))), "{r:?}");
    let mut c = quick(tessera_testsupport::redis::url());
    c.prefix = "x{y}".into();
    let r = RedisStore::connect(c).await;
    assert!(matches!(r, Err(RedisStoreError::Config(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_fails_closed_then_recovers() {
    let Some(prefix) = common::RedisPrefix::reserve("test").await else {
        return;
    };
    let url = prefix.url().to_string();
    let config = RedisConfig {
        prefix: prefix.prefix().to_string(),
        ..quick(url.clone())
    };
    let store = Arc::new(RedisStore::connect(config).await.unwrap());
    let outcome = tokio::spawn({
        let (store, url) = (store.clone(), url.clone());
        async move {
            let dyn_store: Arc<dyn Store> = store.clone();
            let user = store
                .create_user(NewUser {
                    name: "alice".into(),
                    role: Role::User,
                    kind: UserKind::Person,
                    owner: None,
                    password: None,
                    created_at: 1,
                })
                .await
                .unwrap();
            let (token, _, _) =
                new_token(&dyn_store, &user, tessera_core::scope::TokenType::ALL).await;
            let before = store.client_id().await.unwrap();

            let killed = common::kill_client(&url, before).await;
            assert_eq!(killed, 1, "the store's connection was found and killed");

            // Concurrent calls right after the kill: each answers correctly or
            // fails with Unavailable, within the bound.
            let mut calls = Vec::new();
            for _ in 0..16 {
                let store = store.clone();
                calls.push(tokio::spawn(async move {
                    let start = Instant::now();
                    let r = store.token(token.id).await;
                    (start.elapsed(), r)
                }));
            }
            let mut unavailable = 0;
            for c in calls {
                let (elapsed, r) = c.await.unwrap();
                assert!(elapsed < HANG_BOUND, "a call took {elapsed:?}");
                match r {
                    Ok(got) => assert_eq!(got.as_ref(), Some(&token), "never wrong data"),
                    Err(StoreError::Unavailable(_)) => unavailable += 1,
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
            eprintln!("{unavailable} of 16 calls right after the kill were unavailable");

            // A readiness loop: the same store recovers by itself.
            let deadline = Instant::now() + HANG_BOUND;
            let mut failures = 0;
            loop {
                let start = Instant::now();
                let r = store.user_by_id(user.id).await;
                assert!(start.elapsed() < HANG_BOUND);
                match r {
                    Ok(got) => {
                        assert_eq!(got, Some(user.clone()));
                        break;
                    }
                    Err(StoreError::Unavailable(_)) => failures += 1,
                    Err(e) => panic!("unexpected error {e:?}"),
                }
                assert!(
                    Instant::now() < deadline,
                    "no recovery within {HANG_BOUND:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            eprintln!("recovered after {failures} failed call(s)");
            assert_eq!(store.token(token.id).await.unwrap(), Some(token.clone()));
            store.ping().await.unwrap();
            let after = store.client_id().await.unwrap();
            assert_ne!(after, before, "a new connection serves the store");
        }
    })
    .await;
    drop(store);
    drop(prefix);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
