//! The revocation-propagation case: three `tessera` nodes over one store.
//! Tokens are created on node A and checked once on each other node (so
//! each holds them in its cache); then, one at a time, each is revoked on
//! A, checked on A at once (it must refuse: a node forgets its own entry
//! before it answers), and checked on the other nodes in turn, in a loop,
//! until each has refused. The time from the revocation's answer to a
//! node's first refusal is a figure (one per other node and revocation):
//! p50, p99, max.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tessera_testsupport::Server;

/// Nodes of the case (A and the others).
pub const NODES: usize = 3;

/// Longest wait for another node to refuse one revoked token before the case
/// fails (a bound on a hang, not a target).
const GIVE_UP: Duration = Duration::from_secs(5);

/// What the case measured.
pub struct Propagation {
    /// `sqlite`, `postgres`, `redis`, `redis-cluster`.
    pub backend: &'static str,
    /// Revocations timed.
    pub revocations: usize,
    /// Nodes that had to hear of each (all but A).
    pub others: usize,
    /// Milliseconds until another node refused, one per node and
    /// revocation: sorted.
    pub delays_ms: Vec<f64>,
    /// Checks of another node while it still allowed (all revocations).
    pub stale_allows: u64,
}

impl Propagation {
    fn quantile(&self, q: f64) -> f64 {
        let n = self.delays_ms.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        self.delays_ms[i]
    }

    /// p50 in ms.
    pub fn p50(&self) -> f64 {
        self.quantile(0.50)
    }

    /// p99 in ms.
    pub fn p99(&self) -> f64 {
        self.quantile(0.99)
    }

    /// The slowest, in ms.
    pub fn max(&self) -> f64 {
        self.delays_ms.last().copied().unwrap_or(f64::NAN)
    }

    /// The case as JSON for `report.json`.
    pub fn json(&self) -> Value {
        json!({
            "backend": self.backend,
            "revocations": self.revocations,
            "other_nodes": self.others,
            "p50_ms": self.p50(),
            "p99_ms": self.p99(),
            "max_ms": self.max(),
            "stale_allows_while_waiting": self.stale_allows,
        })
    }
}

/// Runs the case with `revocations` tokens; `session` is an admin's on `a`,
/// `others` the nodes that must hear of each revocation.
pub async fn measure(
    backend: &'static str,
    a: &Server,
    others: &[&Server],
    session: &str,
    revocations: usize,
) -> Result<Propagation, String> {
    let (method, uri) = ("GET", "/Client/5");
    let mut tokens = Vec::with_capacity(revocations);
    for i in 0..revocations {
        let created = a
            .create_token(
                session,
                json!({"tokenName": format!("propagation-{i}"), "tokenType": 2}),
            )
            .await;
        if created.status != 200 {
            return Err(format!("creating a token answered {}", created.status));
        }
        let info = &created.json["tokenInfo"];
        let id = info["tokenId"].as_u64().ok_or("no tokenId")?;
        let access = info["accessToken"].as_str().ok_or("no accessToken")?;
        tokens.push((id, access.to_string()));
    }
    // The other nodes read each once: from here on they answer them from
    // their caches.
    for (_, access) in &tokens {
        for node in others {
            let st = node.try_check(access, method, uri).await?;
            if st != 200 {
                return Err(format!(
                    "another node answered {st} for a new token, not 200"
                ));
            }
        }
    }
    let mut delays_ms = Vec::with_capacity(revocations * others.len());
    let mut stale_allows = 0;
    for (id, access) in &tokens {
        let revoked = a.delete_token(session, id).await;
        if revoked.status != 200 {
            return Err(format!("revoking on node A answered {}", revoked.status));
        }
        let done = Instant::now();
        let own = a.try_check(access, method, uri).await?;
        if own != 401 {
            return Err(format!(
                "node A answered {own} for a token it had just revoked, not 401"
            ));
        }
        let mut pending: Vec<&Server> = others.to_vec();
        while !pending.is_empty() {
            let mut still = Vec::with_capacity(pending.len());
            for node in pending {
                match node.try_check(access, method, uri).await? {
                    401 => delays_ms.push(done.elapsed().as_secs_f64() * 1000.0),
                    200 if done.elapsed() < GIVE_UP => {
                        stale_allows += 1;
                        still.push(node);
                    }
                    200 => return Err(format!("{} still allowed after {GIVE_UP:?}", node.base)),
                    st => return Err(format!("{} answered {st} for a revoked token", node.base)),
                }
            }
            pending = still;
        }
    }
    delays_ms.sort_by(f64::total_cmp);
    Ok(Propagation {
        backend,
        revocations,
        others: others.len(),
        delays_ms,
        stale_allows,
    })
}
