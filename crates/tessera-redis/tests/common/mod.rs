//! Shared by the Redis test files: a store under a fresh key prefix per test
//! (`tessera_testsupport::redis`: its keys deleted afterwards; SKIPPED, or a
//! failure under CI, when the server is unreachable).
#![allow(dead_code)] // each test file uses a different subset

use std::sync::Arc;
use std::time::Duration;

use tessera_core::store::Store;
use tessera_core::testkit::nodes::{Cut, Reopen};
use tessera_core::testkit::Fixture;
use tessera_redis::{RedisConfig, RedisStore};
#[allow(unused_imports)] // not every test file uses both
pub use tessera_testsupport::redis::{cluster_nodes, connection as raw, RedisPrefix};

/// A configuration under `prefix`, with short timeouts so an unreachable
/// server is noticed quickly.
pub fn config(prefix: &RedisPrefix) -> RedisConfig {
    RedisConfig {
        url: prefix.url().to_string(),
        prefix: prefix.prefix().to_string(),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(5),
        ..RedisConfig::default()
    }
}

/// A store under a fresh prefix, and the prefix; `None` (SKIPPED) when the
/// server is unreachable.
pub async fn open() -> Option<(RedisStore, RedisPrefix)> {
    opened(RedisPrefix::reserve("test").await?).await
}

/// A store under a fresh prefix on the suites' Redis Cluster, and the
/// prefix; `None` (SKIPPED) when there is none.
pub async fn open_cluster() -> Option<(RedisStore, RedisPrefix)> {
    opened(RedisPrefix::reserve_on_cluster("test").await?).await
}

/// A store under `prefix`.
async fn opened(prefix: RedisPrefix) -> Option<(RedisStore, RedisPrefix)> {
    let store = RedisStore::connect(config(&prefix))
        .await
        .unwrap_or_else(|e| panic!("cannot open the store under {}: {e}", prefix.prefix()));
    Some((store, prefix))
}

/// The conformance and cache suites' factory: a second node is a second
/// store on the same prefix; a cut kills this prefix's subscriptions.
pub async fn fresh_store() -> Option<Fixture> {
    Some(fixture(open().await?))
}

/// [`fresh_store`] on the suites' Redis Cluster.
pub async fn fresh_cluster_store() -> Option<Fixture> {
    Some(fixture(open_cluster().await?))
}

/// The suites' fixture over `store` (its second node a second store on the
/// prefix; a cut kills the prefix's subscriptions on every node).
fn fixture((store, prefix): (RedisStore, RedisPrefix)) -> Fixture {
    let config = config(&prefix);
    let reopen: Reopen = Arc::new(move || {
        let config = config.clone();
        Box::pin(async move {
            let store = RedisStore::connect(config)
                .await
                .unwrap_or_else(|e| panic!("cannot open a second store: {e}"));
            Arc::new(store) as Arc<dyn Store>
        })
    });
    let (url, name) = (
        prefix.url().to_string(),
        store.feed_client_name().to_string(),
    );
    let cut: Cut = Arc::new(move || {
        let (url, name) = (url.clone(), name.clone());
        Box::pin(async move {
            let nodes = cluster_nodes(&url).unwrap_or_else(|| vec![url.clone()]);
            for node in nodes {
                cut_feeds(&node, &name).await;
            }
        })
    });
    Fixture::with_cleanup(Arc::new(store), Box::pin(async move { drop(prefix) }))
        .with_nodes(reopen, Some(cut))
}

/// The server-side ids of the connections named `name` (`CLIENT LIST`).
pub async fn clients_named(url: &str, name: &str) -> Vec<i64> {
    let mut conn = raw(url).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CLIENT LIST: {e}"));
    list.lines()
        .filter(|line| {
            line.split(' ')
                .any(|f| f.strip_prefix("name=") == Some(name))
        })
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .and_then(|id| id.parse().ok())
        })
        .collect()
}

/// Kills the connection with server-side id `id` (`CLIENT KILL ID`), and
/// only it; how many it killed (0 or 1).
pub async fn kill_client(url: &str, id: i64) -> i64 {
    let mut conn = raw(url).await;
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CLIENT KILL ID {id}: {e}"))
}

/// Kills every change-stream subscription named `name` (a prefix's, see
/// `RedisStore::feed_client_name`), and only those; how many it killed.
pub async fn cut_feeds(url: &str, name: &str) -> usize {
    let mut killed = 0;
    for id in clients_named(url, name).await {
        killed += kill_client(url, id).await as usize;
    }
    killed
}
