//! Redis-specific behaviour beyond the conformance suite: key expiry,
//! legacy tokens reached by id, index pruning, corrupt data failing closed.

mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tessera_core::model::{Role, TokenChanges, TokenId, TokenRecord};
use tessera_core::scope::TokenType;
use tessera_core::secret::{self, Digest, SecretKey, SecretKind};
use tessera_core::store::Store;
use tessera_core::testkit::{new_token, user, T0};
use tessera_core::StoreError;
use tessera_redis::RedisStore;

const RETENTION: i64 = 7 * 86_400;

/// Runs `case` on a fresh store under a fresh prefix (URL and prefix
/// given), then deletes the prefix, pass or fail.
async fn with_store<F, Fut>(case: F)
where
    F: FnOnce(Arc<RedisStore>, String, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some((store, prefix)) = common::open().await else {
        return;
    };
    let store = Arc::new(store);
    let (url, name) = (prefix.url().to_string(), prefix.prefix().to_string());
    let outcome = tokio::spawn(case(store.clone(), url, name)).await;
    drop(store);
    drop(prefix);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn expire_time(url: &str, key: &str) -> i64 {
    let mut conn = common::raw(url).await;
    // EXPIRETIME needs Redis 7; TTL works everywhere.
    let ttl: i64 = redis::cmd("TTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "{key} has no expiry (TTL {ttl})");
    wall_now() + ttl
}

fn legacy_record(
    id: TokenId,
    owner: &tessera_core::model::User,
    secret: &str,
    exp: i64,
) -> TokenRecord {
    TokenRecord {
        id,
        user_id: owner.id,
        user_name: owner.name.clone(),
        name: format!("legacy {}", id.0),
        scope: tessera_core::scope::Scope::new(TokenType::ALL, vec![]),
        allowed_ips: Default::default(),
        created_at: T0,
        access_expires_at: exp,
        renewable_until: None,
        ends_at: exp,
        access_digest: Digest::of(secret),
        refresh_digest: None,
        legacy: true,
        revoked_at: None,
        last_used_at: None,
        last_used_ip: None,
        rate_limit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_after_the_retention_never_sooner() {
    with_store(|store, url, prefix| async move {
        let dyn_store: Arc<dyn Store> = store.clone();
        let u = user(&dyn_store, "alice", Role::User).await;
        // A token whose end of life (by the test clock) is long past on the
        // server's clock: it still stays `retention` from now.
        let (old, _, _) = new_token(&dyn_store, &u, TokenType::ALL).await;
        let at = expire_time(&url, &format!("{prefix}{{t{}}}:rec", old.id.0)).await;
        assert!((at - (wall_now() + RETENTION)).abs() <= 5, "{at}");
        // A token ending in the future expires at its end + retention; an
        // edit moves that, a revocation brings it forward.
        let (t, _, _) = new_token(&dyn_store, &u, TokenType::SCIM).await;
        let ends = wall_now() + 100 * 86_400;
        let change = TokenChanges {
            id: t.id,
            name: t.name.clone(),
            scope: t.scope.clone(),
            allowed_ips: t.allowed_ips.clone(),
            access_expires_at: ends,
            renewable_until: None,
            ends_at: ends,
            rate_limit: None,
        };
        assert!(dyn_store.update_token(&change).await.unwrap());
        let key = format!("{prefix}{{t{}}}:rec", t.id.0);
        assert!((expire_time(&url, &key).await - (ends + RETENTION)).abs() <= 5);
        let now = wall_now();
        assert!(dyn_store.revoke_token(t.id, now).await.unwrap());
        assert!((expire_time(&url, &key).await - (now + RETENTION)).abs() <= 5);
        // Sessions: last seen + retention, moved by a touch.
        let s = secret::generate(SecretKind::Session, None).unwrap();
        dyn_store
            .create_session(tessera_core::model::SessionRecord {
                digest: s.digest(),
                user_id: u.id,
                created_at: now,
                last_seen_at: now,
            })
            .await
            .unwrap();
        dyn_store
            .touch_session(&s.digest(), now + 86_400)
            .await
            .unwrap();
        let key = format!("{prefix}{{s{}}}:session", s.digest().to_hex());
        assert!((expire_time(&url, &key).await - (now + 86_400 + RETENTION)).abs() <= 5);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_tokens_are_reached_by_id_and_by_digest() {
    with_store(|store, _url, _prefix| async move {
        let dyn_store: Arc<dyn Store> = store.clone();
        let u = user(&dyn_store, "alice", Role::User).await;
        let id = dyn_store.next_token_id().await.unwrap();
        let rec = legacy_record(id, &u, "OLD-ONE", T0 + 5000);
        // insert_token of a legacy record takes the legacy layout too.
        dyn_store.insert_token(&rec).await.unwrap();
        assert_eq!(dyn_store.token(id).await.unwrap(), Some(rec.clone()));
        let key = SecretKey {
            kind: SecretKind::Access,
            token_id: None,
            digest: Digest::of("OLD-ONE"),
        };
        assert_eq!(
            dyn_store.token_by_access(&key).await.unwrap().as_deref(),
            Some(&rec)
        );
        assert_eq!(dyn_store.legacy_horizon().await.unwrap(), Some(T0 + 5000));
        // A Tessera-shaped secret naming the legacy id finds nothing.
        let tess = secret::generate(SecretKind::Access, Some(id)).unwrap();
        let tkey = secret::parse(tess.expose(), SecretKind::Access).unwrap();
        assert_eq!(dyn_store.token_by_access(&tkey).await.unwrap(), None);
        // Last use, an edit (the horizon follows), then revocation by id.
        dyn_store
            .record_last_used(&[tessera_core::testkit::used(id, T0 + 7, "10.0.0.7")])
            .await
            .unwrap();
        assert_eq!(
            dyn_store.token(id).await.unwrap().unwrap().last_used_at,
            Some(T0 + 7)
        );
        let change = TokenChanges {
            id,
            name: "renamed".into(),
            scope: rec.scope.clone(),
            allowed_ips: rec.allowed_ips.clone(),
            access_expires_at: T0 + 9000,
            renewable_until: None,
            ends_at: T0 + 9000,
            rate_limit: None,
        };
        assert!(dyn_store.update_token(&change).await.unwrap());
        assert_eq!(dyn_store.legacy_horizon().await.unwrap(), Some(T0 + 9000));
        // A duplicate id or digest imports nothing.
        let dup = legacy_record(id, &u, "OTHER", T0 + 1);
        assert!(matches!(
            dyn_store.import_legacy(&[dup]).await,
            Err(StoreError::Conflict(_))
        ));
        let id2 = dyn_store.next_token_id().await.unwrap();
        let dup = legacy_record(id2, &u, "OLD-ONE", T0 + 1);
        assert!(matches!(
            dyn_store.import_legacy(&[dup]).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(dyn_store.token(id2).await.unwrap(), None);
        // delete_user revokes legacy tokens too and empties the horizon.
        assert!(dyn_store.delete_user(u.id, T0 + 10).await.unwrap());
        assert_eq!(
            dyn_store.token(id).await.unwrap().unwrap().revoked_at,
            Some(T0 + 10)
        );
        assert_eq!(dyn_store.legacy_horizon().await.unwrap(), None);
        // The sweep removes it with its pointer.
        assert_eq!(dyn_store.sweep(T0 + 11, T0).await.unwrap(), 1);
        assert_eq!(dyn_store.token(id).await.unwrap(), None);
        assert_eq!(dyn_store.token_by_access(&key).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_prunes_entries_of_expired_records() {
    with_store(|store, url, prefix| async move {
        let dyn_store: Arc<dyn Store> = store.clone();
        let u = user(&dyn_store, "alice", Role::User).await;
        let (gone, _, _) = new_token(&dyn_store, &u, TokenType::ALL).await;
        let (kept, _, _) = new_token(&dyn_store, &u, TokenType::ALL).await;
        // As if Redis had expired the first token's keys.
        let mut conn = common::raw(&url).await;
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{prefix}{{t{}}}:rec", gone.id.0))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            dyn_store.tokens_of_user(u.id).await.unwrap(),
            vec![kept.clone()]
        );
        assert_eq!(
            dyn_store.sweep(T0, T0).await.unwrap(),
            0,
            "already gone: not counted"
        );
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{prefix}{{u{}}}:tokens", u.id.0))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(members, vec![format!("t{}", kept.id.0)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_fail_closed() {
    with_store(|store, url, prefix| async move {
        let dyn_store: Arc<dyn Store> = store.clone();
        let u = user(&dyn_store, "alice", Role::User).await;
        let (t, access, refresh) = new_token(&dyn_store, &u, TokenType::ALL).await;
        let key = secret::parse(access.expose(), SecretKind::Access).unwrap();
        let rec = format!("{prefix}{{t{}}}:rec", t.id.0);
        let mut conn = common::raw(&url).await;
        let _: i64 = redis::cmd("HSET")
            .arg(&rec)
            .arg("ips")
            .arg("9:not an ip")
            .query_async(&mut conn)
            .await
            .unwrap();
        let r = dyn_store.token_by_access(&key).await;
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
        let _: i64 = redis::cmd("HSET")
            .arg(&rec)
            .arg("ends")
            .arg("soon")
            .query_async(&mut conn)
            .await
            .unwrap();
        let r = dyn_store.revoke_token(t.id, T0).await;
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
        // A key of the wrong type.
        let _: i64 = redis::cmd("DEL")
            .arg(&rec)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(&rec)
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();
        let r = dyn_store.token_by_access(&key).await;
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
        let rkey = secret::parse(refresh.unwrap().expose(), SecretKind::Refresh).unwrap();
        let r = dyn_store.refresh_lookup(&rkey).await;
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    })
    .await;
}
