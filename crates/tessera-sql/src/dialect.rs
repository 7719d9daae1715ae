//! [`Dialect`]: what differs between the SQL backends, named in one place.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use sqlx::Database;
use tessera_core::feed::ChangeStream;
use tessera_core::model::{RotateOutcome, Rotation, TokenRecord, Use};
use tessera_core::secret::SecretKey;
use tessera_core::store::StoreResult;

use crate::{Placeholders, SqlQuery, SqlStore};

/// One SQL backend's side of [`SqlStore`]: its sqlx driver, how it is opened,
/// the few statements whose text differs beyond placeholders, and the
/// operations whose shape differs (the check's look-ups, the rotation, the
/// encoding of bulk last-used times, the change stream).
///
/// A value of the dialect lives in the store ([`SqlStore::dialect`]) and holds
/// what those operations need of their own (the check's connections).
pub trait Dialect: Clone + Debug + Send + Sync + Sized + 'static {
    /// The sqlx driver.
    type Database: Database;
    /// How to open the store.
    type Config: Sync;
    /// Why the store could not be opened (every later call reports core's
    /// `StoreError`).
    type OpenError;
    /// The uses one [`Dialect::RECORD_LAST_USED`] statement writes, encoded
    /// for its parameters.
    type LastUsed: Send + Sync;

    /// The backend's name in messages ("SQLite did not answer within …").
    const NAME: &'static str;
    /// How this dialect writes parameters; the shared statements are
    /// rewritten to it once.
    const PLACEHOLDERS: Placeholders;
    /// Takes the next token id: one row, the id in column `value` (a
    /// sequences table in SQLite, a sequence in PostgreSQL).
    const NEXT_TOKEN_ID: &'static str;
    /// Moves a session's `last_seen_at` to param 1 unless it is later,
    /// where the digest is param 2 (SQLite's two-argument `MAX`,
    /// PostgreSQL's `GREATEST`).
    const TOUCH_SESSION: &'static str;
    /// The latest access expiry of live legacy tokens, in column `horizon`
    /// (`legacy` is an integer in SQLite, a boolean in PostgreSQL).
    const LEGACY_HORIZON: &'static str;
    /// Writes one chunk of uses into `token_usage`, skipping unknown ids and
    /// never moving a time back; its parameters are bound by
    /// [`Dialect::bind_last_used`].
    const RECORD_LAST_USED: &'static str;

    /// Opens the store: connects, applies the migrations, starts the check's
    /// connections.
    fn open(
        config: &Self::Config,
    ) -> impl Future<Output = Result<SqlStore<Self>, Self::OpenError>> + Send;

    /// The check's look-up (`TokenStore::token_by_access`): each backend
    /// answers it on connections of its own.
    fn token_by_access(
        store: &SqlStore<Self>,
        key: &SecretKey,
    ) -> impl Future<Output = StoreResult<Option<Arc<TokenRecord>>>> + Send;

    /// The cache's read on a miss (`TokenStore::token_for_check`): the token
    /// with id `id` (in the column's range), whatever its digest, on the
    /// check's own connections where the backend has them.
    fn token_for_check(
        store: &SqlStore<Self>,
        id: i64,
    ) -> impl Future<Output = StoreResult<Option<Arc<TokenRecord>>>> + Send;

    /// The rotation of a pair (`TokenStore::rotate`), atomic: one statement
    /// or a transaction, as the backend's module doc says.
    fn rotate(
        store: &SqlStore<Self>,
        rotation: &Rotation,
    ) -> impl Future<Output = StoreResult<RotateOutcome>> + Send;

    /// `uses` in chunks of at most [`LAST_USED_CHUNK`](crate::LAST_USED_CHUNK),
    /// each encoded for one [`Dialect::RECORD_LAST_USED`].
    fn last_used_chunks(uses: &[Use]) -> StoreResult<Vec<Self::LastUsed>>;

    /// Rows a statement wrote (each driver's result has it, no trait names it).
    fn rows_affected(result: &<Self::Database as Database>::QueryResult) -> u64;

    /// Subscribes to the store's change stream (`tessera_core::feed`): each
    /// backend has its own (PostgreSQL `LISTEN`, SQLite `data_version` and its change log).
    fn subscribe(
        store: &SqlStore<Self>,
    ) -> impl Future<Output = StoreResult<Box<dyn ChangeStream>>> + Send;

    /// Sends a heartbeat through the change stream.
    fn beat(store: &SqlStore<Self>, text: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Binds one chunk to [`Dialect::RECORD_LAST_USED`].
    fn bind_last_used<'q>(
        query: SqlQuery<'q, Self::Database>,
        chunk: &Self::LastUsed,
    ) -> SqlQuery<'q, Self::Database>;
}
