//! Tessera's Redis token store: [`RedisStore`] implements the core's storage
//! traits ([`UserStore`](tessera_core::store::UserStore),
//! [`SessionStore`](tessera_core::store::SessionStore),
//! [`TokenStore`](tessera_core::store::TokenStore),
//! [`Store`](tessera_core::store::Store)) over one Redis server, with a key
//! layout ready for Redis Cluster (CONTRACT §8).
//!
//! The store decides nothing: it stores what the core hands it and applies
//! it atomically. Only digests of secrets (lower-case hex SHA-256) are ever
//! written; passwords only as their Argon2id PHC string.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix `P` (default `tessera:`; it
//! may not contain `{` or `}`, so the hash tag is always the one below).
//! `<id>` is a decimal token id, `<uid>` a user id, `<hex>` a digest.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P{t<id>}:rec` | hash | a token record (fields below) | `min(ends_at, revoked_at) + retention` |
//! | `P{t<id>}:spent` | hash | rotated-out refresh digest → `rotated_at` | with the record |
//! | `P{t<id>}:addrs` | set | the client addresses token `<id>` was allowed from | with the record, as of the last new address |
//! | `P{t<id>}:rate:<window>` | string | allowed checks of a rate-limited token in one window (`INCR`) | a window's length after the window's end |
//! | `P{t<id>}:ptr` | string | a legacy token's access digest (id → record) | with the legacy record |
//! | `P{l<hex>}:rec` | hash | a legacy token record, found by its access digest | as a token record |
//! | `P{s<hex>}:session` | hash | a session: `user`, `created`, `seen` | `last_seen_at + retention` |
//! | `P{users}:u:<uid>` | hash | a user: `id`, `name`, `role`, `kind`, `owner`?, `pw`?, `created` | never |
//! | `P{users}:name:<name>` | string | user name → id (uniqueness) | never |
//! | `P{users}:all` | sorted set | user ids (score = id), for listing | never |
//! | `P{users}:next` | string | last user id handed out (`INCR`) | never |
//! | `P{users}:indexed` | sorted set | ids of users that may own index entries (the sweep walks it) | never |
//! | `P{u<uid>}:tokens` | sorted set | the user's tokens: `t<id>` or `l<id>:<hex>`, score = id | never (pruned by the sweep) |
//! | `P{u<uid>}:sessions` | set | the user's session digests | never (pruned by the sweep) |
//! | `Ptoken-id` | string | last token id handed out (`INCR`) | never |
//! | `Plegacy-horizon` | sorted set | unrevoked legacy token id → access expiry | never (pruned) |
//! | `P{events}:next` | string | last event id handed out (`INCR`) | never |
//! | `P{events}:body` | hash | event id → the event (`codec::encode_event`) | never (swept) |
//! | `P{events}:ids` | sorted set | the audit trail: event ids, score = id | never (swept) |
//! | `P{events}:at` | sorted set | event ids, score = the event's time (the retention sweep) | never (swept) |
//! | `P{events}:u:<uid>` | sorted set | ids of the events that concern user `<uid>` or that they did | never (swept) |
//! | `P{events}:t:<id>` | sorted set | ids of the events that concern token `<id>` | never (swept) |
//! | `P{outbox}:next` | string | last webhook delivery id handed out (`INCR`) | never |
//! | `P{outbox}:d` | hash | delivery id → `<receiver>\n<key>\n<deadline>\n<keep until>\n<event>` | never (swept) |
//! | `P{outbox}:att`, `P{outbox}:claim` | hash | delivery id → attempts made; → nonce of the claim holding it | never (swept) |
//! | `P{outbox}:keys` | hash | `<receiver> <key>` → delivery id (one per pair) | never (swept) |
//! | `P{outbox}:rcv` | set | receivers that had deliveries | never |
//! | `P{outbox}:due:<r>` | sorted set | receiver `<r>`'s unsettled deliveries, score = next due (a claim: its lease's end) | never (settled) |
//! | `P{outbox}:pend:<r>` | sorted set | the same, score = the event's time (the backlog) | never (settled) |
//! | `P{outbox}:done` | sorted set | settled deliveries, score = keep until (the sweep) | never (swept) |
//! | `Pchanges` | pub/sub channel (not a key) | the change stream: `t:<id>,<id>…`, `all`, `b:<beat>` | — |
//!
//! Token record fields: `id`, `user`, `uname`, `name`, `type` (the wire
//! `tokenType`), `eps` (Custom endpoints as written), `ips` (allowed-IP
//! entries as written), `created`, `exp` (access expiry), `ren`? (renewable
//! until), `ends`, `ad` (access digest), `rd`? (refresh digest), `legacy`
//! (`0`/`1`), `rev`? (revoked at), `used`? (last used), `uip`? (the address of that use). `?` marks a field
//! that is absent when the value is `None`. Lists are length-prefixed
//! (`<bytes>:<entry>` repeated), so no entry can be split or merged.
//!
//! # One round trip for the check
//!
//! A Tessera access secret carries its token id, so `token_by_access` is one
//! `HMGET` of `P{t<id>}:rec`; the digest is compared here and again (in
//! constant time) by the core. A legacy secret has no id: its record lives
//! under a key derived from its digest, `P{l<hex>}:rec`, so its check is one
//! `HMGET` too. By-id operations on a legacy token (`token`, `revoke_token`,
//! …) first meet the small pointer `P{t<id>}:ptr` in the token's own slot
//! and follow it (a second round trip, legacy tokens only).
//!
//! # Atomic operations (Lua scripts)
//!
//! Each runs as one script on keys of **one hash slot**: `insert_token`
//! (`Conflict` if the id is taken, as a record or as a legacy pointer),
//! `refresh_lookup`, `rotate` (only if the presented refresh digest is the
//! current one and the token is not revoked; else `Spent(rotated_at)` if it is
//! in this token's spent hash, else `Unknown`), `revoke_token` (only if not
//! revoked; says whether it changed), `update_token` (only if present and not
//! revoked), `record_last_used` and `touch_session` (keep the later time),
//! `create_session`, `delete_session`, `create_user` (the name key is set
//! only if free; all user keys share the `{users}` tag) and the last step of
//! `delete_user`. Everything else is a single command or a read.
//!
//! Index entries (a user's token and session sets, the legacy horizon) live
//! in other slots, so they are written by separate commands, in an order
//! that keeps them safe: an index entry is added *before* its record (so a
//! listing or a user deletion never misses a record that exists) and removed
//! *after* it; every reader checks the record itself (owner, revocation), so
//! a stale entry is only skipped, and the sweep prunes it.
//!
//! # Multi-slot operations
//!
//! * `import_legacy` is one Lua script over every key of the batch (records,
//!   pointers, user indexes, horizon, id counter) on a single Redis; on a
//!   Redis Cluster, which refuses that (`CROSSSLOT`), it is staged with a
//!   commit key (`import`): all or nothing on both.
//! * `delete_user` is a sequence, safe to retry, because the user record is
//!   deleted *last*: (1) revoke every token in the user's index (a script per
//!   token, which also checks the owner), (2) delete every session in the
//!   user's session set (a script per session, checking the owner), then the
//!   set, (3) delete the user, their name key and listing entry (one script in
//!   the `{users}` slot). If it stops half-way, the user still exists and a
//!   retry redoes what is left; revocation and deletion are idempotent. A
//!   token inserted for the user *while* they are being deleted may survive
//!   (the core checks the owner exists just before creating one).
//! * `set_password` writes the hash first (one script in the `{users}`
//!   slot), then ends the user's other sessions as `delete_user` does; a
//!   call that stops half way leaves sessions a retry ends.
//! * The audit trail lives in one slot, `{events}`: `record_event` is one
//!   script (body, trail, times and the user and token indexes, all or
//!   nothing); a read walks the narrowest index a page of ids at a time and
//!   filters what it holds beyond the query; `sweep_events` reads the oldest
//!   ids by time and removes them from every index their events name.
//! * The webhook outbox lives in one slot, `{outbox}`: enqueueing, a
//!   claim (one receiver at a time), settling and the sweep are one script
//!   each, so a delivery is claimed by one node while its lease runs.
//! * `tokens_of_user`, `list_users` and `sweep` read across slots (allowed
//!   by CONTRACT §8); `legacy_horizon` reads one key.
//!
//! On a Cluster the per-token scripts run on the token's node, so a renewal
//! race between any number of Tessera nodes still has exactly one winner.
//!
//! # The change stream
//!
//! Every script that changes a token record (all of the above that write
//! one; `record_last_used` excepted, a last use deciding no check)
//! publishes the record's id on `Pchanges` with `PUBLISH`, from inside the
//! script: atomic with the write, so a node that reads the new record has
//! the message on its way, and a failed write publishes nothing. An import
//! publishes its ids in one message (`all` past
//! [`MAX_IDS_PER_MESSAGE`](tessera_core::feed::MAX_IDS_PER_MESSAGE)); a
//! user's deletion and the sweep one message per token. Heartbeats are
//! published by a script on the store's connection, so they arrive after
//! every change committed before them. A subscription is a RESP3 connection
//! of its own (Redis 6 or later), named [`RedisStore::feed_client_name`];
//! when it is cut its stream fails and the core subscribes again (the store
//! never reconnects it behind the core's back). Records that leave by key
//! expiry are not announced: they are dead by their own timestamps. Issue
//! 13 moves the publishing to sharded `SPUBLISH` on a Cluster (the channel
//! then per slot).
//!
//! # Expiry
//!
//! Dead records leave by themselves: a token's keys expire (`EXPIREAT`) at
//! `min(ends_at, revoked_at) + retention`, re-set on every change (rotation,
//! edit, revocation); a session's at `last_seen_at + retention`, re-set on
//! each touch. The times come from the records, that is from the core's
//! clock; so that a clock disagreement (or a test's manual clock) can never
//! make a live record vanish, a key never expires sooner than `retention`
//! after its last write by the Redis server's clock. [`TokenStore::sweep`]
//! still removes, on demand, what is dead by the cut-offs it is given, walking
//! the per-user indexes, and prunes index entries whose records already
//! expired. Key expiry is garbage collection only: whether a token or a
//! session is valid is always decided by the core from the record's times.
//!
//! # Failures
//!
//! Every call is bounded by [`RedisConfig::command_timeout`] per round trip
//! (and by the connection's response timeout); an unreachable server, a
//! dropped connection or a late answer is `StoreError::Unavailable`, never an
//! empty answer. The `ConnectionManager` reconnects by itself. A record that
//! does not parse (or a key of the wrong type) is `StoreError::Corrupt`.
//!
//! Requires Redis 5 or later (scripts read `TIME`, which needs the
//! effects replication that is the default since 5.0), and Redis 6 for the
//! change stream's RESP3 subscriptions; tested on 7.0.
//!
//! [`TokenStore::sweep`]: tessera_core::store::TokenStore::sweep
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod conn;
mod feed;
mod import;
mod scripts;
mod store;
mod target;

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{RedisError, Script, ScriptInvocation, Value};
use tessera_core::model::{TokenId, UserId};
use tessera_core::secret::Digest;
use tessera_core::StoreError;

