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
//! # On a Redis Cluster
//!
//! Messages are published with plain `PUBLISH`, which a Cluster forwards to
//! every node over its bus. The bus is not what the cache trusts: a link
//! between two nodes may drop and lose what it held. A subscription on a
//! Cluster is one connection **to every master** (found with `CLUSTER
//! NODES` through a seed, each confirmed with `CLUSTER MYID`, all in one
//! configuration epoch). Every message names the master that published it
//! (`c:<node id>:<message>`, see `scripts`), and a heartbeat is sent
//! through every master (`RedisStore::beat`), each copy published as
//! `c:<node id>:n:<epoch>:<text>` by the master itself. A master's own
//! messages reach the connection to that master directly, in the order it
//! ran them, and are taken from there only (the copies the bus forwards to
//! the other connections are dropped); so the stream hands the core
//! `Beat(text)` only once the beat came back from every master on the
//! connection to that master: every change committed on any master before
//! the beat was sent has then been delivered, once. A message from a
//! master the subscription does not know (a replica promoted, a master
//! added) or a beat of another epoch cuts the stream, and the core empties the cache and
//! subscribes again to the new masters. A master that is demoted refuses
//! to beat (`NOTMASTER`), so the cache goes stale rather than trust it.
//!
//! Why RESP3 and not redis-rs's `aio::PubSub`: in the redis crate in use
//! (1.8) `PubSub` sends nothing but (un)subscriptions and `PING`, so the
//! connection could not be named; and in RESP2 a subscribed connection
//! refuses `CLIENT SETNAME`. A RESP3 connection (Redis 6 or later) takes
//! both, and hands the messages to a push channel. No redis feature is
//! added for it.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tessera_core::feed::{Change, ChangeStream};
use tessera_core::store::StoreResult;
use tessera_core::StoreError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::target::{NodeUrl, Target};
use crate::{bounded, codec, Keys, RedisConfig, RedisStoreError};

/// Where subscriptions connect.
enum Source {
    /// The one server: its client, speaking RESP3.
    Single(redis::Client),
    /// A Cluster: its seed nodes' URLs, and how to reach any node.
    Cluster(Vec<String>, NodeUrl),
}

/// How the store subscribes to its change stream.
pub(crate) struct Feed {
    /// Where to connect.
    source: Source,
    /// The channel (see `Keys::changes`).
    channel: String,
    /// The subscriptions' client name.
    client_name: String,
    /// Bound on making the connection.
    connect_timeout: Duration,
    /// Bound on each round trip of the subscription's set-up.
    command_timeout: Duration,
}

/// A client for `client`'s server speaking RESP3.
fn resp3(client: &redis::Client) -> Result<redis::Client, RedisStoreError> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings))
        .map_err(|e| RedisStoreError::Url(format!("{:?}", e.kind())))
}

/// A RESP3 client for a node URL.
fn resp3_url(url: &str) -> StoreResult<redis::Client> {
    let client = redis::Client::open(url)
        .map_err(|e| StoreError::Unavailable(format!("a Cluster node's URL: {:?}", e.kind())))?;
    resp3(&client).map_err(StoreError::from)
}

