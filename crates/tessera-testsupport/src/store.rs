//! A fresh store for one `tessera` process, as `serve` takes it (a URL and
//! extra arguments), removed when the [`StoreFixture`] is dropped.

use std::path::PathBuf;

use crate::postgres::PgSchema;
use crate::redis::RedisPrefix;
use crate::temp::TempDir;

/// What is behind a fixture, kept until it is dropped.
#[derive(Debug)]
enum Backing {
    /// Managed by the test itself.
    External,
    /// The directory holding the SQLite file.
    Sqlite(TempDir),
    /// The schema.
    Postgres(PgSchema),
    /// The key prefix.
    Redis(RedisPrefix),
}

/// A fresh store.
#[derive(Debug)]
pub struct StoreFixture {
    /// The store URL (`--store`).
    pub url: String,
    /// Extra `serve` arguments (the Redis prefix).
    pub args: Vec<String>,
    /// Which backend, for messages: `sqlite`, `postgres`, `redis`,
    /// `redis-cluster`, `external`.
    pub name: &'static str,
    backing: Backing,
}

impl StoreFixture {
    /// A store the test manages itself (nothing to clean up here).
    pub fn external(url: String, args: Vec<String>) -> Self {
        StoreFixture {
            url,
            args,
            name: "external",
            backing: Backing::External,
        }
    }

    /// A SQLite file in a temporary directory `<label>-…`.
    pub fn sqlite(label: &str) -> Self {
        let dir = TempDir::new(label);
        StoreFixture {
            url: format!("sqlite://{}", dir.join("tessera.db").display()),
            args: vec![],
            name: "sqlite",
            backing: Backing::Sqlite(dir),
        }
    }

    /// A store on `schema`.
    pub fn on_postgres(schema: PgSchema) -> Self {
        StoreFixture {
            url: schema.url(),
            args: vec![],
            name: "postgres",
            backing: Backing::Postgres(schema),
        }
    }

    /// A store under `prefix`.
    pub fn on_redis(prefix: RedisPrefix) -> Self {
        StoreFixture {
            url: prefix.url().to_string(),
            args: vec!["--redis-prefix".into(), prefix.prefix().to_string()],
            name: "redis",
            backing: Backing::Redis(prefix),
        }
    }

    /// A fresh PostgreSQL schema, or `None` (SKIPPED; a failure under CI).
    pub async fn postgres(label: &str) -> Option<Self> {
        PgSchema::create(label).await.map(Self::on_postgres)
    }

    /// A fresh Redis key prefix, or `None` (SKIPPED; a failure under CI).
    pub async fn redis(label: &str) -> Option<Self> {
        RedisPrefix::reserve(label).await.map(Self::on_redis)
    }

    /// A store under `prefix` on a Redis Cluster.
    pub fn on_redis_cluster(prefix: RedisPrefix) -> Self {
        StoreFixture {
            name: "redis-cluster",
            ..Self::on_redis(prefix)
        }
    }

    /// A fresh key prefix on the suites' Redis Cluster (`cargo xtask test`
    /// starts one), or `None` (SKIPPED; a failure under CI).
    pub async fn redis_cluster(label: &str) -> Option<Self> {
        RedisPrefix::reserve_on_cluster(label)
            .await
            .map(Self::on_redis_cluster)
    }

    /// The same store as another process is handed it (URL, arguments,
    /// name), owning nothing: dropping it removes nothing, this one does.
    pub fn again(&self) -> Self {
        StoreFixture {
            url: self.url.clone(),
            args: self.args.clone(),
            name: self.name,
            backing: Backing::External,
        }
    }

    /// The SQLite file, for a SQLite fixture.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match &self.backing {
            Backing::Sqlite(dir) => Some(dir.join("tessera.db")),
            _ => None,
        }
    }

    /// The schema, for a PostgreSQL fixture.
    pub fn schema(&self) -> Option<&PgSchema> {
        match &self.backing {
            Backing::Postgres(s) => Some(s),
            _ => None,
        }
    }

    /// The key prefix, for a Redis fixture.
    pub fn prefix(&self) -> Option<&RedisPrefix> {
        match &self.backing {
            Backing::Redis(p) => Some(p),
            _ => None,
        }
    }
}
