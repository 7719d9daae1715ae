//! [`SqliteStore`]: Tessera's embedded default store, on SQLite through sqlx.
//!
//! The store's SQL, row decoding and error mapping are `tessera-sql`'s,
//! shared with PostgreSQL; this crate is SQLite's [`Dialect`]: opening,
//! configuration, migrations, the check's readers and the few statements
//! that differ.
//!
//! * A file (`sqlite://tessera.db`) or memory (`sqlite::memory:`); SQLite is
//!   compiled in (bundled), so a new user installs nothing.
//! * WAL journal and a busy timeout, so readers never block the writer and
//!   concurrent writers wait their turn instead of failing.
//! * The schema's migrations are embedded (`migrations/`) and applied at start.
//! * Every call is bounded by `command_timeout`; failures to reach the file
//!   or the lock are [`StoreError::Unavailable`](tessera_core::StoreError).
//! * The check's look-up runs synchronously on a few read connections of its
//!   own, through rusqlite (`readers`; not for `:memory:`): no hand-off to a
//!   worker thread. It falls back to the pool when they are all in use or
//!   the file is busy.
//! * The change stream (`feed`): `PRAGMA data_version` polled on a
//!   connection of its own and, when it moves, the `token_changes` log its
//!   triggers write: the tokens changed, by id; none for memory databases.
//! * Atomicity: each operation that must be atomic is one statement, or a
//!   transaction that starts with its write (so it takes SQLite's write lock
//!   first and never fails upgrading a read lock). The rotation is
//!   `UPDATE … WHERE refresh_digest = ? AND revoked_at IS NULL RETURNING …`:
//!   of concurrent renewals of one pair, exactly one matches.
//!
//! Rows convert through [`tessera_core::stored`], where the encoding of
//! scopes, address lists and digests lives once for every backend.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod feed;
mod readers;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Database, Sqlite};
use tessera_core::feed::ChangeStream;
use tessera_core::model::{RotateOutcome, Rotation, Timestamp, TokenRecord, Use};
use tessera_core::secret::SecretKey;
use tessera_core::store::StoreResult;
use tessera_core::stored::id_to_i64;
use tessera_core::StoreError;
use tessera_sql::{
    bind_rotation, token_columns, token_row, Dialect, Placeholders, SqlQuery, SqlStore,
    LAST_USED_CHUNK, TOKEN_BY_ACCESS, TOKEN_BY_ID,
};

