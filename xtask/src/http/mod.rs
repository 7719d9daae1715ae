//! The HTTP part of `cargo xtask bench`: `wrk` against a release build of
//! `tessera serve`, once per backend, each on a fresh store pre-filled
//! through the library (not over HTTP), then a table of requests/s and
//! latencies, each case set against two ceilings measured in the same run
//! beside the same backend: a bare warp server answering `ok` (the
//! `ceiling` binary) and Tessera's own `/health/live`; and the time a
//! revocation on one node takes to be refused by another.
//!
//! * [`backend`]: the store of a run (`tessera_testsupport`'s fixtures) and
//!   the library's handle on it;
//! * [`prefill`]: users and tokens, and the secrets the load needs;
//! * [`inputs`]: the files wrk's scripts read;
//! * [`sanity`]: the answers checked before the load, waiting between cases;
//! * [`cases`]: the cases of one backend, run under [`wrk`];
//! * [`ceiling`]: the bare warp server;
//! * [`propagation`]: revocations from one node to two others;
//! * [`fleet`]: the valid checks on one node, then spread over three;
//! * [`flood`]: wrong logins beside the checks;
//! * [`profile`]: `perf` during one case;
//! * [`report`]: the table and the JSON.
//!
//! The secrets written under `target/bench/` for wrk's Lua scripts are
//! throw-away test secrets of a store that is deleted at the end; they are
//! never printed.

mod backend;
mod cases;
mod ceiling;
mod fleet;
mod flood;
mod inputs;
mod prefill;
mod profile;
mod propagation;
mod report;
mod sanity;
mod wrk;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use backend::Backend;
use report::{Row, Skipped};

/// How big the run is.
pub struct Sizes {
    users: usize,
    tokens: usize,
    /// Renewable pairs per wrk thread and per run (warm-up, measured).
    pairs_per_thread: usize,
    /// `-d` of the measured run, in seconds.
    duration_s: u32,
    /// `-d` of the warm-up run; `None`: no warm-up.
    warmup_s: Option<u32>,
    /// Revocations timed by the propagation case.
    revocations: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                users: 100,
                tokens: 2_000,
                pairs_per_thread: 100,
                duration_s: 1,
                warmup_s: None,
                revocations: 20,
            }
        } else {
            Sizes {
                users: 1_000,
                tokens: 100_000,
                pairs_per_thread: 200,
                duration_s: 10,
                // Long enough for the check's warm-up to present each of
                // the 100,000 tokens once, even with the cache cold.
                warmup_s: Some(5),
                revocations: 200,
            }
        }
    }

    /// The runs that use renewal pairs (each needs pairs of its own: a pair
    /// rotated by one wrk process is spent for the next).
    fn renew_runs(&self) -> Vec<&'static str> {
        if self.warmup_s.is_some() {
            vec!["warmup", "measured"]
        } else {
            vec!["measured"]
        }
    }
}

/// What the HTTP part produced, for the report.
pub struct HttpReport {
    /// Rows and skips, as JSON for `report.json`.
    pub json: Value,
}

/// What `cargo xtask bench` asked of the HTTP part.
pub struct Options {
    /// Short runs on a small store (the CI smoke run).
    pub quick: bool,
    /// Sample the server with `perf record` during the measured valid-check
    /// run, and write `perf report`'s flat profile under `target/bench/`.
    pub profile: bool,
    /// Only these backends (empty: all four).
    pub backends: Vec<String>,
}

