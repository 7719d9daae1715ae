//! `--profile`: `perf record` attached to the server for one case (a flat
//! profile, sampled at 999 Hz on the CPU clock, which works where hardware
//! counters are not exposed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A recording in progress.
pub struct Sampler {
    child: Child,
    data: PathBuf,
    report: PathBuf,
}

impl Sampler {
    /// Starts recording process `pid`, into `out` with the extensions
    /// `.data` (samples) and `.txt` (the report).
    pub fn start(pid: u32, out: &Path) -> Result<Sampler, String> {
        let data = out.with_extension("data");
        let report = out.with_extension("txt");
        let child = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-o"])
            .arg(&data)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("--profile needs perf (apt-get install linux-perf): {e}"))?;
        Ok(Sampler {
            child,
            data,
            report,
        })
    }

    /// Stops the recording (SIGINT, as perf expects) and writes the report.
    pub fn finish(mut self) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", "dso,symbol"])
            .args(["--percent-limit", "0.3", "-g", "none", "-i"])
            .arg(&self.data)
            .output()
            .map_err(|e| format!("cannot run perf report: {e}"))?;
        // perf pads its columns for a terminal: trim every line.
        let text: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().trim_end_matches(['-', ' ']).to_string() + "\n")
            .collect();
        fs::write(&self.report, text)
            .map_err(|e| format!("cannot write {}: {e}", self.report.display()))?;
        println!(
            "profile written to {} (raw samples: {})",
            self.report.display(),
            self.data.display()
        );
        Ok(())
    }
}