/// Errors of opening a store (every later call reports core's `StoreError`).
#[derive(Debug, thiserror::Error)]
pub enum SqliteStoreError {
    /// The URL is not a SQLite URL sqlx understands.
    #[error("invalid SQLite URL {url:?}: {source}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        source: sqlx::Error,
    },
    /// The database could not be opened (missing directory, permissions…).
    #[error("cannot open the SQLite database: {0}")]
    Open(sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("cannot apply the schema migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// `sqlite://path/to/file.db` or `sqlite::memory:`.
    pub url: String,
    /// How long a writer waits for SQLite's write lock.
    pub busy_timeout: Duration,
    /// Upper bound on any one store call; past it the call is `Unavailable`.
    pub command_timeout: Duration,
    /// Connections in the pool (memory databases always use one: each
    /// connection to `:memory:` would otherwise see its own database).
    pub max_connections: u32,
    /// Connections kept apart for the check's look-up (at least one; none
    /// for memory databases, which use the pool's one connection).
    pub check_connections: u32,
}

impl SqliteConfig {
    /// Defaults for `url`: 5 s busy timeout, 10 s command timeout, 4
    /// connections in the pool and 4 for the check.
    pub fn new(url: impl Into<String>) -> Self {
        SqliteConfig {
            url: url.into(),
            busy_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            max_connections: 4,
            check_connections: 4,
        }
    }
}

/// The SQLite store: `tessera-sql`'s store in SQLite's dialect. Opened by
/// [`SqliteStore::open`]; [`SqliteStore::pool`] is its sqlx pool.
pub type SqliteStore = SqlStore<SqliteDialect>;

/// SQLite's side of the SQL store (see the crate doc).
#[derive(Debug, Clone)]
pub struct SqliteDialect {
    /// The check's own connections (`None` for a memory database).
    readers: Option<Arc<readers::Readers>>,
    /// The change stream (`None` for a memory database: it has none).
    feed: Option<Arc<feed::Feed>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What the rotation transaction found, decoded after it ends.
enum Rotated {
    /// The pair rotated; the updated row.
    Row(SqliteRow),
    /// The presented digest is a spent one of this token, rotated out then.
    Spent(Timestamp),
    /// Neither.
    Unknown,
}

impl Dialect for SqliteDialect {
    type Database = Sqlite;
    type Config = SqliteConfig;
    type OpenError = SqliteStoreError;
    /// A JSON array of `[id, time]` pairs.
    type LastUsed = String;

    const NAME: &'static str = "SQLite";
    const PLACEHOLDERS: Placeholders = Placeholders::QuestionMarks;
    const NEXT_TOKEN_ID: &'static str =
        "UPDATE sequences SET value = value + 1 WHERE name = 'token' RETURNING value";
    const TOUCH_SESSION: &'static str =
        "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?) WHERE digest = ?";
    const LEGACY_HORIZON: &'static str =
        "SELECT MAX(access_expires_at) AS horizon FROM tokens WHERE legacy = 1 AND revoked_at IS NULL";
    // The address goes with the later time (SET reads the row as it was).
    const RECORD_LAST_USED: &'static str = "INSERT INTO token_usage (token_id, at, address) \
         SELECT tokens.id, MAX(u.at, COALESCE(tokens.last_used_at, u.at)), u.address \
         FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at, \
                      json_extract(value, '$[2]') AS address \
               FROM json_each(?)) AS u \
         JOIN tokens ON tokens.id = u.id WHERE true \
         ON CONFLICT (token_id) DO UPDATE SET \
           address = CASE WHEN excluded.at >= at THEN excluded.address ELSE address END, \
           at = MAX(at, excluded.at)";

    /// Opens (creating if missing) the database and applies the migrations.
    async fn open(config: &SqliteConfig) -> Result<SqliteStore, SqliteStoreError> {
        let memory = config.url.contains(":memory:") || config.url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|source| SqliteStoreError::Url {
                url: config.url.clone(),
                source,
            })?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout);
        if !memory {
            options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
        }
        let path = options.get_filename().to_path_buf();
        let readers = (!memory).then(|| {
            Arc::new(readers::Readers::new(
                path.clone(),
                config.check_connections as usize,
            ))
        });
        let feed = (!memory).then(|| Arc::new(feed::Feed::new(path)));
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory {
                1
            } else {
                config.max_connections.max(1)
            })
            .acquire_timeout(config.command_timeout)
            // A local file cannot drop a connection: no ping (a round trip
            // to the connection's worker thread) before every statement.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(SqliteStoreError::Open)?;
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore::new(
            pool,
            SqliteDialect { readers, feed },
            config.command_timeout,
        ))
    }

    /// On the readers, synchronously; on the pool when they cannot answer.
    async fn token_by_access(
        store: &SqliteStore,
        key: &SecretKey,
    ) -> StoreResult<Option<Arc<TokenRecord>>> {
        if let Some(r) = &store.dialect().readers {
            match r.token(TOKEN_BY_ACCESS, key.digest.as_bytes()) {
                Ok(readers::Lookup::Done(row)) => {
                    return row.map(|t| t.into_record().map(Arc::new)).transpose();
                }
                Ok(readers::Lookup::Elsewhere) => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        store.token_by_access_on_pool(key).await
    }

    /// On the readers, synchronously; on the pool when they cannot answer.
    async fn token_for_check(
        store: &SqliteStore,
        id: i64,
    ) -> StoreResult<Option<Arc<TokenRecord>>> {
        if let Some(r) = &store.dialect().readers {
            match r.token(TOKEN_BY_ID, id) {
                Ok(readers::Lookup::Done(row)) => {
                    return row.map(|t| t.into_record().map(Arc::new)).transpose();
                }
                Ok(readers::Lookup::Elsewhere) => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        store.token_for_check_on_pool(id).await
    }

    /// `data_version` and the change log, polled on a connection of its
    /// own (see `feed`); a memory database has no stream.
    async fn subscribe(store: &SqliteStore) -> StoreResult<Box<dyn ChangeStream>> {
        match &store.dialect().feed {
            Some(feed) => feed.subscribe(),
            None => Err(StoreError::Unavailable(
                "a memory database has no change stream".into(),
            )),
        }
    }

    /// Queued for this store's subscriptions (see `feed`).
    async fn beat(store: &SqliteStore, text: &str) -> StoreResult<()> {
        if let Some(feed) = &store.dialect().feed {
            feed.beat(text);
        }
        Ok(())
    }

    /// A transaction that starts with the rotating `UPDATE … RETURNING`.
    async fn rotate(store: &SqliteStore, r: &Rotation) -> StoreResult<RotateOutcome> {
        let tid = id_to_i64(r.id.0)?;
        let sql = concat!(
            "UPDATE tokens SET access_digest = ?, refresh_digest = ?, access_expires_at = ?, ends_at = ? \
             WHERE id = ? AND refresh_digest = ? AND revoked_at IS NULL RETURNING ",
            token_columns!()
        );
        let found = store
            .bounded(async {
                // The transaction's first statement writes, so it takes the
                // write lock at once; of concurrent rotations one matches,
                // the others then find the digest spent.
                let mut tx = store.pool().begin().await?;
                let rotated = bind_rotation(sqlx::query(sql), r, tid)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = rotated {
                    sqlx::query(
                        "INSERT INTO spent_refresh (digest, token_id, rotated_at) VALUES (?, ?, ?)",
                    )
                    .bind(r.presented_refresh.as_bytes().as_slice())
                    .bind(tid)
                    .bind(r.at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Rotated::Row(row));
                }
                let spent =
                    SqliteStore::spent_rotated_at(&mut *tx, &r.presented_refresh, tid).await?;
                tx.rollback().await?;
                Ok(match spent {
                    Some(at) => Rotated::Spent(at),
                    None => Rotated::Unknown,
                })
            })
            .await?;
        Ok(match found {
            Rotated::Row(row) => RotateOutcome::Rotated(Box::new(token_row(&row)?)),
            Rotated::Spent(rotated_at) => RotateOutcome::Spent { rotated_at },
            Rotated::Unknown => RotateOutcome::Unknown,
        })
    }

    /// A JSON array per chunk, every use in it (the upsert takes the latest).
    fn last_used_chunks(uses: &[Use]) -> StoreResult<Vec<String>> {
        uses.chunks(LAST_USED_CHUNK)
            .map(|chunk| {
                // An address's text holds no quote or backslash: no escaping.
                let pairs = chunk
                    .iter()
                    .map(|u| {
                        Ok(format!(
                            "[{},{},\"{}\"]",
                            id_to_i64(u.id.0)?,
                            u.at,
                            u.address
                        ))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(format!("[{}]", pairs.join(",")))
            })
            .collect()
    }

    fn rows_affected(result: &<Sqlite as Database>::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn bind_last_used<'q>(query: SqlQuery<'q, Sqlite>, chunk: &String) -> SqlQuery<'q, Sqlite> {
        query.bind(chunk.as_str())
    }
}

/// rusqlite's errors as the core's: a value of the wrong type is corrupt,
/// everything else unavailable.
fn read_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}
