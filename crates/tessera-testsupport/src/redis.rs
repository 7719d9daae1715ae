//! A fresh Redis key prefix per test (or benchmark run): every key under it
//! is deleted when the [`RedisPrefix`] is dropped, also when the test panics.
//! Keys are found with `SCAN MATCH` (never `KEYS`) and never with `FLUSHDB`:
//! the server is shared.

use redis::aio::MultiplexedConnection;

/// The server the suites use: `TESSERA_TEST_REDIS_URL`, else the local default.
pub fn url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
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

    /// Deletes every key under the prefix now; the error says why it could not.
    pub fn clear(&self) -> Result<(), String> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
        let mut conn = client.get_connection().map_err(|e| e.to_string())?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = scan(cursor, &self.prefix)
                .query(&mut conn)
                .map_err(|e| e.to_string())?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(&keys)
                    .query::<i64>(&mut conn)
                    .map_err(|e| e.to_string())?;
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