use crate::conn::{Batch, Conn, Order};
use crate::feed::Feed;
use crate::scripts::Scripts;
use crate::target::Target;

/// Where and how to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Redis URL: one server, `redis://[[user]:password@]host:port[/db]`
    /// (`rediss://` for TLS if redis-rs is built with it), or a Redis
    /// Cluster by some of its nodes,
    /// `redis+cluster://[[user]:password@]host:port,host:port,…`
    /// (`rediss+cluster://`; no database number: a Cluster has only 0). The
    /// Cluster's other nodes are found from these. May hold a password, so
    /// it is never printed (the `Debug` form hides it).
    pub url: String,
    /// Prefix of every key, so that several Tessera deployments (or test
    /// runs) can share one Redis. Must not contain `{` or `}`, which would
    /// change the hash tags the layout relies on.
    pub prefix: String,
    /// Bound on establishing a connection (each attempt, and `connect` as a
    /// whole), so an unreachable server fails fast instead of hanging.
    pub connect_timeout: Duration,
    /// Bound on each round trip: past it a call fails with
    /// `StoreError::Unavailable` (the check then answers 503).
    pub command_timeout: Duration,
    /// How long dead records (ended, revoked, idle sessions) stay readable
    /// and listable before Redis expires them: the grace in which the check
    /// can still say "revoked" rather than "unknown", and audits can look.
    pub retention: Duration,
}

