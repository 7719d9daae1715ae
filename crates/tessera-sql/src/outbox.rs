//! `Outbox` for every SQL dialect: one table, `webhook_outbox`, whose
//! `due_at` is both the next attempt's time and, while a node holds a
//! delivery, its lease's end.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use tessera_core::model::Timestamp;
use tessera_core::notify::{Backlog, Claimed, Delivery, Settle};
use tessera_core::store::{Outbox, StoreResult};
use tessera_core::stored::{id_in_range, StoredEvent};

use crate::rows::{column, delivery_row};
use crate::{Dialect, SqlStore};

/// A claim's nonce as a column value (its bits, whatever its sign).
fn nonce(claim: u64) -> i64 {
    claim as i64
}

#[async_trait]
impl<D, DB> Outbox for SqlStore<D>
where
    D: Dialect<Database = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
{
    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<u64> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let rows = deliveries
            .iter()
            .map(|d| Ok((d, StoredEvent::from_event(&d.event)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let sql = Self::sql();
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            let mut added = 0;
            for (d, e) in &rows {
                let done = sqlx::query(sql.enqueue)
                    .bind(d.receiver.as_str())
                    .bind(d.key.as_str())
                    .bind(e.at)
                    .bind(e.kind.as_str())
                    .bind(e.token_id)
                    .bind(e.user_id)
                    .bind(e.actor_user_id)
                    .bind(e.actor_token_id)
                    .bind(e.address.as_str())
                    .bind(e.detail.as_str())
                    .bind(d.deadline)
                    .bind(d.keep_until)
                    .bind(e.at)
                    .execute(&mut *tx)
                    .await?;
                added += D::rows_affected(&done);
            }
            tx.commit().await?;
            Ok(added)
        })
        .await
    }

    async fn claim(
        &self,
        receivers: &[String],
        now: Timestamp,
        lease_until: Timestamp,
        claim: u64,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        let sql = Self::sql();
        let mut out = Vec::new();
        for r in receivers {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let rows = self
                .bounded(
                    sqlx::query(sql.claim)
                        .bind(lease_until)
                        .bind(nonce(claim))
                        .bind(r.as_str())
                        .bind(now)
                        .bind(i64::try_from(left).unwrap_or(i64::MAX))
                        .bind(now)
                        .fetch_all(&self.pool),
                )
                .await?;
            let mut got = rows
                .iter()
                .map(delivery_row)
                .collect::<StoreResult<Vec<_>>>()?;
            // RETURNING keeps no order.
            got.sort_by_key(|c| c.id);
            out.extend(got);
        }
        Ok(out)
    }

    async fn settle(&self, delivery: &Claimed, claim: u64, outcome: &Settle) -> StoreResult<bool> {
        let Some(id) = id_in_range(delivery.id.0) else {
            return Ok(false);
        };
        let sql = Self::sql();
        let q = match outcome {
            Settle::Sent | Settle::GiveUp => sqlx::query(sql.settle_done).bind(id),
            Settle::Retry { at } => sqlx::query(sql.settle_retry).bind(*at).bind(id),
        };
        let done = self
            .bounded(q.bind(nonce(claim)).execute(&self.pool))
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    async fn backlog(&self) -> StoreResult<Vec<Backlog>> {
        let rows = self
            .bounded(sqlx::query(Self::sql().backlog).fetch_all(&self.pool))
            .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = column(row, "n")?;
                Ok(Backlog {
                    receiver: column(row, "receiver")?,
                    pending: u64::try_from(n).unwrap_or(0),
                    oldest: column(row, "oldest")?,
                })
            })
            .collect()
    }

    async fn sweep_outbox(&self, before: Timestamp) -> StoreResult<u64> {
        let done = self
            .bounded(
                sqlx::query(Self::sql().sweep_outbox)
                    .bind(before)
                    .bind(before)
                    .execute(&self.pool),
            )
            .await?;
        Ok(D::rows_affected(&done))
    }
}
