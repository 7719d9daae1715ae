//! Two `tessera` processes over one store (issue 12): each checks through
//! its exact local cache, kept in step by the store's change stream. What
//! one node changes, the other refuses (polled with a deadline: the stream
//! carries it within milliseconds, never "at once"); what one node creates,
//! the other accepts at once (an id beyond what a node has seen is looked
//! up); the node that made a change refuses at once; concurrent renewals
//! split over both nodes have exactly one winner.
//!
//! On every store compiled in and reachable: a SQLite file both processes
//! open, a PostgreSQL schema, a Redis prefix.

mod common;

use std::time::{Duration, Instant};

use common::{spawn, Server, StoreFixture, ADMIN_PASSWORD};
use serde_json::json;

/// How long a change may take to reach the other node before the test fails
/// (the bench measures how long it really takes).
const WITHIN: Duration = Duration::from_secs(10);

/// Both nodes over `store`: the first creates the admin, the second joins.
fn two_nodes(store: &StoreFixture) -> (Server, Server) {
    let a = spawn(store, &[]);
    let b = spawn(store, &[]);
    (a, b)
}

/// Polls `node` until `token` is refused with `status` on `GET path`.
async fn refused_within(node: &Server, token: &str, path: &str, status: u16, what: &str) {
    let start = Instant::now();
    loop {
        let got = node.check(token, "GET", path).await;
        if got == status {
            return;
        }
        assert_eq!(got, 200, "{what}: neither allowed nor {status}");
        assert!(
            start.elapsed() < WITHIN,
            "{what}: the other node still allows after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Checks `token` on `node` until it is served from the cache (the first
/// check reads the store).
async fn warm(node: &Server, token: &str) {
    assert_eq!(node.check(token, "GET", "/Client").await, 200);
    assert_eq!(node.check(token, "GET", "/Client").await, 200);
}

async fn changes_on_one_node_are_refused_by_the_other(store: StoreFixture) {
    let (a, b) = two_nodes(&store);
    let admin_a = a.login("admin", ADMIN_PASSWORD).await;
    let admin_b = b.login("admin", ADMIN_PASSWORD).await;
    let label = store.name;

    // Created on A: allowed on B at once.
    let t = a.token(&admin_a, json!({"tokenName": "revoked"})).await;
    assert_eq!(b.check(&t.access, "GET", "/Client").await, 200, "{label}");
    warm(&b, &t.access).await;
    // Revoked on A: A refuses at once, B within the deadline.
    assert_eq!(a.delete_token(&admin_a, t.id).await.status, 200);
    assert_eq!(a.check(&t.access, "GET", "/Client").await, 401, "{label}");
    refused_within(&b, &t.access, "/Client", 401, &format!("{label}: revoke")).await;

    // Scope narrowed on B: A refuses the old path.
    let t = b.token(&admin_b, json!({"tokenName": "edited"})).await;
    warm(&a, &t.access).await;
    let e = b
        .edit_token(
            &admin_b,
            t.id,
            json!({"tokenType": 3, "apiEndpoints": ["GET /Job"]}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.json);
    assert_eq!(b.check(&t.access, "GET", "/Client").await, 403);
    refused_within(&a, &t.access, "/Client", 403, &format!("{label}: edit")).await;
    assert_eq!(a.check(&t.access, "GET", "/Job").await, 200);

    // Renewed on A: the old secret stops on B, the new one works there.
    let t = a.token(&admin_a, json!({"tokenName": "renewed"})).await;
    warm(&b, &t.access).await;
    let r = a.renew(&t.access, t.refresh.as_deref().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let new_access = r.json["accessToken"].as_str().unwrap().to_string();
    refused_within(&b, &t.access, "/Client", 401, &format!("{label}: renew")).await;
    assert_eq!(b.check(&new_access, "GET", "/Client").await, 200);

    // A user deleted on B: their tokens stop on A.
    let (bob_id, bob) = b.person(&admin_b, "bob", "user").await;
    let t = b.token(&bob, json!({"tokenName": "bob's"})).await;
    warm(&a, &t.access).await;
    assert_eq!(b.delete_user(&admin_b, bob_id).await.status, 200);
    refused_within(
        &a,
        &t.access,
        "/Client",
        401,
        &format!("{label}: delete user"),
    )
    .await;

    // Both nodes say in /metrics that they cache and follow the stream.
    for node in [&a, &b] {
        let m = node.metrics_text().await;
        assert!(m.contains("tessera_cache_capacity 100000"), "{m}");
        assert!(m.contains("tessera_cache_fresh 1"), "{label}: {m}");
    }
}

/// 64 concurrent renewals of one pair, split over both nodes: one winner,
/// whose pair works on both; the loser's replays revoke nothing twice.
async fn renewals_over_two_nodes_have_one_winner(store: StoreFixture) {
    // A reuse grace, so that the losers are refused without revoking.
    let a = spawn(&store, &["--reuse-grace", "60s"]);
    let b = spawn(&store, &["--reuse-grace", "60s"]);
    let admin = a.login("admin", ADMIN_PASSWORD).await;
    let t = a.token(&admin, json!({"tokenName": "contended"})).await;
    warm(&a, &t.access).await;
    warm(&b, &t.access).await;
    let refresh = t.refresh.clone().unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let node = if i % 2 == 0 { &a } else { &b };
        tasks.push(node.renew(&t.access, &refresh));
    }
    let answers = futures_util::future::join_all(tasks).await;
    let winners: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{}: {:?}",
        store.name,
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|r| r.status == 200 || r.status == 401));
    let new_access = winners[0].json["accessToken"].as_str().unwrap().to_string();
    for node in [&a, &b] {
        assert_eq!(node.check(&new_access, "GET", "/Client").await, 200);
        refused_within(node, &t.access, "/Client", 401, store.name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_changes_on_one_node_are_refused_by_the_other() {
    for store in common::all_stores().await {
        changes_on_one_node_are_refused_by_the_other(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_renewals_over_two_nodes_have_one_winner() {
    for store in common::all_stores().await {
        renewals_over_two_nodes_have_one_winner(store).await;
    }
}
