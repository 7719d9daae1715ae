//! The conformance suite every storage backend runs (feature `testkit`).
//!
//! Each case is a `pub async fn(Arc<dyn Store>)` that expects a fresh, empty
//! store and panics on any deviation from the contract in [`crate::store`].
//! A backend runs them all with one line in a test file:
//!
//! ```text
//! tessera_core::conformance_suite!(my_backend_tests::fresh_store);
//! ```
//!
//! where `fresh_store` is an `async fn() -> Option<Fixture>`: `None` when the
//! backend's server is unreachable and skipping is allowed (the factory
//! prints `SKIPPED: …`), a [`Fixture`] otherwise. The macro expands to one
//! `#[tokio::test]` per case; each case runs in its own task so that the
//! fixture's clean-up runs even when the case fails.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;

use crate::address::IpAllowList;
use crate::check::{CheckError, Refusal};
use crate::clock::{Clock, ManualClock};
use crate::model::{
    Actor, Event, EventKind, EventQuery, NewUser, RefreshLookup, Role, RotateOutcome, Rotation,
    SessionRecord, Timestamp, TokenChanges, TokenId, TokenRecord, Use, User, UserId, UserKind,
};
use crate::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use crate::scope::{parse_endpoints, Scope, TokenType};
use crate::secret::{self, Digest, Secret, SecretKey, SecretKind};
use crate::service::{Caller, LegacyImport, LegacySecret, Tessera};
use crate::store::Store;
use crate::StoreError;

pub mod nodes;

/// A clean-up to run after a case, pass or fail (drop a schema, delete keys…).
pub type Cleanup = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A fresh store for one case, and how to clean up after it.
pub struct Fixture {
    /// The store under test; empty when the case starts.
    pub store: Arc<dyn Store>,
    cleanup: Option<Cleanup>,
    /// For the cache suite: how to open another handle, and cut streams.
    nodes: Option<(nodes::Reopen, Option<nodes::Cut>)>,
}

impl Fixture {
    /// A fixture with nothing to clean up.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Fixture {
            store,
            cleanup: None,
            nodes: None,
        }
    }

    /// A fixture whose `cleanup` runs after the case.
    pub fn with_cleanup(store: Arc<dyn Store>, cleanup: Cleanup) -> Self {
        Fixture {
            store,
            cleanup: Some(cleanup),
            nodes: None,
        }
    }

    /// Makes the fixture fit for [`cache_suite!`](crate::cache_suite):
    /// `reopen` opens another handle on the same data (a second node);
    /// `cut`, where the backend allows it, cuts every change-stream
    /// subscription on that data.
    pub fn with_nodes(mut self, reopen: nodes::Reopen, cut: Option<nodes::Cut>) -> Self {
        self.nodes = Some((reopen, cut));
        self
    }
}

/// Runs `case` on the fixture in its own task, then the clean-up, then
/// re-raises the case's panic if it had one. `None` (skipped) does nothing.
pub async fn run_case<F, Fut>(fixture: Option<Fixture>, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with(fixture, |f| case(f.store.clone())).await;
}

/// As [`run_case`], for the cache cases ([`nodes`]).
pub async fn run_nodes_case<F, Fut>(fixture: Option<Fixture>, case: F)
where
    F: FnOnce(nodes::Nodes) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with(fixture, |f| case(nodes::Nodes::of(f))).await;
}

async fn run_with<F, Fut>(fixture: Option<Fixture>, case: F)
where
    F: FnOnce(&Fixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = fixture else { return };
    let outcome = tokio::spawn(case(&fixture)).await;
    drop(fixture.store);
    if let Some(cleanup) = fixture.cleanup {
        cleanup.await;
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("case task failed: {e}"),
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each calling
/// `$factory().await` for a fresh [`Fixture`]. The calling crate needs
/// `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            users_create_find_list_delete,
            sessions_create_touch_delete,
            tokens_create_get_list_update_revoke,
            token_fields_round_trip,
            insert_conflicts,
            rotation_rotates_only_the_current_pair,
            reuse_detection_revokes_the_chain,
            unknown_refresh_changes_nothing,
            expiry_at_the_boundary,
            legacy_tokens,
            last_used_events_and_sweep,
            audit_trail_filters_pages_and_sweeps,
            set_password_ends_other_sessions,
            addresses_are_noted_once,
            rate_counts_are_atomic,
            outbox_enqueues_once_claims_settles_and_sweeps,
            outbox_claims_are_exclusive,
            expiry_warnings_are_enqueued_once_per_threshold,
            deleting_a_user_stops_their_tokens,
            concurrent_renewals_have_one_winner,
            concurrent_creations_are_distinct,
            concurrent_lookups_get_their_own_record,
            ids_no_record_can_have_are_not_found,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::testkit::run_case($factory().await, $crate::testkit::cases::$case).await;
            }
        )*
    };
}

/// Whether backend suites must run (`CI=true` or `TESSERA_REQUIRE_BACKENDS=1`):
/// then an unreachable server fails the suite instead of skipping it.
pub fn backends_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("TESSERA_REQUIRE_BACKENDS").is_ok_and(|v| v == "1" || v == "true")
}

/// What a backend's fixture factory does when its server is unreachable:
/// prints `SKIPPED: <reason>` loudly and returns `None`, or panics when
/// backends are required (see [`backends_required`]).
pub fn skip(reason: &str) -> Option<Fixture> {
    if backends_required() {
        panic!(
            "backend required (CI=true or TESSERA_REQUIRE_BACKENDS=1) but unavailable: {reason}"
        );
    }
    eprintln!("SKIPPED: {reason}");
    println!("SKIPPED: {reason}");
    None
}

/// Fills `store` through the service with everything that has a secret:
/// users with passwords, a session, tokens of every type (one renewed, so a
/// spent refresh digest exists), and a legacy token imported in clear.
/// Returns every secret and password in clear, for a backend test that dumps
/// its raw contents and checks with [`assert_no_secrets`] that none appears.
pub async fn plant_secrets(store: &Arc<dyn Store>) -> Vec<String> {
    let (svc, _clock, admin) = service(store).await;
    let mut secrets = vec!["pw-admin".to_string()];
    let (session, _) = svc.login("admin", "pw-admin").await.unwrap();
    secrets.push(session.expose().to_string());
    for t in 0..=5 {
        let req = TokenRequest {
            name: Some(format!("type {t}")),
            token_type: Some(t),
            api_endpoints: (t == 3).then(|| vec!["/Client".to_string()]),
            ..TokenRequest::default()
        };
        let issued = svc.create_token(&admin, None, &req).await.unwrap();
        secrets.push(issued.access.expose().to_string());
        if let Some(r) = &issued.refresh {
            secrets.push(r.expose().to_string());
            let renewed = svc.renew(issued.access.expose(), r.expose()).await.unwrap();
            secrets.push(renewed.access.expose().to_string());
            secrets.push(renewed.refresh.unwrap().expose().to_string());
        }
    }
    let legacy = "LEGACY-SECRET-IN-CLEAR-0123456789abcdef";
    svc.import_legacy(&[LegacyImport {
        line: 1,
        user_name: "admin".into(),
        token_name: "old".into(),
        token_type: 2,
        api_endpoints: vec![],
        allowed_ips: vec![],
        expires_at: T0 + 86_400,
        secret: LegacySecret::Clear(Secret::from_presented(legacy)),
    }])
    .await
    .unwrap();
    secrets.push(legacy.to_string());
    secrets
}

/// Panics if `dump` (a store's raw contents as text) contains any of
/// `secrets`, or the random part of any Tessera secret among them.
pub fn assert_no_secrets(dump: &str, secrets: &[String]) {
    assert!(
        !dump.is_empty(),
        "the dump is empty: the test would prove nothing"
    );
    for s in secrets {
        assert!(
            !dump.contains(s.as_str()),
            "a secret appears in clear in the store"
        );
        if secret::has_tessera_prefix(s) {
            let tail = &s[s.len() - 49..];
            assert!(
                !dump.contains(tail),
                "a secret's random part appears in the store"
            );
        }
    }
}

/// 16 random hex digits, for names that must not clash between test runs
/// (a database schema, a key prefix, a temporary file).
pub fn unique_suffix() -> String {
    use rand::RngCore;
    format!("{:016x}", rand::rngs::OsRng.next_u64())
}

/// The runtime every store benchmark measures on: two workers, as many as
/// the machine the figures are taken on has cores.
pub fn bench_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Measures a [`BenchBed`]'s check and renewal on `$rt` as the criterion
/// group `$name` (`<store>/check_valid`, `<store>/renew`, the names
/// `cargo xtask bench` reads): the one body of every store's benchmark.
#[macro_export]
macro_rules! bench_bed {
    ($c:expr, $name:expr, $rt:expr, $bed:expr) => {{
        let (rt, bed) = ($rt, $bed);
        let mut g = $c.benchmark_group($name);
        g.bench_function("check_valid", |b| b.to_async(rt).iter(|| bed.check_valid()));
        g.bench_function("renew", |b| b.to_async(rt).iter(|| bed.renew()));
        g.finish();
    }};
}

/// A bed for a store's benchmarks: a service over the store (clock fixed
/// at [`T0`]), some tokens, one valid access token to check, and a pair that
/// [`BenchBed::renew`] keeps renewing.
pub struct BenchBed {
    /// The service over the store under test.
    pub svc: Arc<Tessera>,
    /// A valid All token's access secret.
    pub access: String,
    /// The current (access, refresh) pair of another All token.
    pair: std::sync::Mutex<(String, String)>,
}

