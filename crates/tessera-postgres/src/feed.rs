//! The change stream (`tessera_core::feed`) on PostgreSQL: `NOTIFY` from
//! triggers, `LISTEN` on a connection of its own.
//!
//! * Carried by: the triggers of migration `0003_change_stream.sql`. Every
//!   statement that inserts, updates or deletes token rows sends one
//!   `pg_notify` naming their ids (`t:1,2,3`, or `all` past 300), on the
//!   schema's channel ([`Feed::channel`]: `tessera_changes_<schema>`, or
//!   `tessera_changes_md5_<hex>` for a schema name too long for a channel).
//! * Atomic with the write: a notification sent in a transaction is
//!   delivered when it commits, never if it rolls back, and listeners
//!   receive notifications in commit order. Because the trigger sends it, no
//!   write path can forget to, whatever client made the write.
//! * Heartbeats ([`beat`]) are `pg_notify` on the same channel through the
//!   pool: committed after every change committed before them, so they
//!   arrive after those.
//! * A subscription is a [`PgListener`] on a pool of one connection of its
//!   own (the store's connect options and search path). When that
//!   connection is lost the stream fails and stays failed: the listener
//!   would reconnect by itself, but notifications sent meanwhile would be
//!   lost unseen, so the stream never asks it to; the core's follower then
//!   empties its cache and subscribes again.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tessera_core::feed::{Change, ChangeStream};
use tessera_core::store::StoreResult;
use tessera_core::StoreError;

use crate::PostgresStore;

/// Reads the schema's channel (the view of migration 0003), in column `channel`.
pub(crate) const CHANNEL_SQL: &str = "SELECT channel FROM tessera_changes";

/// What a subscription needs: where to connect, and the channel.
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    /// The store's connect options (search path and application name included).
    options: PgConnectOptions,
    /// The schema's channel.
    channel: String,
    /// How long a subscription may take to connect and `LISTEN`.
    connect_timeout: Duration,
}

impl Feed {
    /// A feed on `channel`, subscribing with `options`.
    pub(crate) fn new(
        options: PgConnectOptions,
        channel: String,
        connect_timeout: Duration,
    ) -> Self {
        Feed {
            options,
            channel,
            connect_timeout,
        }
    }

    /// The channel the store's triggers notify.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Connects a listener of its own and `LISTEN`s; the stream delivers
    /// everything committed after this returns.
    pub(crate) async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        let listen = async {
            // A pool of one, only because `PgListener` wants one.
            let pool: PgPool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(self.connect_timeout)
                .max_lifetime(None)
                .idle_timeout(None)
                .test_before_acquire(false)
                .connect_lazy_with(self.options.clone());
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection is reported, not replaced (see the module doc).
            listener.eager_reconnect(false);
            listener.ignore_pool_close_event(true);
            listener.listen(&self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = match tokio::time::timeout(self.connect_timeout, listen).await {
            Ok(Ok(listener)) => listener,
            Ok(Err(e)) => return Err(StoreError::Unavailable(e.to_string())),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not accept the change stream's LISTEN within {:?}",
                    self.connect_timeout
                )))
            }
        };
        Ok(Box::new(PgStream {
            listener: Some(listener),
        }))
    }
}

/// Sends `text` as a heartbeat on the store's channel, through the pool,
/// within the command timeout.
pub(crate) async fn beat(store: &PostgresStore, text: &str) -> StoreResult<()> {
    let payload = Change::Beat(text.to_owned()).encode();
    store
        .bounded(
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(store.dialect().feed.channel())
                .bind(payload)
                .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// One subscription.
struct PgStream {
    /// `None` once cut: every later call fails too.
    listener: Option<PgListener>,
}

#[async_trait]
impl ChangeStream for PgStream {
    async fn next(&mut self) -> StoreResult<Change> {
        let Some(listener) = &mut self.listener else {
            return Err(StoreError::Unavailable("the change stream was cut".into()));
        };
        // `try_recv`, never `recv`: `recv` reconnects by itself.
        let why = match listener.try_recv().await {
            Ok(Some(n)) => return Ok(Change::parse(n.payload())),
            Ok(None) => "the change stream's connection was lost".to_owned(),
            Err(e) => format!("the change stream failed: {e}"),
        };
        self.listener = None;
        Err(StoreError::Unavailable(why))
    }
}
