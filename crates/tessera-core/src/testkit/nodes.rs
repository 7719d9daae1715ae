//! The cache's conformance cases: two "nodes" over one backend's data (two
//! store handles on the same database, file or prefix), one of them checking
//! through the exact local cache ([`crate::cache`]) fed by the backend's
//! change stream. Every backend runs them with
//!
//! ```text
//! tessera_core::cache_suite!(my_backend_tests::fresh_store);
//! ```
//!
//! where the factory's [`Fixture`] says how to open a second handle and how
//! to cut the change streams ([`Fixture::with_nodes`]).
//!
//! The cases assert behaviour, never timing. Where a change must have
//! reached the caching node, they wait (with a deadline) for a heartbeat
//! that node sent *after* the change: by the stream's contract every change
//! committed before it has then been applied, so the very next check must
//! refuse. No case polls a refusal into existence except the one whose
//! stream is silent (where nothing may arrive, and only the staleness bound
//! can make the node refuse).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::cache::{follow, Cache};
use crate::check::{CheckError, Refusal};
use crate::clock::{Clock, ManualClock};
use crate::feed::{Change, ChangeFeed, ChangeStream};
use crate::model::{Role, TokenId};
use crate::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use crate::secret::{self, Secret, SecretKind};
use crate::service::{Caller, Issued, Tessera};
use crate::store::{Store, StoreResult};

use super::{Fixture, T0};

/// Opens another handle on a fixture's data: a second node.
pub type Reopen =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send>> + Send + Sync>;

/// Cuts every change-stream subscription on a fixture's data (a lost
/// connection: `pg_terminate_backend`, Redis `CLIENT KILL`).
pub type Cut = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the cache cases get: the fixture's store, and how to open another
/// handle on its data and cut its streams.
pub struct Nodes {
    /// The fixture's store (the first node's handle).
    pub store: Arc<dyn Store>,
    reopen: Reopen,
    cut: Option<Cut>,
}

impl Nodes {
    pub(super) fn of(fixture: &Fixture) -> Self {
        let (reopen, cut) = fixture
            .nodes
            .clone()
            .expect("the cache suite needs Fixture::with_nodes");
        Nodes {
            store: fixture.store.clone(),
            reopen,
            cut,
        }
    }

    /// Another handle on the same data.
    pub async fn open(&self) -> Arc<dyn Store> {
        (self.reopen)().await
    }
}

/// Expands to one `#[tokio::test]` per cache case, each calling
/// `$factory().await` for a fresh [`Fixture`] made
/// [`with_nodes`](Fixture::with_nodes).
#[macro_export]
macro_rules! cache_suite {
    ($factory:path) => {
        $crate::cache_suite!(@cases $factory;
            another_nodes_changes_are_never_served,
            a_change_while_the_stream_is_cut_is_not_served_after_it,
            a_silent_stream_serves_no_cached_allow,
            renewals_over_two_nodes_have_one_winner,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::testkit::run_nodes_case(
                    $factory().await,
                    $crate::testkit::nodes::cases::$case,
                )
                .await;
            }
        )*
    };
}

/// A feed that can be silenced: once muted, its streams deliver nothing
/// more (not even an error) and its beats go nowhere, as a connection that
/// hangs without closing would.
struct Muting {
    inner: Arc<dyn Store>,
    muted: Arc<AtomicBool>,
}

struct MutingStream {
    inner: Box<dyn ChangeStream>,
    muted: Arc<AtomicBool>,
}

#[async_trait]
impl ChangeStream for MutingStream {
    async fn next(&mut self) -> StoreResult<Change> {
        let change = self.inner.next().await;
        if self.muted.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        change
    }
}

#[async_trait]
impl ChangeFeed for Muting {
    async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        Ok(Box::new(MutingStream {
            inner: self.inner.subscribe().await?,
            muted: self.muted.clone(),
        }))
    }

    async fn beat(&self, text: &str) -> StoreResult<()> {
        if self.muted.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.beat(text).await
    }
}

