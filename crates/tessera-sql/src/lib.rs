//! [`SqlStore`]: Tessera's store on SQL, once for every SQL backend.
//!
//! The SQLite and PostgreSQL stores share their schema's shape and almost
//! all of their SQL. That shared part lives here, generic over sqlx's
//! [`Database`], so that a statement, a row's decoding or an error's mapping
//! is written (and fixed) once. What differs is named in one small trait,
//! [`Dialect`]: a few statements (`MAX`/`GREATEST`, an integer or a boolean
//! flag, the token-id sequence, the bulk last-used upsert), the rotation,
//! the check's look-ups (each backend has readers of its own), the change
//! stream (each backend's own carrier) and opening.
//! `tessera-sqlite` and `tessera-postgres` each supply a dialect, with their
//! readers, configuration and migrations, and name the store
//! `SqlStore<TheirDialect>`.
//!
//! Map:
//! * `statements` — the shared SQL, written once with `?` parameters and
//!   numbered `$1`, `$2`, … for PostgreSQL once per process ([`Placeholders`]);
//!   the token columns ([`token_columns!`]);
//! * `dialect` — [`Dialect`];
//! * `rows` — each table's row decoded once, for any driver ([`token_row`]);
//! * `users`, `sessions`, `tokens`, `outbox` — the store traits' implementations;
//! * here — [`SqlStore`], the bound on every call, [`store_err`].
//!
//! * Every call is bounded by the dialect's command timeout; past it, and
//!   on any failure to reach the database, the call is
//!   [`StoreError::Unavailable`] (see [`store_err`]).
//! * Atomicity: each operation that must be atomic is one statement or one
//!   transaction (`delete_user`, `import_legacy`, `record_last_used`,
//!   `sweep`), and each transaction here starts with its write (SQLite relies
//!   on it: it then takes the write lock first and never fails upgrading a
//!   read lock). The rotation is the dialect's ([`Dialect::rotate`]).
//! * Rows convert through [`tessera_core::stored`], where the encoding of
//!   scopes, address lists and digests lives once for every backend.
//!
//! Generic code over sqlx states what it needs of the driver: each impl
//! carries a `where` list of what it runs, binds and decodes (connections
//! execute statements; `i64`, `bool`, text and bytes, plain and optional).
//! Both drivers meet every list; Rust offers no trait alias to name them once.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dialect;
mod outbox;
mod rows;
mod sessions;
mod statements;
mod tokens;
mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use tessera_core::model::{Timestamp, TokenRecord};
use tessera_core::secret::{Digest, SecretKey};
use tessera_core::store::StoreResult;
use tessera_core::StoreError;

pub use dialect::Dialect;
pub use rows::{column, token_row};
pub use statements::{Placeholders, TOKEN_BY_ACCESS, TOKEN_BY_ID};
pub use tokens::bind_rotation;

use statements::Statements;

/// A statement being built for `DB`, as `sqlx::query` makes it.
pub type SqlQuery<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// Uses written by one statement of `record_last_used` (the dialect's
/// [`Dialect::last_used_chunks`] cuts them so).
pub const LAST_USED_CHUNK: usize = 5_000;

/// A token store on a SQL database, its dialect `D`.
#[derive(Debug)]
pub struct SqlStore<D: Dialect> {
    /// The connection pool.
    pool: Pool<D::Database>,
    /// The dialect's own state (the check's connections).
    dialect: D,
    /// Bound on each call.
    command_timeout: Duration,
}