impl Default for RedisConfig {
    /// A local Redis, prefix `tessera:`, 2 s to connect, 1 s per command,
    /// dead records kept 7 days.
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "tessera:".into(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<hidden>")
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("retention", &self.retention)
            .finish()
    }
}

impl RedisConfig {
    /// The defaults with another URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }

    /// Refuses settings the store cannot work with.
    fn validate(&self) -> Result<(), RedisStoreError> {
        if self.prefix.contains(['{', '}']) {
            return Err(RedisStoreError::Config(
                "prefix: must not contain '{' or '}' (they would change the keys' hash tags)"
                    .into(),
            ));
        }
        if self.connect_timeout.is_zero() || self.command_timeout.is_zero() {
            return Err(RedisStoreError::Config(
                "connect_timeout and command_timeout must be more than zero".into(),
            ));
        }
        if self.retention < Duration::from_secs(1) {
            return Err(RedisStoreError::Config(
                "retention: must be at least one second".into(),
            ));
        }
        Ok(())
    }
}

/// Why a [`RedisStore`] could not be made. (Calls on a made store report the
/// core's `StoreError`.)
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    /// The URL does not parse. The URL itself is not repeated: it may hold a password.
    #[error("the Redis URL is not valid: {0}")]
    Url(String),
    /// A setting is out of range; names the setting.
    #[error("invalid Redis store configuration: {0}")]
    Config(String),
    /// The server could not be reached, or did not answer, within the timeout.
    #[error("Redis is unreachable: {0}")]
    Connect(String),
}

