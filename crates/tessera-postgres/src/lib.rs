//! [`PostgresStore`]: Tessera's PostgreSQL store, through sqlx, for several
//! stateless `tessera` nodes sharing one database (CONTRACT §8).
//!
//! The store's SQL, row decoding and error mapping are `tessera-sql`'s,
//! shared with SQLite (its statements numbered `$1`, `$2`, … once); this
//! crate is PostgreSQL's [`Dialect`]: connecting, configuration, migrations,
//! the check's batched readers and the few statements that differ.
//!
//! * A connection pool; a connect timeout (`acquire_timeout`), a server-side
//!   `statement_timeout`, and a client-side bound on every call: an
//!   unreachable server is [`StoreError::Unavailable`](tessera_core::StoreError)
//!   within a bounded time.
//!   A broken connection fails its call as Unavailable and is replaced, so
//!   the store recovers by itself when the server is back.
//! * The check's look-ups run on a few connections of their own, batched
//!   (`readers`): one round trip answers every look-up waiting, where the
//!   pool alone would make three round trips for each.
//! * The change stream (`feed`): triggers on `tokens` send `NOTIFY` in the
//!   writing transaction; a subscription `LISTEN`s on a connection of its own.
//! * The schema's migrations are embedded (`migrations/`) and applied at start.
//! * Indexes: the access digest (unique: the check's one look-up), tokens by
//!   user (listing), by end of life and revocation (the sweep), legacy expiry.
//! * Atomicity: the rotation is one statement,
//!   `WITH rotated AS (UPDATE … WHERE id = $ AND refresh_digest = $ AND
//!   revoked_at IS NULL RETURNING …) INSERT INTO spent_refresh …`: concurrent
//!   renewals of one pair queue on the row lock, and after the first commits
//!   the others' `WHERE` no longer matches (READ COMMITTED re-checks the
//!   updated row), so exactly one wins, on any number of nodes.
//!
//! Rows convert through [`tessera_core::stored`], where the encoding of
//! scopes, address lists and digests lives once for every backend.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Database, Postgres};
use tessera_core::feed::ChangeStream;
use tessera_core::model::{RotateOutcome, Rotation, TokenRecord, Use};

/// One statement's worth of last uses: ids, times, addresses (`UNNEST`'s arrays).
#[derive(Debug, Default)]
pub struct LastUsedChunk(Vec<i64>, Vec<i64>, Vec<String>);
use tessera_core::secret::SecretKey;
use tessera_core::store::StoreResult;
use tessera_core::stored::id_to_i64;
use tessera_sql::{
    bind_rotation, token_columns, token_row, Dialect, Placeholders, SqlQuery, SqlStore,
    LAST_USED_CHUNK,
};

mod feed;
mod readers;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// The schema to keep Tessera's tables in (`search_path`); `None` for the
    /// server's default (`public`). Tests use a fresh one per run.
    pub schema: Option<String>,
    /// How long to wait for a connection (a new one, or one from the pool).
    pub connect_timeout: Duration,
    /// Upper bound on any one store call (also the server-side
    /// `statement_timeout`); past it the call is `Unavailable`.
    pub command_timeout: Duration,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Connections kept apart for the check's look-ups (at least one), each
    /// answering a batch at a time: few, so that batches fill under load.
    pub check_connections: u32,
    /// Shown in `pg_stat_activity`, so operators (and tests) can tell
    /// Tessera's connections apart.
    pub application_name: String,
}

impl PostgresConfig {
    /// Defaults for `url`: 5 s to connect, 10 s per call, 10 connections in
    /// the pool and 2 for the check.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: None,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            max_connections: 10,
            check_connections: 2,
            application_name: "tessera".into(),
        }
    }
}

