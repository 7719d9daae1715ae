//! The fleet case: valid checks (the `check-valid` inputs) spread over
//! three nodes of one store, beside the same load on one node, in the same
//! run. The load is the same shape both times: [`LOADS`] wrk processes of
//! one thread each, with the connections shared out; against one node all
//! of them, against three one each. The figures: checks/s in all, and the
//! CPU time the nodes spent per check (user + system, from
//! `/proc/<pid>/stat`). On a 2-core machine the nodes share the cores with
//! wrk, so the cost per check, not the speed-up, is what says whether a
//! fleet costs more per check than one node.

use std::path::Path;

use serde_json::{json, Value};
use tessera_testsupport::Server;

use super::wrk::{self, WrkFigures};

/// wrk processes of a run (one thread each).
pub const LOADS: usize = 3;

/// Node counts measured: one, then the fleet.
pub const SHAPES: [usize; 2] = [1, 3];

/// One shape's figures.
pub struct FleetRun {
    /// Nodes the load was spread over.
    pub nodes: usize,
    /// Checks/s, all wrk processes added up.
    pub checks_per_sec: f64,
    /// The nodes' CPU time per check, in µs.
    pub cpu_us_per_check: f64,
    /// Checks answered.
    pub requests: u64,
    /// Non-2xx answers and socket errors (none expected).
    pub failed: u64,
}

/// The case's figures on one backend.
pub struct FleetFigures {
    /// The backend.
    pub backend: &'static str,
    /// One node, then the fleet.
    pub runs: Vec<FleetRun>,
}

impl FleetFigures {
    /// The fleet's cost per check over one node's.
    pub fn cost_ratio(&self) -> Option<f64> {
        let one = self.runs.iter().find(|r| r.nodes == 1)?;
        let many = self.runs.iter().rfind(|r| r.nodes > 1)?;
        (one.cpu_us_per_check > 0.0).then(|| many.cpu_us_per_check / one.cpu_us_per_check)
    }

    /// As JSON for `report.json`.
    pub fn json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                json!({
                    "nodes": r.nodes,
                    "checks_per_sec": r.checks_per_sec,
                    "cpu_us_per_check": r.cpu_us_per_check,
                    "requests": r.requests,
                    "failed": r.failed,
                })
            })
            .collect();
        json!({"backend": self.backend, "runs": runs, "cost_ratio": self.cost_ratio()})
    }
}

/// Runs one shape: `nodes` already started over the store, warmed in turn
/// (`warmup_s` each), then loaded together for `secs`.
pub fn run(
    nodes: &[Server],
    scripts: &Path,
    check: &Path,
    warmup_s: Option<u32>,
    secs: u32,
) -> Result<FleetRun, String> {
    let script = scripts.join("check.lua");
    let file = check.display().to_string();
    if let Some(w) = warmup_s {
        // Each node meets every token once, as the one-node cases do.
        for n in nodes {
            wrk::run(&n.base, Some(&script), &[file.clone(), "warmup".into()], w)?;
        }
    }
    let pids: Vec<u32> = nodes.iter().map(Server::pid).collect();
    let before = cpu_ticks(&pids)?;
    let loads: Vec<_> = (0..LOADS)
        .map(|i| {
            let url = nodes[i % nodes.len()].base.clone();
            let (script, file) = (script.clone(), file.clone());
            std::thread::spawn(move || {
                let per = wrk::CONNECTIONS / LOADS;
                let args = [file, "measured".to_string()];
                wrk::run_shaped(&url, Some(&script), &args, secs, 1, per)
                    .and_then(|text| wrk::parse(&text))
            })
        })
        .collect();
    let mut figures: Vec<WrkFigures> = Vec::with_capacity(LOADS);
    for l in loads {
        figures.push(l.join().map_err(|_| "a wrk thread panicked")??);
    }
    let after = cpu_ticks(&pids)?;
    let requests: u64 = figures.iter().map(|f| f.requests).sum();
    let cpu_s = after.saturating_sub(before) as f64 / clock_ticks_per_sec();
    Ok(FleetRun {
        nodes: nodes.len(),
        checks_per_sec: figures.iter().map(|f| f.requests_per_sec).sum(),
        cpu_us_per_check: cpu_s * 1e6 / requests.max(1) as f64,
        requests,
        failed: figures.iter().map(|f| f.non_2xx + f.socket_errors).sum(),
    })
}

/// User + system CPU ticks of the processes `pids`, added up.
fn cpu_ticks(pids: &[u32]) -> Result<u64, String> {
    let mut total = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // After the command name (in parentheses, which may hold spaces):
        // state is field 3, utime 14, stime 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or("no ')' in stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        total += tick(11).ok_or("no utime")? + tick(12).ok_or("no stime")?;
    }
    Ok(total)
}

/// `getconf CLK_TCK` (100 on Linux, read rather than assumed).
fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