impl Feed {
    /// The feed of the server or Cluster `target` names, under `keys`' prefix.
    pub(crate) fn new(
        target: &Target,
        keys: &Keys,
        config: &RedisConfig,
    ) -> Result<Self, RedisStoreError> {
        let source = match target {
            Target::Single(client) => Source::Single(resp3(client)?),
            Target::Cluster(seeds, node) => Source::Cluster(seeds.clone(), node.clone()),
        };
        Ok(Feed {
            source,
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

    /// Connects, names the connection(s) and subscribes; returns once the
    /// server (every master of a Cluster) has confirmed the subscription.
    pub(crate) async fn subscribe(&self) -> StoreResult<Box<dyn ChangeStream>> {
        let (sender, receiver) = unbounded_channel();
        match &self.source {
            Source::Single(client) => {
                let conn = self.connect(client, 0, &sender).await?;
                Ok(Box::new(RedisStream {
                    _conns: vec![conn],
                    receiver,
                    channel: self.channel.clone().into_bytes(),
                    masters: None,
                }))
            }
            Source::Cluster(seeds, node) => {
                let found = self.masters(seeds).await?;
                let mut conns = Vec::with_capacity(found.len());
                let mut ids = Vec::with_capacity(found.len());
                let mut epoch = None;
                for (i, m) in found.iter().enumerate() {
                    let client = resp3_url(&node.at(&m.host, m.port))?;
                    let mut conn = self.connect(&client, i, &sender).await?;
                    let (id, e) = self.identify(&mut conn).await?;
                    if id != m.id {
                        return Err(StoreError::Unavailable(format!(
                            "the Cluster node at {}:{} is no longer the master it was said to be",
                            m.host, m.port
                        )));
                    }
                    if epoch.is_some_and(|known| known != e) {
                        return Err(StoreError::Unavailable(
                            "the Cluster's masters are in different configuration epochs (it is changing)".into(),
                        ));
                    }
                    epoch = Some(e);
                    conns.push(conn);
                    ids.push(id);
                }
                Ok(Box::new(RedisStream {
                    _conns: conns,
                    receiver,
                    channel: self.channel.clone().into_bytes(),
                    masters: Some(Masters {
                        ids,
                        epoch: epoch.unwrap_or_default(),
                        pending: VecDeque::new(),
                    }),
                }))
            }
        }
    }

    /// One subscribed, named connection to `client`'s server, whose pushes
    /// are handed to `sender` tagged with `index`.
    async fn connect(
        &self,
        client: &redis::Client,
        index: usize,
        sender: &UnboundedSender<(usize, PushInfo)>,
    ) -> StoreResult<MultiplexedConnection> {
        let sender = sender.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_push_sender(move |push: PushInfo| sender.send((index, push)));
        let mut conn = bounded(
            self.connect_timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        let mut name = redis::cmd("CLIENT");
        name.arg("SETNAME").arg(&self.client_name);
        bounded(self.command_timeout, name.query_async::<()>(&mut conn)).await?;
        bounded(self.command_timeout, conn.subscribe(&self.channel)).await?;
        Ok(conn)
    }

    /// The node id and configuration epoch of the node `conn` is on.
    async fn identify(&self, conn: &mut MultiplexedConnection) -> StoreResult<(String, u64)> {
        let id: String = bounded(
            self.command_timeout,
            redis::cmd("CLUSTER").arg("MYID").query_async(conn),
        )
        .await?;
        let info: String = bounded(
            self.command_timeout,
            redis::cmd("CLUSTER").arg("INFO").query_async(conn),
        )
        .await?;
        let epoch = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("cluster_current_epoch:"))
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| codec::corrupt("CLUSTER INFO names no current epoch"))?;
        Ok((id, epoch))
    }

    /// The Cluster's masters, as the first seed that answers sees them.
    async fn masters(&self, seeds: &[String]) -> StoreResult<Vec<Master>> {
        let mut why = String::from("no seed node");
        for seed in seeds {
            let Ok(client) = redis::Client::open(seed.as_str()) else {
                continue;
            };
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(Some(self.command_timeout));
            let nodes = async {
                let mut conn = bounded(
                    self.connect_timeout,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await?;
                bounded::<String>(
                    self.command_timeout,
                    redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn),
                )
                .await
            };
            match nodes.await {
                Ok(text) => return masters(&text).map_err(StoreError::Unavailable),
                Err(e) => why = e.to_string(),
            }
        }
        Err(StoreError::Unavailable(format!(
            "no seed node of the Redis Cluster answered: {why}"
        )))
    }
}

/// A master of a Cluster, from `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Master {
    id: String,
    host: String,
    port: u16,
}

/// The masters that serve slots in a `CLUSTER NODES` reply; an error unless
/// healthy masters serve all 16,384 slots between them.
fn masters(nodes: &str) -> Result<Vec<Master>, String> {
    let mut found = Vec::new();
    let mut served = 0u32;
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let flags: Vec<&str> = fields[2].split(',').collect();
        let healthy = flags.contains(&"master")
            && !flags
                .iter()
                .any(|f| matches!(*f, "fail" | "fail?" | "handshake" | "noaddr"));
        let mut slots = 0u32;
        for range in &fields[8..] {
            if range.starts_with('[') {
                continue; // a slot being migrated or imported
            }
            slots += match range.split_once('-') {
                Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                    (Ok(a), Ok(b)) if b >= a => b - a + 1,
                    _ => 0,
                },
                None => u32::from(range.parse::<u32>().is_ok()),
            };
        }
        if !healthy || slots == 0 {
            continue;
        }
        // ip:port@cport[,hostname]
        let address = fields[1].split(['@', ',']).next().unwrap_or_default();
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(format!("a master's address is unreadable: {address:?}"));
        };
        let port = port
            .parse()
            .map_err(|_| format!("a master's port is unreadable: {address:?}"))?;
        found.push(Master {
            id: fields[0].to_string(),
            host: host.to_string(),
            port,
        });
        served += slots;
    }
    if served != 16_384 {
        return Err(format!(
            "healthy masters serve {served} of the Cluster's 16384 slots (it is changing, or down)"
        ));
    }
    Ok(found)
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

