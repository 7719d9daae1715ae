//! `TokenStore` and `Store` for every SQL dialect; the rotation, the check's
//! look-up and the encoding of last-used times are the dialect's.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use tessera_core::feed::{ChangeFeed, ChangeStream};
use tessera_core::model::{
    Event, EventQuery, LoggedEvent, NewAddress, RefreshLookup, RotateOutcome, Rotation, Timestamp,
    TokenChanges, TokenId, TokenRecord, Use, UserId,
};
use tessera_core::secret::SecretKey;
use tessera_core::store::{Store, StoreResult, TokenStore};
use tessera_core::stored::{id_from_i64, id_in_range, join_list, StoredEvent, StoredToken};

use crate::rows::{column, event_row, spent_row, token_row};
use crate::{Dialect, SqlQuery, SqlStore};

/// Binds every column of `t` to the shared `INSERT INTO tokens` (its 18
/// parameters, in `StoredToken` order) and runs it on `executor`.
async fn insert_token_row<'e, D, DB, E>(executor: E, t: &StoredToken) -> Result<(), sqlx::Error>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'e, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
{
    sqlx::query(SqlStore::<D>::sql().insert_token)
        .bind(t.id)
        .bind(t.user_id)
        .bind(t.user_name.as_str())
        .bind(t.name.as_str())
        .bind(t.token_type)
        .bind(t.api_endpoints.as_str())
        .bind(t.allowed_ips.as_str())
        .bind(t.created_at)
        .bind(t.access_expires_at)
        .bind(t.renewable_until)
        .bind(t.ends_at)
        .bind(&t.access_digest[..])
        .bind(t.refresh_digest.as_ref().map(|d| &d[..]))
        .bind(t.legacy)
        .bind(t.revoked_at)
        .bind(t.last_used_at)
        .bind(t.rate_requests)
        .bind(t.rate_per)
        .execute(executor)
        .await
        .map(|_| ())
}

/// Binds the rotation's first six parameters, which both dialects' rotating
/// `UPDATE tokens … WHERE id = ? AND refresh_digest = ? …` take in this
/// order: the new access and refresh digests, the access expiry, the end,
/// the token id (`token`) and the presented refresh digest.
pub fn bind_rotation<'q, DB>(query: SqlQuery<'q, DB>, r: &Rotation, token: i64) -> SqlQuery<'q, DB>
where
    DB: Database,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> &'a [u8]: Encode<'a, DB> + Type<DB>,
{
    query
        .bind(r.new_access.as_bytes().as_slice())
        .bind(r.new_refresh.as_bytes().as_slice())
        .bind(r.access_expires_at)
        .bind(r.ends_at)
        .bind(token)
        .bind(r.presented_refresh.as_bytes().as_slice())
}

#[async_trait]
impl<D, DB> TokenStore for SqlStore<D>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
{
    async fn next_token_id(&self) -> StoreResult<TokenId> {
        let row = self
            .bounded(sqlx::query(D::NEXT_TOKEN_ID).fetch_one(&self.pool))
            .await?;
        Ok(TokenId(id_from_i64(column(&row, "value")?)?))
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let cols = StoredToken::from_record(token)?;
        self.bounded(insert_token_row::<D, _, _>(&self.pool, &cols))
            .await
    }

