//! Waiting for child processes with a deadline (polled, never a fixed sleep).

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child` to exit, polling, for at most `within`; its status,
/// or `None` when it is still running.
pub fn wait_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_within`], killing (and reaping) `child` when it has not exited
/// in time; `None` then.
pub fn wait_or_kill(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let status = wait_within(child, within);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Stops `child` the way a service manager would: SIGTERM, then SIGKILL if
/// it has not exited `within`.
pub fn terminate(child: &mut Child, within: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    wait_or_kill(child, within);
}