impl BenchBed {
    /// Fills `store` (100 tokens) and prepares the secrets.
    pub async fn new(store: Arc<dyn Store>) -> Self {
        let (svc, _clock, admin) = service(&store).await;
        for i in 0..100 {
            svc.create_token(&admin, None, &TokenRequest::named(&format!("filler {i}")))
                .await
                .unwrap();
        }
        let valid = svc
            .create_token(&admin, None, &TokenRequest::named("checked"))
            .await
            .unwrap();
        let renewed = svc
            .create_token(&admin, None, &TokenRequest::named("renewed"))
            .await
            .unwrap();
        let pair = (
            renewed.access.expose().to_string(),
            renewed.refresh.unwrap().expose().to_string(),
        );
        BenchBed {
            svc: Arc::new(svc),
            access: valid.access.expose().to_string(),
            pair: std::sync::Mutex::new(pair),
        }
    }

    /// One check of the valid token; panics unless allowed.
    pub async fn check_valid(&self) {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let r = self
            .svc
            .checker()
            .check(&self.access, "GET", "/Client/5", ip)
            .await;
        assert!(r.is_ok(), "{r:?}");
    }

    /// One renewal of the current pair; the new pair replaces it.
    pub async fn renew(&self) {
        let (a, r) = self.pair.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let issued = self.svc.renew(&a, &r).await.unwrap();
        *self.pair.lock().unwrap_or_else(|e| e.into_inner()) = (
            issued.access.expose().to_string(),
            issued.refresh.unwrap().expose().to_string(),
        );
    }
}

/// A fixed "now" for cases (2026-01-01T00:00:00Z).
pub const T0: i64 = 1_767_225_600;

/// The conformance cases. Each expects a fresh, empty store.
pub mod cases {
    use super::*;

    /// Users: create (unique names), find by id and name, list, delete.
    pub async fn users_create_find_list_delete(store: Arc<dyn Store>) {
        assert!(
            !store.has_users().await.unwrap(),
            "a fresh store has no users"
        );
        let alice = user(&store, "alice", Role::Admin).await;
        let bob = user(&store, "bob", Role::User).await;
        assert_ne!(alice.id, bob.id);
        assert!(store.has_users().await.unwrap());
        let svc = store
            .create_user(NewUser {
                name: "backup-bot".into(),
                role: Role::User,
                kind: UserKind::Service,
                owner: Some(bob.id),
                password: None,
                created_at: T0,
            })
            .await
            .unwrap();
        assert_eq!(store.user_by_id(svc.id).await.unwrap(), Some(svc.clone()));
        assert_eq!(
            store.user_by_name("alice").await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.user_by_name("Alice").await.unwrap(),
            None,
            "names are exact"
        );
        assert_eq!(store.user_by_name("nobody").await.unwrap(), None);
        let again = store
            .create_user(NewUser {
                name: "alice".into(),
                role: Role::User,
                kind: UserKind::Person,
                owner: None,
                password: None,
                created_at: T0,
            })
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let all = store.list_users().await.unwrap();
        assert_eq!(all, vec![alice.clone(), bob.clone(), svc.clone()]);
        // The stored password hash still verifies.
        let back = store.user_by_id(alice.id).await.unwrap().unwrap();
        assert!(secret::password::verify(
            "pw-alice",
            back.password.as_ref().unwrap()
        ));
        assert!(store.delete_user(bob.id, T0).await.unwrap());
        assert!(!store.delete_user(bob.id, T0).await.unwrap());
        assert_eq!(store.user_by_id(bob.id).await.unwrap(), None);
        assert_eq!(store.user_by_name("bob").await.unwrap(), None);
        // The name is free again; ids are not reused.
        let bob2 = user(&store, "bob", Role::User).await;
        assert!(bob2.id != bob.id);
    }

    /// Sessions: create, read, touch (only forward), delete.
    pub async fn sessions_create_touch_delete(store: Arc<dyn Store>) {
        let u = user(&store, "alice", Role::User).await;
        let s = secret::generate(SecretKind::Session, None).unwrap();
        let rec = SessionRecord {
            digest: s.digest(),
            user_id: u.id,
            created_at: T0,
            last_seen_at: T0,
        };
        store.create_session(rec.clone()).await.unwrap();
        assert_eq!(store.session(&s.digest()).await.unwrap(), Some(rec.clone()));
        store.touch_session(&s.digest(), T0 + 100).await.unwrap();
        store.touch_session(&s.digest(), T0 + 50).await.unwrap();
        let got = store.session(&s.digest()).await.unwrap().unwrap();
        assert_eq!(got.last_seen_at, T0 + 100, "touch never moves back");
        assert_eq!(got.created_at, T0);
        let other = secret::generate(SecretKind::Session, None).unwrap();
        assert_eq!(store.session(&other.digest()).await.unwrap(), None);
        assert!(store.delete_session(&s.digest()).await.unwrap());
        assert!(!store.delete_session(&s.digest()).await.unwrap());
        assert_eq!(store.session(&s.digest()).await.unwrap(), None);
    }

