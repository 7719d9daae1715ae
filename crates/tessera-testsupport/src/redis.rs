//! A fresh Redis key prefix per test (or benchmark run): every key under it
//! is deleted when the [`RedisPrefix`] is dropped, also when the test panics.
//! Keys are found with `SCAN MATCH` (never `KEYS`) and never with `FLUSHDB`:
//! the server is shared.

use redis::aio::MultiplexedConnection;

/// The server the suites use: `TESSERA_TEST_REDIS_URL`, else the local default.
pub fn url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The Cluster the suites use: [`crate::cluster::URL_VAR`], set by `cargo
/// xtask test` (which starts one); the error says so when it is unset.
pub fn cluster_url() -> Result<String, String> {
    std::env::var(crate::cluster::URL_VAR).map_err(|_| {
        format!(
            "no Redis Cluster: {} is unset (`cargo xtask test` starts one)",
            crate::cluster::URL_VAR
        )
    })
}

/// The `redis://` URLs of a `redis+cluster://host:port,…` URL's nodes
/// (`None` for any other URL).
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let hosts = url.strip_prefix("redis+cluster://")?;
    Some(
        hosts
            .trim_end_matches('/')
            .split(',')
            .map(|h| format!("redis://{h}"))
            .collect(),
    )
}

/// A plain connection to `url`, for looking at raw keys; panics if it cannot.
pub async fn connection(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("Redis at {url}: {e}"));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}"))
}

/// A prefix no other run uses, on the test server.
#[derive(Debug)]
pub struct RedisPrefix {
    url: String,
    prefix: String,
}

impl RedisPrefix {
    /// `tess-<label>-<16 hex digits>:` on [`url`], once the server answers;
    /// the error says why it cannot be used.
    pub async fn try_reserve(label: &str) -> Result<RedisPrefix, String> {
        let url = url();
        let unreachable = |e: redis::RedisError| format!("Redis at {url} unreachable: {e}");
        let mut conn = redis::Client::open(url.as_str())
            .map_err(unreachable)?
            .get_multiplexed_async_connection()
            .await
            .map_err(unreachable)?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(unreachable)?;
        let prefix = format!("tess-{label}-{}:", crate::unique_suffix());
        Ok(RedisPrefix { url, prefix })
    }

    /// [`RedisPrefix::try_reserve`], or `None` after `SKIPPED: …` (a panic under CI).
    pub async fn reserve(label: &str) -> Option<RedisPrefix> {
        crate::or_skip(RedisPrefix::try_reserve(label).await)
    }

    /// A fresh prefix on the Redis Cluster `url` (`redis+cluster://…`), once
    /// its first node answers; the error says why it cannot be used.
    pub async fn try_reserve_on_cluster(url: &str, label: &str) -> Result<RedisPrefix, String> {
        let nodes = cluster_nodes(url).ok_or_else(|| format!("not a Cluster URL: {url}"))?;
        let first = &nodes[0];
        let unreachable =
            |e: redis::RedisError| format!("Redis Cluster at {first} unreachable: {e}");
        let mut conn = redis::Client::open(first.as_str())
            .map_err(unreachable)?
            .get_multiplexed_async_connection()
            .await
            .map_err(unreachable)?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        if !info.contains("cluster_state:ok") {
            return Err(format!("the Redis Cluster at {first} is not ok: {info}"));
        }
        let prefix = format!("tess-{label}-{}:", crate::unique_suffix());
        Ok(RedisPrefix {
            url: url.to_string(),
            prefix,
        })
    }

    /// A fresh prefix on the suites' Cluster ([`cluster_url`]), or `None`
    /// after `SKIPPED: …` (a panic under CI).
    pub async fn reserve_on_cluster(label: &str) -> Option<RedisPrefix> {
        let url = crate::or_skip(cluster_url())?;
        crate::or_skip(RedisPrefix::try_reserve_on_cluster(&url, label).await)
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The prefix, ending in `:`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every key under the prefix, sorted.
    pub async fn keys(&self, conn: &mut MultiplexedConnection) -> Vec<String> {
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = scan(cursor, &self.prefix)
                .query_async(conn)
                .await
                .unwrap_or_else(|e| panic!("SCAN under {}: {e}", self.prefix));
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

    /// Deletes every key under the prefix now (on a Cluster, on every
    /// node that answers: a replica refuses, its master deletes); the error
    /// says why it could not.
    pub fn clear(&self) -> Result<(), String> {
        match cluster_nodes(&self.url) {
            None => self.clear_on(&self.url),
            Some(nodes) => {
                for node in nodes {
                    // One key per UNLINK: a node's keys span its slots.
                    let _ = self.clear_each_on(&node);
                }
                Ok(())
            }
        }
    }

    /// Deletes the prefix's keys on one node of a Cluster (a master; a
    /// replica refuses writes and its master deletes them).
    fn clear_each_on(&self, url: &str) -> Result<(), String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client.get_connection().map_err(|e| e.to_string())?;
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        if !matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
            return Ok(());
        }
        self.unlink_all(&mut conn, true)
    }

    /// Deletes the prefix's keys on one server.
    fn clear_on(&self, url: &str) -> Result<(), String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client.get_connection().map_err(|e| e.to_string())?;
        self.unlink_all(&mut conn, false)
    }

    /// `SCAN`s the prefix's keys on `conn` and unlinks them: one `UNLINK`
    /// per key when `one_by_one` (a Cluster node's keys span its slots),
    /// else one per batch.
    fn unlink_all(&self, conn: &mut redis::Connection, one_by_one: bool) -> Result<(), String> {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = scan(cursor, &self.prefix)
                .query(conn)
                .map_err(|e| e.to_string())?;
            if !keys.is_empty() {
                let mut p = redis::pipe();
                if one_by_one {
                    for k in &keys {
                        p.cmd("UNLINK").arg(k).ignore();
                    }
                } else {
                    p.cmd("UNLINK").arg(&keys).ignore();
                }
                p.query::<()>(conn).map_err(|e| e.to_string())?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// One `SCAN cursor MATCH prefix* COUNT 1000`.
fn scan(cursor: u64, prefix: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .arg("COUNT")
        .arg(1000);
    cmd
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Err(e) = self.clear() {
            eprintln!("cannot delete the keys under {}: {e}", self.prefix);
        }
    }
}
