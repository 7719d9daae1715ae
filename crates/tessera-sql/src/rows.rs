//! Rows to records, for any sqlx driver: each table's row is read here once,
//! by column name, into core's flat form ([`tessera_core::stored`]), where
//! the encoding of scopes, address lists and digests lives for every backend.

use sqlx::{ColumnIndex, Decode, Row, Type};
use tessera_core::model::{
    EventId, LoggedEvent, SessionRecord, Timestamp, TokenId, TokenRecord, User, UserId,
};
use tessera_core::notify::{Claimed, Delivery, DeliveryId};
use tessera_core::store::StoreResult;
use tessera_core::stored::{digest_from_slice, id_from_i64, StoredEvent, StoredToken, StoredUser};
use tessera_core::StoreError;

/// A column that would not decode: the row is corrupt.
fn corrupt(e: sqlx::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A row of the token columns (`token_columns!`).
pub fn token_row<R>(row: &R) -> StoreResult<TokenRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let digest = |v: Vec<u8>| digest_from_slice(&v).map(|d| *d.as_bytes());
    let refresh: Option<Vec<u8>> = row.try_get("refresh_digest").map_err(corrupt)?;
    StoredToken {
        id: row.try_get("id").map_err(corrupt)?,
        user_id: row.try_get("user_id").map_err(corrupt)?,
        user_name: row.try_get("user_name").map_err(corrupt)?,
        name: row.try_get("name").map_err(corrupt)?,
        token_type: row.try_get("token_type").map_err(corrupt)?,
        api_endpoints: row.try_get("api_endpoints").map_err(corrupt)?,
        allowed_ips: row.try_get("allowed_ips").map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(corrupt)?,
        access_expires_at: row.try_get("access_expires_at").map_err(corrupt)?,
        renewable_until: row.try_get("renewable_until").map_err(corrupt)?,
        ends_at: row.try_get("ends_at").map_err(corrupt)?,
        access_digest: digest(row.try_get("access_digest").map_err(corrupt)?)?,
        refresh_digest: refresh.map(digest).transpose()?,
        legacy: row.try_get("legacy").map_err(corrupt)?,
        revoked_at: row.try_get("revoked_at").map_err(corrupt)?,
        last_used_at: row.try_get("last_used_at").map_err(corrupt)?,
        last_used_ip: row.try_get("last_used_ip").map_err(corrupt)?,
        rate_requests: row.try_get("rate_requests").map_err(corrupt)?,
        rate_per: row.try_get("rate_per").map_err(corrupt)?,
    }
    .into_record()
}

/// A row of `users`.
pub(crate) fn user_row<R>(row: &R) -> StoreResult<User>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    StoredUser {
        id: row.try_get("id").map_err(corrupt)?,
        name: row.try_get("name").map_err(corrupt)?,
        role: row.try_get("role").map_err(corrupt)?,
        kind: row.try_get("kind").map_err(corrupt)?,
        owner_id: row.try_get("owner_id").map_err(corrupt)?,
        password_hash: row.try_get("password_hash").map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(corrupt)?,
    }
    .into_user()
}

/// A row of `sessions`.
pub(crate) fn session_row<R>(row: &R) -> StoreResult<SessionRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let digest: Vec<u8> = row.try_get("digest").map_err(corrupt)?;
    Ok(SessionRecord {
        digest: digest_from_slice(&digest)?,
        user_id: UserId(id_from_i64(row.try_get("user_id").map_err(corrupt)?)?),
        created_at: row.try_get("created_at").map_err(corrupt)?,
        last_seen_at: row.try_get("last_seen_at").map_err(corrupt)?,
    })
}

/// An event's columns, as `events` and `webhook_outbox` both hold them.
fn stored_event<R>(row: &R) -> StoreResult<StoredEvent>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredEvent {
        at: row.try_get("at").map_err(corrupt)?,
        kind: row.try_get("kind").map_err(corrupt)?,
        token_id: row.try_get("token_id").map_err(corrupt)?,
        user_id: row.try_get("user_id").map_err(corrupt)?,
        actor_user_id: row.try_get("actor_user_id").map_err(corrupt)?,
        actor_token_id: row.try_get("actor_token_id").map_err(corrupt)?,
        address: row.try_get("address").map_err(corrupt)?,
        detail: row.try_get("detail").map_err(corrupt)?,
    })
}

/// A row of `events` (the columns of `event_select!`).
pub(crate) fn event_row<R>(row: &R) -> StoreResult<LoggedEvent>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let event = stored_event(row)?.into_event()?;
    Ok(LoggedEvent {
        id: EventId(id_from_i64(row.try_get("id").map_err(corrupt)?)?),
        event,
    })
}

/// A claimed row of `webhook_outbox` (the columns of `outbox_columns!`).
pub(crate) fn delivery_row<R>(row: &R) -> StoreResult<Claimed>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let event = stored_event(row)?.into_event()?;
    let attempts: i64 = row.try_get("attempts").map_err(corrupt)?;
    Ok(Claimed {
        id: DeliveryId(id_from_i64(row.try_get("id").map_err(corrupt)?)?),
        delivery: Delivery {
            receiver: row.try_get("receiver").map_err(corrupt)?,
            key: row.try_get("dedupe").map_err(corrupt)?,
            event,
            deadline: row.try_get("deadline").map_err(corrupt)?,
            keep_until: row.try_get("keep_until").map_err(corrupt)?,
        },
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt("a delivery's attempts".into()))?,
    })
}

/// A row of `spent_refresh` (`token_id, rotated_at`).
pub(crate) fn spent_row<R>(row: &R) -> StoreResult<(TokenId, Timestamp)>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((
        TokenId(id_from_i64(row.try_get("token_id").map_err(corrupt)?)?),
        row.try_get("rotated_at").map_err(corrupt)?,
    ))
}

/// One column of a one-row answer (`any`, `horizon`, `value`, `rotated_at`).
pub fn column<R, T>(row: &R, name: &'static str) -> StoreResult<T>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(corrupt)
}
