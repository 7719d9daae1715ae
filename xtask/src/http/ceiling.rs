//! The bare ceiling: the `ceiling` binary (`xtask/ceiling`: warp answering
//! `ok` at `/`, built in the same `cargo build --release` as `tessera`, so
//! with the same warp, hyper and tokio), started beside each backend's
//! server so that every case can be divided by what the HTTP stack alone
//! answers in the same run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `ceiling`; killed when dropped.
pub struct Ceiling {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl Ceiling {
    /// Starts `binary` on a free loopback port and waits for the address it
    /// prints once it listens.
    pub fn start(binary: &Path) -> Result<Ceiling, String> {
        let mut child = Command::new(binary)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let base = line.trim();
        if !matches!(read, Some(Ok(n)) if n > 0) || !base.starts_with("http://") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the ceiling printed no address ({line:?})"));
        }
        Ok(Ceiling {
            url: format!("{base}/"),
            child,
        })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
