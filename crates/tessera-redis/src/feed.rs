//! The change stream's subscriptions (`tessera_core::feed::ChangeFeed`).
//!
//! The messages are published by the write scripts themselves (see
//! `scripts`), on the channel `P` + `changes`; heartbeats by a script on the
//! store's own connection. A subscription is a connection of its own, made
//! from the store's URL with its connect timeout, named with `CLIENT SETNAME`
//! ([`Feed::client_name`]) so that operators can find it, and never
//! re-established by itself: when it ends the stream fails, and the core's
//! follower empties its cache and subscribes again.
//!
//! Why RESP3 and not redis-rs's `aio::PubSub`: in the redis crate in use
//! (1.8) `PubSub` sends nothing but (un)subscriptions and `PING`, so the
//! connection could not be named; and in RESP2 a subscribed connection
//! refuses `CLIENT SETNAME`. A RESP3 connection (Redis 6 or later) takes
//! both, and hands the messages to a push channel. No redis feature is
//! added for it.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tessera_core::feed::{Change, ChangeStream};
use tessera_core::store::StoreResult;
use tessera_core::StoreError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::{bounded, Keys, RedisConfig, RedisStoreError};

/// How the store subscribes to its change stream.
pub(crate) struct Feed {
    /// The store's client, speaking RESP3.
    client: redis::Client,
    /// The channel (see `Keys::changes`).
    channel: String,
    /// The subscriptions' client name.
    client_name: String,
    /// Bound on making the connection.
    connect_timeout: Duration,
    /// Bound on each round trip of the subscription's set-up.
    command_timeout: Duration,
}

impl Feed {
    /// The feed of the store `client` connects to, under `keys`' prefix.
    pub(crate) fn new(
        client: &redis::Client,
        keys: &Keys,
        config: &RedisConfig,
    ) -> Result<Self, RedisStoreError> {
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))
            .map_err(|e| RedisStoreError::Url(format!("{:?}", e.kind())))?;
        Ok(Feed {
            client,
            channel: keys.changes(),
            client_name: client_name(&keys.prefix),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
        })
    }

    /// See [`crate::RedisStore::feed_client_name`].
    pub(crate) fn client_name(&self) -> &str {
        &self.client_name
    }

    /// Connects, names the connection and subscribes; returns once the
    /// server has confirmed the subscription.
    pub(crate) async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        let (sender, receiver) = unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_push_sender(sender);
        let mut conn = bounded(
            self.connect_timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        let mut name = redis::cmd("CLIENT");
        name.arg("SETNAME").arg(&self.client_name);
        bounded(self.command_timeout, name.query_async::<()>(&mut conn)).await?;
        bounded(self.command_timeout, conn.subscribe(&self.channel)).await?;
        Ok(Box::new(RedisStream {
            _conn: conn,
            receiver,
            channel: self.channel.clone().into_bytes(),
        }))
    }
}

/// The client name of the subscriptions under `prefix`: `tessera-feed:` and
/// the prefix, any byte a client name may not hold (space, control
/// characters, non-ASCII) and `%` written as `%XX`.
fn client_name(prefix: &str) -> String {
    let mut name = String::from("tessera-feed:");
    for b in prefix.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'%' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name
}

/// One subscription: its connection, and the messages the connection hands
/// over.
struct RedisStream {
    /// Kept so that the connection lives as long as the stream (nothing is
    /// sent on it after the subscription).
    _conn: MultiplexedConnection,
    /// Every push the connection received; closed when it ends.
    receiver: UnboundedReceiver<PushInfo>,
    /// The channel subscribed to.
    channel: Vec<u8>,
}

/// The error of a stream that was cut.
fn cut(why: &str) -> StoreError {
    StoreError::Unavailable(format!("the change stream was cut: {why}"))
}

#[async_trait]
impl ChangeStream for RedisStream {
    async fn next(&mut self) -> StoreResult<Change> {
        loop {
            let Some(push) = self.receiver.recv().await else {
                return Err(cut("its connection ended"));
            };
            match push.kind {
                PushKind::Message => {
                    if let Some(change) = self.read(push.data) {
                        return Ok(change);
                    }
                }
                PushKind::Disconnection => return Err(cut("its connection was lost")),
                PushKind::Unsubscribe => return Err(cut("the server unsubscribed it")),
                // Confirmations of the subscription, and nothing it asked for.
                _ => {}
            }
        }
    }
}

impl RedisStream {
    /// A message's change, if it came on this stream's channel. A payload
    /// that is not text reads as [`Change::All`] (`Change::parse`).
    fn read(&self, data: Vec<Value>) -> Option<Change> {
        let mut data = data.into_iter();
        match (data.next(), data.next()) {
            (Some(Value::BulkString(channel)), Some(Value::BulkString(payload)))
                if channel == self.channel =>
            {
                Some(Change::parse(&String::from_utf8_lossy(&payload)))
            }
            (Some(Value::BulkString(channel)), _) if channel != self.channel => None,
            // A message on our channel in a shape we cannot read: fail closed.
            _ => Some(Change::All),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_hold_only_what_redis_accepts() {
        assert_eq!(client_name("tessera:"), "tessera-feed:tessera:");
        assert_eq!(
            client_name("a b%\n\u{e9}"),
            "tessera-feed:a%20b%25%0A%C3%A9"
        );
    }
}