impl From<RedisStoreError> for StoreError {
    /// A store that cannot be made is, to a caller, an unavailable store.
    fn from(e: RedisStoreError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The Redis store. Cheap to share behind an `Arc`; one multiplexed
/// connection serves every concurrent call and is re-established by itself
/// after a failure.
pub struct RedisStore {
    /// The connection; cloned per call (a handle, not a new connection).
    conn: Conn,
    /// Key names under the configured prefix.
    keys: Keys,
    /// The compiled Lua scripts.
    scripts: Scripts,
    /// Bound on each round trip.
    command_timeout: Duration,
    /// `RedisConfig::retention` in whole seconds, as the scripts take it.
    retention_secs: u64,
    /// How subscriptions to the change stream are made.
    feed: Feed,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("retention_secs", &self.retention_secs)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (bounded by `connect_timeout`) and checks that the server
    /// answers a `PING` (bounded by `command_timeout`).
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisStoreError> {
        config.validate()?;
        let target = Target::parse(&config.url)?;
        let keys = Keys {
            prefix: config.prefix.clone(),
        };
        let feed = Feed::new(&target, &keys, &config)?;
        let within = |what: &str| {
            RedisStoreError::Connect(format!(
                "no {what} within {} ms",
                config.connect_timeout.as_millis()
            ))
        };
        let conn = match &target {
            Target::Single(client) => {
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(Some(config.command_timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let manager = tokio::time::timeout(
                    config.connect_timeout,
                    ConnectionManager::new_with_config(client.clone(), manager_config),
                )
                .await
                .map_err(|_| within("connection"))?
                .map_err(|e| RedisStoreError::Connect(e.to_string()))?;
                Conn::Single(manager)
            }
            Target::Cluster(seeds, _) => {
                let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.command_timeout)
                    // MOVED/ASK/TRYAGAIN are followed within the command timeout.
                    .retries(3)
                    .min_retry_wait(20)
                    .max_retry_wait(200)
                    .build()
                    .map_err(|e| RedisStoreError::Url(format!("{:?}", e.kind())))?;
                let cluster =
                    tokio::time::timeout(config.connect_timeout, client.get_async_connection())
                        .await
                        .map_err(|_| within("connection to the Cluster"))?
                        .map_err(|e| RedisStoreError::Connect(e.to_string()))?;
                Conn::Cluster(cluster)
            }
        };
        let scripts = Scripts::new(&keys.changes(), conn.is_cluster());
        let store = RedisStore {
            conn,
            scripts,
            keys,
            command_timeout: config.command_timeout,
            retention_secs: config.retention.as_secs(),
            feed,
        };
        store
            .ping_all()
            .await
            .map_err(|e| RedisStoreError::Connect(e.to_string()))?;
        Ok(store)
    }

    /// Whether the store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// The key prefix this store writes under.
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// The server-side id (`CLIENT ID`) of the store's current connection,
    /// for operators matching it in `CLIENT LIST` (and for fault tests that
    /// kill it). Changes when the connection is re-established.
    pub async fn client_id(&self) -> Result<i64, StoreError> {
        let v = self.cmd(redis::cmd("CLIENT").arg("ID")).await?;
        codec::int(&codec::required(v, "client id")?, "client id")
    }

    /// The client name (`CLIENT SETNAME`) of this store's change-stream
    /// subscriptions, the same for every store on this prefix: operators (and
    /// tests) find them in `CLIENT LIST` by it.
    pub fn feed_client_name(&self) -> &str {
        self.feed.client_name()
    }

    // ---- round trips, each bounded by the command timeout -----------------

    /// Runs `fut` within the command timeout, mapping errors to `StoreError`.
    async fn bounded<T>(
        &self,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        bounded(self.command_timeout, fut).await
    }

    /// One command.
    async fn cmd(&self, cmd: &redis::Cmd) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(cmd.query_async::<Value>(&mut conn)).await
    }

    /// One batch (one round trip on a single server; see `conn` for a
    /// Cluster); the replies of commands not ignored.
    async fn pipe(&self, batch: &Batch<'_>) -> Result<Vec<Value>, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(batch.query(&mut conn)).await
    }

    /// One script (loaded on `NOSCRIPT` and run again).
    async fn script(&self, inv: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(inv.invoke_async::<Value>(&mut conn)).await
    }

    /// A batch that first (re)loads `scripts`, whose replies are ignored,
    /// so that the `EVALSHA`s queued after them cannot meet `NOSCRIPT`.
    fn pipe_with<'s>(order: Order, scripts: &[&'s Script]) -> Batch<'s> {
        Batch::with_scripts(order, scripts)
    }

    /// `cmd` on every master of a Cluster (every reply must be a success),
    /// or on the one server.
    async fn on_every_master(&self, cmd: redis::Cmd) -> Result<Value, StoreError> {
        match &self.conn {
            Conn::Single(_) => self.cmd(&cmd).await,
            Conn::Cluster(c) => {
                let mut c = c.clone();
                let routing = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::AllSucceeded),
                ));
                self.bounded(c.route_command(cmd, routing)).await
            }
        }
    }

    /// `PING`, on every master of a Cluster: the store is ready only when
    /// every slot's owner answers.
    async fn ping_all(&self) -> Result<(), StoreError> {
        match self.on_every_master(redis::cmd("PING")).await? {
            Value::Okay => Ok(()),
            v => match codec::text(v)? {
                Some(s) if s == "PONG" => Ok(()),
                _ => Err(StoreError::Unavailable("unexpected answer to PING".into())),
            },
        }
    }
}

