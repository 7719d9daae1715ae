//! [`SqliteStore`]: Tessera's embedded default store, on SQLite through sqlx.
//!
//! * A file (`sqlite://tessera.db`) or memory (`sqlite::memory:`); SQLite is
//!   compiled in (bundled), so a new user installs nothing.
//! * WAL journal and a busy timeout, so readers never block the writer and
//!   concurrent writers wait their turn instead of failing.
//! * The schema's migrations are embedded (`migrations/`) and applied at start.
//! * Every call is bounded by `command_timeout`; failures to reach the file
//!   or the lock are [`StoreError::Unavailable`].
//! * The check's look-up runs synchronously on a few read connections of its
//!   own, through rusqlite (`readers`; not for `:memory:`): no hand-off to a
//!   worker thread. It falls back to the pool when they are all in use or
//!   the file is busy.
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

mod readers;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use tessera_core::model::{
    Event, NewUser, RefreshLookup, RotateOutcome, Rotation, SessionRecord, Timestamp, TokenChanges,
    TokenId, TokenRecord, User, UserId,
};
use tessera_core::secret::{Digest, SecretKey};
use tessera_core::store::{SessionStore, Store, StoreResult, TokenStore, UserStore};
use tessera_core::stored::{
    digest_from_slice, id_from_i64, id_in_range, id_to_i64, StoredEvent, StoredToken, StoredUser,
};
use tessera_core::StoreError;

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

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The connection pool.
    pool: SqlitePool,
    /// The check's own connections (`None` for a memory database).
    readers: Option<Arc<readers::Readers>>,
    /// Bound on each call.
    command_timeout: Duration,
}

/// Uses written by one statement of [`SqliteStore::record_last_used`].
const LAST_USED_CHUNK: usize = 5_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The token columns, in `StoredToken` order, for every `SELECT`/`RETURNING`
/// (a macro so that `concat!` builds each statement as a static string).
macro_rules! token_columns {
    () => {
        "id, user_id, user_name, name, token_type, api_endpoints, allowed_ips, created_at, access_expires_at, \
         renewable_until, ends_at, access_digest, refresh_digest, legacy, revoked_at, \
         COALESCE((SELECT at FROM token_usage WHERE token_id = tokens.id), last_used_at) AS last_used_at"
    };
}

/// What the rotation transaction found, decoded after it ends.
enum Rotated {
    /// The pair rotated; the updated row.
    Row(SqliteRow),
    /// The presented digest is a spent one of this token, rotated out then.
    Spent(Timestamp),
    /// Neither.
    Unknown,
}

impl SqliteStore {
    /// Opens (creating if missing) the database and applies the migrations.
    pub async fn open(config: &SqliteConfig) -> Result<Self, SqliteStoreError> {
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
        let readers = (!memory).then(|| {
            Arc::new(readers::Readers::new(
                options.get_filename().to_path_buf(),
                config.check_connections as usize,
            ))
        });
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
        Ok(SqliteStore {
            pool,
            readers,
            command_timeout: config.command_timeout,
        })
    }

    /// The pool, for tests that inspect the raw contents.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `f` within the command timeout, mapping sqlx errors.
    async fn bounded<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        match tokio::time::timeout(self.command_timeout, f).await {
            Ok(r) => r.map_err(store_err),
            Err(_) => Err(StoreError::Unavailable(format!(
                "SQLite did not answer within {:?}",
                self.command_timeout
            ))),
        }
    }
}

/// sqlx's errors as the core's: a broken uniqueness rule is a conflict, an
/// undecodable row is corrupt, everything else (I/O, locks, pool) unavailable.
fn store_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_string())
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
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

fn token_row(row: &SqliteRow) -> StoreResult<TokenRecord> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let digest = |v: Vec<u8>| digest_from_slice(&v).map(|d| *d.as_bytes());
    let refresh: Option<Vec<u8>> = row.try_get("refresh_digest").map_err(get)?;
    StoredToken {
        id: row.try_get("id").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        user_name: row.try_get("user_name").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        token_type: row.try_get("token_type").map_err(get)?,
        api_endpoints: row.try_get("api_endpoints").map_err(get)?,
        allowed_ips: row.try_get("allowed_ips").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        access_expires_at: row.try_get("access_expires_at").map_err(get)?,
        renewable_until: row.try_get("renewable_until").map_err(get)?,
        ends_at: row.try_get("ends_at").map_err(get)?,
        access_digest: digest(row.try_get("access_digest").map_err(get)?)?,
        refresh_digest: refresh.map(digest).transpose()?,
        legacy: row.try_get("legacy").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
    }
    .into_record()
}