/// Errors of opening a store (every later call reports core's `StoreError`).
#[derive(Debug, thiserror::Error)]
pub enum PostgresStoreError {
    /// The URL is not a PostgreSQL URL sqlx understands.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(sqlx::Error),
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("cannot apply the schema migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The PostgreSQL store: `tessera-sql`'s store in PostgreSQL's dialect.
/// Opened by [`PostgresStore::open`]; [`PostgresStore::pool`] is its sqlx pool.
pub type PostgresStore = SqlStore<PostgresDialect>;

/// PostgreSQL's side of the SQL store (see the crate doc).
#[derive(Debug, Clone)]
pub struct PostgresDialect {
    /// The check's look-ups, batched on connections of their own.
    readers: Arc<readers::Lookups>,
    /// The change stream's channel and how to subscribe.
    feed: feed::Feed,
}

impl PostgresDialect {
    /// The channel this store's change stream is carried on (`NOTIFY` by
    /// the triggers on `tokens`, `LISTEN` by subscriptions): one per schema.
    pub fn channel(&self) -> &str {
        self.feed.channel()
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Dialect for PostgresDialect {
    type Database = Postgres;
    type Config = PostgresConfig;
    type OpenError = PostgresStoreError;
    /// The chunk's token ids and times, as two arrays unnested side by side.
    type LastUsed = LastUsedChunk;

    const NAME: &'static str = "PostgreSQL";
    const PLACEHOLDERS: Placeholders = Placeholders::Numbered;
    const NEXT_TOKEN_ID: &'static str = "SELECT nextval('token_ids') AS value";
    const TOUCH_SESSION: &'static str =
        "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE digest = $2";
    const LEGACY_HORIZON: &'static str =
        "SELECT MAX(access_expires_at) AS horizon FROM tokens WHERE legacy AND revoked_at IS NULL";
    // The address goes with the later time (SET reads the row as it was).
    const RECORD_LAST_USED: &'static str = "INSERT INTO token_usage (token_id, at, address) \
         SELECT t.id, GREATEST(u.at, t.last_used_at), u.address \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) AS u(id, at, address) \
         JOIN tokens t ON t.id = u.id \
         ON CONFLICT (token_id) DO UPDATE SET \
           address = CASE WHEN EXCLUDED.at >= token_usage.at THEN EXCLUDED.address \
                          ELSE token_usage.address END, \
           at = GREATEST(token_usage.at, EXCLUDED.at)";

    /// Connects and applies the migrations (creating the schema if named and missing).
    async fn open(config: &PostgresConfig) -> Result<PostgresStore, PostgresStoreError> {
        let mut options =
            PgConnectOptions::from_str(&config.url).map_err(PostgresStoreError::Url)?;
        let statement_timeout = format!("{}ms", config.command_timeout.as_millis());
        let mut params = vec![("statement_timeout", statement_timeout)];
        if let Some(schema) = &config.schema {
            params.push(("search_path", quote_ident(schema)));
        }
        options = options
            .options(params)
            .application_name(&config.application_name);
        let options_for_checks = options.clone();
        let options_for_feed = options.clone();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.connect_timeout)
            // No ping before every statement (it doubles the round trips of
            // the check). A connection the server dropped fails its next
            // statement instead: that call answers Unavailable (503, never a
            // wrong answer) and sqlx replaces the connection.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(PostgresStoreError::Connect)?;
        if let Some(schema) = &config.schema {
            let sql = sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(schema)
            ));
            sqlx::query(sql)
                .execute(&pool)
                .await
                .map_err(PostgresStoreError::Connect)?;
        }
        MIGRATOR.run(&pool).await?;
        let channel: String = sqlx::query_scalar(feed::CHANNEL_SQL)
            .fetch_one(&pool)
            .await
            .map_err(PostgresStoreError::Connect)?;
        let feed = feed::Feed::new(options_for_feed, channel, config.connect_timeout);
        let readers = readers::Lookups::start(
            options_for_checks,
            config.check_connections as usize,
            config.command_timeout,
        );
        Ok(SqlStore::new(
            pool,
            PostgresDialect {
                readers: Arc::new(readers),
                feed,
            },
            config.command_timeout,
        ))
    }

    /// On the batched readers.
    async fn token_by_access(
        store: &PostgresStore,
        key: &SecretKey,
    ) -> StoreResult<Option<Arc<TokenRecord>>> {
        store.dialect().readers.token(*key.digest.as_bytes()).await
    }

    /// On the batched readers, by id.
    async fn token_for_check(
        store: &PostgresStore,
        id: i64,
    ) -> StoreResult<Option<Arc<TokenRecord>>> {
        store.dialect().readers.token_by_id(id).await
    }

    /// `LISTEN` on a connection of its own (see `feed`).
    async fn subscribe(store: &PostgresStore) -> StoreResult<Box<dyn ChangeStream>> {
        store.dialect().feed.subscribe().await
    }

    /// `pg_notify` on the store's channel, through the pool.
    async fn beat(store: &PostgresStore, text: &str) -> StoreResult<()> {
        feed::beat(store, text).await
    }

    /// One statement (see the crate doc), then, when it matched nothing, a
    /// look at the spent digests.
    async fn rotate(store: &PostgresStore, r: &Rotation) -> StoreResult<RotateOutcome> {
        let tid = id_to_i64(r.id.0)?;
        let sql = concat!(
            "WITH rotated AS (UPDATE tokens SET access_digest = $1, refresh_digest = $2, access_expires_at = $3, \
             ends_at = $4 WHERE id = $5 AND refresh_digest = $6 AND revoked_at IS NULL RETURNING ",
            token_columns!(),
            "), spent AS (INSERT INTO spent_refresh (digest, token_id, rotated_at) SELECT $6, id, $7 FROM rotated) \
             SELECT * FROM rotated"
        );
        let rotated = store
            .bounded(
                bind_rotation(sqlx::query(sql), r, tid)
                    .bind(r.at)
                    .fetch_optional(store.pool()),
            )
            .await?;
        if let Some(row) = rotated {
            return Ok(RotateOutcome::Rotated(Box::new(token_row(&row)?)));
        }
        let spent = store
            .bounded(PostgresStore::spent_rotated_at(
                store.pool(),
                &r.presented_refresh,
                tid,
            ))
            .await?;
        Ok(match spent {
            Some(rotated_at) => RotateOutcome::Spent { rotated_at },
            None => RotateOutcome::Unknown,
        })
    }

    /// One entry per token, its latest use (an upsert may not touch a row
    /// twice), as two arrays per chunk.
    fn last_used_chunks(uses: &[Use]) -> StoreResult<Vec<LastUsedChunk>> {
        // One row per token (an upsert may not touch a row twice): its latest use.
        let mut latest: BTreeMap<i64, (i64, String)> = BTreeMap::new();
        for u in uses {
            let e = latest
                .entry(id_to_i64(u.id.0)?)
                .or_insert((u.at, u.address.to_string()));
            if u.at > e.0 {
                *e = (u.at, u.address.to_string());
            }
        }
        let latest: Vec<(i64, (i64, String))> = latest.into_iter().collect();
        Ok(latest
            .chunks(LAST_USED_CHUNK)
            .map(|c| {
                let mut chunk = LastUsedChunk::default();
                for (id, (at, address)) in c {
                    chunk.0.push(*id);
                    chunk.1.push(*at);
                    chunk.2.push(address.clone());
                }
                chunk
            })
            .collect())
    }

    fn rows_affected(result: &<Postgres as Database>::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn bind_last_used<'q>(
        query: SqlQuery<'q, Postgres>,
        LastUsedChunk(ids, ats, addresses): &LastUsedChunk,
    ) -> SqlQuery<'q, Postgres> {
        query.bind(ids).bind(ats).bind(addresses)
    }
}

/// Quotes an SQL identifier (a schema name from configuration).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
