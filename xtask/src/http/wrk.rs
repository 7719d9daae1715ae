//! The load generator: `wrk` runs, its Lua scripts, and reading its report.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// wrk's threads (fixed: the Lua scripts hand each its own slice).
pub const THREADS: usize = 2;
/// wrk's connections.
pub const CONNECTIONS: usize = 64;

/// The Lua scripts, written next to the run's files: `/auth/check` with a
/// random line of a file; renewals from per-thread queues of pairs;
/// creations with a session.
const SCRIPTS: &[(&str, &str)] = &[
    ("check.lua", include_str!("lua/check.lua")),
    ("renew.lua", include_str!("lua/renew.lua")),
    ("create.lua", include_str!("lua/create.lua")),
];

/// One case's figures, parsed from wrk's output.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkFigures {
    /// `Requests/sec:`.
    pub requests_per_sec: f64,
    /// The `50%` latency line, in microseconds.
    pub p50_us: f64,
    /// The `99%` latency line, in microseconds.
    pub p99_us: f64,
    /// `N requests in …`.
    pub requests: u64,
    /// `Non-2xx or 3xx responses:` (0 when the line is absent).
    pub non_2xx: u64,
    /// Sum of `Socket errors:` (connect, read, write, timeout).
    pub socket_errors: u64,
}

/// Whether `wrk` can be started.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Writes the Lua scripts into `dir`.
pub fn write_scripts(dir: &Path) -> Result<(), String> {
    for (name, text) in SCRIPTS {
        let p = dir.join(name);
        fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}

/// Runs wrk once against `url` for `secs` seconds, with an optional script
/// and its arguments; its report.
pub fn run(url: &str, script: Option<&Path>, args: &[String], secs: u32) -> Result<String, String> {
    run_shaped(url, script, args, secs, THREADS, CONNECTIONS)
}

/// [`run`] with `threads` threads and `connections` connections.
pub fn run_shaped(
    url: &str,
    script: Option<&Path>,
    args: &[String],
    secs: u32,
    threads: usize,
    connections: usize,
) -> Result<String, String> {
    let mut c = Command::new("wrk");
    c.args([
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{secs}s"),
        "--latency".into(),
    ]);
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    c.arg(url);
    if !args.is_empty() {
        c.arg("--").args(args);
    }
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

/// Parses wrk's report (run with `--latency`).
pub fn parse(text: &str) -> Result<WrkFigures, String> {
    let mut rps = None;
    let (mut p50, mut p99, mut requests) = (None, None, None);
    let (mut non_2xx, mut socket_errors) = (0u64, 0u64);
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = t.strip_prefix("50%") {
            p50 = parse_duration_us(v.trim());
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = parse_duration_us(v.trim());
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
        } else if t.contains(" requests in ") {
            requests = t.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    match (rps, p50, p99) {
        (Some(requests_per_sec), Some(p50_us), Some(p99_us)) => Ok(WrkFigures {
            requests_per_sec,
            p50_us,
            p99_us,
            requests: requests.unwrap_or(0),
            non_2xx,
            socket_errors,
        }),
        _ => Err(format!("cannot read wrk's report:\n{text}")),
    }
}

/// A wrk duration (`635.91us`, `1.00ms`, `2.10s`, `1.00m`) in microseconds.
fn parse_duration_us(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.trim().parse().ok()?;
    let factor = match unit.trim() {
        "ns" => 0.001,
        "us" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "m" => 60_000_000.0,
        "h" => 3_600_000_000.0,
        _ => return None,
    };
    Some(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_report() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.02ms  500.00us  20.00ms   90.00%\n    Req/Sec    30.00k     2.00k   35.00k    70.00%\n  Latency Distribution\n     50%  635.91us\n     75%  712.34us\n     90%    1.00ms\n     99%    2.43ms\n  600000 requests in 10.00s, 60.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 12\nRequests/sec:  60000.50\nTransfer/sec:      6.00MB\n";
        let f = parse(text).unwrap();
        assert_eq!(f.requests_per_sec, 60000.5);
        assert!((f.p50_us - 635.91).abs() < 1e-9);
        assert!((f.p99_us - 2430.0).abs() < 1e-9);
        assert_eq!(f.requests, 600000);
        assert_eq!(f.non_2xx, 12);
        assert_eq!(f.socket_errors, 5);
        assert!(parse("nonsense").is_err());
    }
}