// By hand: a derived `Clone` would ask the driver type itself to be `Clone`.
impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            dialect: self.dialect.clone(),
            command_timeout: self.command_timeout,
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Opens the store as the dialect does it (see its crate: for SQLite,
    /// creating the file if missing; for PostgreSQL, the schema if named),
    /// applying the migrations.
    pub async fn open(config: &D::Config) -> Result<Self, D::OpenError> {
        D::open(config).await
    }

    /// The store on an open, migrated `pool`, each call bounded by
    /// `command_timeout` (for the dialect's `open`).
    pub fn new(pool: Pool<D::Database>, dialect: D, command_timeout: Duration) -> Self {
        SqlStore {
            pool,
            dialect,
            command_timeout,
        }
    }

    /// The pool, for tests that inspect the raw contents (and for the
    /// dialect's own statements).
    pub fn pool(&self) -> &Pool<D::Database> {
        &self.pool
    }

    /// The dialect's state, for its own operations.
    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    /// Runs `f` within the command timeout, mapping sqlx errors.
    pub async fn bounded<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        match tokio::time::timeout(self.command_timeout, f).await {
            Ok(r) => r.map_err(store_err),
            Err(_) => Err(StoreError::Unavailable(format!(
                "{} did not answer within {:?}",
                D::NAME,
                self.command_timeout
            ))),
        }
    }

    /// The shared statements in this dialect's placeholders.
    fn sql() -> &'static Statements {
        Statements::get(D::PLACEHOLDERS)
    }
}

impl<D, DB> SqlStore<D>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// `sql` with its one parameter, on the pool within the bound: the row,
    /// if any (most look-ups).
    pub(crate) async fn optional_row<'p, P>(
        &self,
        sql: &'static str,
        param: P,
    ) -> StoreResult<Option<DB::Row>>
    where
        P: Encode<'p, DB> + Type<DB>,
    {
        self.bounded(sqlx::query(sql).bind(param).fetch_optional(&self.pool))
            .await
    }

    /// The check's look-up on the pool ([`TOKEN_BY_ACCESS`]), for a dialect
    /// whose own readers could not answer.
    pub async fn token_by_access_on_pool(
        &self,
        key: &SecretKey,
    ) -> StoreResult<Option<Arc<TokenRecord>>>
    where
        &'static str: ColumnIndex<DB::Row>,
        for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
        for<'r> i64: Decode<'r, DB> + Type<DB>,
        for<'r> bool: Decode<'r, DB> + Type<DB>,
        for<'r> String: Decode<'r, DB> + Type<DB>,
        for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    {
        let digest = key.digest.as_bytes().as_slice();
        let row = self
            .optional_row(Self::sql().token_by_access, digest)
            .await?;
        Ok(row.as_ref().map(token_row).transpose()?.map(Arc::new))
    }

    /// The cache's read on a miss on the pool ([`TOKEN_BY_ID`]): the token
    /// with this id, whatever its digest, for a dialect whose own readers
    /// could not answer.
    pub async fn token_for_check_on_pool(&self, id: i64) -> StoreResult<Option<Arc<TokenRecord>>>
    where
        &'static str: ColumnIndex<DB::Row>,
        for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
        for<'r> bool: Decode<'r, DB> + Type<DB>,
        for<'r> String: Decode<'r, DB> + Type<DB>,
        for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    {
        let row = self.optional_row(Self::sql().token, id).await?;
        Ok(row.as_ref().map(token_row).transpose()?.map(Arc::new))
    }

    /// When `presented` was rotated out of token `token` (a spent refresh
    /// digest of that token), on `executor` (the pool, or the rotation's
    /// transaction).
    pub async fn spent_rotated_at<'e, E>(
        executor: E,
        presented: &Digest,
        token: i64,
    ) -> Result<Option<Timestamp>, sqlx::Error>
    where
        E: Executor<'e, Database = DB>,
        &'static str: ColumnIndex<DB::Row>,
        for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
        for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    {
        let row = sqlx::query(Self::sql().spent_refresh_of_token)
            .bind(presented.as_bytes().as_slice())
            .bind(token)
            .fetch_optional(executor)
            .await?;
        row.map(|row| sqlx::Row::try_get(&row, "rotated_at"))
            .transpose()
    }
}

/// sqlx's errors as the core's: a broken uniqueness rule is a conflict, an
/// undecodable row is corrupt, everything else (I/O, locks, pool) unavailable.
pub fn store_err(e: sqlx::Error) -> StoreError {
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
