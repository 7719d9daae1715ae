//! The fleet (issue 13): three `tessera` processes over one store behind our
//! own nginx, round-robin, as a user runs Tessera past one machine. Each
//! node checks through its exact local cache, kept in step by the store's
//! change stream.
//!
//! * A Commvault-style client (login, create, use, renew on 401, revoke,
//!   logout) goes through the balancer, and its calls land on every node.
//! * What one node changes (revoke, edit, renew, delete a user, a reused
//!   refresh token revoking its chain), every other refuses, polled with a
//!   deadline (the stream carries it within milliseconds, never "at once");
//!   the node that made the change refuses at once; what one node creates,
//!   the others accept at once.
//! * Concurrent renewals of one pair spread over the nodes: one winner.
//! * A node killed with SIGKILL under load costs at most the requests it
//!   held; a node started later joins with an empty cache and answers right.
//! * On a Redis Cluster of the test's own: a master's failover to its
//!   replica costs 503s at most, never a wrong 200, and the stream recovers.
//!
//! On every store compiled in and reachable: a SQLite file the processes
//! share, a PostgreSQL schema, a Redis prefix, a prefix on the suites'
//! Redis Cluster. Without nginx: `SKIPPED: nginx not installed` (a failure
//! under CI).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, Server, StoreFixture, ADMIN_PASSWORD};
use serde_json::json;
use tessera_testsupport::fleet::{Fleet, LaunchFn};

/// Nodes behind the balancer.
const NODES: usize = 3;

/// How long a change may take to reach another node before the test fails
/// (the bench measures how long it really takes).
const WITHIN: Duration = Duration::from_secs(10);

/// Every store a fleet runs on here, each fresh.
async fn fleet_stores() -> Vec<StoreFixture> {
    #[allow(unused_mut)]
    let mut v = common::all_stores().await;
    #[cfg(feature = "redis")]
    v.extend(common::redis_cluster().await);
    v
}

/// [`NODES`] nodes over `store` behind nginx, each with `extra` arguments
/// and the balancer (127.0.0.1) as a trusted proxy; `None` without nginx
/// (SKIPPED; a failure under CI).
fn fleet(store: &StoreFixture, extra: &[&str]) -> Option<Fleet> {
    let Some(nginx) = common::proxy::find_binary("nginx") else {
        tessera_core::testkit::skip("nginx not installed");
        return None;
    };
    let store = store.again();
    let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    let launch: LaunchFn = Box::new(move || {
        common::launch(&store)
            .args(["--trusted-proxies", "127.0.0.1"])
            .args(&extra)
    });
    Some(Fleet::start(&nginx, NODES, launch).unwrap_or_else(|e| panic!("{e}")))
}