fn user_row(row: &SqliteRow) -> StoreResult<User> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    StoredUser {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        role: row.try_get("role").map_err(get)?,
        kind: row.try_get("kind").map_err(get)?,
        owner_id: row.try_get("owner_id").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    }
    .into_user()
}

fn session_row(row: &SqliteRow) -> StoreResult<SessionRecord> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let digest: Vec<u8> = row.try_get("digest").map_err(get)?;
    Ok(SessionRecord {
        digest: digest_from_slice(&digest)?,
        user_id: UserId(id_from_i64(row.try_get("user_id").map_err(get)?)?),
        created_at: row.try_get("created_at").map_err(get)?,
        last_seen_at: row.try_get("last_seen_at").map_err(get)?,
    })
}

fn id(v: u64) -> StoreResult<i64> {
    id_to_i64(v)
}

fn bytes(d: &Digest) -> &[u8] {
    d.as_bytes()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let cols = StoredUser::from_user(&User {
            id: UserId(0),
            name: new.name,
            role: new.role,
            kind: new.kind,
            owner: new.owner,
            password: new.password,
            created_at: new.created_at,
        })?;
        let row = self
            .bounded(
                sqlx::query(
                    "INSERT INTO users (name, role, kind, owner_id, password_hash, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                )
                .bind(&cols.name)
                .bind(&cols.role)
                .bind(&cols.kind)
                .bind(cols.owner_id)
                .bind(&cols.password_hash)
                .bind(cols.created_at)
                .fetch_one(&self.pool),
            )
            .await?;
        user_row(&row)
    }

    async fn user_by_id(&self, uid: UserId) -> StoreResult<Option<User>> {
        let Some(uid) = id_in_range(uid.0) else {
            return Ok(None);
        };
        let row = self
            .bounded(
                sqlx::query("SELECT * FROM users WHERE id = ?")
                    .bind(uid)
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let row = self
            .bounded(
                sqlx::query("SELECT * FROM users WHERE name = ?")
                    .bind(name)
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .bounded(sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool))
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn has_users(&self) -> StoreResult<bool> {
        let row = self
            .bounded(
                sqlx::query("SELECT EXISTS (SELECT 1 FROM users) AS any").fetch_one(&self.pool),
            )
            .await?;
        row.try_get::<bool, _>("any")
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn delete_user(&self, uid: UserId, now: Timestamp) -> StoreResult<bool> {
        let Some(uid) = id_in_range(uid.0) else {
            return Ok(false);
        };
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM users WHERE id = ?")
                .bind(uid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(uid)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.bounded(
            sqlx::query("INSERT INTO sessions (digest, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)")
                .bind(bytes(&s.digest))
                .bind(id(s.user_id.0)?)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<SessionRecord>> {
        let row = self
            .bounded(
                sqlx::query("SELECT * FROM sessions WHERE digest = ?")
                    .bind(bytes(digest))
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn touch_session(&self, digest: &Digest, now: Timestamp) -> StoreResult<()> {
        self.bounded(
            sqlx::query("UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?) WHERE digest = ?")
                .bind(now)
                .bind(bytes(digest))
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn delete_session(&self, digest: &Digest) -> StoreResult<bool> {
        let r = self
            .bounded(
                sqlx::query("DELETE FROM sessions WHERE digest = ?")
                    .bind(bytes(digest))
                    .execute(&self.pool),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

/// Binds every column of `t` to an `INSERT INTO tokens (TOKEN_COLUMNS) VALUES (…16 ?)`.
async fn insert_token_row<'e, E>(executor: E, t: &StoredToken) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO tokens (id, user_id, user_name, name, token_type, api_endpoints, allowed_ips, created_at, \
         access_expires_at, renewable_until, ends_at, access_digest, refresh_digest, legacy, revoked_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.id)
    .bind(t.user_id)
    .bind(&t.user_name)
    .bind(&t.name)
    .bind(t.token_type)
    .bind(&t.api_endpoints)
    .bind(&t.allowed_ips)
    .bind(t.created_at)
    .bind(t.access_expires_at)
    .bind(t.renewable_until)
    .bind(t.ends_at)
    .bind(&t.access_digest[..])
    .bind(t.refresh_digest.as_ref().map(|d| &d[..]))
    .bind(t.legacy)
    .bind(t.revoked_at)
    .bind(t.last_used_at)
    .execute(executor)
    .await
    .map(|_| ())
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn next_token_id(&self) -> StoreResult<TokenId> {
        let row = self
            .bounded(
                sqlx::query(
                    "UPDATE sequences SET value = value + 1 WHERE name = 'token' RETURNING value",
                )
                .fetch_one(&self.pool),
            )
            .await?;
        let v: i64 = row
            .try_get("value")
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TokenId(id_from_i64(v)?))
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let cols = StoredToken::from_record(token)?;
        self.bounded(insert_token_row(&self.pool, &cols)).await
    }

    async fn token(&self, tid: TokenId) -> StoreResult<Option<TokenRecord>> {
        let Some(tid) = id_in_range(tid.0) else {
            return Ok(None);
        };
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE id = ?");
        let row = self
            .bounded(sqlx::query(sql).bind(tid).fetch_optional(&self.pool))
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn token_by_access(&self, key: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>> {
        const SQL: &str = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE access_digest = ?"
        );
        if let Some(r) = &self.readers {
            match r.token(SQL, bytes(&key.digest)) {
                Ok(readers::Lookup::Done(row)) => {
                    return row.map(|t| t.into_record().map(Arc::new)).transpose();
                }
                Ok(readers::Lookup::Elsewhere) => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        let row = self
            .bounded(
                sqlx::query(SQL)
                    .bind(bytes(&key.digest))
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.as_ref().map(token_row).transpose()?.map(Arc::new))
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        let Some(user) = id_in_range(user.0) else {
            return Ok(Vec::new());
        };
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY id"
        );
        let rows = self
            .bounded(sqlx::query(sql).bind(user).fetch_all(&self.pool))
            .await?;
        rows.iter().map(token_row).collect()
    }

    async fn update_token(&self, c: &TokenChanges) -> StoreResult<bool> {
        let Some(tid) = id_in_range(c.id.0) else {
            return Ok(false);
        };
        let t = c.scope.token_type().number();
        let r = self
            .bounded(
                sqlx::query(
                    "UPDATE tokens SET name = ?, token_type = ?, api_endpoints = ?, allowed_ips = ?, \
                     access_expires_at = ?, renewable_until = ?, ends_at = ? WHERE id = ? AND revoked_at IS NULL",
                )
                .bind(&c.name)
                .bind(i64::from(t))
                .bind(tessera_core::stored::join_list(&c.scope.endpoint_strings()))
                .bind(tessera_core::stored::join_list(c.allowed_ips.entries()))
                .bind(c.access_expires_at)
                .bind(c.renewable_until)
                .bind(c.ends_at)
                .bind(tid)
                .execute(&self.pool),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn refresh_lookup(&self, key: &SecretKey) -> StoreResult<RefreshLookup> {
        let digest = bytes(&key.digest);
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE refresh_digest = ?"
        );
        let current = self
            .bounded(sqlx::query(sql).bind(digest).fetch_optional(&self.pool))
            .await?;
        if let Some(row) = current {
            return Ok(RefreshLookup::Current(Box::new(token_row(&row)?)));
        }
        let spent = self
            .bounded(
                sqlx::query("SELECT token_id, rotated_at FROM spent_refresh WHERE digest = ?")
                    .bind(digest)
                    .fetch_optional(&self.pool),
            )
            .await?;
        match spent {
            None => Ok(RefreshLookup::Unknown),
            Some(row) => {
                let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
                Ok(RefreshLookup::Spent {
                    id: TokenId(id_from_i64(row.try_get("token_id").map_err(get)?)?),
                    rotated_at: row.try_get("rotated_at").map_err(get)?,
                })
            }
        }
    }

    async fn rotate(&self, r: &Rotation) -> StoreResult<RotateOutcome> {
        let tid = id(r.id.0)?;
        let sql = concat!(
            "UPDATE tokens SET access_digest = ?, refresh_digest = ?, access_expires_at = ?, ends_at = ? \
             WHERE id = ? AND refresh_digest = ? AND revoked_at IS NULL RETURNING ",
            token_columns!()
        );
        let found = self
            .bounded(async {
                // The transaction's first statement writes, so it takes the
                // write lock at once; of concurrent rotations one matches,
                // the others then find the digest spent.
                let mut tx = self.pool.begin().await?;
                let rotated = sqlx::query(sql)
                    .bind(bytes(&r.new_access))
                    .bind(bytes(&r.new_refresh))
                    .bind(r.access_expires_at)
                    .bind(r.ends_at)
                    .bind(tid)
                    .bind(bytes(&r.presented_refresh))
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = rotated {
                    sqlx::query(
                        "INSERT INTO spent_refresh (digest, token_id, rotated_at) VALUES (?, ?, ?)",
                    )
                    .bind(bytes(&r.presented_refresh))
                    .bind(tid)
                    .bind(r.at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Rotated::Row(row));
                }
                let spent = sqlx::query(
                    "SELECT rotated_at FROM spent_refresh WHERE digest = ? AND token_id = ?",
                )
                .bind(bytes(&r.presented_refresh))
                .bind(tid)
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                Ok(match spent {
                    Some(row) => Rotated::Spent(row.try_get("rotated_at")?),
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

    async fn revoke_token(&self, tid: TokenId, now: Timestamp) -> StoreResult<bool> {
        let Some(tid) = id_in_range(tid.0) else {
            return Ok(false);
        };
        let r = self
            .bounded(
                sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                    .bind(now)
                    .bind(tid)
                    .execute(&self.pool),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn import_legacy(&self, tokens: &[TokenRecord]) -> StoreResult<()> {
        let rows = tokens
            .iter()
            .map(StoredToken::from_record)
            .collect::<StoreResult<Vec<_>>>()?;
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            for t in &rows {
                insert_token_row(&mut *tx, t).await?;
            }
            tx.commit().await
        })
        .await
    }

    async fn legacy_horizon(&self) -> StoreResult<Option<Timestamp>> {
        let row = self
            .bounded(
                sqlx::query(
                    "SELECT MAX(access_expires_at) AS horizon FROM tokens WHERE legacy = 1 AND revoked_at IS NULL",
                )
                .fetch_one(&self.pool),
            )
            .await?;
        row.try_get("horizon")
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn record_last_used(&self, uses: &[(TokenId, Timestamp)]) -> StoreResult<()> {
        // Into `token_usage` (see its migration), a few statements for any
        // number of uses (a JSON array of [id, time] pairs per chunk), in one
        // transaction; unknown ids are skipped, and a time never moves back.
        let mut chunks = Vec::new();
        for chunk in uses.chunks(LAST_USED_CHUNK) {
            let pairs = chunk
                .iter()
                .map(|(t, at)| Ok(format!("[{},{at}]", id(t.0)?)))
                .collect::<StoreResult<Vec<_>>>()?;
            chunks.push(format!("[{}]", pairs.join(",")));
        }
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            for json in &chunks {
                sqlx::query(
                    "INSERT INTO token_usage (token_id, at) \
                     SELECT tokens.id, MAX(u.at, COALESCE(tokens.last_used_at, u.at)) \
                     FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at \
                           FROM json_each(?)) AS u \
                     JOIN tokens ON tokens.id = u.id WHERE true \
                     ON CONFLICT (token_id) DO UPDATE SET at = MAX(at, excluded.at)",
                )
                .bind(json)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
        .await
    }

    async fn record_event(&self, event: &Event) -> StoreResult<()> {
        let e = StoredEvent::from_event(event)?;
        self.bounded(
            sqlx::query("INSERT INTO events (at, kind, token_id, user_id) VALUES (?, ?, ?, ?)")
                .bind(e.at)
                .bind(&e.kind)
                .bind(e.token_id)
                .bind(e.user_id)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn recent_events(&self, limit: usize) -> StoreResult<Vec<Event>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT at, kind, token_id, user_id FROM events ORDER BY id DESC LIMIT ?",
                )
                .bind(limit)
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
                StoredEvent {
                    at: row.try_get("at").map_err(get)?,
                    kind: row.try_get("kind").map_err(get)?,
                    token_id: row.try_get("token_id").map_err(get)?,
                    user_id: row.try_get("user_id").map_err(get)?,
                }
                .into_event()
            })
            .collect()
    }

    async fn sweep(&self, before: Timestamp, sessions_before: Timestamp) -> StoreResult<u64> {
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let tokens = sqlx::query(
                "DELETE FROM tokens WHERE (revoked_at IS NOT NULL AND revoked_at < ?) OR ends_at < ?",
            )
            .bind(before)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let sessions = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ?")
                .bind(sessions_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(tokens + sessions)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.bounded(sqlx::query("SELECT id FROM users ORDER BY id LIMIT 1").execute(&self.pool))
            .await?;
        Ok(())
    }
}