/// One subscription: its connection(s), and the messages they hand over.
struct RedisStream {
    /// Kept so that the connections live as long as the stream (nothing is
    /// sent on them after the subscription).
    _conns: Vec<MultiplexedConnection>,
    /// Every push the connections received, tagged with the connection's
    /// index; closed when they all end.
    receiver: UnboundedReceiver<(usize, PushInfo)>,
    /// The channel subscribed to.
    channel: Vec<u8>,
    /// On a Cluster: the masters, one per connection, and the beats on their way.
    masters: Option<Masters>,
}

/// What a Cluster subscription knows of its masters (see the module docs).
struct Masters {
    /// The node id of the master each connection is on.
    ids: Vec<String>,
    /// The configuration epoch they were all in.
    epoch: u64,
    /// Beats seen on some but not yet all masters' own connections:
    /// the text, and which connections it came back on.
    pending: VecDeque<(String, Vec<bool>)>,
}

/// Beats awaited at once; older ones are forgotten (they would be late).
const PENDING_BEATS: usize = 64;

impl Masters {
    /// A Cluster message, `c:<node id>:<payload>`, that came on connection
    /// `conn`: the change it says, if it is the publishing master's own copy
    /// (copies forwarded by the bus are dropped). A beat (`n:<epoch>:<text>`)
    /// is `Beat(text)` only once every master's own copy is in. A message
    /// from a master this subscription does not know, or of another epoch,
    /// cuts the stream; one that names no master reads as `All`.
    fn read(&mut self, conn: usize, payload: &str) -> Result<Option<Change>, StoreError> {
        let Some((id, message)) = payload
            .strip_prefix("c:")
            .and_then(|rest| rest.split_once(':'))
        else {
            // Fail closed: nothing says which master sent it.
            return Ok(Some(Change::All));
        };
        let Some(from) = self.ids.iter().position(|m| m == id) else {
            return Err(cut(
                "a master this subscription does not know published (the Cluster's masters changed)",
            ));
        };
        if from != conn {
            // A copy forwarded by the bus: the master's own is on its connection.
            return Ok(None);
        }
        let Some(beat) = message.strip_prefix("n:") else {
            return Ok(match Change::parse(message) {
                // A beat must come through every master (the `n:` form).
                Change::Beat(_) => None,
                change => Some(change),
            });
        };
        let Some((epoch, text)) = beat.split_once(':') else {
            return Err(cut("a heartbeat on the Cluster is unreadable"));
        };
        if epoch.parse::<u64>().ok() != Some(self.epoch) {
            return Err(cut("the Cluster's configuration epoch changed"));
        }
        let at = match self.pending.iter().position(|(t, _)| t == text) {
            Some(at) => at,
            None => {
                if self.pending.len() == PENDING_BEATS {
                    self.pending.pop_front();
                }
                self.pending
                    .push_back((text.to_string(), vec![false; self.ids.len()]));
                self.pending.len() - 1
            }
        };
        self.pending[at].1[conn] = true;
        if self.pending[at].1.iter().all(|seen| *seen) {
            let (text, _) = self.pending.remove(at).unwrap_or_default();
            return Ok(Some(Change::Beat(text)));
        }
        Ok(None)
    }
}

/// The error of a stream that was cut.
fn cut(why: &str) -> StoreError {
    StoreError::Unavailable(format!("the change stream was cut: {why}"))
}