/// Runs the HTTP benchmark. Unavailable pieces (wrk, a backend) are SKIPPED,
/// never a failure (but an unreachable backend is one under CI); a server
/// that answers the sanity requests wrongly is.
pub fn run(options: &Options, target_dir: &Path, cargo: Command) -> Result<HttpReport, String> {
    let sizes = Sizes::new(options.quick);
    println!();
    println!("== HTTP load (wrk) ==");
    let settings = json!({
        "threads": wrk::THREADS,
        "connections": wrk::CONNECTIONS,
        "duration_s": sizes.duration_s,
        "warmup_s": sizes.warmup_s,
        "users": sizes.users,
        "tokens": sizes.tokens,
    });
    if !wrk::available() {
        println!("SKIPPED: `wrk` is not installed (Debian/Ubuntu: `apt-get install wrk`).");
        let skipped = [Skipped {
            backend: "all",
            reason: "wrk is not installed".into(),
        }];
        return Ok(HttpReport {
            json: report::json(settings, &[], &[], &[], &skipped),
        });
    }
    build_release(cargo)?;
    let binary = target_dir.join("release").join("tessera");
    let ceiling = target_dir.join("release").join("ceiling");
    for b in [&binary, &ceiling] {
        if !b.is_file() {
            return Err(format!("{} was not built", b.display()));
        }
    }
    let work = target_dir.join("bench").join("http");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    wrk::write_scripts(&work)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;

    let mut rows = Vec::new();
    let mut moved = Vec::new();
    let mut spread = Vec::new();
    let mut skipped = Vec::new();
    let mut failure = None;
    for name in ["sqlite", "postgres", "redis", "redis-cluster"] {
        if !options.backends.is_empty() && !options.backends.iter().any(|b| b == name) {
            continue;
        }
        let backend = match rt.block_on(Backend::open(name)) {
            Ok(b) => b,
            // Under CI every backend must be measured, as the test suites
            // must run (the same rule: `testkit::backends_required`).
            Err(reason) if tessera_testsupport::backends_required() => {
                return Err(format!("{name} is unreachable under CI: {reason}"));
            }
            Err(reason) => {
                println!("{name}: SKIPPED ({reason})");
                skipped.push(Skipped {
                    backend: name,
                    reason,
                });
                continue;
            }
        };
        let dir = work.join(name);
        let setup = cases::Setup {
            binary: &binary,
            ceiling: &ceiling,
            scripts: &work,
            dir: &dir,
            profile: options
                .profile
                .then(|| target_dir.join("bench").join(format!("profile-{name}"))),
        };
        let outcome = fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| measure(&rt, &backend, &sizes, &setup));
        rt.block_on(backend.close());
        let _ = fs::remove_dir_all(&dir);
        match outcome {
            Ok((mut r, m, f)) => {
                rows.append(&mut r);
                moved.push(m);
                spread.push(f);
            }
            Err(e) => {
                println!("{name}: FAILED: {e}");
                failure = Some(format!("HTTP benchmark on {name}: {e}"));
            }
        }
    }
    report::print_table(&rows, &skipped);
    report::print_propagation(&moved);
    report::print_fleet(&spread);
    if let Some(f) = failure {
        return Err(f);
    }
    Ok(HttpReport {
        json: report::json(settings, &rows, &moved, &spread, &skipped),
    })
}

/// [`cases::measure`], a panic (a request that got no answer) as an error.
fn measure(
    rt: &tokio::runtime::Runtime,
    backend: &Backend,
    sizes: &Sizes,
    setup: &cases::Setup,
) -> Result<(Vec<Row>, propagation::Propagation, fleet::FleetFigures), String> {
    catch_unwind(AssertUnwindSafe(|| {
        cases::measure(rt, backend, sizes, setup)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {what}"))
    })
}

/// `cargo build --release -p tessera-server --all-features -p ceiling`: one
/// build, so that the bare ceiling links the very warp, hyper and tokio
/// (features unified) that `tessera` does.
fn build_release(mut c: Command) -> Result<(), String> {
    c.args([
        "build",
        "--release",
        "-p",
        "tessera-server",
        "--all-features",
        "-p",
        "ceiling",
    ]);
    eprintln!("xtask: running {c:?}");
    let status = c
        .status()
        .map_err(|e| format!("cannot start the release build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the release build failed with {status}"))
    }
}
