//! `cargo xtask bench [--quick] [--http-only] [--backend NAME]… [--profile]`:
//! the criterion benchmarks, a table of their medians against the
//! project's targets, then the HTTP part ([`crate::http`]); all of it
//! written to `target/bench/report.json`. Nothing fails because of a figure.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::{cargo, git_revision, http, run_command, target_dir};

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
pub fn run(args: &[String]) -> Result<(), String> {
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
            if !["sqlite", "postgres", "redis", "redis-cluster"].contains(&name.as_str()) {
                return Err(format!(
                    "--backend {name}: expected sqlite, postgres, redis or redis-cluster"
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
    run_command(c)
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
