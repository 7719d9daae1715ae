//! [`PostgresStore`]: Tessera's PostgreSQL store, through sqlx, for several
//! stateless `tessera` nodes sharing one database (SPEC §8).
//!
//! * A connection pool; a connect timeout (`acquire_timeout`), a server-side
//!   `statement_timeout`, and a client-side bound on every call: an
//!   unreachable server is [`StoreError::Unavailable`] within a bounded time.
//!   A broken connection fails its call as Unavailable and is replaced, so
//!   the store recovers by itself when the server is back.
//! * The check's look-ups run on a few connections of their own, batched
//!   (`readers`): one round trip answers every look-up waiting, where the
//!   pool alone would make three round trips for each.
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

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
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

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// The connection pool.
    pool: PgPool,
    /// The check's look-ups, batched on connections of their own.
    readers: Arc<readers::Lookups>,
    /// Bound on each call.
    command_timeout: Duration,
}

/// Uses written by one statement of [`PostgresStore::record_last_used`].
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

mod readers;

impl PostgresStore {
    /// Connects and applies the migrations (creating the schema if named and missing).
    pub async fn open(config: &PostgresConfig) -> Result<Self, PostgresStoreError> {
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
        let readers = readers::Lookups::start(
            options_for_checks,
            config.check_connections as usize,
            config.command_timeout,
        );
        Ok(PostgresStore {
            pool,
            readers: Arc::new(readers),
            command_timeout: config.command_timeout,
        })
    }

    /// The pool, for tests that inspect the raw contents.
    pub fn pool(&self) -> &PgPool {
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
                "PostgreSQL did not answer within {:?}",
                self.command_timeout
            ))),
        }
    }
}

