//! A fleet: several `tessera serve` nodes over one store behind our own
//! nginx, round-robin, as a user runs Tessera past one machine. nginx passes
//! a request that could not reach a node (`error`, `timeout`) to the next
//! one, but never a non-idempotent request (a `POST`) once sent; it says in
//! [`NODE_HEADER`] which node answered. Used by `tests/fleet.rs` and
//! `cargo xtask fleet`.

use std::path::Path;
use std::time::Duration;

use crate::client::{Answer, Client};
use crate::proxy::Nginx;
use crate::server::{signal, Launch, Server};

/// The response header nginx adds: the address (`127.0.0.1:PORT`) of the
/// node that answered (the last one tried, when nginx had to try another).
pub const NODE_HEADER: &str = "x-fleet-node";

/// How nodes are started: a new [`Launch`] each time (the same store, the
/// same arguments on every node).
pub type LaunchFn = Box<dyn Fn() -> Launch + Send + Sync>;

/// The nodes and their balancer, all stopped when dropped.
pub struct Fleet {
    /// Every node started, by index; `None` once killed.
    nodes: Vec<Option<Server>>,
    launch: LaunchFn,
    balancer: Nginx,
    client: Client,
}

impl Fleet {
    /// Starts `nodes` nodes one after the other (the first over an empty
    /// store creates the admin; the others find it), then nginx in front of
    /// them. The error holds the failing process's log.
    pub fn start(nginx: &Path, nodes: usize, launch: LaunchFn) -> Result<Fleet, String> {
        let mut started = Vec::with_capacity(nodes);
        for _ in 0..nodes {
            started.push(Some(launch().start()?));
        }
        let addrs = live_addrs(&started);
        let balancer = Nginx::start(nginx, |dir, port| conf(dir, port, &addrs))?;
        let mut client = Client::new(&balancer.base());
        client.admin_password = started[0].as_ref().and_then(|s| s.admin_password.clone());
        Ok(Fleet {
            nodes: started,
            launch,
            balancer,
            client,
        })
    }

    /// A client of the balancer (what a user's client talks to).
    pub fn balancer(&self) -> &Client {
        &self.client
    }

    /// nginx itself (its logs).
    pub fn nginx(&self) -> &Nginx {
        &self.balancer
    }

    /// Node `i`; panics if it was killed.
    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} was killed"))
    }

    /// The nodes still running, with their indexes.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Server)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// How many nodes were ever started (killed ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the fleet has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Which node answered `answer` through the balancer, by [`NODE_HEADER`].
    pub fn node_of(&self, answer: &Answer) -> Option<usize> {
        let addr = answer.headers.get(NODE_HEADER)?.to_str().ok()?;
        // After a retry nginx lists every node it tried: the last answered.
        let last = addr.rsplit(", ").next()?.trim();
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.addr() == last))
    }

    /// Kills node `i` with SIGKILL (no shutdown of any kind: what it held
    /// is lost) and reaps it. The balancer keeps it in its list, as it
    /// would until an operator removes it, and finds it down.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            signal(node.pid(), "-KILL");
            let _ = node.wait_exit(Duration::from_secs(10));
        }
    }

    /// Starts one more node (its cache empty) and has nginx balance over it
    /// with the nodes still running; its index.
    pub fn add_node(&mut self) -> Result<usize, String> {
        let node = (self.launch)().start()?;
        self.nodes.push(Some(node));
        let addrs = live_addrs(&self.nodes);
        self.balancer.reload(|dir, port| conf(dir, port, &addrs))?;
        Ok(self.nodes.len() - 1)
    }

    /// Where everything listens, one line each (for a person).
    pub fn describe(&self) -> String {
        let mut out = format!("balancer (nginx): {}\n", self.balancer.base());
        for (i, n) in self.live() {
            out.push_str(&format!("node {i}: {} (pid {})\n", n.base, n.pid()));
        }
        out
    }
}

/// The addresses of the nodes still running.
fn live_addrs(nodes: &[Option<Server>]) -> Vec<String> {
    nodes
        .iter()
        .flatten()
        .map(|n| n.addr().to_string())
        .collect()
}

/// The balancer's `http` contents: round-robin over `nodes`, a request
/// that cannot reach one (refused, reset before an answer, timed out) tried
/// on the next; keep-alive to the nodes; the client's address appended to
/// `X-Forwarded-For` (the nodes trust 127.0.0.1 as a proxy); the answering
/// node named in [`NODE_HEADER`].
fn conf(dir: &Path, port: u16, nodes: &[String]) -> String {
    let d = dir.display();
    let servers: String = nodes
        .iter()
        .map(|a| format!("        server {a} max_fails=1 fail_timeout=30s;\n"))
        .collect();
    format!(
        r#"    log_format fleet '$status $request_method "$request_uri" node=$upstream_addr';
    access_log {d}/access.log fleet;
    upstream tessera {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tessera;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            add_header X-Fleet-Node $upstream_addr always;
        }}
    }}"#
    )
}