    async fn token(&self, tid: TokenId) -> StoreResult<Option<TokenRecord>> {
        let Some(tid) = id_in_range(tid.0) else {
            return Ok(None);
        };
        let row = self.optional_row(Self::sql().token, tid).await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn token_by_access(&self, key: &SecretKey) -> StoreResult<Option<Arc<TokenRecord>>> {
        D::token_by_access(self, key).await
    }

    async fn token_for_check(&self, tid: TokenId) -> StoreResult<Option<Arc<TokenRecord>>> {
        let Some(tid) = id_in_range(tid.0) else {
            return Ok(None);
        };
        D::token_for_check(self, tid).await
    }

    async fn highest_token_id(&self) -> StoreResult<Option<TokenId>> {
        let row = self
            .bounded(sqlx::query(Self::sql().highest_token_id).fetch_one(&self.pool))
            .await?;
        let highest: Option<i64> = column(&row, "value")?;
        Ok(highest.map(id_from_i64).transpose()?.map(TokenId))
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        let Some(user) = id_in_range(user.0) else {
            return Ok(Vec::new());
        };
        let rows = self
            .bounded(
                sqlx::query(Self::sql().tokens_of_user)
                    .bind(user)
                    .fetch_all(&self.pool),
            )
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
                sqlx::query(Self::sql().update_token)
                    .bind(c.name.as_str())
                    .bind(i64::from(t))
                    .bind(join_list(&c.scope.endpoint_strings()))
                    .bind(join_list(c.allowed_ips.entries()))
                    .bind(c.access_expires_at)
                    .bind(c.renewable_until)
                    .bind(c.ends_at)
                    .bind(c.rate_limit.map(|r| i64::from(r.requests)))
                    .bind(c.rate_limit.map(|r| i64::from(r.per_seconds)))
                    .bind(tid)
                    .execute(&self.pool),
            )
            .await?;
        Ok(D::rows_affected(&r) > 0)
    }

    async fn refresh_lookup(&self, key: &SecretKey) -> StoreResult<RefreshLookup> {
        let digest = key.digest.as_bytes().as_slice();
        let current = self
            .optional_row(Self::sql().token_by_refresh, digest)
            .await?;
        if let Some(row) = current {
            return Ok(RefreshLookup::Current(Box::new(token_row(&row)?)));
        }
        let spent = self.optional_row(Self::sql().spent_refresh, digest).await?;
        match spent {
            None => Ok(RefreshLookup::Unknown),
            Some(row) => {
                let (id, rotated_at) = spent_row(&row)?;
                Ok(RefreshLookup::Spent { id, rotated_at })
            }
        }
    }

    async fn rotate(&self, r: &Rotation) -> StoreResult<RotateOutcome> {
        D::rotate(self, r).await
    }

    async fn revoke_token(&self, tid: TokenId, now: Timestamp) -> StoreResult<bool> {
        let Some(tid) = id_in_range(tid.0) else {
            return Ok(false);
        };
        let r = self
            .bounded(
                sqlx::query(Self::sql().revoke_token)
                    .bind(now)
                    .bind(tid)
                    .execute(&self.pool),
            )
            .await?;
        Ok(D::rows_affected(&r) > 0)
    }

