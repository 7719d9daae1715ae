//! A fresh store of one backend (`tessera_testsupport`'s fixtures: a
//! temporary SQLite file, a PostgreSQL schema, a Redis key prefix, one on
//! a Redis Cluster), opened
//! through the library for the pre-fill and handed to `serve` as a URL.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::store::Store;
use tessera_testsupport::cluster::RedisCluster;
use tessera_testsupport::postgres::PgSchema;
use tessera_testsupport::redis::RedisPrefix;
use tessera_testsupport::StoreFixture;

/// The store a benchmark run measures; removed when dropped.
pub struct Backend {
    /// `sqlite`, `postgres`, `redis`, `redis-cluster`.
    pub name: &'static str,
    /// The library's handle, for the pre-fill.
    pub store: Arc<dyn Store>,
    /// The PostgreSQL store, whose pool is closed before the schema goes.
    postgres: Option<Arc<tessera_postgres::PostgresStore>>,
    /// Dropped (the store removed) after the handles.
    pub fixture: StoreFixture,
    /// The run's own Redis Cluster, if it started one: stopped last.
    cluster: Option<RedisCluster>,
}

/// The library's store under `prefix` (a Redis server or Cluster).
async fn redis_store(prefix: &RedisPrefix) -> Result<tessera_redis::RedisStore, String> {
    let config = tessera_redis::RedisConfig {
        prefix: prefix.prefix().to_string(),
        command_timeout: Duration::from_secs(5),
        ..tessera_redis::RedisConfig::new(prefix.url())
    };
    tessera_redis::RedisStore::connect(config)
        .await
        .map_err(|e| format!("Redis unreachable: {e}"))
}

impl Backend {
    /// Opens a fresh store of `name`, or says why it cannot be measured.
    pub async fn open(name: &'static str) -> Result<Backend, String> {
        match name {
            "sqlite" => {
                let fixture = StoreFixture::sqlite("tessera-bench");
                let config = tessera_sqlite::SqliteConfig::new(fixture.url.as_str());
                let store = tessera_sqlite::SqliteStore::open(&config)
                    .await
                    .map_err(|e| format!("cannot open {}: {e}", fixture.url))?;
                Ok(Backend::new(name, Arc::new(store), None, fixture))
            }
            "postgres" => {
                let schema = PgSchema::try_create("bench").await?;
                let config = tessera_postgres::PostgresConfig {
                    schema: Some(schema.name().to_string()),
                    connect_timeout: Duration::from_secs(3),
                    max_connections: 16,
                    ..tessera_postgres::PostgresConfig::new(schema.base_url())
                };
                let store = tessera_postgres::PostgresStore::open(&config)
                    .await
                    .map_err(|e| format!("PostgreSQL unreachable: {e}"))?;
                let store = Arc::new(store);
                let fixture = StoreFixture::on_postgres(schema);
                Ok(Backend::new(name, store.clone(), Some(store), fixture))
            }
            "redis-cluster" => {
                // The Cluster `cargo xtask test` would use, or one of the
                // run's own (three masters, a replica each).
                let (url, cluster) = match tessera_testsupport::redis::cluster_url() {
                    Ok(url) => (url, None),
                    Err(_) => {
                        let c = RedisCluster::start(1)?;
                        (c.url(), Some(c))
                    }
                };
                let prefix = RedisPrefix::try_reserve_on_cluster(&url, "bench").await?;
                let store = redis_store(&prefix).await?;
                let fixture = StoreFixture::on_redis_cluster(prefix);
                let mut b = Backend::new(name, Arc::new(store), None, fixture);
                b.cluster = cluster;
                Ok(b)
            }
            _ => {
                let prefix = RedisPrefix::try_reserve("bench").await?;
                let store = redis_store(&prefix).await?;
                let fixture = StoreFixture::on_redis(prefix);
                Ok(Backend::new(name, Arc::new(store), None, fixture))
            }
        }
    }

    fn new(
        name: &'static str,
        store: Arc<dyn Store>,
        postgres: Option<Arc<tessera_postgres::PostgresStore>>,
        fixture: StoreFixture,
    ) -> Backend {
        Backend {
            name,
            store,
            postgres,
            fixture,
            cluster: None,
        }
    }

    /// Closes the library's connections, then removes the store (a failure
    /// to is reported on standard error by the fixture).
    pub async fn close(self) {
        if let Some(pg) = &self.postgres {
            pg.pool().close().await;
        }
        drop(self);
    }
}