/// Quotes an SQL identifier (a schema name from configuration).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// sqlx's errors as the core's: a broken uniqueness rule is a conflict, an
/// undecodable row is corrupt, everything else (I/O, locks, pool) unavailable.
pub(crate) fn store_err(e: sqlx::Error) -> StoreError {
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

pub(crate) fn token_row(row: &PgRow) -> StoreResult<TokenRecord> {
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

fn user_row(row: &PgRow) -> StoreResult<User> {
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

fn session_row(row: &PgRow) -> StoreResult<SessionRecord> {
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
impl UserStore for PostgresStore {
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
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
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
                sqlx::query("SELECT * FROM users WHERE id = $1")
                    .bind(uid)
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let row = self
            .bounded(
                sqlx::query("SELECT * FROM users WHERE name = $1")
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
            let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(uid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
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
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.bounded(
            sqlx::query("INSERT INTO sessions (digest, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $4)")
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
                sqlx::query("SELECT * FROM sessions WHERE digest = $1")
                    .bind(bytes(digest))
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn touch_session(&self, digest: &Digest, now: Timestamp) -> StoreResult<()> {
        self.bounded(
            sqlx::query(
                "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE digest = $2",
            )
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
                sqlx::query("DELETE FROM sessions WHERE digest = $1")
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
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO tokens (id, user_id, user_name, name, token_type, api_endpoints, allowed_ips, created_at, \
         access_expires_at, renewable_until, ends_at, access_digest, refresh_digest, legacy, revoked_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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
impl TokenStore for PostgresStore {
    async fn next_token_id(&self) -> StoreResult<TokenId> {
        let row = self
            .bounded(sqlx::query("SELECT nextval('token_ids') AS value").fetch_one(&self.pool))
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
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE id = $1");
        let row = self
            .bounded(sqlx::query(sql).bind(tid).fetch_optional(&self.pool))
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn token_by_access(&self, key: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>> {
        self.readers.token(*key.digest.as_bytes()).await
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        let Some(user) = id_in_range(user.0) else {
            return Ok(Vec::new());
        };
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id"
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
                    "UPDATE tokens SET name = $1, token_type = $2, api_endpoints = $3, allowed_ips = $4, \
                     access_expires_at = $5, renewable_until = $6, ends_at = $7 WHERE id = $8 AND revoked_at IS NULL",
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
            " FROM tokens WHERE refresh_digest = $1"
        );
        let current = self
            .bounded(sqlx::query(sql).bind(digest).fetch_optional(&self.pool))
            .await?;
        if let Some(row) = current {
            return Ok(RefreshLookup::Current(Box::new(token_row(&row)?)));
        }
        let spent = self
            .bounded(
                sqlx::query("SELECT token_id, rotated_at FROM spent_refresh WHERE digest = $1")
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
            "WITH rotated AS (UPDATE tokens SET access_digest = $1, refresh_digest = $2, access_expires_at = $3, \
             ends_at = $4 WHERE id = $5 AND refresh_digest = $6 AND revoked_at IS NULL RETURNING ",
            token_columns!(),
            "), spent AS (INSERT INTO spent_refresh (digest, token_id, rotated_at) SELECT $6, id, $7 FROM rotated) \
             SELECT * FROM rotated"
        );
        let rotated = self
            .bounded(
                sqlx::query(sql)
                    .bind(bytes(&r.new_access))
                    .bind(bytes(&r.new_refresh))
                    .bind(r.access_expires_at)
                    .bind(r.ends_at)
                    .bind(tid)
                    .bind(bytes(&r.presented_refresh))
                    .bind(r.at)
                    .fetch_optional(&self.pool),
            )
            .await?;
        if let Some(row) = rotated {
            return Ok(RotateOutcome::Rotated(Box::new(token_row(&row)?)));
        }
        let spent = self
            .bounded(
                sqlx::query(
                    "SELECT rotated_at FROM spent_refresh WHERE digest = $1 AND token_id = $2",
                )
                .bind(bytes(&r.presented_refresh))
                .bind(tid)
                .fetch_optional(&self.pool),
            )
            .await?;
        Ok(match spent {
            Some(row) => RotateOutcome::Spent {
                rotated_at: row
                    .try_get("rotated_at")
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            },
            None => RotateOutcome::Unknown,
        })
    }

    async fn revoke_token(&self, tid: TokenId, now: Timestamp) -> StoreResult<bool> {
        let Some(tid) = id_in_range(tid.0) else {
            return Ok(false);
        };
        let r = self
            .bounded(
                sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
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
                    "SELECT MAX(access_expires_at) AS horizon FROM tokens WHERE legacy AND revoked_at IS NULL",
                )
                .fetch_one(&self.pool),
            )
            .await?;
        row.try_get("horizon")
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn record_last_used(&self, uses: &[(TokenId, Timestamp)]) -> StoreResult<()> {
        // Into `token_usage` (see its migration), one statement per chunk of
        // uses (two arrays, unnested), in one transaction; unknown ids are
        // skipped, and a time never moves back.
        // One entry per token (an upsert may not touch a row twice).
        let mut latest = std::collections::BTreeMap::new();
        for (t, at) in uses {
            let e = latest.entry(id(t.0)?).or_insert(*at);
            *e = (*e).max(*at);
        }
        let latest: Vec<(i64, i64)> = latest.into_iter().collect();
        let chunks: Vec<(Vec<i64>, Vec<i64>)> = latest
            .chunks(LAST_USED_CHUNK)
            .map(|c| c.iter().copied().unzip())
            .collect();
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            for (ids, ats) in &chunks {
                sqlx::query(
                    "INSERT INTO token_usage (token_id, at) \
                     SELECT t.id, GREATEST(u.at, t.last_used_at) \
                     FROM UNNEST($1::bigint[], $2::bigint[]) AS u(id, at) JOIN tokens t ON t.id = u.id \
                     ON CONFLICT (token_id) DO UPDATE SET at = GREATEST(token_usage.at, EXCLUDED.at)",
                )
                .bind(ids)
                .bind(ats)
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
            sqlx::query("INSERT INTO events (at, kind, token_id, user_id) VALUES ($1, $2, $3, $4)")
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
                    "SELECT at, kind, token_id, user_id FROM events ORDER BY id DESC LIMIT $1",
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
                "DELETE FROM tokens WHERE (revoked_at IS NOT NULL AND revoked_at < $1) OR ends_at < $2",
            )
            .bind(before)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let sessions = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1")
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
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        self.bounded(sqlx::query("SELECT id FROM users ORDER BY id LIMIT 1").execute(&self.pool))
            .await?;
        Ok(())
    }
}