#[async_trait]
impl ChangeStream for RedisStream {
    async fn next(&mut self) -> StoreResult<Change> {
        loop {
            let Some((conn, push)) = self.receiver.recv().await else {
                return Err(cut("its connection ended"));
            };
            match push.kind {
                PushKind::Message => {
                    if let Some(change) = self.read(conn, push.data)? {
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
    /// A message's change, if it came on this stream's channel (and, on a
    /// Cluster, is not a beat still awaited from other masters). A payload
    /// that is not text reads as [`Change::All`] (`Change::parse`).
    fn read(&mut self, conn: usize, data: Vec<Value>) -> StoreResult<Option<Change>> {
        let mut data = data.into_iter();
        let payload = match (data.next(), data.next()) {
            (Some(Value::BulkString(channel)), Some(Value::BulkString(payload)))
                if channel == self.channel =>
            {
                String::from_utf8_lossy(&payload).into_owned()
            }
            (Some(Value::BulkString(channel)), _) if channel != self.channel => return Ok(None),
            // A message on our channel in a shape we cannot read: fail closed.
            _ => return Ok(Some(Change::All)),
        };
        match &mut self.masters {
            None => Ok(Some(Change::parse(&payload))),
            Some(masters) => masters.read(conn, &payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:7100@17100 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7101@17101 master - 0 1 2 connected 5461-10922
c3 [::1]:7102@17102,host master - 0 1 3 connected 10923-16383 [5-<-b2]
r4 127.0.0.1:7103@17103 slave a1 0 1 1 connected
";

    #[test]
    fn the_masters_serving_every_slot_are_found() {
        let m = masters(NODES).unwrap();
        let ids: Vec<&str> = m.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a1", "b2", "c3"]);
        assert_eq!((m[0].host.as_str(), m[0].port), ("127.0.0.1", 7100));
        assert_eq!((m[2].host.as_str(), m[2].port), ("[::1]", 7102));
        // A failed master, or slots nobody serves: not a Cluster to follow.
        assert!(masters(&NODES.replace(
            "b2 127.0.0.1:7101@17101 master",
            "b2 127.0.0.1:7101@17101 master,fail"
        ))
        .is_err());
        assert!(masters(&NODES.replace("10923-16383", "10923-16000")).is_err());
    }

    fn three() -> Masters {
        Masters {
            ids: vec!["a".into(), "b".into(), "c".into()],
            epoch: 6,
            pending: VecDeque::new(),
        }
    }

    fn beat(text: &str) -> Option<Change> {
        Some(Change::Beat(text.into()))
    }

    #[test]
    fn a_beat_counts_once_it_came_back_from_every_master_on_its_own_connection() {
        let mut m = three();
        assert_eq!(m.read(0, "c:a:n:6:x").unwrap(), None);
        // Copies through the bus, and repeats, prove nothing.
        assert_eq!(m.read(1, "c:a:n:6:x").unwrap(), None);
        assert_eq!(m.read(2, "c:a:n:6:x").unwrap(), None);
        assert_eq!(m.read(1, "c:b:n:6:x").unwrap(), None);
        assert_eq!(m.read(1, "c:b:n:6:x").unwrap(), None);
        assert_eq!(m.read(2, "c:c:n:6:x").unwrap(), beat("x"));
        assert!(m.pending.is_empty());
        // The text may hold colons; it is the beat's, whole.
        for (conn, id) in ["a", "b", "c"].iter().enumerate() {
            let got = m.read(conn, &format!("c:{id}:n:6:node:1:2")).unwrap();
            assert_eq!(got, if conn == 2 { beat("node:1:2") } else { None });
        }
        // A plain beat proves nothing on a Cluster.
        assert_eq!(m.read(0, "c:a:b:x").unwrap(), None);
    }

    #[test]
    fn each_change_is_taken_once_from_its_masters_own_connection() {
        let mut m = three();
        let change = Some(Change::Tokens(vec![tessera_core::model::TokenId(7)]));
        assert_eq!(m.read(1, "c:b:t:7").unwrap(), change);
        assert_eq!(m.read(0, "c:b:t:7").unwrap(), None);
        assert_eq!(m.read(2, "c:b:t:7").unwrap(), None);
        assert_eq!(m.read(0, "c:a:all").unwrap(), Some(Change::All));
        // Unreadable or unattributed: fail closed.
        assert_eq!(m.read(0, "c:a:t:x").unwrap(), Some(Change::All));
        assert_eq!(m.read(0, "t:7").unwrap(), Some(Change::All));
    }

    #[test]
    fn a_message_from_another_configuration_cuts_the_stream() {
        assert!(three().read(0, "c:d:n:6:x").is_err());
        assert!(three().read(0, "c:d:t:1").is_err());
        assert!(three().read(0, "c:a:n:7:x").is_err());
        assert!(three().read(0, "c:a:n:").is_err());
    }

    #[test]
    fn client_names_hold_only_what_redis_accepts() {
        assert_eq!(client_name("tessera:"), "tessera-feed:tessera:");
        assert_eq!(
            client_name("a b%\n\u{e9}"),
            "tessera-feed:a%20b%25%0A%C3%A9"
        );
    }
}