    /// Tokens: ids, insert, get, look-up by access digest, list by user, update, revoke.
    pub async fn tokens_create_get_list_update_revoke(store: Arc<dyn Store>) {
        let alice = user(&store, "alice", Role::User).await;
        let bob = user(&store, "bob", Role::User).await;
        let (a1, a1_access, _) = new_token(&store, &alice, TokenType::ALL).await;
        let (a2, _, _) = new_token(&store, &alice, TokenType::SCIM).await;
        let (b1, _, _) = new_token(&store, &bob, TokenType::ALL).await;
        assert!(a1.id < a2.id && a2.id < b1.id, "ids increase");
        assert_eq!(store.token(a1.id).await.unwrap(), Some(a1.clone()));
        assert_eq!(store.token(TokenId(999_999)).await.unwrap(), None);
        assert_eq!(
            store
                .token_by_access(&access_key(&a1_access))
                .await
                .unwrap()
                .as_deref(),
            Some(&a1)
        );
        let stranger = secret::generate(SecretKind::Access, Some(a1.id)).unwrap();
        assert_eq!(
            store.token_by_access(&access_key(&stranger)).await.unwrap(),
            None
        );
        assert_eq!(
            store.tokens_of_user(alice.id).await.unwrap(),
            vec![a1.clone(), a2.clone()]
        );
        assert_eq!(
            store.tokens_of_user(bob.id).await.unwrap(),
            vec![b1.clone()]
        );

        let changes = TokenChanges {
            id: a1.id,
            name: "renamed".into(),
            scope: Scope::new(
                TokenType::CUSTOM,
                parse_endpoints(&["GET /Client".into(), "/Job".into()]).unwrap(),
            ),
            allowed_ips: IpAllowList::parse(["10.0.0.0/8"]).unwrap(),
            access_expires_at: a1.access_expires_at,
            renewable_until: Some(T0 + 1000),
            ends_at: T0 + 1000,
            rate_limit: Some(crate::model::RateLimit {
                requests: 5,
                per_seconds: 60,
            }),
        };
        assert!(store.update_token(&changes).await.unwrap());
        let got = store.token(a1.id).await.unwrap().unwrap();
        assert_eq!(got.name, "renamed");
        assert_eq!(got.rate_limit, changes.rate_limit, "a rate limit set");
        let unlimited = TokenChanges {
            rate_limit: None,
            ..changes.clone()
        };
        assert!(store.update_token(&unlimited).await.unwrap());
        assert_eq!(
            store.token(a1.id).await.unwrap().unwrap().rate_limit,
            None,
            "and removed"
        );
        assert!(store.update_token(&changes).await.unwrap());
        assert_eq!(got.scope, changes.scope);
        assert_eq!(got.allowed_ips, changes.allowed_ips);
        assert_eq!(got.renewable_until, Some(T0 + 1000));
        assert_eq!(
            got.access_digest, a1.access_digest,
            "an edit keeps the secrets"
        );

        assert!(store.revoke_token(a1.id, T0 + 5).await.unwrap());
        assert!(
            !store.revoke_token(a1.id, T0 + 6).await.unwrap(),
            "revoking twice says so"
        );
        assert!(!store.revoke_token(TokenId(999_999), T0).await.unwrap());
        let revoked = store
            .token_by_access(&access_key(&a1_access))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            revoked.revoked_at,
            Some(T0 + 5),
            "the check still finds it, to say why"
        );
        assert_eq!(
            store.tokens_of_user(alice.id).await.unwrap(),
            vec![a2.clone()]
        );
        assert!(
            !store.update_token(&changes).await.unwrap(),
            "a revoked token is not edited"
        );
    }

    /// Every field of a token reads back exactly as written.
    pub async fn token_fields_round_trip(store: Arc<dyn Store>) {
        let u = user(&store, "ünïcødé user", Role::User).await;
        let id = store.next_token_id().await.unwrap();
        let access = secret::generate(SecretKind::Access, Some(id)).unwrap();
        let refresh = secret::generate(SecretKind::Refresh, Some(id)).unwrap();
        let t = TokenRecord {
            id,
            user_id: u.id,
            user_name: u.name.clone(),
            name: "Ünïcødé \"quoted\" 'name' ✓".into(),
            scope: Scope::new(
                TokenType::CUSTOM,
                parse_endpoints(&[
                    "GET /Client".into(),
                    "/V4/ServerGroup".into(),
                    "post /Job/".into(),
                ])
                .unwrap(),
            ),
            allowed_ips: IpAllowList::parse([
                "10.0.0.0/8",
                "2001:db8::/32",
                "192.168.1.1-192.168.1.9",
                "::1",
                "10.9.0.1 -\n 10.9.0.9",
            ])
            .unwrap(),
            created_at: T0,
            access_expires_at: T0 + 1800,
            renewable_until: Some(T0 + 90 * 86_400),
            ends_at: T0 + 90 * 86_400,
            access_digest: access.digest(),
            refresh_digest: Some(refresh.digest()),
            legacy: false,
            revoked_at: None,
            last_used_at: None,
            last_used_ip: None,
            rate_limit: Some(crate::model::RateLimit {
                requests: crate::model::RateLimit::MAX_REQUESTS,
                per_seconds: 86_400,
            }),
        };
        store.insert_token(&t).await.unwrap();
        assert_eq!(store.token(id).await.unwrap(), Some(t.clone()));
        // Both All numbers are kept as sent.
        for n in [0, 2] {
            let (rec, _, _) = new_token(&store, &u, TokenType::from_number(n).unwrap()).await;
            assert_eq!(
                store
                    .token(rec.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .scope
                    .token_type()
                    .number(),
                n as u8
            );
        }
        // A token without refresh (SCIM) keeps `None`s.
        let (scim, _, r) = new_token(&store, &u, TokenType::SCIM).await;
        assert!(r.is_none());
        let back = store.token(scim.id).await.unwrap().unwrap();
        assert_eq!(back.refresh_digest, None);
        assert_eq!(back.renewable_until, None);
        assert_eq!(back, scim);
    }

    /// A duplicate token id is refused with `Conflict` and changes nothing.
    pub async fn insert_conflicts(store: Arc<dyn Store>) {
        let u = user(&store, "alice", Role::User).await;
        let (t, access, _) = new_token(&store, &u, TokenType::ALL).await;
        let mut dup_id = t.clone();
        dup_id.name = "impostor".into();
        dup_id.access_digest = Digest::of("other");
        dup_id.refresh_digest = Some(Digest::of("other-r"));
        let r = store.insert_token(&dup_id).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        assert_eq!(store.token(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(
            store
                .token_by_access(&access_key(&access))
                .await
                .unwrap()
                .as_deref(),
            Some(&t)
        );
        let other = SecretKey {
            kind: SecretKind::Access,
            token_id: Some(t.id),
            digest: Digest::of("other"),
        };
        assert_eq!(store.token_by_access(&other).await.unwrap(), None);
    }

    /// The atomic rotation: only the current pair rotates; the old one becomes spent.
    pub async fn rotation_rotates_only_the_current_pair(store: Arc<dyn Store>) {
        let u = user(&store, "alice", Role::User).await;
        let (t, access, refresh) = new_token(&store, &u, TokenType::ALL).await;
        let refresh = refresh.unwrap();
        assert_eq!(
            store.refresh_lookup(&refresh_key(&refresh)).await.unwrap(),
            RefreshLookup::Current(Box::new(t.clone()))
        );
        let (rot, new_access, new_refresh) = rotation(&t, &refresh, T0 + 3600);
        let rotated = match store.rotate(&rot).await.unwrap() {
            RotateOutcome::Rotated(r) => *r,
            other => panic!("expected Rotated, got {other:?}"),
        };
        assert_eq!(rotated.access_digest, new_access.digest());
        assert_eq!(rotated.refresh_digest, Some(new_refresh.digest()));
        assert_eq!(rotated.access_expires_at, T0 + 3600);
        assert_eq!(rotated.ends_at, rot.ends_at);
        assert_eq!(
            (rotated.id, &rotated.name, rotated.renewable_until),
            (t.id, &t.name, t.renewable_until)
        );
        assert_eq!(store.token(t.id).await.unwrap(), Some(rotated.clone()));
        assert_eq!(
            store.token_by_access(&access_key(&access)).await.unwrap(),
            None,
            "old access stops at once"
        );
        assert_eq!(
            store
                .token_by_access(&access_key(&new_access))
                .await
                .unwrap()
                .as_deref(),
            Some(&rotated)
        );
        assert_eq!(
            store.refresh_lookup(&refresh_key(&refresh)).await.unwrap(),
            RefreshLookup::Spent {
                id: t.id,
                rotated_at: T0 + 10
            }
        );
        assert_eq!(
            store
                .refresh_lookup(&refresh_key(&new_refresh))
                .await
                .unwrap(),
            RefreshLookup::Current(Box::new(rotated.clone()))
        );
        // The same rotation again: spent, nothing changes.
        assert_eq!(
            store.rotate(&rot).await.unwrap(),
            RotateOutcome::Spent {
                rotated_at: T0 + 10
            }
        );
        assert_eq!(store.token(t.id).await.unwrap(), Some(rotated.clone()));
        // An unknown digest, or an unknown token: Unknown.
        let stranger = secret::generate(SecretKind::Refresh, Some(t.id)).unwrap();
        let (bad, _, _) = rotation(&t, &stranger, T0 + 3600);
        assert_eq!(store.rotate(&bad).await.unwrap(), RotateOutcome::Unknown);
        let mut gone = rot.clone();
        gone.id = TokenId(999_999);
        assert_eq!(store.rotate(&gone).await.unwrap(), RotateOutcome::Unknown);
        // A second generation: both earlier refresh digests are spent.
        let (mut rot2, _, _) = rotation(&rotated, &new_refresh, T0 + 7200);
        rot2.at = T0 + 20;
        assert!(matches!(
            store.rotate(&rot2).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        assert_eq!(
            store.refresh_lookup(&refresh_key(&refresh)).await.unwrap(),
            RefreshLookup::Spent {
                id: t.id,
                rotated_at: T0 + 10
            }
        );
        assert_eq!(
            store
                .refresh_lookup(&refresh_key(&new_refresh))
                .await
                .unwrap(),
            RefreshLookup::Spent {
                id: t.id,
                rotated_at: T0 + 20
            }
        );
        // A revoked token never rotates.
        let (t3, _, r3) = new_token(&store, &u, TokenType::ALL).await;
        store.revoke_token(t3.id, T0).await.unwrap();
        let (rot3, _, _) = rotation(&t3, r3.as_ref().unwrap(), T0 + 3600);
        assert!(!matches!(
            store.rotate(&rot3).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
    }

    /// Through the service: presenting a rotated-out refresh token revokes
    /// the whole token, records `token.reuse_detected`, and the newest pair stops too.
    pub async fn reuse_detection_revokes_the_chain(store: Arc<dyn Store>) {
        let (svc, clock, caller) = service(&store).await;
        let issued = svc
            .create_token(&caller, None, &TokenRequest::named("t"))
            .await
            .unwrap();
        let old_refresh = issued.refresh.clone().unwrap();
        clock.advance(60);
        let renewed = svc
            .renew(issued.access.expose(), old_refresh.expose())
            .await
            .unwrap();
        assert_eq!(renewed.token.id, issued.token.id);
        assert_allowed(&svc, &renewed.access).await;
        assert_refused(&svc, &issued.access, Refusal::Unknown).await;
        // Replay of the old pair.
        let replay = svc
            .renew(issued.access.expose(), old_refresh.expose())
            .await;
        assert!(
            matches!(replay, Err(crate::Error::Unauthorized(_))),
            "{replay:?}"
        );
        assert_refused(&svc, &renewed.access, Refusal::Revoked).await;
        let again = svc
            .renew(
                renewed.access.expose(),
                renewed.refresh.as_ref().unwrap().expose(),
            )
            .await;
        assert!(again.is_err(), "the newest refresh token is revoked too");
        let events = store.events(&EventQuery::newest(10)).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.event.kind == EventKind::ReuseDetected
                    && e.event.token_id == Some(issued.token.id)),
            "{events:?}"
        );
    }

    /// A refresh token that is neither current nor spent (even one naming a
    /// real token id) is refused and changes nothing.
    pub async fn unknown_refresh_changes_nothing(store: Arc<dyn Store>) {
        let (svc, _clock, caller) = service(&store).await;
        let issued = svc
            .create_token(&caller, None, &TokenRequest::named("t"))
            .await
            .unwrap();
        let forged = secret::generate(SecretKind::Refresh, Some(issued.token.id)).unwrap();
        assert!(svc
            .renew(issued.access.expose(), forged.expose())
            .await
            .is_err());
        assert_allowed(&svc, &issued.access).await;
        assert_eq!(
            store.token(issued.token.id).await.unwrap(),
            Some(issued.token.clone())
        );
        let trail = store.events(&EventQuery::newest(10)).await.unwrap();
        assert!(
            trail.iter().all(|e| matches!(
                e.event.kind,
                EventKind::UserCreated | EventKind::TokenCreated
            )),
            "a refused renewal records nothing: {trail:?}"
        );
        // The real pair still renews.
        assert!(svc
            .renew(issued.access.expose(), issued.refresh.unwrap().expose())
            .await
            .is_ok());
    }

    /// An access secret works until one second before its expiry, not at it.
    pub async fn expiry_at_the_boundary(store: Arc<dyn Store>) {
        let (svc, clock, caller) = service(&store).await;
        let issued = svc
            .create_token(&caller, None, &TokenRequest::named("t"))
            .await
            .unwrap();
        let exp = issued.token.access_expires_at;
        assert_eq!(exp, T0 + 1800);
        clock.set(exp - 1);
        assert_allowed(&svc, &issued.access).await;
        clock.set(exp);
        assert_refused(&svc, &issued.access, Refusal::Expired).await;
        clock.set(exp + 1);
        assert_refused(&svc, &issued.access, Refusal::Expired).await;
        // Expired but within the grace: renewal works and the new secret checks.
        let renewed = svc
            .renew(issued.access.expose(), issued.refresh.unwrap().expose())
            .await
            .unwrap();
        assert_eq!(renewed.token.access_expires_at, exp + 1 + 1800);
        assert_allowed(&svc, &renewed.access).await;
    }

    /// Legacy tokens: all-or-nothing import, look-up by digest, horizon, revoke.
    pub async fn legacy_tokens(store: Arc<dyn Store>) {
        let (svc, clock, caller) = service(&store).await;
        assert_eq!(store.legacy_horizon().await.unwrap(), None);
        let line = |n: usize, secret: LegacySecret, exp: i64, token_type: i64| LegacyImport {
            line: n,
            user_name: caller.user.name.clone(),
            token_name: format!("legacy {n}"),
            token_type,
            api_endpoints: if token_type == 3 {
                vec!["GET /Client".into()]
            } else {
                vec![]
            },
            allowed_ips: vec![],
            expires_at: exp,
            secret,
        };
        let clear = Secret::from_presented("OLD-FORMAT-TOKEN-0123456789");
        let hashed = "another-old-token";
        let lines = vec![
            line(1, LegacySecret::Clear(clear.clone()), T0 + 1000, 3),
            line(2, LegacySecret::Sha256(Digest::of(hashed)), T0 + 2000, 2),
        ];
        assert_eq!(svc.import_legacy(&lines).await.unwrap(), 2);
        assert_eq!(store.legacy_horizon().await.unwrap(), Some(T0 + 2000));
        let key = SecretKey {
            kind: SecretKind::Access,
            token_id: None,
            digest: clear.digest(),
        };
        let rec = store.token_by_access(&key).await.unwrap().unwrap();
        assert!(rec.legacy && rec.refresh_digest.is_none() && rec.renewable_until.is_none());
        assert_eq!(rec.access_expires_at, T0 + 1000);
        // Checks: scope honoured, expiry honoured.
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ok = svc
            .checker()
            .check(clear.expose(), "GET", "/Client/5", ip)
            .await;
        assert!(ok.is_ok(), "{ok:?}");
        let scope = svc
            .checker()
            .check(clear.expose(), "POST", "/Client/5", ip)
            .await;
        assert_eq!(scope, Err(CheckError::Refused(Refusal::Scope)));
        let all = svc.checker().check(hashed, "DELETE", "/Anything", ip).await;
        assert!(all.is_ok(), "{all:?}");
        clock.set(T0 + 1000);
        let expired = svc
            .checker()
            .check(clear.expose(), "GET", "/Client/5", ip)
            .await;
        assert_eq!(expired, Err(CheckError::Refused(Refusal::Expired)));
        // Editing is refused with the exact message.
        let edit = svc
            .edit_token(&caller, rec.id, &TokenRequest::named("x"))
            .await;
        assert_eq!(
            edit,
            Err(crate::Error::Conflict(
                crate::policy::LEGACY_EDIT_MESSAGE.into()
            ))
        );
        // A file with a clash imports nothing.
        let clash = vec![
            line(
                1,
                LegacySecret::Sha256(Digest::of("fresh-one")),
                T0 + 5000,
                2,
            ),
            line(2, LegacySecret::Clear(clear.clone()), T0 + 5000, 2),
        ];
        assert!(svc.import_legacy(&clash).await.is_err());
        let fresh = SecretKey {
            kind: SecretKind::Access,
            token_id: None,
            digest: Digest::of("fresh-one"),
        };
        assert_eq!(
            store.token_by_access(&fresh).await.unwrap(),
            None,
            "all or nothing"
        );
        assert_eq!(store.legacy_horizon().await.unwrap(), Some(T0 + 2000));
        // Revoked: gone from listing and from the horizon.
        svc.revoke_token(&caller, rec.id).await.unwrap();
        let other = store
            .token_by_access(&SecretKey {
                digest: Digest::of(hashed),
                ..key
            })
            .await
            .unwrap()
            .unwrap();
        svc.revoke_token(&caller, other.id).await.unwrap();
        assert_eq!(store.legacy_horizon().await.unwrap(), None);
        assert!(store
            .tokens_of_user(caller.user.id)
            .await
            .unwrap()
            .is_empty());
    }

    /// A new password hash replaces the old one and ends the user's
    /// sessions but the one kept; other users' sessions stay.
    pub async fn set_password_ends_other_sessions(store: Arc<dyn Store>) {
        use crate::secret::password::PasswordHash;
        let alice = user(&store, "alice", Role::User).await;
        let bob = user(&store, "bob", Role::User).await;
        let session = |u: &User| {
            let store = store.clone();
            let id = u.id;
            async move {
                let s = secret::generate(SecretKind::Session, None).unwrap();
                store
                    .create_session(SessionRecord {
                        digest: s.digest(),
                        user_id: id,
                        created_at: T0,
                        last_seen_at: T0,
                    })
                    .await
                    .unwrap();
                s.digest()
            }
        };
        let (a1, a2, a3, b1) = (
            session(&alice).await,
            session(&alice).await,
            session(&alice).await,
            session(&bob).await,
        );
        let hash = PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$bmV3");
        assert!(store
            .set_password(alice.id, &hash, Some(&a2))
            .await
            .unwrap());
        let stored = store.user_by_id(alice.id).await.unwrap().unwrap();
        assert_eq!(
            stored.password.as_ref().map(|h| h.as_phc()),
            Some(hash.as_phc())
        );
        assert!(store.session(&a1).await.unwrap().is_none());
        assert!(store.session(&a3).await.unwrap().is_none());
        assert!(store.session(&a2).await.unwrap().is_some(), "the one kept");
        assert!(
            store.session(&b1).await.unwrap().is_some(),
            "another user's"
        );
        assert_eq!(
            store
                .user_by_name("alice")
                .await
                .unwrap()
                .unwrap()
                .password
                .map(|h| h.as_phc().to_string()),
            Some(hash.as_phc().to_string())
        );
        // Without one to keep, every session ends.
        assert!(store.set_password(alice.id, &hash, None).await.unwrap());
        assert!(store.session(&a2).await.unwrap().is_none());
        assert!(store.session(&b1).await.unwrap().is_some());
        assert!(!store
            .set_password(UserId(987_654), &hash, None)
            .await
            .unwrap());
        // Bob's session may be kept only by bob: alice's call ends hers alone.
        let a4 = session(&alice).await;
        assert!(store
            .set_password(alice.id, &hash, Some(&b1))
            .await
            .unwrap());
        assert!(store.session(&a4).await.unwrap().is_none());
        assert!(store.session(&b1).await.unwrap().is_some());
    }

    /// Rate-limit counts: per token and window, each call `n` more, the
    /// count answered; concurrent calls each get their own count.
    pub async fn rate_counts_are_atomic(store: Arc<dyn Store>) {
        let (a, b) = (TokenId(31), TokenId(32));
        for expected in 1..=3u64 {
            assert_eq!(store.count_use(a, 7, T0 + 60, 1).await.unwrap(), expected);
        }
        assert_eq!(
            store.count_use(a, 8, T0 + 120, 1).await.unwrap(),
            1,
            "a new window"
        );
        assert_eq!(
            store.count_use(b, 7, T0 + 60, 1).await.unwrap(),
            1,
            "another token"
        );
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.count_use(b, 9, T0 + 180, 1).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<u64>>(), "one count each");
        // A share of several at once, atomically too.
        assert_eq!(store.count_use(a, 7, T0 + 60, 25).await.unwrap(), 28);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.count_use(b, 10, T0 + 240, 7).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=10).map(|i| i * 7).collect::<Vec<u64>>(),
            "one share each"
        );
    }

    /// The address book of where tokens were used: each pair new once,
    /// first-ness told, unknown and deleted tokens skipped.
    pub async fn addresses_are_noted_once(store: Arc<dyn Store>) {
        let u = user(&store, "alice", Role::User).await;
        let (t1, _, _) = new_token(&store, &u, TokenType::ALL).await;
        let (t2, _, _) = new_token(&store, &u, TokenType::ALL).await;
        let new = store
            .note_addresses(&[
                used(t1.id, T0, "10.0.0.1"),
                used(t2.id, T0, "10.0.0.1"),
                used(TokenId(999_999), T0, "10.0.0.1"),
            ])
            .await
            .unwrap();
        let firsts: Vec<(TokenId, bool)> = new.iter().map(|n| (n.used.id, n.first)).collect();
        assert_eq!(firsts, [(t1.id, true), (t2.id, true)]);
        let new = store
            .note_addresses(&[
                used(t1.id, T0 + 1, "10.0.0.1"),
                used(t1.id, T0 + 2, "2001:db8::1"),
                used(t1.id, T0 + 3, "2001:db8::1"),
            ])
            .await
            .unwrap();
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(new[0].used, used(t1.id, T0 + 2, "2001:db8::1"));
        assert!(!new[0].first, "t1 had an address before");
        assert!(store
            .note_addresses(&[used(t1.id, T0 + 4, "10.0.0.1")])
            .await
            .unwrap()
            .is_empty());
    }

    /// The audit trail: ids increasing, newest first, filtered by user
    /// (concerned or acting), token and time, paged by id, swept by time;
    /// every field comes back as written.
    pub async fn audit_trail_filters_pages_and_sweeps(store: Arc<dyn Store>) {
        let (alice, bob, admin) = (UserId(11), UserId(12), UserId(1));
        let (t1, t2) = (TokenId(21), TokenId(22));
        let ip: std::net::IpAddr = "2001:db8::7".parse().unwrap();
        let written = [
            Event::new(EventKind::LoginFailed, T0, Actor::Nobody)
                .from(Some(ip))
                .detail("alice"),
            Event::new(EventKind::LoginSucceeded, T0 + 1, Actor::User(alice)).user(alice),
            Event::new(EventKind::TokenCreated, T0 + 2, Actor::User(alice)).token(t1, Some(alice)),
            Event::new(EventKind::TokenCreated, T0 + 3, Actor::User(admin)).token(t2, Some(bob)),
            Event::new(EventKind::NewAddress, T0 + 4, Actor::Token(t1))
                .token(t1, Some(alice))
                .from(Some("10.1.2.3".parse().unwrap())),
            Event::new(EventKind::TokenRevoked, T0 + 5, Actor::User(admin)).token(t1, Some(alice)),
            Event::new(EventKind::UserDeleted, T0 + 6, Actor::User(admin)).user(bob),
        ];
        for e in &written {
            store.record_event(e).await.unwrap();
        }
        let all = store.events(&EventQuery::newest(100)).await.unwrap();
        let kinds: Vec<_> = all.iter().map(|e| e.event.clone()).collect();
        let mut expected = written.to_vec();
        expected.reverse();
        assert_eq!(kinds, expected, "newest first, every field as written");
        assert!(
            all.windows(2).all(|w| w[0].id > w[1].id),
            "ids decrease down the page"
        );
        let read = |q: EventQuery| {
            let store = store.clone();
            async move {
                // Pages may be short on some backends: follow them to the end.
                let mut out = Vec::new();
                let mut q = q;
                loop {
                    let page = store.events(&q).await.unwrap();
                    let Some(last) = page.last() else { break };
                    q.before = Some(last.id);
                    out.extend(page.into_iter().map(|e| e.event.at - T0));
                    if out.len() >= 100 {
                        break;
                    }
                }
                out
            }
        };
        let q = EventQuery::newest(100);
        assert_eq!(
            read(EventQuery {
                user: Some(alice),
                ..q
            })
            .await,
            [5, 4, 2, 1],
            "alice's: concerning her or done by her"
        );
        assert_eq!(
            read(EventQuery {
                user: Some(admin),
                ..q
            })
            .await,
            [6, 5, 3],
            "the admin's: what they did"
        );
        assert_eq!(
            read(EventQuery {
                token: Some(t1),
                ..q
            })
            .await,
            [5, 4, 2]
        );
        assert_eq!(
            read(EventQuery {
                user: Some(bob),
                token: Some(t2),
                ..q
            })
            .await,
            [3]
        );
        assert_eq!(
            read(EventQuery {
                since: Some(T0 + 4),
                ..q
            })
            .await,
            [6, 5, 4]
        );
        assert!(read(EventQuery {
            user: Some(UserId(99)),
            ..q
        })
        .await
        .is_empty());
        // Paging: two at a time, nothing skipped or repeated.
        let mut pages = Vec::new();
        let mut page_q = EventQuery::newest(2);
        loop {
            let page = store.events(&page_q).await.unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            page_q.before = Some(last.id);
            pages.extend(page.iter().map(|e| e.event.at - T0));
        }
        assert_eq!(pages, [6, 5, 4, 3, 2, 1, 0]);
        // The sweep: before T0+3 goes, at T0+3 stays (the boundary).
        assert_eq!(store.sweep_events(T0 + 3).await.unwrap(), 3);
        assert_eq!(read(q).await, [6, 5, 4, 3]);
        assert_eq!(store.sweep_events(T0 + 3).await.unwrap(), 0);
        assert_eq!(
            read(EventQuery {
                token: Some(t1),
                ..q
            })
            .await,
            [5, 4]
        );
        // New events go on above every id handed out.
        store
            .record_event(
                &Event::new(EventKind::SessionEnded, T0 + 7, Actor::User(alice)).user(alice),
            )
            .await
            .unwrap();
        let newest = store.events(&EventQuery::newest(1)).await.unwrap();
        assert_eq!(newest[0].event.kind, EventKind::SessionEnded);
        assert!(newest[0].id > all[0].id);
    }

    /// The webhook outbox: one delivery per (receiver, key), every field
    /// back as written, claimed only when due and only for the receivers
    /// asked, hidden while its lease runs and due again after it, settled
    /// only by the claim that holds it, counted in the backlog while
    /// unsettled, swept once settled and past its `keep_until`.
    pub async fn outbox_enqueues_once_claims_settles_and_sweeps(store: Arc<dyn Store>) {
        use crate::notify::{Delivery, Settle};
        let ip: std::net::IpAddr = "2001:db8::9".parse().unwrap();
        let event = Event::new(EventKind::NewAddress, T0, Actor::Token(TokenId(5)))
            .token(TokenId(5), Some(UserId(2)))
            .from(Some(ip))
            .detail("x");
        let d = |receiver: &str, key: &str, at: Timestamp| Delivery {
            receiver: receiver.into(),
            key: key.into(),
            event: Event {
                at,
                ..event.clone()
            },
            deadline: (key == "k2").then_some(T0 + 86_400),
            keep_until: at + 10,
        };
        let batch = [d("r1", "k1", T0), d("r2", "k1", T0), d("r1", "k2", T0 + 5)];
        assert_eq!(store.enqueue(&batch).await.unwrap(), 3);
        assert_eq!(
            store
                .enqueue(&[d("r1", "k1", T0), d("r1", "k3", T0 + 5)])
                .await
                .unwrap(),
            1,
            "a (receiver, key) pair is taken once"
        );
        let r1 = ["r1".to_string()];
        // Only what is due, for the receivers named, oldest first.
        let got = store.claim(&r1, T0, T0 + 60, 7, 10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].delivery, batch[0], "every field as written");
        assert_eq!(got[0].attempts, 0);
        let got2 = store.claim(&r1, T0 + 5, T0 + 65, 8, 1).await.unwrap();
        assert_eq!(got2.len(), 1, "the limit holds");
        assert_eq!(got2[0].delivery, batch[2]);
        assert!(got2[0].id > got[0].id);
        // The lease hides what is claimed until it ends.
        let more = store.claim(&r1, T0 + 59, T0 + 120, 9, 10).await.unwrap();
        assert_eq!(
            more.iter()
                .map(|c| c.delivery.key.as_str())
                .collect::<Vec<_>>(),
            ["k3"]
        );
        let again = store.claim(&r1, T0 + 60, T0 + 120, 10, 10).await.unwrap();
        assert_eq!(again.len(), 1, "a lease that ran out is due again");
        assert_eq!(again[0].id, got[0].id);
        // Only the claim that holds it settles it.
        assert!(
            !store.settle(&got[0], 7, &Settle::Sent).await.unwrap(),
            "an old claim"
        );
        assert!(store
            .settle(&got[0], 10, &Settle::Retry { at: T0 + 200 })
            .await
            .unwrap());
        assert!(
            !store.settle(&got[0], 10, &Settle::Sent).await.unwrap(),
            "settled once"
        );
        assert!(store.settle(&got2[0], 8, &Settle::GiveUp).await.unwrap());
        let keys = |c: &[crate::notify::Claimed]| {
            c.iter().map(|c| c.delivery.key.clone()).collect::<Vec<_>>()
        };
        let early = store.claim(&r1, T0 + 199, T0 + 300, 11, 10).await.unwrap();
        assert_eq!(keys(&early), ["k3"], "not before its retry time");
        let retried = store.claim(&r1, T0 + 200, T0 + 300, 13, 10).await.unwrap();
        assert_eq!(keys(&retried), ["k1"], "due at its retry time");
        assert_eq!(retried[0].attempts, 1, "the failed attempt counted");
        let backlog = store.backlog().await.unwrap();
        let of = |b: &[crate::notify::Backlog], r: &str| {
            b.iter()
                .find(|b| b.receiver == r)
                .map(|b| (b.pending, b.oldest))
        };
        assert_eq!(of(&backlog, "r1"), Some((2, Some(T0))), "k1 and k3");
        assert_eq!(of(&backlog, "r2"), Some((1, Some(T0))));
        assert!(store.settle(&got[0], 13, &Settle::Sent).await.unwrap());
        assert!(
            !store
                .settle(&got2[0], 8, &Settle::Retry { at: T0 })
                .await
                .unwrap(),
            "given up is settled"
        );
        let backlog = store.backlog().await.unwrap();
        assert_eq!(of(&backlog, "r1"), Some((1, Some(T0 + 5))));
        // Settled ones never come back; the sweep takes them past keep_until.
        let rest = store
            .claim(&r1, T0 + 10_000, T0 + 10_060, 14, 10)
            .await
            .unwrap();
        assert_eq!(
            rest.iter()
                .map(|c| c.delivery.key.as_str())
                .collect::<Vec<_>>(),
            ["k3"]
        );
        // Unsettled ones go once their event is before the sweep's time
        // (a receiver no node names any more); settled ones once their
        // keep_until is.
        assert_eq!(store.sweep_outbox(T0).await.unwrap(), 0);
        assert_eq!(
            store.sweep_outbox(T0 + 1).await.unwrap(),
            1,
            "r2's k1, unsettled, at T0"
        );
        assert_eq!(
            store.sweep_outbox(T0 + 6).await.unwrap(),
            1,
            "r1's k3, unsettled, at T0+5"
        );
        assert_eq!(
            store.sweep_outbox(T0 + 10).await.unwrap(),
            0,
            "keep_until T0+10 is not before T0+10"
        );
        assert_eq!(
            store.sweep_outbox(T0 + 11).await.unwrap(),
            1,
            "the sent one"
        );
        assert_eq!(
            store.sweep_outbox(T0 + 16).await.unwrap(),
            1,
            "the given-up one"
        );
        assert!(store
            .backlog()
            .await
            .unwrap()
            .iter()
            .all(|b| b.pending == 0));
        assert_eq!(
            store
                .enqueue(&[d("r1", "k1", T0), d("r2", "k1", T0)])
                .await
                .unwrap(),
            2,
            "a swept key may come again"
        );
        let r2 = ["r2".to_string()];
        assert_eq!(
            store.claim(&r2, T0, T0 + 60, 15, 10).await.unwrap().len(),
            1
        );
    }

    /// Of many concurrent claims of one outbox, each delivery goes to one.
    pub async fn outbox_claims_are_exclusive(store: Arc<dyn Store>) {
        use crate::notify::Delivery;
        let deliveries: Vec<Delivery> = (0..40)
            .map(|i| Delivery {
                receiver: "r".into(),
                key: format!("k{i}"),
                event: Event::new(EventKind::LoginLocked, T0, Actor::Nobody),
                deadline: None,
                keep_until: T0,
            })
            .collect();
        assert_eq!(store.enqueue(&deliveries).await.unwrap(), 40);
        let mut tasks = Vec::new();
        for claim in 0..8u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..100 {
                    let page = store
                        .claim(&["r".to_string()], T0, T0 + 600, claim, 3)
                        .await
                        .unwrap();
                    if page.is_empty() {
                        break;
                    }
                    got.extend(page.into_iter().map(|c| c.delivery.key));
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!(n, all.len(), "a delivery was claimed twice");
        assert_eq!(n, 40, "every delivery was claimed");
    }

    /// `token.expiring`: each threshold is enqueued once per receiver from
    /// its second on, however often and on however many nodes the scan
    /// runs; a notice is enqueued for each receiver when its event is
    /// recorded; a revoked token hears nothing more.
    pub async fn expiry_warnings_are_enqueued_once_per_threshold(store: Arc<dyn Store>) {
        const DAY: i64 = 86_400;
        let receivers = vec!["r1".to_string(), "r2".to_string()];
        let (svc, clock, caller) = service(&store).await;
        let svc = svc.with_webhook_receivers(receivers.clone());
        let node2 = Tessera::new(
            store.clone(),
            Policy::new(PolicyConfig::default()).unwrap(),
            clock.clone() as Arc<dyn Clock>,
        )
        .with_webhook_receivers(receivers.clone());
        let req = TokenRequest {
            name: Some("soon".into()),
            token_type: Some(0),
            renewable_until: Some(T0 + 20 * DAY),
            ..TokenRequest::default()
        };
        let t = svc.create_token(&caller, None, &req).await.unwrap().token;
        let end = t.ends_at;
        assert!(
            end > T0 + 14 * DAY,
            "the token outlives the first threshold"
        );
        assert_eq!(svc.warn_expiring().await.unwrap(), 0);
        clock.set(end - 14 * DAY - 1);
        assert_eq!(svc.warn_expiring().await.unwrap(), 0, "a second early");
        clock.set(end - 14 * DAY);
        assert_eq!(svc.warn_expiring().await.unwrap(), 2, "one per receiver");
        assert_eq!(svc.warn_expiring().await.unwrap(), 0, "once");
        assert_eq!(node2.warn_expiring().await.unwrap(), 0, "once across nodes");
        clock.set(end - 7 * DAY);
        assert_eq!(node2.warn_expiring().await.unwrap(), 2);
        assert_eq!(svc.warn_expiring().await.unwrap(), 0);
        clock.set(end - DAY);
        assert_eq!(svc.warn_expiring().await.unwrap(), 2);
        let claimed = svc.claim_notices(60, 1, 100).await.unwrap();
        assert_eq!(claimed.len(), 6);
        for c in &claimed {
            let e = &c.delivery.event;
            assert_eq!(e.kind, EventKind::TokenExpiring);
            assert_eq!(e.token_id, Some(t.id));
            assert_eq!(e.user_id, Some(caller.user.id));
            assert_eq!(c.delivery.deadline, Some(end));
            assert_eq!(c.delivery.keep_until, end, "kept until the token ends");
        }
        let keys: std::collections::BTreeSet<_> =
            claimed.iter().map(|c| c.delivery.key.clone()).collect();
        assert_eq!(
            keys.len(),
            3,
            "one key per threshold, shared by the receivers"
        );
        // Sent: still taken once (the key is kept until the token ends).
        for c in &claimed {
            let (outcome, held) = svc.settle_notice(c, 1, true, 3600, 60).await.unwrap();
            assert_eq!(outcome, crate::notify::Settle::Sent);
            assert!(held);
        }
        assert_eq!(svc.warn_expiring().await.unwrap(), 0);
        // A notice's event goes to every receiver; another event does not.
        svc.revoke_token(&caller, t.id).await.unwrap();
        clock.set(end - 1);
        assert_eq!(svc.warn_expiring().await.unwrap(), 0, "revoked");
        let claimed = svc.claim_notices(60, 2, 100).await.unwrap();
        assert!(
            claimed.is_empty(),
            "token.revoked is no notice: {claimed:?}"
        );
        svc.login_locked("ghost", Some("192.0.2.1".parse().unwrap()))
            .await;
        let claimed = svc.claim_notices(60, 3, 100).await.unwrap();
        let mut to: Vec<_> = claimed
            .iter()
            .map(|c| c.delivery.receiver.clone())
            .collect();
        to.sort();
        assert_eq!(to, receivers);
        assert!(claimed
            .iter()
            .all(|c| c.delivery.event.kind == EventKind::LoginLocked
                && c.delivery.key == claimed[0].delivery.key));
        // Failed: due again after the backoff, then given up past the retry time.
        let c = &claimed[0];
        let (outcome, _) = svc.settle_notice(c, 3, false, 10, 60).await.unwrap();
        assert_eq!(outcome, crate::notify::Settle::Retry { at: end - 1 + 1 });
        clock.advance(20);
        let again = svc.claim_notices(60, 4, 100).await.unwrap();
        let c = again.iter().find(|x| x.id == c.id).expect("due again");
        let (outcome, _) = svc.settle_notice(c, 4, false, 10, 60).await.unwrap();
        assert_eq!(outcome, crate::notify::Settle::GiveUp);
    }

    /// Last-used times, audit events, and the sweep of dead records.
    pub async fn last_used_events_and_sweep(store: Arc<dyn Store>) {
        let u = user(&store, "alice", Role::User).await;
        let (t1, _, _) = new_token(&store, &u, TokenType::ALL).await;
        let (t2, _, _) = new_token(&store, &u, TokenType::SCIM).await;
        store
            .record_last_used(&[
                used(t1.id, T0 + 10, "10.0.0.1"),
                used(t2.id, T0 + 20, "::1"),
            ])
            .await
            .unwrap();
        store
            .record_last_used(&[used(t1.id, T0 + 5, "10.9.9.9")])
            .await
            .unwrap();
        let t1_now = store.token(t1.id).await.unwrap().unwrap();
        assert_eq!(t1_now.last_used_at, Some(T0 + 10), "never moves back");
        assert_eq!(
            t1_now.last_used_ip,
            Some("10.0.0.1".parse().unwrap()),
            "the address goes with the latest time"
        );
        assert_eq!(
            store.token(t2.id).await.unwrap().unwrap().last_used_ip,
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            store.token(t2.id).await.unwrap().unwrap().last_used_at,
            Some(T0 + 20)
        );
        store
            .record_last_used(&[used(TokenId(999_999), T0, "10.0.0.1")])
            .await
            .unwrap();
        // A flush after a busy minute: thousands of uses in one call (past
        // any chunking a backend does), the known tokens among them.
        let mut many: Vec<Use> = (0..12_000u64)
            .map(|i| used(TokenId(5_000_000 + i), T0 + 30, "10.0.0.1"))
            .collect();
        many.insert(7_000, used(t1.id, T0 + 40, "10.0.0.40"));
        many.push(used(t2.id, T0 + 50, "10.0.0.50"));
        store.record_last_used(&many).await.unwrap();
        assert_eq!(
            store.token(t1.id).await.unwrap().unwrap().last_used_at,
            Some(T0 + 40)
        );
        assert_eq!(
            store.token(t2.id).await.unwrap().unwrap().last_used_at,
            Some(T0 + 50)
        );
        assert_eq!(
            store.token(t1.id).await.unwrap().unwrap().last_used_ip,
            Some("10.0.0.40".parse().unwrap())
        );
        // A token inserted with a last use (an import): earlier uses leave
        // it, later ones move it on.
        let id = store.next_token_id().await.unwrap();
        let access = secret::generate(SecretKind::Access, Some(id)).unwrap();
        let mut t3 = t2.clone();
        t3.id = id;
        t3.access_digest = access.digest();
        t3.refresh_digest = None;
        t3.last_used_at = Some(T0 + 100);
        store.insert_token(&t3).await.unwrap();
        store
            .record_last_used(&[used(t3.id, T0 + 60, "10.0.0.60")])
            .await
            .unwrap();
        assert_eq!(
            store.token(t3.id).await.unwrap().unwrap().last_used_at,
            Some(T0 + 100),
            "never below the inserted time"
        );
        store
            .record_last_used(&[used(t3.id, T0 + 150, "10.0.1.50")])
            .await
            .unwrap();
        assert_eq!(
            store.token(t3.id).await.unwrap().unwrap().last_used_at,
            Some(T0 + 150)
        );

        // Sweep: t1 revoked at T0+100; t2 (SCIM) ends at T0+200; t3 lives on.
        let (t3, _, _) = new_token(&store, &u, TokenType::ALL).await;
        let t2_end = TokenChanges {
            id: t2.id,
            name: t2.name.clone(),
            scope: t2.scope.clone(),
            allowed_ips: t2.allowed_ips.clone(),
            access_expires_at: T0 + 200,
            renewable_until: None,
            ends_at: T0 + 200,
            rate_limit: None,
        };
        assert!(store.update_token(&t2_end).await.unwrap());
        store.revoke_token(t1.id, T0 + 100).await.unwrap();
        let s_old = secret::generate(SecretKind::Session, None).unwrap();
        let s_new = secret::generate(SecretKind::Session, None).unwrap();
        for (s, seen) in [(&s_old, T0), (&s_new, T0 + 500)] {
            store
                .create_session(SessionRecord {
                    digest: s.digest(),
                    user_id: u.id,
                    created_at: T0,
                    last_seen_at: seen,
                })
                .await
                .unwrap();
        }
        assert_eq!(
            store.sweep(T0 + 100, T0).await.unwrap(),
            0,
            "nothing is dead before its time"
        );
        assert!(store.token(t1.id).await.unwrap().is_some());
        let removed = store.sweep(T0 + 201, T0 + 1).await.unwrap();
        assert_eq!(removed, 3, "t1, t2 and one session");
        assert_eq!(store.token(t1.id).await.unwrap(), None);
        assert_eq!(store.token(t2.id).await.unwrap(), None);
        assert!(store.token(t3.id).await.unwrap().is_some());
        assert!(store.session(&s_old.digest()).await.unwrap().is_none());
        assert!(store.session(&s_new.digest()).await.unwrap().is_some());
    }

    /// Ids no record can have (past `i64::MAX`, as a client may write in a
    /// URL) are simply not found: no error, no fault, nothing changed.
    pub async fn ids_no_record_can_have_are_not_found(store: Arc<dyn Store>) {
        let (svc, _clock, admin) = service(&store).await;
        let t = svc
            .create_token(&admin, None, &TokenRequest::named("kept"))
            .await
            .unwrap();
        for raw in [i64::MAX as u64 + 1, u64::MAX] {
            let (tid, uid) = (TokenId(raw), UserId(raw));
            assert_eq!(store.token(tid).await.unwrap(), None, "token {raw}");
            assert!(!store.revoke_token(tid, T0).await.unwrap(), "revoke {raw}");
            assert_eq!(store.user_by_id(uid).await.unwrap(), None, "user {raw}");
            assert!(!store.delete_user(uid, T0).await.unwrap(), "delete {raw}");
            assert!(store.tokens_of_user(uid).await.unwrap().is_empty());
            let mut changes = svc
                .policy()
                .plan_edit(&t.token, &TokenRequest::named("x"), T0)
                .unwrap();
            changes.id = tid;
            assert!(!store.update_token(&changes).await.unwrap(), "edit {raw}");
            // Through the service, the same: "not found".
            assert!(matches!(
                svc.revoke_token(&admin, tid).await,
                Err(crate::Error::NotFound(_))
            ));
            assert!(matches!(
                svc.list_tokens(&admin, Some(uid)).await,
                Err(crate::Error::NotFound(_))
            ));
        }
        assert_allowed(&svc, &t.access).await;
    }

    /// Deleting a user ends their sessions and stops every token they own.
    pub async fn deleting_a_user_stops_their_tokens(store: Arc<dyn Store>) {
        let (svc, _clock, admin) = service(&store).await;
        let bob = svc.add_user("bob", "pw-bob", Role::User).await.unwrap();
        let (session, _) = svc.login("bob", "pw-bob").await.unwrap();
        let bob_caller = Caller {
            user: bob.clone(),
            credential: Credential::Session,
            address: None,
        };
        let t1 = svc
            .create_token(&bob_caller, None, &TokenRequest::named("a"))
            .await
            .unwrap();
        let t2 = svc
            .create_token(&bob_caller, None, &TokenRequest::named("b"))
            .await
            .unwrap();
        let mine = svc
            .create_token(&admin, None, &TokenRequest::named("admin's"))
            .await
            .unwrap();
        assert_allowed(&svc, &t1.access).await;
        svc.delete_user(&admin, bob.id).await.unwrap();
        assert_refused(&svc, &t1.access, Refusal::Revoked).await;
        assert_refused(&svc, &t2.access, Refusal::Revoked).await;
        assert!(svc.session_user(session.expose()).await.is_err());
        assert!(svc
            .renew(t1.access.expose(), t1.refresh.unwrap().expose())
            .await
            .is_err());
        assert_allowed(&svc, &mine.access).await;
    }

    /// 64 tasks renew one pair at once, 50 times over: exactly one wins each
    /// time. With the default policy the losers' presentations are replays
    /// and revoke the token; with a reuse grace the winner's pair keeps working.
    pub async fn concurrent_renewals_have_one_winner(store: Arc<dyn Store>) {
        let (strict, _clock, caller) = service(&store).await;
        let graceful = PolicyConfig {
            reuse_grace: 60,
            ..PolicyConfig::default()
        };
        let clock = Arc::new(ManualClock::new(T0));
        let graceful = Tessera::new(
            store.clone(),
            Policy::new(graceful).unwrap(),
            clock as Arc<dyn Clock>,
        );
        let (strict, graceful) = (Arc::new(strict), Arc::new(graceful));
        for round in 0..50 {
            let svc = if round % 2 == 0 { &strict } else { &graceful };
            let issued = svc
                .create_token(
                    &caller,
                    None,
                    &TokenRequest::named(&format!("race {round}")),
                )
                .await
                .unwrap();
            let access = issued.access.expose().to_string();
            let refresh = issued.refresh.unwrap().expose().to_string();
            let mut tasks = Vec::new();
            for _ in 0..64 {
                let (svc, a, r) = (svc.clone(), access.clone(), refresh.clone());
                tasks.push(tokio::spawn(async move { svc.renew(&a, &r).await }));
            }
            let mut winners = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(issued) => winners.push(issued),
                    Err(crate::Error::Unauthorized(_)) => {}
                    Err(e) => panic!("round {round}: unexpected error {e:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: exactly one renewal wins");
            if round % 2 == 0 {
                assert_refused(svc, &winners[0].access, Refusal::Revoked).await;
            } else {
                assert_allowed(svc, &winners[0].access).await;
            }
        }
    }

    /// 64 tasks create tokens at once: all succeed with distinct ids and all are listed.
    pub async fn concurrent_creations_are_distinct(store: Arc<dyn Store>) {
        let (svc, _clock, caller) = service(&store).await;
        let svc = Arc::new(svc);
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (svc, caller) = (svc.clone(), caller.clone());
            tasks.push(tokio::spawn(async move {
                svc.create_token(&caller, None, &TokenRequest::named(&format!("t{i}")))
                    .await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().unwrap().token.id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 64, "all ids distinct");
        let listed: Vec<TokenId> = svc
            .list_tokens(&caller, None)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(listed, ids, "all listed, by id");
    }

    /// 200 look-ups at once, known and unknown digests mixed (a backend may
    /// answer several with one statement): each gets its own record or none.
    pub async fn concurrent_lookups_get_their_own_record(store: Arc<dyn Store>) {
        let u = user(&store, "alice", Role::User).await;
        let mut known = Vec::new();
        for _ in 0..20 {
            let (t, access, _) = new_token(&store, &u, TokenType::ALL).await;
            known.push((t.id, access_key(&access)));
        }
        let mut tasks = Vec::new();
        for i in 0..200usize {
            let store = store.clone();
            let expected = (i % 3 != 0).then(|| known[i % known.len()]);
            let key = match &expected {
                Some((_, key)) => *key,
                None => access_key(
                    &secret::generate(SecretKind::Access, Some(TokenId(9_000_000 + i as u64)))
                        .unwrap(),
                ),
            };
            tasks.push(tokio::spawn(async move {
                let found = store.token_by_access(&key).await.unwrap();
                assert_eq!(
                    found.map(|t| t.id),
                    expected.map(|(id, _)| id),
                    "look-up {i}"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
}

// ---- helpers -----------------------------------------------------------------

/// Creates a person with password `pw-<name>`.
pub async fn user(store: &Arc<dyn Store>, name: &str, role: Role) -> User {
    store
        .create_user(NewUser {
            name: name.into(),
            role,
            kind: UserKind::Person,
            owner: None,
            password: Some(secret::password::hash(&format!("pw-{name}")).unwrap()),
            created_at: T0,
        })
        .await
        .unwrap()
}

/// Inserts a token of `token_type` for `owner` directly (no policy), with its secrets.
pub async fn new_token(
    store: &Arc<dyn Store>,
    owner: &User,
    token_type: TokenType,
) -> (TokenRecord, Secret, Option<Secret>) {
    let id = store.next_token_id().await.unwrap();
    let access = secret::generate(SecretKind::Access, Some(id)).unwrap();
    let refreshable = token_type.kind().refreshable();
    let refresh = refreshable.then(|| secret::generate(SecretKind::Refresh, Some(id)).unwrap());
    let endpoints = if token_type == TokenType::CUSTOM {
        parse_endpoints(&["/Client".into()]).unwrap()
    } else {
        Vec::new()
    };
    let t = TokenRecord {
        id,
        user_id: owner.id,
        user_name: owner.name.clone(),
        name: format!("token {}", id.0),
        scope: Scope::new(token_type, endpoints),
        allowed_ips: IpAllowList::default(),
        created_at: T0,
        access_expires_at: if refreshable {
            T0 + 1800
        } else {
            T0 + 30 * 86_400
        },
        renewable_until: refreshable.then_some(T0 + 90 * 86_400),
        ends_at: if refreshable {
            T0 + 1800 + 14 * 86_400
        } else {
            T0 + 30 * 86_400
        },
        access_digest: access.digest(),
        refresh_digest: refresh.as_ref().map(Secret::digest),
        legacy: false,
        revoked_at: None,
        last_used_at: None,
        last_used_ip: None,
        rate_limit: None,
    };
    store.insert_token(&t).await.unwrap();
    (t, access, refresh)
}

/// A use of token `id` at `at` from `address`.
pub fn used(id: TokenId, at: Timestamp, address: &str) -> Use {
    Use {
        id,
        at,
        address: address.parse().expect("an address"),
    }
}

/// A rotation of `t`'s pair presenting `refresh`, with fresh secrets.
pub fn rotation(t: &TokenRecord, refresh: &Secret, expires: i64) -> (Rotation, Secret, Secret) {
    let a = secret::generate(SecretKind::Access, Some(t.id)).unwrap();
    let r = secret::generate(SecretKind::Refresh, Some(t.id)).unwrap();
    let rot = Rotation {
        id: t.id,
        presented_refresh: refresh.digest(),
        at: T0 + 10,
        new_access: a.digest(),
        new_refresh: r.digest(),
        access_expires_at: expires,
        ends_at: expires + 14 * 86_400,
    };
    (rot, a, r)
}

fn access_key(s: &Secret) -> SecretKey {
    secret::parse(s.expose(), SecretKind::Access).unwrap()
}

fn refresh_key(s: &Secret) -> SecretKey {
    secret::parse(s.expose(), SecretKind::Refresh).unwrap()
}

/// A service over `store` with a manual clock at [`T0`] and an admin caller.
pub async fn service(store: &Arc<dyn Store>) -> (Tessera, Arc<ManualClock>, Caller) {
    let clock = Arc::new(ManualClock::new(T0));
    let policy = Policy::new(PolicyConfig::default()).unwrap();
    let svc = Tessera::new(store.clone(), policy, clock.clone() as Arc<dyn Clock>);
    let admin = svc
        .add_user("admin", "pw-admin", Role::Admin)
        .await
        .unwrap();
    svc.checker().refresh_legacy_horizon().await.unwrap();
    let caller = Caller {
        user: admin,
        credential: Credential::Session,
        address: None,
    };
    (svc, clock, caller)
}

async fn assert_allowed(svc: &Tessera, access: &Secret) {
    let r = svc
        .checker()
        .check(
            access.expose(),
            "GET",
            "/Client/1",
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await;
    assert!(r.is_ok(), "expected allowed, got {r:?}");
}

async fn assert_refused(svc: &Tessera, access: &Secret, why: Refusal) {
    let r = svc
        .checker()
        .check(
            access.expose(),
            "GET",
            "/Client/1",
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await;
    assert_eq!(r, Err(CheckError::Refused(why)));
}

/// A store whose backend is down: every call fails with
/// [`StoreError::Unavailable`]. For testing that callers fail closed.
#[derive(Debug, Default, Clone, Copy)]
pub struct DownStore;

mod down {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::DownStore;
    use crate::model::{
        Event, EventQuery, LoggedEvent, NewUser, RefreshLookup, RotateOutcome, Rotation,
        SessionRecord, Timestamp, TokenChanges, TokenId, TokenRecord, User, UserId,
    };
    use crate::secret::{Digest, SecretKey};
    use crate::store::{SessionStore, Store, StoreResult, TokenStore, UserStore};
    use crate::StoreError;

    fn down<T>() -> StoreResult<T> {
        Err(StoreError::Unavailable("the test store is down".into()))
    }

    #[async_trait]
    impl UserStore for DownStore {
        async fn create_user(&self, _: NewUser) -> StoreResult<User> {
            down()
        }
        async fn user_by_id(&self, _: UserId) -> StoreResult<Option<User>> {
            down()
        }
        async fn user_by_name(&self, _: &str) -> StoreResult<Option<User>> {
            down()
        }
        async fn list_users(&self) -> StoreResult<Vec<User>> {
            down()
        }
        async fn has_users(&self) -> StoreResult<bool> {
            down()
        }
        async fn delete_user(&self, _: UserId, _: Timestamp) -> StoreResult<bool> {
            down()
        }
        async fn set_password(
            &self,
            _: UserId,
            _: &crate::secret::password::PasswordHash,
            _: Option<&Digest>,
        ) -> StoreResult<bool> {
            down()
        }
    }

    #[async_trait]
    impl SessionStore for DownStore {
        async fn create_session(&self, _: SessionRecord) -> StoreResult<()> {
            down()
        }
        async fn session(&self, _: &Digest) -> StoreResult<Option<SessionRecord>> {
            down()
        }
        async fn touch_session(&self, _: &Digest, _: Timestamp) -> StoreResult<()> {
            down()
        }
        async fn delete_session(&self, _: &Digest) -> StoreResult<bool> {
            down()
        }
    }

    #[async_trait]
    impl TokenStore for DownStore {
        async fn next_token_id(&self) -> StoreResult<TokenId> {
            down()
        }
        async fn insert_token(&self, _: &TokenRecord) -> StoreResult<()> {
            down()
        }
        async fn token(&self, _: TokenId) -> StoreResult<Option<TokenRecord>> {
            down()
        }
        async fn token_by_access(&self, _: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>> {
            down()
        }
        async fn tokens_of_user(&self, _: UserId) -> StoreResult<Vec<TokenRecord>> {
            down()
        }
        async fn update_token(&self, _: &TokenChanges) -> StoreResult<bool> {
            down()
        }
        async fn refresh_lookup(&self, _: &SecretKey) -> StoreResult<RefreshLookup> {
            down()
        }
        async fn rotate(&self, _: &Rotation) -> StoreResult<RotateOutcome> {
            down()
        }
        async fn revoke_token(&self, _: TokenId, _: Timestamp) -> StoreResult<bool> {
            down()
        }
        async fn import_legacy(&self, _: &[TokenRecord]) -> StoreResult<()> {
            down()
        }
        async fn legacy_horizon(&self) -> StoreResult<Option<Timestamp>> {
            down()
        }
        async fn record_last_used(&self, _: &[crate::model::Use]) -> StoreResult<()> {
            down()
        }
        async fn note_addresses(
            &self,
            _: &[crate::model::Use],
        ) -> StoreResult<Vec<crate::model::NewAddress>> {
            down()
        }
        async fn count_use(&self, _: TokenId, _: i64, _: Timestamp, _: u32) -> StoreResult<u64> {
            down()
        }
        async fn record_event(&self, _: &Event) -> StoreResult<()> {
            down()
        }
        async fn events(&self, _: &EventQuery) -> StoreResult<Vec<LoggedEvent>> {
            down()
        }
        async fn sweep_events(&self, _: Timestamp) -> StoreResult<u64> {
            down()
        }
        async fn sweep(&self, _: Timestamp, _: Timestamp) -> StoreResult<u64> {
            down()
        }
    }

    #[async_trait]
    impl crate::feed::ChangeFeed for DownStore {
        async fn subscribe(&self) -> StoreResult<Box<dyn crate::feed::ChangeStream>> {
            down()
        }
        async fn beat(&self, _: &str) -> StoreResult<()> {
            down()
        }
    }

    #[async_trait]
    impl crate::store::Outbox for DownStore {
        async fn enqueue(&self, _: &[crate::notify::Delivery]) -> StoreResult<u64> {
            down()
        }
        async fn claim(
            &self,
            _: &[String],
            _: Timestamp,
            _: Timestamp,
            _: u64,
            _: usize,
        ) -> StoreResult<Vec<crate::notify::Claimed>> {
            down()
        }
        async fn settle(
            &self,
            _: &crate::notify::Claimed,
            _: u64,
            _: &crate::notify::Settle,
        ) -> StoreResult<bool> {
            down()
        }
        async fn backlog(&self) -> StoreResult<Vec<crate::notify::Backlog>> {
            down()
        }
        async fn sweep_outbox(&self, _: Timestamp) -> StoreResult<u64> {
            down()
        }
    }

    #[async_trait]
    impl Store for DownStore {
        async fn ping(&self) -> StoreResult<()> {
            down()
        }
    }
}
