//! `SessionStore` for every SQL dialect.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use tessera_core::model::{SessionRecord, Timestamp};
use tessera_core::secret::Digest;
use tessera_core::store::{SessionStore, StoreResult};
use tessera_core::stored::id_to_i64;

use crate::rows::session_row;
use crate::{Dialect, SqlStore};

#[async_trait]
impl<D, DB> SessionStore for SqlStore<D>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
{
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.bounded(
            sqlx::query(Self::sql().insert_session)
                .bind(s.digest.as_bytes().as_slice())
                .bind(id_to_i64(s.user_id.0)?)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<SessionRecord>> {
        let row = self
            .optional_row(Self::sql().session, digest.as_bytes().as_slice())
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn touch_session(&self, digest: &Digest, now: Timestamp) -> StoreResult<()> {
        self.bounded(
            sqlx::query(D::TOUCH_SESSION)
                .bind(now)
                .bind(digest.as_bytes().as_slice())
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn delete_session(&self, digest: &Digest) -> StoreResult<bool> {
        let r = self
            .bounded(
                sqlx::query(Self::sql().delete_session)
                    .bind(digest.as_bytes().as_slice())
                    .execute(&self.pool),
            )
            .await?;
        Ok(D::rows_affected(&r) > 0)
    }
}
