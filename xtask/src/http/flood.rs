//! The `check-flood` case's background: wrong logins at a fixed rate, each
//! from another address (`X-Forwarded-For`, the server trusting the loopback
//! proxy) and for another unknown user, so that no lock stops them before
//! Argon2.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_testsupport::Client;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Wrong logins per second.
pub const PER_SEC: u64 = 100;
/// Tasks sending them (each login waits for its answer).
const TASKS: usize = 32;
/// The check under a login flood keeps at least this share of its rate.
pub const TARGET: f64 = 0.8;

/// A flood in progress.
pub struct Flood {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<u16>>>,
    started: Instant,
}

/// What the flood's logins were answered.
pub struct FloodTally {
    /// Logins sent.
    pub sent: usize,
    /// For how long.
    pub secs: f64,
    by_status: BTreeMap<u16, usize>,
}

impl FloodTally {
    /// `n× status, …` (`no answer` for 0).
    pub fn summary(&self) -> String {
        self.by_status
            .iter()
            .map(|(s, n)| match s {
                0 => format!("{n} no answer"),
                s => format!("{n}× {s}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Flood {
    /// Starts sending, on `rt`, to the server `client` talks to.
    pub fn start(rt: &Runtime, client: &Client) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let every = Duration::from_micros(1_000_000 / PER_SEC);
        let tasks = (0..TASKS)
            .map(|_| {
                let (stop, next, client) = (stop.clone(), next.clone(), client.clone());
                rt.spawn(async move {
                    let mut statuses = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        // The k-th login goes at start + k/rate, whoever sends it.
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let at = started + every * k as u32;
                        tokio::time::sleep_until(at.into()).await;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let from = format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255);
                        let body = format!(r#"{{"username":"flood-{k}","password":"d3Jvbmc="}}"#);
                        let status = client
                            .try_send(
                                "POST",
                                "/Login",
                                &[("X-Forwarded-For", from.as_bytes())],
                                Some(("application/json", body.as_bytes())),
                            )
                            .await
                            .map_or(0, |a| a.status);
                        statuses.push(status);
                    }
                    statuses
                })
            })
            .collect();
        Flood {
            stop,
            tasks,
            started,
        }
    }

    /// Stops sending; what was answered.
    pub fn stop(self, rt: &Runtime) -> FloodTally {
        self.stop.store(true, Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let mut by_status = BTreeMap::new();
        let mut sent = 0;
        for t in self.tasks {
            for s in rt.block_on(t).unwrap_or_default() {
                sent += 1;
                *by_status.entry(s).or_insert(0) += 1;
            }
        }
        FloodTally {
            sent,
            secs,
            by_status,
        }
    }
}
