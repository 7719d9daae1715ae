//! A real Redis Cluster on loopback ports, for the suites and the bench:
//! three masters (and, when asked, one replica each), each a `redis-server`
//! child process of this one in a temporary directory, nothing kept on
//! disk; every process stopped and the directory removed when the
//! [`RedisCluster`] is dropped.
//!
//! `cargo xtask test` starts one for the whole run and hands its URL to the
//! suites in `TESSERA_TEST_REDIS_CLUSTER_URL`; a test that changes the
//! Cluster's shape (a failover) starts its own.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::temp::TempDir;

/// The variable naming the Cluster the suites use (`redis+cluster://…`).
pub const URL_VAR: &str = "TESSERA_TEST_REDIS_CLUSTER_URL";

/// Masters of every Cluster started here.
pub const MASTERS: usize = 3;

/// A running Cluster.
pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    _dir: TempDir,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// How long the Cluster may take to form.
const FORMS_WITHIN: Duration = Duration::from_secs(30);

impl RedisCluster {
    /// Starts [`MASTERS`] masters, with `replicas` replicas each (0 or 1),
    /// and waits until every node says the Cluster is `ok` (and every
    /// replica is in step with its master). The error says what is missing.
    pub fn start(replicas: usize) -> Result<RedisCluster, String> {
        for tool in ["redis-server", "redis-cli"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                return Err(format!(
                    "{tool} is not installed (a Redis Cluster needs it)"
                ));
            }
        }
        let count = MASTERS * (1 + replicas.min(1));
        let ports = free_ports(count)?;
        let dir = TempDir::new("redis-cluster");
        let mut cluster = RedisCluster {
            ports: ports.clone(),
            children: Vec::new(),
            _dir: dir,
        };
        for &port in &ports {
            let node_dir = cluster._dir.join(&port.to_string());
            std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .args(["--logfile", "redis.log"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            cluster.children.push(child);
        }
        for &port in &ports {
            cluster.wait_for(port, "PONG", &["PING"])?;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for &port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args([
                "--cluster-replicas",
                &replicas.min(1).to_string(),
                "--cluster-yes",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        for &port in &ports {
            cluster.wait_for(port, "cluster_state:ok", &["CLUSTER", "INFO"])?;
        }
        for &port in &ports {
            if cluster.cli(port, &["ROLE"]).starts_with("slave") {
                cluster.wait_for(port, "master_link_status:up", &["INFO", "replication"])?;
            }
        }
        Ok(cluster)
    }

    /// [`RedisCluster::start`], or `None` after the skip-or-fail rule.
    pub fn start_or_skip(replicas: usize) -> Option<RedisCluster> {
        crate::or_skip(RedisCluster::start(replicas))
    }

    /// `redis+cluster://127.0.0.1:<p1>,…` naming every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The nodes' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis-cli -p <port> <args>`'s output (empty if it failed).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The port of the node serving `key`'s slot as master now (by its own view).
    pub fn master_of(&self, key: &str) -> Option<u16> {
        let slot = self.cli(self.ports[0], &["CLUSTER", "KEYSLOT", key]);
        let slot: u16 = slot.trim().parse().ok()?;
        self.ports
            .iter()
            .copied()
            .find(|&p| self.cli(p, &["ROLE"]).starts_with("master") && self.serves(p, slot))
    }

    /// Whether the node on `port` serves `slot` as master (its own view).
    fn serves(&self, port: u16, slot: u16) -> bool {
        let nodes = self.cli(port, &["CLUSTER", "NODES"]);
        nodes
            .lines()
            .find(|l| l.contains("myself"))
            .is_some_and(|line| {
                line.split_whitespace()
                    .skip(8)
                    .any(|range| match range.split_once('-') {
                        Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
                            (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                            _ => false,
                        },
                        None => range.parse::<u16>() == Ok(slot),
                    })
            })
    }

    /// The port of a replica of the master on `master`.
    pub fn replica_of(&self, master: u16) -> Option<u16> {
        let id = self.cli(master, &["CLUSTER", "MYID"]);
        let id = id.trim();
        self.ports.iter().copied().find(|&p| {
            p != master
                && self
                    .cli(p, &["CLUSTER", "NODES"])
                    .lines()
                    .any(|l| l.contains("myself") && l.contains("slave") && l.contains(id))
        })
    }

    /// Polls `redis-cli -p port args` until its output holds `want`.
    pub fn wait_for(&self, port: u16, want: &str, args: &[&str]) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let out = self.cli(port, args);
            if out.contains(want) {
                return Ok(());
            }
            if start.elapsed() > FORMS_WITHIN {
                return Err(format!(
                    "the Redis Cluster node on port {port} did not say {want:?} within {FORMS_WITHIN:?}: {out}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every node says the Cluster is `ok` again (after a failover).
    pub fn wait_ok(&self) -> Result<(), String> {
        for &port in &self.ports {
            self.wait_for(port, "cluster_state:ok", &["CLUSTER", "INFO"])?;
        }
        Ok(())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `count` ports that are free, each with its Cluster bus port (+10000)
/// free too, in 20000..45000.
fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut ports = Vec::new();
    // Start somewhere this process's id picks, so parallel runs differ.
    let mut p = 20_000 + (std::process::id() % 2_000) as u16 * 12;
    while ports.len() < count {
        if p >= 45_000 {
            return Err("no free loopback ports for a Redis Cluster".into());
        }
        if free(p) && free(p + 10_000) {
            ports.push(p);
        }
        p += 1;
    }
    Ok(ports)
}
