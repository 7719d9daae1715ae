//! `UserStore` for every SQL dialect.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use tessera_core::model::{NewUser, Timestamp, User, UserId};
use tessera_core::secret::password::PasswordHash;
use tessera_core::secret::Digest;
use tessera_core::store::{StoreResult, UserStore};
use tessera_core::stored::{id_in_range, StoredUser};

use crate::rows::{column, user_row};
use crate::{Dialect, SqlStore};

#[async_trait]
impl<D, DB> UserStore for SqlStore<D>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let cols = StoredUser::from_user(&new.into_user(UserId(0)))?;
        let row = self
            .bounded(
                sqlx::query(Self::sql().insert_user)
                    .bind(cols.name.as_str())
                    .bind(cols.role.as_str())
                    .bind(cols.kind.as_str())
                    .bind(cols.owner_id)
                    .bind(cols.password_hash.as_deref())
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
        let row = self.optional_row(Self::sql().user_by_id, uid).await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let row = self.optional_row(Self::sql().user_by_name, name).await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .bounded(sqlx::query(Self::sql().list_users).fetch_all(&self.pool))
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn has_users(&self) -> StoreResult<bool> {
        let row = self
            .bounded(sqlx::query(Self::sql().has_users).fetch_one(&self.pool))
            .await?;
        column(&row, "any")
    }

    async fn delete_user(&self, uid: UserId, now: Timestamp) -> StoreResult<bool> {
        let Some(uid) = id_in_range(uid.0) else {
            return Ok(false);
        };
        let sql = Self::sql();
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let deleted = sqlx::query(sql.delete_user)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            if D::rows_affected(&deleted) == 0 {
                return Ok(false);
            }
            sqlx::query(sql.delete_sessions_of_user)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql.revoke_tokens_of_user)
                .bind(now)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn set_password(
        &self,
        uid: UserId,
        hash: &PasswordHash,
        keep: Option<&Digest>,
    ) -> StoreResult<bool> {
        let Some(uid) = id_in_range(uid.0) else {
            return Ok(false);
        };
        let sql = Self::sql();
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let set = sqlx::query(sql.set_password)
                .bind(hash.as_phc())
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            if D::rows_affected(&set) == 0 {
                return Ok(false);
            }
            match keep {
                Some(d) => {
                    sqlx::query(sql.delete_other_sessions_of_user)
                        .bind(uid)
                        .bind(&d.as_bytes()[..])
                        .execute(&mut *tx)
                        .await?
                }
                None => {
                    sqlx::query(sql.delete_sessions_of_user)
                        .bind(uid)
                        .execute(&mut *tx)
                        .await?
                }
            };
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}