/// Polls `node` until `token` is refused with `status` on `GET path`.
async fn refused_within(node: &Client, token: &str, path: &str, status: u16, what: &str) {
    let start = Instant::now();
    loop {
        let got = node.check(token, "GET", path).await;
        if got == status {
            return;
        }
        assert_eq!(got, 200, "{what}: neither allowed nor {status}");
        assert!(
            start.elapsed() < WITHIN,
            "{what}: {} still allows after {WITHIN:?}",
            node.base
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Checks `token` on every node until each serves it from its cache (a
/// first check reads the store).
async fn warm(f: &Fleet, token: &str, path: &str) {
    for (i, node) in f.live() {
        for _ in 0..2 {
            assert_eq!(node.check(token, "GET", path).await, 200, "node {i}");
        }
    }
}

/// The nodes other than `i`.
fn others(f: &Fleet, i: usize) -> Vec<&Server> {
    f.live().filter(|(j, _)| *j != i).map(|(_, n)| n).collect()
}

// ---- a Commvault-style client through the balancer --------------------------

async fn a_commvault_client_through_the_balancer(store: StoreFixture) {
    // Access tokens of 3 s, so that the client meets its 401 and renews.
    let Some(f) = fleet(&store, &["--access-lifetime", "3s"]) else {
        return;
    };
    let lb = f.balancer();
    let label = store.name;
    let session = lb.login("admin", ADMIN_PASSWORD).await;
    let t = lb.token(&session, json!({"tokenName": "client"})).await;
    let refresh = t.refresh.clone().expect("a refresh token");

    // Its uses land on every node, and every node allows it (one created
    // on another node is looked up at once).
    let mut served = [0usize; NODES];
    for _ in 0..3 * NODES {
        let a = lb
            .try_check_answer(&t.access, "GET", "/Client")
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{label}: {}", a.text);
        served[f.node_of(&a).expect("the node that answered")] += 1;
    }
    assert!(served.iter().all(|&n| n > 0), "{label}: {served:?}");

    // It uses the token until refused (expired), then renews through the
    // balancer and goes on with the new pair, on every node.
    let start = Instant::now();
    loop {
        match lb.check(&t.access, "GET", "/Client").await {
            401 => break,
            200 => assert!(start.elapsed() < WITHIN, "{label}: never expired"),
            st => panic!("{label}: {st} while the token lives"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = lb.renew(&t.access, &refresh).await;
    assert_eq!(r.status, 200, "{label}: {}", r.json);
    let renewed = renewed_pair(&r.json).expect("a new pair");
    let (access, new_refresh) = renewed;
    for (i, node) in f.live() {
        assert_eq!(
            node.check(&access, "GET", "/Client").await,
            200,
            "{label}: the renewed token on node {i}"
        );
    }

    // Revoked through the balancer: no node renews it any more.
    let d = lb.delete_token(&session, t.id).await;
    assert_eq!(d.status, 200, "{label}: {}", d.json);
    for (i, node) in f.live() {
        let again = node.renew(&access, &new_refresh).await;
        assert_eq!(
            again.status, 401,
            "{label}: a revoked pair renewed on node {i}"
        );
        refused_within(node, &access, "/Client", 401, label).await;
    }

    // Logged out through the balancer: no node takes the session.
    assert_eq!(lb.logout(&session).await.status, 200);
    for (i, node) in f.live() {
        let a = node.list_tokens(&session, None).await;
        assert_eq!(a.status, 401, "{label}: node {i} took an ended session");
    }
}

/// The pair a renewal answered (`accessToken`, `refreshToken` at the top
/// of the body, as Commvault's Renew answers).
fn renewed_pair(body: &serde_json::Value) -> Option<(String, String)> {
    let access = body["accessToken"].as_str()?.to_string();
    let refresh = body["refreshToken"].as_str()?.to_string();
    Some((access, refresh))
}

// ---- changes on one node, honoured by the others -----------------------------

async fn changes_on_any_node_are_honoured_by_the_others(store: StoreFixture) {
    let Some(f) = fleet(&store, &[]) else {
        return;
    };
    let label = store.name;
    let mut sessions = Vec::new();
    for (_, node) in f.live() {
        sessions.push(node.login("admin", ADMIN_PASSWORD).await);
    }
    let (n0, n1, n2) = (f.node(0), f.node(1), f.node(2));

    // Created on node 0: allowed by the others at once. Revoked on node 0:
    // refused there at once, by the others within the deadline.
    let t = n0
        .token(&sessions[0], json!({"tokenName": "revoked"}))
        .await;
    for node in others(&f, 0) {
        assert_eq!(
            node.check(&t.access, "GET", "/Client").await,
            200,
            "{label}"
        );
    }
    warm(&f, &t.access, "/Client").await;
    assert_eq!(n0.delete_token(&sessions[0], t.id).await.status, 200);
    assert_eq!(n0.check(&t.access, "GET", "/Client").await, 401, "{label}");
    for node in others(&f, 0) {
        refused_within(node, &t.access, "/Client", 401, &format!("{label}: revoke")).await;
    }

    // Scope narrowed on node 1: the others refuse the old path.
    let t = n1.token(&sessions[1], json!({"tokenName": "edited"})).await;
    warm(&f, &t.access, "/Client").await;
    let e = n1
        .edit_token(
            &sessions[1],
            t.id,
            json!({"tokenType": 3, "apiEndpoints": ["GET /Job"]}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.json);
    assert_eq!(n1.check(&t.access, "GET", "/Client").await, 403);
    for node in others(&f, 1) {
        refused_within(node, &t.access, "/Client", 403, &format!("{label}: edit")).await;
        assert_eq!(node.check(&t.access, "GET", "/Job").await, 200);
    }

    // Renewed on node 2: the old secret stops on the others, the new works.
    let t = n2
        .token(&sessions[2], json!({"tokenName": "renewed"}))
        .await;
    warm(&f, &t.access, "/Client").await;
    let r = n2.renew(&t.access, t.refresh.as_deref().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let new_access = r.json["accessToken"].as_str().unwrap().to_string();
    for node in others(&f, 2) {
        refused_within(node, &t.access, "/Client", 401, &format!("{label}: renew")).await;
        assert_eq!(node.check(&new_access, "GET", "/Client").await, 200);
    }

    // A user deleted on node 0: their tokens stop everywhere.
    let (bob_id, bob) = n0.person(&sessions[0], "bob", "user").await;
    let t = n1.token(&bob, json!({"tokenName": "bob's"})).await;
    warm(&f, &t.access, "/Client").await;
    assert_eq!(n0.delete_user(&sessions[0], bob_id).await.status, 200);
    for node in others(&f, 0) {
        let what = format!("{label}: delete user");
        refused_within(node, &t.access, "/Client", 401, &what).await;
    }

    // A refresh token reused on node 2 after node 1 renewed it: the chain
    // is revoked, on every node.
    let t = n0.token(&sessions[0], json!({"tokenName": "reused"})).await;
    let old_refresh = t.refresh.clone().unwrap();
    let r = n1.renew(&t.access, &old_refresh).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let (access, refresh) = renewed_pair(&r.json).expect("a new pair");
    warm(&f, &access, "/Client").await;
    let replay = n2.renew(&t.access, &old_refresh).await;
    assert_eq!(
        replay.status, 401,
        "{label}: a reused refresh token renewed"
    );
    for (i, node) in f.live() {
        let what = format!("{label}: reuse seen on node 2, node {i}");
        refused_within(node, &access, "/Client", 401, &what).await;
    }
    assert_eq!(
        n0.renew(&access, &refresh).await.status,
        401,
        "{label}: the chain's last pair still renews"
    );

    // Every node says in /metrics that it caches and follows the stream.
    for (_, node) in f.live() {
        let m = node.metrics_text().await;
        assert!(m.contains("tessera_cache_capacity 100000"), "{m}");
        assert!(m.contains("tessera_cache_fresh 1"), "{label}: {m}");
    }
}

// ---- concurrent renewals -------------------------------------------------------

/// 66 concurrent renewals of one pair, spread over the nodes: one winner,
/// whose pair works on every node; the losers are refused.
async fn renewals_over_the_nodes_have_one_winner(store: StoreFixture) {
    // A reuse grace, so that the losers are refused without revoking.
    let Some(f) = fleet(&store, &["--reuse-grace", "60s"]) else {
        return;
    };
    let admin = f.node(0).login("admin", ADMIN_PASSWORD).await;
    let t = f
        .node(0)
        .token(&admin, json!({"tokenName": "contended"}))
        .await;
    warm(&f, &t.access, "/Client").await;
    let refresh = t.refresh.clone().unwrap();
    let tasks = (0..66).map(|i| f.node(i % NODES).renew(&t.access, &refresh));
    let answers = futures_util::future::join_all(tasks).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let winners: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "{}: {statuses:?}", store.name);
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 401),
        "{statuses:?}"
    );
    let new_access = winners[0].json["accessToken"].as_str().unwrap().to_string();
    for (_, node) in f.live() {
        assert_eq!(node.check(&new_access, "GET", "/Client").await, 200);
        refused_within(node, &t.access, "/Client", 401, store.name).await;
    }
}

// ---- a node killed, a node added --------------------------------------------------

/// Checks sent through `lb` by [`TASKS`] tasks, each one request at a time,
/// until `stop`: every answer's status (0: no answer), per task, in order.
const TASKS: usize = 8;

async fn load(
    lb: Client,
    valid: String,
    revoked: String,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) -> Vec<Vec<(bool, u16)>> {
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (lb, valid, revoked) = (lb.clone(), valid.clone(), revoked.clone());
        let (stop, sent) = (stop.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // One request in ten with the revoked token.
                let is_valid = !n.is_multiple_of(10);
                let token = if is_valid { &valid } else { &revoked };
                let status = lb.try_check(token, "GET", "/Client").await.unwrap_or(0);
                seen.push((is_valid, status));
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            seen
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Waits (bounded) until `sent` reaches `n`.
async fn until_sent(sent: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while sent.load(Ordering::Relaxed) < n {
        assert!(start.elapsed() < 4 * WITHIN, "the load stalled at {sent:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_killed_node_costs_what_it_held_and_a_late_one_joins(store: StoreFixture) {
    let Some(mut f) = fleet(&store, &[]) else {
        return;
    };
    let label = store.name;
    let lb = f.balancer().clone();
    let admin = lb.login("admin", ADMIN_PASSWORD).await;
    let custom =
        |name: &str| json!({"tokenName": name, "tokenType": 3, "apiEndpoints": ["GET /Client"]});
    let valid = lb.token(&admin, custom("valid")).await;
    let revoked = lb.token(&admin, custom("revoked")).await;
    assert_eq!(lb.delete_token(&admin, revoked.id).await.status, 200);
    let edited = lb.token(&admin, custom("edited")).await;
    let e = lb
        .edit_token(
            &admin,
            edited.id,
            json!({"tokenType": 3, "apiEndpoints": ["GET /Job"]}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.json);

    // The load, then node 1 killed in the middle of it.
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let running = tokio::spawn(load(
        lb.clone(),
        valid.access.clone(),
        revoked.access.clone(),
        stop.clone(),
        sent.clone(),
    ));
    until_sent(&sent, 300).await;
    f.kill(1);
    let at_kill = sent.load(Ordering::Relaxed);
    until_sent(&sent, at_kill + 600).await;
    stop.store(true, Ordering::Relaxed);
    let seen = running.await.unwrap();

    // The revoked token is never allowed; the valid one fails at most once
    // per task (a task holds one request at a time), and not at the end.
    let all: Vec<(bool, u16)> = seen.iter().flatten().copied().collect();
    assert!(
        !all.iter().any(|&(v, s)| !v && s == 200),
        "{label}: the revoked token was allowed"
    );
    let lost = all.iter().filter(|&&(v, s)| v && s != 200).count();
    let wrong: Vec<_> = all
        .iter()
        .filter(|&&(v, s)| {
            !matches!(
                (v, s),
                (true, 200 | 0 | 502 | 504) | (false, 401 | 0 | 502 | 504)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{label}: answers no node should give: {wrong:?}"
    );
    assert!(
        lost <= TASKS,
        "{label}: {lost} requests lost to one killed node"
    );
    eprintln!(
        "{label}: node 1 killed under load: {lost} of {} checks lost",
        all.len()
    );
    for task in &seen {
        let tail = &task[task.len().saturating_sub(20)..];
        assert!(
            tail.iter().all(|&(v, s)| s == if v { 200 } else { 401 }),
            "{label}: still failing after the kill: {tail:?}"
        );
    }

    // Writes go on through the balancer, past the dead node.
    for i in 0..2 * NODES {
        let a = lb.create_token(&admin, custom(&format!("after-{i}"))).await;
        assert_eq!(a.status, 200, "{label}: create after the kill: {}", a.json);
    }

    // A node started now: its cache is empty, and it answers right at once.
    let late = f.add_node().unwrap_or_else(|e| panic!("{e}"));
    let node = f.node(late);
    let m = node.metrics_text().await;
    assert!(m.contains("tessera_cache_entries 0"), "{label}: {m}");
    assert_eq!(node.check(&valid.access, "GET", "/Client").await, 200);
    assert_eq!(node.check(&revoked.access, "GET", "/Client").await, 401);
    assert_eq!(node.check(&edited.access, "GET", "/Client").await, 403);
    assert_eq!(node.check(&edited.access, "GET", "/Job").await, 200);
    // ... and the balancer sends it requests (once nginx has reloaded). A
    // reload closes the old worker's idle keep-alive connections, so a
    // request sent on one as it closes gets no answer: the client sends it
    // again, as any HTTP client would; every answer must be right.
    let start = Instant::now();
    loop {
        let got = lb.try_check_answer(&valid.access, "GET", "/Client").await;
        let Ok(a) = got else {
            assert!(start.elapsed() < WITHIN, "{label}: {got:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        assert_eq!(a.status, 200, "{label}: {}", a.text);
        if f.node_of(&a) == Some(late) {
            break;
        }
        assert!(
            start.elapsed() < WITHIN,
            "{label}: the late node got nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- the tests, on every store ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_a_commvault_client_through_the_balancer() {
    for store in fleet_stores().await {
        a_commvault_client_through_the_balancer(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_changes_on_any_node_are_honoured_by_the_others() {
    for store in fleet_stores().await {
        changes_on_any_node_are_honoured_by_the_others(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_renewals_over_the_nodes_have_one_winner() {
    for store in fleet_stores().await {
        renewals_over_the_nodes_have_one_winner(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_a_killed_node_costs_what_it_held_and_a_late_one_joins() {
    for store in fleet_stores().await {
        a_killed_node_costs_what_it_held_and_a_late_one_joins(store).await;
    }
}

// ---- a Redis Cluster failover under the fleet ------------------------------------

/// A master of a Cluster of the test's own fails over to its replica
/// (`CLUSTER FAILOVER`) while the nodes check: a valid token is allowed or
/// answered 503, a revoked one refused or answered 503, never allowed; a
/// revocation acknowledged while it moves holds everywhere; afterwards the
/// nodes allow again and follow the stream (a revocation reaches them).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_costs_503s_at_most_never_a_wrong_200() {
    use tessera_testsupport::cluster::RedisCluster;
    use tessera_testsupport::redis::RedisPrefix;

    let Some(cluster) = RedisCluster::start_or_skip(1) else {
        return;
    };
    let prefix = RedisPrefix::try_reserve_on_cluster(&cluster.url(), "fleet-failover")
        .await
        .unwrap();
    let key_prefix = prefix.prefix().to_string();
    let store = StoreFixture::on_redis_cluster(prefix);
    let Some(f) = fleet(&store, &[]) else {
        return;
    };
    let admin = f.node(0).login("admin", ADMIN_PASSWORD).await;
    let custom =
        |name: &str| json!({"tokenName": name, "tokenType": 3, "apiEndpoints": ["GET /Client"]});
    let valid = f.node(0).token(&admin, custom("valid")).await;
    let revoked = f.node(0).token(&admin, custom("revoked")).await;
    let during = f.node(0).token(&admin, custom("revoked during")).await;
    let after = f.node(0).token(&admin, custom("revoked after")).await;
    assert_eq!(f.node(0).delete_token(&admin, revoked.id).await.status, 200);
    for t in [&valid, &during, &after] {
        warm(&f, &t.access, "/Client").await;
    }

    // Checks on every node, directly (no balancer to retry), until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let mut checkers = Vec::new();
    for (_, node) in f.live() {
        let node: Client = (**node).clone();
        let (valid, revoked, stop) = (valid.access.clone(), revoked.access.clone(), stop.clone());
        checkers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push((true, node.check(&valid, "GET", "/Client").await));
                seen.push((false, node.check(&revoked, "GET", "/Client").await));
            }
            seen
        }));
    }

    // Fail over the master of the valid token's slot.
    let key = format!("{key_prefix}{{t{}}}:rec", valid.id);
    let master = cluster.master_of(&key).expect("a master for the token");
    let replica = cluster.replica_of(master).expect("a replica of it");
    let out = cluster.cli(replica, &["CLUSTER", "FAILOVER"]);
    assert!(out.contains("OK"), "CLUSTER FAILOVER: {out}");

    // A revocation while it moves: acknowledged (200) or unavailable (503).
    let start = Instant::now();
    loop {
        match f.node(1).delete_token(&admin, during.id).await.status {
            200 => break,
            503 => assert!(start.elapsed() < 3 * WITHIN, "no revocation"),
            st => panic!("revocation during the failover answered {st}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waited = tokio::task::spawn_blocking(move || {
        let ok = cluster.wait_ok();
        (cluster, ok)
    });
    let (cluster, ok) = waited.await.unwrap();
    ok.unwrap();
    assert_eq!(
        cluster.master_of(&key),
        Some(replica),
        "the failover happened"
    );

    // Every node allows the valid token again, and refuses the two revoked.
    for (i, node) in f.live() {
        let start = Instant::now();
        loop {
            match node.check(&valid.access, "GET", "/Client").await {
                200 => break,
                503 => assert!(start.elapsed() < 3 * WITHIN, "node {i} never recovered"),
                st => panic!("node {i}: {st} for the valid token after the failover"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(node.check(&during.access, "GET", "/Client").await, 401);
    }
    stop.store(true, Ordering::Relaxed);
    let (mut unavailable, mut checks) = (0, 0);
    for c in checkers {
        for (is_valid, status) in c.await.unwrap() {
            checks += 1;
            match (is_valid, status) {
                (_, 503) => unavailable += 1,
                (true, 200) | (false, 401) => {}
                (v, s) => panic!("{s} for the {} token", if v { "valid" } else { "revoked" }),
            }
        }
    }
    eprintln!("failover under the fleet: {unavailable} of {checks} checks answered 503");

    // The stream is followed again (every node's cache fresh once more):
    // a revocation now reaches the others through it.
    for (i, node) in f.live() {
        let start = Instant::now();
        while !node.metrics_text().await.contains("tessera_cache_fresh 1") {
            assert!(
                start.elapsed() < 3 * WITHIN,
                "node {i} never followed again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    warm(&f, &after.access, "/Client").await;
    assert_eq!(f.node(2).delete_token(&admin, after.id).await.status, 200);
    for node in others(&f, 2) {
        refused_within(node, &after.access, "/Client", 401, "after the failover").await;
    }
    // The nodes first, then the prefix, then the Cluster under them.
    drop(f);
    drop(store);
    drop(cluster);
}