/// One node: a service over its own store handle, checking through a cache
/// that its own follower task keeps in step.
struct Node {
    svc: Tessera,
    cache: Arc<Cache>,
    feed: Arc<Muting>,
    muted: Arc<AtomicBool>,
    follower: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// The bound the cases' caches use: long, so that a slow machine never
/// makes a case's node stale by accident (the silent-stream case uses its own).
const STALENESS: Duration = Duration::from_secs(5);

/// How long a case waits for what must happen.
const DEADLINE: Duration = Duration::from_secs(20);

impl Node {
    async fn new(store: Arc<dyn Store>, clock: Arc<ManualClock>, staleness: Duration) -> Node {
        let policy = Policy::new(PolicyConfig::default()).unwrap();
        let cache = Arc::new(Cache::new(1000, staleness));
        let svc =
            Tessera::new(store.clone(), policy, clock as Arc<dyn Clock>).with_cache(cache.clone());
        let muted = Arc::new(AtomicBool::new(false));
        let feed = Arc::new(Muting {
            inner: store,
            muted: muted.clone(),
        });
        let follower = tokio::spawn({
            let (cache, feed) = (cache.clone(), feed.clone());
            async move {
                follow(&cache, &*feed, Duration::from_millis(200), &|_| {}).await;
            }
        });
        let node = Node {
            svc,
            cache,
            feed,
            muted,
            follower,
        };
        node.caught_up().await;
        node
    }

    /// Waits until a heartbeat this node sent after the call began has come
    /// back: every change committed before the call has then been applied.
    async fn caught_up(&self) {
        let mark = self.cache.clock();
        let deadline = Instant::now() + DEADLINE;
        // A beat of its own, sent strictly after the mark, so as not to
        // wait for the next tick.
        while self.cache.clock() <= mark {
            std::hint::spin_loop();
        }
        let _ = self.feed.beat(&self.cache.beat_text()).await;
        while self.cache.caught_up_to() <= mark || !self.cache.is_fresh() {
            assert!(
                Instant::now() < deadline,
                "the change stream did not catch up: {:?}",
                self.cache.status()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn check(&self, access: &Secret) -> Result<(), CheckError> {
        self.check_path(access, "/Client/1").await
    }

    async fn check_path(&self, access: &Secret, path: &str) -> Result<(), CheckError> {
        self.svc
            .checker()
            .check(
                access.expose(),
                "GET",
                path,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            )
            .await
            .map(|_| ())
    }

    /// Checks `access` until the answer is served from memory (the first
    /// check may read the store), and asserts it allows.
    async fn warm(&self, access: &Secret) {
        // The token's creation may still be on its way here; once it has
        // arrived, nothing else moves the record.
        self.caught_up().await;
        assert_eq!(self.check(access).await, Ok(()));
        let hits = self.cache.status().hits;
        assert_eq!(self.check(access).await, Ok(()));
        assert!(
            self.cache.status().hits > hits,
            "the second check was not served from the cache: {:?}",
            self.cache.status()
        );
    }
}

/// Two nodes over the fixture's data (A caches; B makes the changes, and
/// caches too), the admin caller, and the shared clock.
async fn two_nodes(nodes: &Nodes) -> (Node, Node, Caller) {
    let clock = Arc::new(ManualClock::new(T0));
    let b = Node::new(nodes.open().await, clock.clone(), STALENESS).await;
    let admin = b
        .svc
        .add_user("admin", "pw-admin", Role::Admin)
        .await
        .unwrap();
    let a = Node::new(nodes.store.clone(), clock, STALENESS).await;
    let caller = Caller {
        user: admin,
        credential: Credential::Session,
        address: None,
    };
    (a, b, caller)
}

async fn token(node: &Node, caller: &Caller, name: &str) -> Issued {
    node.svc
        .create_token(caller, None, &TokenRequest::named(name))
        .await
        .unwrap()
}

fn refused(why: Refusal) -> Result<(), CheckError> {
    Err(CheckError::Refused(why))
}

/// The cases.
pub mod cases {
    use super::*;

    /// Each kind of change made on node B is refused by node A's very next
    /// check once A has caught up; a forged secret for a cached id, and ids
    /// beyond every issued one, are refused from memory.
    pub async fn another_nodes_changes_are_never_served(nodes: Nodes) {
        let (a, b, admin) = two_nodes(&nodes).await;

        // Revocation.
        let t = token(&b, &admin, "revoked").await;
        a.warm(&t.access).await;
        b.svc.revoke_token(&admin, t.token.id).await.unwrap();
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Revoked));

        // An edit of the scope.
        let t = token(&b, &admin, "edited").await;
        a.warm(&t.access).await;
        let edit = TokenRequest {
            token_type: Some(3),
            api_endpoints: Some(vec!["GET /Job".into()]),
            ..TokenRequest::named("edited")
        };
        b.svc.edit_token(&admin, t.token.id, &edit).await.unwrap();
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Scope));
        assert_eq!(a.check_path(&t.access, "/Job").await, Ok(()));

