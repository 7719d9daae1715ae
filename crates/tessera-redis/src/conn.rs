//! The store's connection, to one Redis server or to a Redis Cluster, and
//! [`Batch`]: several commands sent together.
//!
//! On one server a batch is one pipeline (one round trip), as before. A
//! Cluster client only pipelines commands of one hash slot, so a batch whose
//! keys span slots is split there: its commands are sent one after the other
//! when the batch says their order matters ([`Order::InOrder`]: an index entry
//! written before its record), else all at once (the client multiplexes
//! them over its connection to each node, so a fan-out read still costs about
//! one round trip per node). A batch whose keys share one slot is sent as one
//! pipeline on a Cluster too, so its order (and a `MULTI`) holds.

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, Script, ScriptInvocation, Value};

/// A connection handle; cloned per call (a handle, not a new connection).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (or a primary with replicas), reconnecting by itself.
    Single(ConnectionManager),
    /// A Redis Cluster: each command goes to the node owning its key's slot,
    /// following `MOVED`/`ASK` and re-reading the topology by itself.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Whether this is a Cluster connection.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Whether a batch's commands must run in the order they were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// A later command relies on an earlier one having run (an index entry
    /// before its record, a set deleted after its members).
    InOrder,
    /// Independent commands (reads, or writes to unrelated records).
    Any,
}

/// One command of a batch.
struct Step {
    /// Whether its reply is returned.
    keep: bool,
    /// Loads a script (`SCRIPT LOAD`): skipped when the batch is split.
    load: bool,
}

/// Commands sent together (see the module docs), built like a
/// `redis::Pipeline`: every command's reply is returned, in order, except
/// those marked [`Batch::ignore`].
pub(crate) struct Batch<'s> {
    pipe: Pipeline,
    steps: Vec<Step>,
    order: Order,
    /// The scripts the batch invokes, (re)loaded on `NOSCRIPT` when split.
    scripts: Vec<&'s Script>,
}

impl<'s> Batch<'s> {
    /// An empty batch.
    pub(crate) fn new(order: Order) -> Self {
        Batch {
            pipe: redis::pipe(),
            steps: Vec::new(),
            order,
            scripts: Vec::new(),
        }
    }

    /// A batch that first (re)loads `scripts` (replies ignored), so that the
    /// `EVALSHA`s queued after them cannot meet `NOSCRIPT` in one pipeline.
    pub(crate) fn with_scripts(order: Order, scripts: &[&'s Script]) -> Self {
        let mut b = Batch::new(order);
        for s in scripts {
            b.pipe.load_script(s).ignore();
            b.steps.push(Step {
                keep: false,
                load: true,
            });
            b.scripts.push(s);
        }
        b
    }

    /// Adds a command whose first argument after its name is its key.
    pub(crate) fn add(&mut self, cmd: Cmd) -> &mut Self {
        self.pipe.add_command(cmd);
        self.steps.push(Step {
            keep: true,
            load: false,
        });
        self
    }

    /// Starts a command `name key …` (arguments added with [`Batch::arg`]).
    pub(crate) fn cmd(&mut self, name: &str, key: impl AsRef<[u8]>) -> &mut Self {
        let mut c = redis::cmd(name);
        c.arg(key.as_ref());
        self.add(c)
    }

    /// Adds an argument to the last command.
    pub(crate) fn arg(&mut self, arg: impl redis::ToRedisArgs) -> &mut Self {
        self.pipe.arg(arg);
        self
    }

    /// Adds a script invocation (`EVALSHA`); its first key routes it.
    pub(crate) fn invoke(&mut self, script: &'s Script, inv: &ScriptInvocation<'_>) -> &mut Self {
        self.pipe.invoke_script(inv);
        self.steps.push(Step {
            keep: true,
            load: false,
        });
        if !self
            .scripts
            .iter()
            .any(|s| s.get_hash() == script.get_hash())
        {
            self.scripts.push(script);
        }
        self
    }

    /// Drops the reply of the last command.
    pub(crate) fn ignore(&mut self) -> &mut Self {
        self.pipe.ignore();
        if let Some(s) = self.steps.last_mut() {
            s.keep = false;
        }
        self
    }

    /// Whether the batch holds no command but script loads.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.iter().all(|s| s.load)
    }

    /// Whether every keyed command's key is in one hash slot (read from the
    /// commands only here, on a Cluster: a single server never asks).
    fn one_slot(&self) -> bool {
        let mut slots = self
            .pipe
            .cmd_iter()
            .zip(&self.steps)
            .filter(|(_, s)| !s.load)
            .filter_map(|(c, _)| key_of(c))
            .map(Slot::for_key);
        match slots.next() {
            None => true,
            Some(first) => slots.all(|s| s == first),
        }
    }

    /// Sends the batch; the replies of the commands not ignored, in order.
    pub(crate) async fn query(&self, conn: &mut Conn) -> RedisResult<Vec<Value>> {
        if !conn.is_cluster() || self.one_slot() {
            return self.pipe.query_async::<Vec<Value>>(conn).await;
        }
        let commands: Vec<(&Cmd, &Step)> = self
            .pipe
            .cmd_iter()
            .zip(&self.steps)
            .filter(|(_, s)| !s.load)
            .collect();
        let mut replies = Vec::with_capacity(commands.len());
        match self.order {
            Order::InOrder => {
                for (cmd, step) in &commands {
                    let v = self.one(conn.clone(), cmd).await?;
                    if step.keep {
                        replies.push(v);
                    }
                }
            }
            Order::Any => {
                let all = try_join_all(commands.iter().map(|(cmd, _)| self.one(conn.clone(), cmd)))
                    .await?;
                for ((_, step), v) in commands.iter().zip(all) {
                    if step.keep {
                        replies.push(v);
                    }
                }
            }
        }
        Ok(replies)
    }

    /// One command of a split batch; on `NOSCRIPT` (a node that lost its
    /// script cache, e.g. a replica just promoted) the batch's scripts are
    /// loaded on every node and the command is sent again.
    async fn one(&self, mut conn: Conn, cmd: &Cmd) -> RedisResult<Value> {
        match cmd.query_async::<Value>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                for s in &self.scripts {
                    s.prepare_invoke().load_async(&mut conn).await?;
                }
                cmd.query_async::<Value>(&mut conn).await
            }
            other => other,
        }
    }
}

/// A batch command's key: the first key of an `EVALSHA` (none when it has
/// no keys), else the argument after the command's name.
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(a) => Some(a),
        _ => None,
    });
    let name = args.next().flatten()?;
    if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        let _sha = args.next();
        return match args.next().flatten() {
            Some(b"0") | None => None,
            Some(_) => args.next().flatten(),
        };
    }
    args.next().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commands_key_is_found_for_routing() {
        let mut c = redis::cmd("HMGET");
        c.arg("P{t1}:rec").arg("id");
        assert_eq!(key_of(&c), Some(&b"P{t1}:rec"[..]));
        let s = Script::new("return 1");
        let mut b = Batch::new(Order::Any);
        b.invoke(&s, s.key("P{t2}:rec").arg("x"));
        b.invoke(&s, &s.arg("not-a-key"));
        let keys: Vec<_> = b.pipe.cmd_iter().map(key_of).collect();
        assert_eq!(keys, [Some(&b"P{t2}:rec"[..]), None]);
        // One slot: the two keys share the hash tag.
        let mut same = Batch::new(Order::Any);
        same.cmd("HMGET", "P{t3}:rec").cmd("GET", "P{t3}:ptr");
        assert!(same.one_slot());
        same.cmd("GET", "P{t4}:ptr");
        assert!(!same.one_slot());
    }
}
