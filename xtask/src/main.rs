//! Project tasks, run as `cargo xtask <task>`:
//!
//! * `test` — the whole test suite, as CI runs it (`cargo test --workspace`
//!   with every backend feature), then a summary line;
//! * `bench [--quick]` — the criterion benchmarks, then a table of medians
//!   against the project's targets, then HTTP load with `wrk` against a
//!   release `tessera` on each reachable backend (see [`http`]); both are
//!   written as JSON under `target/bench/`.
//!   Benchmarks measure; nothing here fails because of a figure.

mod http;

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::{json, Value};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test [-- <cargo test args>]\n       cargo xtask bench [--quick] [--http-only] [--backend NAME]... [--profile]");
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
fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut c: Command) -> Result<(), String> {
    eprintln!("xtask: running {c:?}");
    let status = c.status().map_err(|e| format!("cannot start {c:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed with {status}"))
    }
}

/// `cargo xtask test`: every crate's tests with every backend compiled in,
/// then one closing line adding up every `test result:` line of the run.
fn test(extra: &[String]) -> Result<(), String> {
    let mut c = cargo();
    // Every suite runs even after one fails, so a run reports all failures.
    c.args(["test", "--workspace", "--all-features", "--no-fail-fast"]);
    c.args(extra);
    c.stdout(Stdio::piped());
    eprintln!("xtask: running {c:?}");
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| e.to_string())?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count(rest, "passed");
                failed += count(rest, "failed");
                ignored += count(rest, "ignored");
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    println!();
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed with {status}"))
    }
}

/// The number before `label` in the rest of a `test result:` line
/// (`ok. 12 passed; 0 failed; 1 ignored; …`).
fn count(rest: &str, label: &str) -> u64 {
    let rest = rest.split_once(". ").map_or(rest, |(_, r)| r);
    rest.split(';')
        .find_map(|part| part.trim().strip_suffix(label))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// One benchmark figure and the target it is held against.
struct Figure {
    /// Criterion's id: `group/name`.
    id: &'static str,
    /// What it measures, for the table.
    what: &'static str,
    /// Target median in nanoseconds, if there is one.
    target_ns: Option<f64>,
}

const FIGURES: &[Figure] = &[
    Figure {
        id: "check/valid_all",
        what: "check, valid All token (MemoryStore)",
        target_ns: Some(1000.0),
    },
    Figure {
        id: "check/valid_custom_11_rules_2_ips",
        what: "check, valid Custom token, 11 rules, 2 IP entries",
        target_ns: None,
    },
    Figure {
        id: "check/malformed",
        what: "check, malformed token (no store)",
        target_ns: Some(100.0),
    },
    Figure {
        id: "check/unknown",
        what: "check, well-formed unknown token",
        target_ns: None,
    },
    Figure {
        id: "parts/parse_and_digest",
        what: "part: parse + SHA-256",
        target_ns: None,
    },
    Figure {
        id: "parts/parse_malformed",
        what: "part: parse, refused by checksum",
        target_ns: None,
    },
    Figure {
        id: "parts/sha256_of_secret",
        what: "part: SHA-256 of a secret",
        target_ns: None,
    },
    Figure {
        id: "parts/normalise_path",
        what: "part: path normalisation",
        target_ns: None,
    },
    Figure {
        id: "parts/store_lookup",
        what: "part: MemoryStore look-up",
        target_ns: None,
    },
    Figure {
        id: "sqlite/check_valid",
        what: "SQLite: check, valid token",
        target_ns: None,
    },
    Figure {
        id: "sqlite/renew",
        what: "SQLite: renewal",
        target_ns: None,
    },
    Figure {
        id: "postgres/check_valid",
        what: "PostgreSQL: check, valid token",
        target_ns: None,
    },
    Figure {
        id: "postgres/renew",
        what: "PostgreSQL: renewal",
        target_ns: None,
    },
    Figure {
        id: "redis/check_valid",
        what: "Redis: check, valid token",
        target_ns: None,
    },
    Figure {
        id: "redis/renew",
        what: "Redis: renewal",
        target_ns: None,
    },
];

/// `cargo xtask bench [--quick] [--http-only] [--backend NAME]… [--profile]`
/// (`--http-only` skips the criterion part, whose rows then show n/a;
/// `--backend` limits the HTTP part to the backends named; `--profile`
/// samples the server with `perf` during the valid-check case).
fn bench(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let http_only = args.iter().any(|a| a == "--http-only");
    let mut options = http::Options {
        quick,
        profile: args.iter().any(|a| a == "--profile"),
        backends: Vec::new(),
    };
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        if a == "--backend" {
            let name = rest.next().ok_or("--backend needs a name")?;
            if !["sqlite", "postgres", "redis"].contains(&name.as_str()) {
                return Err(format!(
                    "--backend {name}: expected sqlite, postgres or redis"
                ));
            }
            options.backends.push(name.clone());
        }
    }
    // Start clean, so a case that did not run (a store that was unreachable)
    // shows as n/a rather than as an old figure.
    let _ = fs::remove_dir_all(target_dir().join("criterion"));
    if !http_only {
        criterion(quick)?;
    }
    let criterion = target_dir().join("criterion");
    let mut rows = Vec::new();
    println!();
    println!(
        "{:<52} {:>12} {:>10} {:>6}",
        "case", "median", "target", "met"
    );
    for f in FIGURES {
        let median = read_median(&criterion, f.id);
        let shown = median.map_or("n/a".to_string(), format_ns);
        let target = f
            .target_ns
            .map_or("-".to_string(), |t| format!("≤ {}", format_ns(t)));
        let met = match (median, f.target_ns) {
            (Some(m), Some(t)) => {
                if m <= t {
                    "yes"
                } else {
                    "NO"
                }
            }
            _ => "",
        };
        println!("{:<52} {:>12} {:>10} {:>6}", f.what, shown, target, met);
        rows.push(
            json!({"id": f.id, "what": f.what, "median_ns": median, "target_ns": f.target_ns}),
        );
    }
    let out_dir = target_dir().join("bench");
    fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    // The HTTP part: a failure (a wrong answer, not a missing service) is
    // reported after the report is written.
    let (http_json, http_error) = match http::run(&options, &target_dir(), cargo()) {
        Ok(r) => (r.json, None),
        Err(e) => (json!({"error": e}), Some(e)),
    };
    let report = json!({
        "quick": quick,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "git_revision": git_revision(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "criterion": rows,
        "http": http_json,
    });
    let path = out_dir.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "\nwritten to {}{}",
        path.display(),
        if quick {
            " (quick run: figures are rough)"
        } else {
            ""
        }
    );
    match http_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs every crate's criterion benchmarks.
fn criterion(quick: bool) -> Result<(), String> {
    let mut c = cargo();
    // Every crate's criterion benchmarks: the core's check, then each store.
    c.args(["bench", "--workspace", "--all-features", "--benches", "--"]);
    if quick {
        c.args([
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    } else {
        c.args(["--warm-up-time", "2", "--measurement-time", "5"]);
    }
    run(c)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/`).
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Criterion's median point estimate for `id`, in nanoseconds. A figure left
/// from an earlier run is not reported: criterion rewrites `new/` each run,
/// so the caller removes the whole directory first.
fn read_median(criterion: &Path, id: &str) -> Option<f64> {
    let text = fs::read_to_string(criterion.join(id).join("new").join("estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn format_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn git_revision() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