        // A renewal: the old access secret stops, the new one works.
        let t = token(&b, &admin, "renewed").await;
        a.warm(&t.access).await;
        let refresh = t.refresh.as_ref().unwrap();
        let renewed = b
            .svc
            .renew(t.access.expose(), refresh.expose())
            .await
            .unwrap();
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Unknown));
        a.warm(&renewed.access).await;

        // A forged secret for a cached id is refused without the store.
        let forged = secret::generate(SecretKind::Access, Some(renewed.token.id)).unwrap();
        let misses = a.cache.status().misses;
        assert_eq!(a.check(&forged).await, refused(Refusal::Unknown));
        assert_eq!(
            a.cache.status().misses,
            misses,
            "the forgery read the store"
        );

        // The deletion of a user revokes their tokens.
        let bob = b.svc.add_user("bob", "pw-bob", Role::User).await.unwrap();
        let bobs = Caller {
            user: bob.clone(),
            credential: Credential::Session,
            address: None,
        };
        let t = token(&b, &bobs, "bob's").await;
        a.warm(&t.access).await;
        b.svc.delete_user(&admin, bob.id).await.unwrap();
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Revoked));

        // A sweep removes a revoked token: A no longer has its record.
        let t = token(&b, &admin, "swept").await;
        b.svc.revoke_token(&admin, t.token.id).await.unwrap();
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Revoked));
        assert_eq!(a.check(&t.access).await, refused(Refusal::Revoked));
        b.svc.sweep(-86_400).await.unwrap();
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Unknown));

        // An id A learnt was absent, then created on B: allowed once caught up.
        let t = token(&b, &admin, "probe").await;
        let next = TokenId(t.token.id.0 + 1);
        let early = secret::generate(SecretKind::Access, Some(next)).unwrap();
        assert_eq!(a.check(&early).await, refused(Refusal::Unknown));
        let created = token(&b, &admin, "created").await;
        assert_eq!(created.token.id, next, "ids are handed out in order");
        a.caught_up().await;
        a.warm(&created.access).await;

        // Far beyond every issued id: unknown.
        let beyond = secret::generate(SecretKind::Access, Some(TokenId(u64::MAX - 1))).unwrap();
        assert_eq!(a.check(&beyond).await, refused(Refusal::Unknown));
    }

    /// A change made on B while A's stream is cut is not served by A once
    /// it has subscribed again (it emptied its cache).
    pub async fn a_change_while_the_stream_is_cut_is_not_served_after_it(nodes: Nodes) {
        let Some(cut) = nodes.cut.clone() else {
            println!("this backend's streams cannot be cut from outside: case not applicable");
            return;
        };
        let (a, b, admin) = two_nodes(&nodes).await;
        let t = token(&b, &admin, "cut").await;
        a.warm(&t.access).await;
        let subscriptions = a.cache.status().subscriptions;
        cut().await;
        b.svc.revoke_token(&admin, t.token.id).await.unwrap();
        let deadline = Instant::now() + DEADLINE;
        while a.cache.status().subscriptions == subscriptions {
            assert!(Instant::now() < deadline, "A never subscribed again");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(a.cache.status().cuts > 0);
        a.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Revoked));
    }

    /// A's stream goes silent (no error, no messages, no heartbeats): once
    /// the staleness bound passes A reads the store, so a revocation it was
    /// never told of is refused.
    pub async fn a_silent_stream_serves_no_cached_allow(nodes: Nodes) {
        let clock = Arc::new(ManualClock::new(T0));
        let b = Node::new(nodes.open().await, clock.clone(), STALENESS).await;
        let admin = Caller {
            user: b
                .svc
                .add_user("admin", "pw-admin", Role::Admin)
                .await
                .unwrap(),
            credential: Credential::Session,
            address: None,
        };
        let a = Node::new(nodes.store.clone(), clock, Duration::from_millis(300)).await;
        let t = token(&b, &admin, "silent").await;
        // Warm within the short bound (retried if the machine is slow).
        let deadline = Instant::now() + DEADLINE;
        loop {
            a.caught_up().await;
            assert_eq!(a.check(&t.access).await, Ok(()));
            let hits = a.cache.status().hits;
            assert_eq!(a.check(&t.access).await, Ok(()));
            if a.cache.status().hits > hits {
                break;
            }
            assert!(Instant::now() < deadline, "never served from the cache");
        }
        a.muted.store(true, Ordering::SeqCst);
        b.svc.revoke_token(&admin, t.token.id).await.unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            match a.check(&t.access).await {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(Err(e), refused(Refusal::Revoked));
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "a node whose stream went silent kept allowing: {:?}",
                a.cache.status()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!a.cache.status().fresh);
        // It keeps reading the store: still refused, nothing served stale.
        assert_eq!(a.check(&t.access).await, refused(Refusal::Revoked));
    }

    /// Concurrent renewals of one pair, split over two caching nodes:
    /// exactly one wins, and the winner's pair works on both nodes.
    pub async fn renewals_over_two_nodes_have_one_winner(nodes: Nodes) {
        let (a, b, admin) = two_nodes(&nodes).await;
        let graceful = PolicyConfig {
            reuse_grace: 60,
            ..PolicyConfig::default()
        };
        let clock = Arc::new(ManualClock::new(T0));
        let nodes = [
            Arc::new(Tessera::new(
                a.svc.store().clone(),
                Policy::new(graceful.clone()).unwrap(),
                clock.clone() as Arc<dyn Clock>,
            )),
            Arc::new(Tessera::new(
                b.svc.store().clone(),
                Policy::new(graceful).unwrap(),
                clock as Arc<dyn Clock>,
            )),
        ];
        let t = token(&b, &admin, "contended").await;
        a.warm(&t.access).await;
        let refresh = t.refresh.clone().unwrap();
        let mut tasks = Vec::new();
        for i in 0..32 {
            let svc = nodes[i % 2].clone();
            let (access, refresh) = (t.access.clone(), refresh.clone());
            tasks.push(tokio::spawn(async move {
                svc.renew(access.expose(), refresh.expose()).await.ok()
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(won) = task.await.unwrap() {
                winners.push(won);
            }
        }
        assert_eq!(winners.len(), 1, "exactly one renewal wins");
        a.caught_up().await;
        b.caught_up().await;
        assert_eq!(a.check(&t.access).await, refused(Refusal::Unknown));
        a.warm(&winners[0].access).await;
        b.warm(&winners[0].access).await;
    }
}