/// Runs `fut` within `timeout`, mapping errors to `StoreError`.
async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(redis_error(&e)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "Redis did not answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// Maps a client error: a `CORRUPT` script error, `WRONGTYPE` or an
/// unparsable reply is corrupt data; anything else (I/O, timeouts, dropped
/// connections, a loading or read-only server, …) is unavailability.
fn redis_error(e: &RedisError) -> StoreError {
    let corrupt = matches!(e.code(), Some("CORRUPT" | "WRONGTYPE"))
        || matches!(
            e.kind(),
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
        );
    if corrupt {
        StoreError::Corrupt(e.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

/// Maps an error reply met inside an array reply, as [`redis_error`] does.
fn server_error(e: &redis::ServerError) -> StoreError {
    if matches!(e.code(), "CORRUPT" | "WRONGTYPE") {
        StoreError::Corrupt(e.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

/// Where a token record lives: under its id, or (legacy) under its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loc {
    /// `P{t<id>}:…`
    Token(TokenId),
    /// `P{l<hex>}:…`, with the token's id (known from the index or pointer).
    Legacy(TokenId, String),
}

impl Loc {
    /// The member naming this record in a user's token index.
    fn member(&self) -> String {
        match self {
            Loc::Token(id) => format!("t{}", id.0),
            Loc::Legacy(id, hex) => format!("l{}:{hex}", id.0),
        }
    }

    /// Reads a member written by [`Loc::member`].
    fn from_member(m: &str) -> Option<Loc> {
        if let Some(id) = m.strip_prefix('t') {
            return id.parse().ok().map(|id| Loc::Token(TokenId(id)));
        }
        let (id, hex) = m.strip_prefix('l')?.split_once(':')?;
        let hex = Digest::from_hex(hex)?.to_hex();
        Some(Loc::Legacy(TokenId(id.parse().ok()?), hex))
    }
}

/// Key names (see the layout table in the crate docs).
#[derive(Debug, Clone)]
struct Keys {
    /// Every key starts with this.
    prefix: String,
}

impl Keys {
    /// `P{t<id>}:<part>` or `P{l<hex>}:<part>`.
    fn at(&self, loc: &Loc, part: &str) -> String {
        match loc {
            Loc::Token(id) => format!("{}{{t{}}}:{part}", self.prefix, id.0),
            Loc::Legacy(_, hex) => format!("{}{{l{hex}}}:{part}", self.prefix),
        }
    }
    /// A token record.
    fn rec(&self, loc: &Loc) -> String {
        self.at(loc, "rec")
    }
    /// A token's spent refresh digests.
    fn spent(&self, loc: &Loc) -> String {
        self.at(loc, "spent")
    }
    /// The legacy pointer in a token id's slot (never exists under `{l…}`).
    fn ptr(&self, loc: &Loc) -> String {
        self.at(loc, "ptr")
    }
    /// A legacy record staged by a Cluster's import (`crate::import`).
    fn staged(&self, loc: &Loc) -> String {
        self.at(loc, "staged")
    }
    /// The import id counter (a Cluster's staged imports).
    fn import_counter(&self) -> String {
        format!("{}{{imports}}:next", self.prefix)
    }
    /// A committed import's marker.
    fn import_marker(&self, import_id: &str) -> String {
        format!("{}{{imports}}:i:{import_id}", self.prefix)
    }
    /// The ids of imports committed and not yet finished.
    fn imports_pending(&self) -> String {
        format!("{}{{imports}}:pending", self.prefix)
    }
    /// A legacy record, by digest.
    fn legacy_rec(&self, d: &Digest) -> String {
        format!("{}{{l{}}}:rec", self.prefix, d.to_hex())
    }
    /// A session.
    fn session(&self, d: &Digest) -> String {
        format!("{}{{s{}}}:session", self.prefix, d.to_hex())
    }
    /// A user record.
    fn user(&self, id: UserId) -> String {
        format!("{}{{users}}:u:{}", self.prefix, id.0)
    }
    /// A user-name key.
    fn user_name(&self, name: &str) -> String {
        format!("{}{{users}}:name:{name}", self.prefix)
    }
    /// All user ids.
    fn users_all(&self) -> String {
        format!("{}{{users}}:all", self.prefix)
    }
    /// User ids that may own index entries.
    fn users_indexed(&self) -> String {
        format!("{}{{users}}:indexed", self.prefix)
    }
    /// The user id counter.
    fn user_counter(&self) -> String {
        format!("{}{{users}}:next", self.prefix)
    }
    /// A user's token index.
    fn user_tokens(&self, id: UserId) -> String {
        format!("{}{{u{}}}:tokens", self.prefix, id.0)
    }
    /// A user's session index.
    fn user_sessions(&self, id: UserId) -> String {
        format!("{}{{u{}}}:sessions", self.prefix, id.0)
    }
    /// The token id counter.
    fn token_counter(&self) -> String {
        format!("{}token-id", self.prefix)
    }
    /// The legacy horizon.
    fn horizon(&self) -> String {
        format!("{}legacy-horizon", self.prefix)
    }
    /// A token's rate-limit count for one window (in the token id's slot).
    fn rate(&self, id: TokenId, window: i64) -> String {
        format!("{}{{t{}}}:rate:{window}", self.prefix, id.0)
    }
    /// The addresses a token was used from (in the token id's slot).
    fn addresses(&self, id: TokenId) -> String {
        format!("{}{{t{}}}:addrs", self.prefix, id.0)
    }
    /// The outbox's delivery id counter.
    fn outbox_counter(&self) -> String {
        format!("{}{{outbox}}:next", self.prefix)
    }
    /// The outbox's deliveries: id → `codec::encode_delivery`.
    fn outbox_bodies(&self) -> String {
        format!("{}{{outbox}}:d", self.prefix)
    }
    /// Attempts made per delivery id.
    fn outbox_attempts(&self) -> String {
        format!("{}{{outbox}}:att", self.prefix)
    }
    /// The nonce of the claim holding each claimed delivery.
    fn outbox_claims(&self) -> String {
        format!("{}{{outbox}}:claim", self.prefix)
    }
    /// `<receiver> <key>` → delivery id: one delivery per pair.
    fn outbox_keys(&self) -> String {
        format!("{}{{outbox}}:keys", self.prefix)
    }
    /// The receivers that have ever had a delivery.
    fn outbox_receivers(&self) -> String {
        format!("{}{{outbox}}:rcv", self.prefix)
    }
    /// A receiver's unsettled deliveries, scored by when each is next due.
    fn outbox_due(&self, receiver: &str) -> String {
        format!("{}{{outbox}}:due:{receiver}", self.prefix)
    }
    /// A receiver's unsettled deliveries, scored by their event's time.
    fn outbox_pending(&self, receiver: &str) -> String {
        format!("{}{{outbox}}:pend:{receiver}", self.prefix)
    }
    /// Settled deliveries, scored by `keep_until` (the sweep).
    fn outbox_settled(&self) -> String {
        format!("{}{{outbox}}:done", self.prefix)
    }
    /// The audit trail's id counter.
    fn event_counter(&self) -> String {
        format!("{}{{events}}:next", self.prefix)
    }
    /// The audit trail's bodies: event id → encoded event.
    fn event_bodies(&self) -> String {
        format!("{}{{events}}:body", self.prefix)
    }
    /// The whole trail: event ids, scored by id.
    fn event_ids(&self) -> String {
        format!("{}{{events}}:ids", self.prefix)
    }
    /// Event ids scored by their time, for the retention sweep.
    fn event_times(&self) -> String {
        format!("{}{{events}}:at", self.prefix)
    }
    /// The ids of the events that concern a user or that they did.
    fn user_events(&self, id: UserId) -> String {
        format!("{}{{events}}:u:{}", self.prefix, id.0)
    }
    /// The ids of the events that concern a token.
    fn token_events(&self, id: TokenId) -> String {
        format!("{}{{events}}:t:{}", self.prefix, id.0)
    }
    /// The change stream's pub/sub channel (a channel, not a key). The one
    /// place it is named.
    fn changes(&self) -> String {
        format!("{}changes", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_members_round_trip() {
        let hex = Digest::of("x").to_hex();
        for loc in [Loc::Token(TokenId(42)), Loc::Legacy(TokenId(7), hex)] {
            assert_eq!(Loc::from_member(&loc.member()), Some(loc));
        }
        for bad in ["", "t", "tx", "l7", "l7:zz", "x1"] {
            assert_eq!(Loc::from_member(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        let c = RedisConfig {
            prefix: "a{b}:".into(),
            ..RedisConfig::default()
        };
        assert!(matches!(c.validate(), Err(RedisStoreError::Config(_))));
        assert!(RedisConfig::default().validate().is_ok());
        assert!(!format!("{:?}", RedisConfig::new("redis://:hunter2@h/")).contains("hunter2"));
    }
}
