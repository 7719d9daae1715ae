//! The Redis store on a real Redis Cluster: what only a Cluster asks of it.
//! The conformance and cache suites run there too (`conformance.rs`,
//! module `cluster`); here: the change stream's subscription is one
//! connection per master and fails when any is cut; every write is heard;
//! the legacy import across slots is all or nothing; and a master's failover
//! to its replica (`CLUSTER FAILOVER`, on a Cluster of the test's own) loses
//! no acknowledged write, answers `Unavailable` at most while it moves, and
//! cuts the stream, so no node's cache trusts the old masters.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::feed::ChangeFeed;
use tessera_core::model::{Role, TokenId};
use tessera_core::scope::TokenType;
use tessera_core::secret::Digest;
use tessera_core::store::Store;
use tessera_core::testkit::{new_token, user, T0};
use tessera_core::StoreError;
use tessera_redis::RedisStore;
use tessera_testsupport::cluster::{RedisCluster, MASTERS};
use tessera_testsupport::feed::{
    every_token_write_is_heard, reads_for_the_cache, until_beat, Heard,
};
use tessera_testsupport::redis::RedisPrefix;

/// A bound on waiting, not a performance target.
const WAIT: Duration = Duration::from_secs(30);

/// Two stores on one fresh prefix of the suites' Cluster.
async fn two() -> Option<(RedisStore, Arc<dyn Store>, RedisPrefix)> {
    let (reader, prefix) = common::open_cluster().await?;
    assert!(reader.is_cluster());
    let writer = RedisStore::connect(common::config(&prefix)).await.unwrap();
    Some((reader, Arc::new(writer), prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_write_is_heard_by_another_store() {
    let Some((reader, writer, prefix)) = two().await else {
        return;
    };
    every_token_write_is_heard(writer, Arc::new(reader), Heard::Itemised).await;
    drop(prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_reads_by_id() {
    let Some((_reader, writer, prefix)) = two().await else {
        return;
    };
    reads_for_the_cache(writer).await;
    drop(prefix);
}

/// The ids of the clients named `name` on each node of `url`'s Cluster.
async fn feeds_per_node(url: &str, name: &str) -> Vec<(String, Vec<i64>)> {
    let mut out = Vec::new();
    for node in common::cluster_nodes(url).unwrap() {
        let ids = common::clients_named(&node, name).await;
        out.push((node, ids));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_is_one_connection_per_master_and_fails_when_one_is_cut() {
    let Some((reader, writer, prefix)) = two().await else {
        return;
    };
    let mut stream = reader.subscribe().await.unwrap();
    let name = reader.feed_client_name().to_string();
    let per_node = feeds_per_node(prefix.url(), &name).await;
    let with: Vec<&(String, Vec<i64>)> =
        per_node.iter().filter(|(_, ids)| !ids.is_empty()).collect();
    assert_eq!(
        with.len(),
        MASTERS,
        "one subscription on each master: {per_node:?}"
    );
    assert!(with.iter().all(|(_, ids)| ids.len() == 1), "{per_node:?}");
    // A beat comes back (through every master).
    assert!(until_beat(writer.as_ref(), stream.as_mut())
        .await
        .is_empty());

    // Cutting the one on any master fails the stream.
    let (node, ids) = with[1];
    assert_eq!(common::kill_client(node, ids[0]).await, 1);
    let r = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the stream neither failed nor answered");
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    drop(prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_import_across_slots_is_all_or_nothing() {
    let Some((_reader, writer, prefix)) = two().await else {
        return;
    };
    let u = user(&writer, "legacy", Role::User).await;
    let (template, _, _) = new_token(&writer, &u, TokenType::ALL).await;
    // Ten legacy tokens: their ids and digests hash to slots on every master.
    let legacy = |i: u64| {
        let mut t = template.clone();
        t.id = TokenId(i);
        t.name = format!("legacy {i}");
        t.legacy = true;
        t.refresh_digest = None;
        t.access_digest = Digest::of(&format!("legacy-{i}-{}", prefix.prefix()));
        t
    };
    let batch: Vec<_> = (0..10).map(|i| legacy(1000 + i)).collect();
    writer.import_legacy(&batch).await.unwrap();
    for t in &batch {
        let got = writer.token(t.id).await.unwrap().expect("imported");
        assert_eq!(got.access_digest, t.access_digest);
    }
    // A batch whose last token clashes with one stored: nothing of it is kept.
    let mut clash: Vec<_> = (0..9).map(|i| legacy(2000 + i)).collect();
    clash.push(batch[3].clone());
    let err = writer.import_legacy(&clash).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    for t in &clash[..9] {
        assert_eq!(
            writer.token(t.id).await.unwrap(),
            None,
            "{:?} was kept",
            t.id
        );
        let key = tessera_core::secret::SecretKey {
            kind: tessera_core::secret::SecretKind::Access,
            token_id: None,
            digest: t.access_digest,
        };
        assert!(writer.token_by_access(&key).await.unwrap().is_none());
    }
    // Its ids are free again: the same batch without the clash imports.
    writer.import_legacy(&clash[..9]).await.unwrap();
    assert!(writer.token(clash[0].id).await.unwrap().is_some());
    drop(prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_loses_no_acknowledged_write_and_cuts_the_stream() {
    // A Cluster of this test's own: a failover would disturb the others.
    let Some(cluster) = RedisCluster::start_or_skip(1) else {
        return;
    };
    let prefix = RedisPrefix::try_reserve_on_cluster(&cluster.url(), "failover")
        .await
        .unwrap();
    let store: Arc<dyn Store> =
        Arc::new(RedisStore::connect(common::config(&prefix)).await.unwrap());
    let u = user(&store, "fo", Role::User).await;
    let (t, _, _) = new_token(&store, &u, TokenType::ALL).await;
    let mut stream = store.subscribe().await.unwrap();
    assert!(until_beat(store.as_ref(), stream.as_mut()).await.is_empty());

    // Fail over the master of the token's slot.
    let key = format!("{}{{t{}}}:rec", prefix.prefix(), t.id.0);
    let master = cluster.master_of(&key).expect("a master for the token");
    let replica = cluster.replica_of(master).expect("a replica of it");
    let out = cluster.cli(replica, &["CLUSTER", "FAILOVER"]);
    assert!(out.contains("OK"), "CLUSTER FAILOVER: {out}");

    // While it moves: revocation is acknowledged or refused as unavailable.
    let start = Instant::now();
    let revoked = loop {
        match store.revoke_token(t.id, T0 + 10).await {
            Ok(changed) => break changed,
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("revocation during the failover: {e:?}"),
        }
        assert!(start.elapsed() < WAIT, "no revocation within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(revoked);
    // The stream is cut once a beat meets the new master (or the old one refuses).
    let cut = tokio::time::timeout(WAIT, async {
        loop {
            let _ = store.beat("after-failover").await;
            // A beat already on its way may still complete; only a cut ends this.
            if let Ok(Err(e)) =
                tokio::time::timeout(Duration::from_millis(200), stream.next()).await
            {
                return e;
            }
        }
    })
    .await
    .expect("the stream was not cut after the failover");
    assert!(matches!(cut, StoreError::Unavailable(_)), "{cut:?}");
    cluster.wait_ok().unwrap();
    assert_eq!(cluster.master_of(&key), Some(replica));

    // The acknowledged revocation is there, and a new subscription works.
    let got = store.token(t.id).await.unwrap().expect("the token");
    assert_eq!(got.revoked_at, Some(T0 + 10));
    let mut again = store.subscribe().await.unwrap();
    assert!(until_beat(store.as_ref(), again.as_mut()).await.is_empty());
    drop(prefix);
}
