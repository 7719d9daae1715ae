//! `cargo xtask test`: every crate's tests with every backend compiled in,
//! then one closing line adding up the run:
//! `tests: N passed, N failed, N skipped`.
//!
//! A test whose service or tool is missing passes after printing a line
//! `SKIPPED: <reason>` (`tessera_core::testkit::skip`; under CI it fails
//! instead). Such a test is counted as skipped, not passed: the run asks
//! libtest for the output of passing tests (`--show-output`) and reads
//! which of them printed a line starting `SKIPPED: `. Ignored tests count as skipped too.
//! (With `-- --nocapture` nothing is captured, so none can be told apart.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use tessera_testsupport::cluster::{self, RedisCluster};

/// Runs the suites; fails if cargo does. Starts a Redis Cluster for them
/// first (three masters, a replica each, on free loopback ports; stopped and
/// removed afterwards), unless `TESSERA_TEST_REDIS_CLUSTER_URL` names one;
/// without `redis-server` the Cluster suites say SKIPPED (fail under CI).
pub fn run(extra: &[String]) -> Result<(), String> {
    let mut c = crate::cargo();
    let _cluster = if std::env::var_os(cluster::URL_VAR).is_some() {
        None
    } else {
        match RedisCluster::start(1) {
            Ok(cluster) => {
                eprintln!("xtask: a Redis Cluster for the suites at {}", cluster.url());
                c.env(cluster::URL_VAR, cluster.url());
                Some(cluster)
            }
            Err(why) => {
                eprintln!("xtask: no Redis Cluster for the suites: {why}");
                None
            }
        }
    };
    // Every suite runs even after one fails, so a run reports all failures.
    c.args(["test", "--workspace", "--all-features", "--no-fail-fast"]);
    c.args(with_show_output(extra));
    c.stdout(Stdio::piped());
    eprintln!("xtask: running {c:?}");
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;
    let mut summary = Summary::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(shown) = summary.read(&line) {
                println!("{shown}");
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    println!();
    if !summary.skipped.is_empty() {
        println!("SKIPPED (a service or tool is missing):");
        for name in &summary.skipped {
            println!("    {name}");
        }
    }
    println!("{}", summary.line());
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed with {status}"))
    }
}

/// `extra` with `--show-output` among the harness's arguments (after `--`).
fn with_show_output(extra: &[String]) -> Vec<String> {
    let mut args = extra.to_vec();
    if !args.iter().any(|a| a == "--") {
        args.push("--".into());
    }
    args.push("--show-output".into());
    args
}

/// Which part of a test binary's report a line is in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// The test lines, the result line.
    #[default]
    Tests,
    /// After `successes:`: the output of passing tests, then their names.
    Successes,
    /// After `failures:`.
    Failures,
}

/// The totals of a run, read from libtest's output line by line.
#[derive(Debug, Default)]
pub struct Summary {
    /// Passed and did not say SKIPPED.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Ignored, or passed after saying SKIPPED.
    pub skipped_total: u64,
    /// The tests that said SKIPPED (a line starting `SKIPPED: `), by name.
    pub skipped: Vec<String>,
    section: Section,
    /// The test whose output is being read (successes only).
    current: Option<String>,
    /// Tests of the current binary that said SKIPPED.
    said_skipped: BTreeSet<String>,
    /// Lines already shown for the current test (the reason comes on stdout
    /// and stderr).
    shown: BTreeSet<String>,
}

impl Summary {
    /// Takes in one line of output; what to print of it, if anything (the
    /// output of passing tests is left out, except their SKIPPED lines).
    pub fn read(&mut self, line: &str) -> Option<String> {
        if let Some(rest) = line.strip_prefix("test result: ") {
            let skipped_here = self.said_skipped.len() as u64;
            self.passed += count(rest, "passed").saturating_sub(skipped_here);
            self.failed += count(rest, "failed");
            self.skipped_total += count(rest, "ignored") + skipped_here;
            self.skipped.extend(std::mem::take(&mut self.said_skipped));
            self.section = Section::Tests;
            self.current = None;
            return Some(line.to_string());
        }
        match line {
            "successes:" => {
                self.section = Section::Successes;
                self.current = None;
                return None;
            }
            "failures:" => {
                self.section = Section::Failures;
                self.current = None;
                return Some(line.to_string());
            }
            _ => {}
        }
        if self.section != Section::Successes {
            return Some(line.to_string());
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.current = Some(name.to_string());
            self.shown.clear();
            return None;
        }
        let name = self.current.as_ref()?;
        if !line.starts_with("SKIPPED: ") {
            return None;
        }
        self.said_skipped.insert(name.clone());
        self.shown
            .insert(line.to_string())
            .then(|| format!("{name}: {line}"))
    }

    /// The closing line.
    pub fn line(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped_total
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two binaries as libtest prints them with `--show-output`: a test
    /// that said SKIPPED (on stdout and stderr), one that printed something
    /// else, an ignored one, a failure that said SKIPPED before failing.
    const OUTPUT: &str = "\
running 3 tests
test a_store_suite ... ok
test noisy ... ok
test slow ... ignored

successes:

---- a_store_suite stdout ----
SKIPPED: Redis at redis://127.0.0.1:6379 unreachable: refused
SKIPPED: Redis at redis://127.0.0.1:6379 unreachable: refused

---- noisy stdout ----
checked 12 triples
  SKIPPED is a word this test prints indented, not at the start

successes:
    a_store_suite
    noisy

test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 2 tests
test fine ... ok
test broken ... FAILED

successes:

successes:
    fine

failures:

---- broken stdout ----
SKIPPED: nginx not installed
thread 'broken' panicked at tests/x.rs:1:1

failures:
    broken

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    #[test]
    fn a_test_that_said_skipped_counts_as_skipped() {
        let mut s = Summary::default();
        let shown: Vec<String> = OUTPUT.lines().filter_map(|l| s.read(l)).collect();
        assert_eq!(s.line(), "tests: 2 passed, 1 failed, 2 skipped");
        assert_eq!(s.skipped, ["a_store_suite"]);
        // A passing test's output is left out, but for its SKIPPED lines (once).
        assert!(!shown.iter().any(|l| l.contains("checked 12")));
        let said: Vec<&String> = shown.iter().filter(|l| l.contains("unreachable")).collect();
        assert_eq!(said.len(), 1, "{shown:?}");
        assert!(said[0].starts_with("a_store_suite: SKIPPED: Redis"));
        // A failure's output is shown whole.
        assert!(shown.iter().any(|l| l.contains("panicked")));
        assert!(shown.iter().any(|l| l == "SKIPPED: nginx not installed"));
    }

    #[test]
    fn show_output_goes_to_the_harness() {
        assert_eq!(with_show_output(&[]), ["--", "--show-output"]);
        let extra = ["-p".to_string(), "x".into(), "--".into(), "--exact".into()];
        assert_eq!(
            with_show_output(&extra),
            ["-p", "x", "--", "--exact", "--show-output"]
        );
    }
}
