//! Project tasks, run as `cargo xtask <task>`:
//!
//! * `test` — the whole test suite, as CI runs it (`cargo test --workspace`
//!   with every backend feature), then a summary line;
//! * `bench [--quick]` — the criterion benchmarks, then a table of medians
//!   against the project's targets, then HTTP load with `wrk` against a
//!   release `tessera` on each reachable backend (see [`http`]); both are
//!   written as JSON under `target/bench/`.
//!   Benchmarks measure; nothing here fails because of a figure.
//!
//! * `fleet --store URL [--nodes N]` — N `tessera` nodes over one store
//!   behind nginx, round-robin, for a person to try (see [`fleet`]).
//!
//! Modules: [`test`] (the run and its summary), [`bench`] (criterion and the
//! report), [`http`] (the load), [`fleet`] (the nodes and their balancer).

mod bench;
mod fleet;
mod http;
mod test;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fleet") => fleet::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test [-- <cargo test args>]\n       cargo xtask bench [--quick] [--http-only] [--backend NAME]... [--profile]\n       cargo xtask fleet --store URL [--nodes N] [--release] [-- <tessera serve args>]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// `cargo` (the one running xtask), started in the workspace root.
pub fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `c`, echoing it; fails unless it succeeds.
pub fn run_command(mut c: Command) -> Result<(), String> {
    eprintln!("xtask: running {c:?}");
    let status = c.status().map_err(|e| format!("cannot start {c:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed with {status}"))
    }
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// The checkout's short commit hash, or `unknown`.
pub fn git_revision() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