    async fn import_legacy(&self, tokens: &[TokenRecord]) -> StoreResult<()> {
        let rows = tokens
            .iter()
            .map(StoredToken::from_record)
            .collect::<StoreResult<Vec<_>>>()?;
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            for t in &rows {
                insert_token_row::<D, _, _>(&mut *tx, t).await?;
            }
            tx.commit().await
        })
        .await
    }

    async fn legacy_horizon(&self) -> StoreResult<Option<Timestamp>> {
        let row = self
            .bounded(sqlx::query(D::LEGACY_HORIZON).fetch_one(&self.pool))
            .await?;
        column(&row, "horizon")
    }

    async fn record_last_used(&self, uses: &[Use]) -> StoreResult<()> {
        // Into `token_usage` (see its migration), one statement per chunk of
        // uses (encoded as the dialect binds them), in one transaction;
        // unknown ids are skipped, and a time never moves back.
        let chunks = D::last_used_chunks(uses)?;
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            for chunk in &chunks {
                D::bind_last_used(sqlx::query(D::RECORD_LAST_USED), chunk)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
        .await
    }

    async fn count_use(
        &self,
        id: TokenId,
        window: i64,
        until: Timestamp,
        n: u32,
    ) -> StoreResult<u64> {
        let Some(id) = id_in_range(id.0) else {
            return Ok(u64::MAX);
        };
        let row = self
            .bounded(
                sqlx::query(Self::sql().count_use)
                    .bind(id)
                    .bind(window)
                    .bind(i64::from(n))
                    .bind(until)
                    .fetch_one(&self.pool),
            )
            .await?;
        let n: i64 = column(&row, "count")?;
        id_from_i64(n)
    }

    async fn note_addresses(&self, uses: &[Use]) -> StoreResult<Vec<NewAddress>> {
        // One transaction: for each pair, whether the token had any address,
        // then an insert that is skipped for a pair already known (or a
        // token gone). New pairs are rare: a statement each is cheap.
        let sql = Self::sql();
        let rows: Vec<(i64, String, i64, Use)> = uses
            .iter()
            .filter_map(|u| Some((id_in_range(u.id.0)?, u.address.to_string(), u.at, *u)))
            .collect();
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let mut new = Vec::new();
            for (id, address, at, used) in &rows {
                let before = sqlx::query(sql.addresses_of_token)
                    .bind(*id)
                    .fetch_one(&mut *tx)
                    .await?;
                let had: i64 = sqlx::Row::try_get(&before, "n")?;
                let inserted = sqlx::query(sql.insert_token_address)
                    .bind(*id)
                    .bind(address.as_str())
                    .bind(*at)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                if D::rows_affected(&inserted) == 1 {
                    new.push(NewAddress {
                        used: *used,
                        first: had == 0,
                    });
                }
            }
            tx.commit().await?;
            Ok(new)
        })
        .await
    }

    async fn record_event(&self, event: &Event) -> StoreResult<()> {
        let e = StoredEvent::from_event(event)?;
        self.bounded(
            sqlx::query(Self::sql().insert_event)
                .bind(e.at)
                .bind(e.kind.as_str())
                .bind(e.token_id)
                .bind(e.user_id)
                .bind(e.actor_user_id)
                .bind(e.actor_token_id)
                .bind(e.address.as_str())
                .bind(e.detail.as_str())
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<LoggedEvent>> {
        let sql = Self::sql();
        // Ids and times past a column's range admit every row or none.
        let before = query
            .before
            .map_or(i64::MAX, |b| id_in_range(b.0).unwrap_or(i64::MAX));
        let since = query.since.unwrap_or(i64::MIN);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let (Some(user), Some(token)) = (
            query.user.map_or(Some(-1), |u| id_in_range(u.0)),
            query.token.map_or(Some(-1), |t| id_in_range(t.0)),
        ) else {
            return Ok(Vec::new());
        };
        let q = match (query.user.is_some(), query.token.is_some()) {
            (false, false) => sqlx::query(sql.events_all),
            (true, false) => sqlx::query(sql.events_of_user).bind(user).bind(user),
            (false, true) => sqlx::query(sql.events_of_token).bind(token),
            (true, true) => sqlx::query(sql.events_of_user_token)
                .bind(user)
                .bind(user)
                .bind(token),
        };
        let rows = self
            .bounded(q.bind(since).bind(before).bind(limit).fetch_all(&self.pool))
            .await?;
        rows.iter().map(event_row).collect()
    }

    async fn sweep_events(&self, before: Timestamp) -> StoreResult<u64> {
        let done = self
            .bounded(
                sqlx::query(Self::sql().sweep_events)
                    .bind(before)
                    .execute(&self.pool),
            )
            .await?;
        Ok(D::rows_affected(&done))
    }

    async fn sweep(&self, before: Timestamp, sessions_before: Timestamp) -> StoreResult<u64> {
        let sql = Self::sql();
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let tokens = sqlx::query(sql.sweep_tokens)
                .bind(before)
                .bind(before)
                .execute(&mut *tx)
                .await?;
            let sessions = sqlx::query(sql.sweep_sessions)
                .bind(sessions_before)
                .execute(&mut *tx)
                .await?;
            // Rate windows are short-lived: they go with the short cut-off.
            sqlx::query(sql.sweep_rate)
                .bind(sessions_before)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(D::rows_affected(&tokens) + D::rows_affected(&sessions))
        })
        .await
    }
}

#[async_trait]
impl<D: Dialect> ChangeFeed for SqlStore<D> {
    async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        D::subscribe(self).await
    }

    async fn beat(&self, text: &str) -> StoreResult<()> {
        D::beat(self, text).await
    }
}

#[async_trait]
impl<D, DB> Store for SqlStore<D>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    Self: TokenStore
        + tessera_core::store::UserStore
        + tessera_core::store::SessionStore
        + tessera_core::store::Outbox
        + ChangeFeed,
{
    async fn ping(&self) -> StoreResult<()> {
        self.bounded(sqlx::query(Self::sql().ping).execute(&self.pool))
            .await?;
        Ok(())
    }
}
