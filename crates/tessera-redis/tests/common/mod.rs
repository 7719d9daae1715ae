//! Shared test helpers: where the test Redis is, fresh prefixes, clean-up.
#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use tessera_redis::{RedisConfig, RedisStore, RedisStoreError};

/// `TESSERA_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A prefix no other run uses: `tess-test-<16 hex>:`.
pub fn fresh_prefix() -> String {
    format!("tess-test-{}:", tessera_core::testkit::unique_suffix())
}

/// A store under `prefix`, with short timeouts so an unreachable server is noticed quickly.
pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, RedisStoreError> {
    RedisStore::connect(RedisConfig {
        url: url.to_string(),
        prefix: prefix.to_string(),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(5),
        ..RedisConfig::default()
    })
    .await
}

/// A plain connection, for looking at (and cleaning) raw keys.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key under `prefix` (SCAN MATCH, never KEYS).
pub async fn keys_under(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Deletes every key under `prefix` (never FLUSHDB: the Redis is shared).
pub async fn delete_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys = keys_under(&mut conn, prefix).await;
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = redis::cmd("UNLINK").arg(chunk).query_async(&mut conn).await;
    }
}
