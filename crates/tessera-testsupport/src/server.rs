//! `tessera serve` as a child process on a random port: ready when it prints
//! the line saying where it listens (never a fixed sleep), its standard error
//! kept for the test, killed when dropped.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::client::Client;
use crate::process;
use crate::store::StoreFixture;

/// How long a server may take to say it listens.
const START_WITHIN: Duration = Duration::from_secs(60);

/// The line `tessera serve` prints once it accepts connections.
const LISTENING: &str = "tessera listening on ";

/// A `tessera serve` to start: the binary, the store, extra arguments and
/// environment.
pub struct Launch {
    cmd: Command,
    store: &'static str,
    admin_password: Option<String>,
    keep: Option<usize>,
}

impl Launch {
    /// `binary serve --listen 127.0.0.1:0 --store <url> <store args>`.
    pub fn new(binary: impl AsRef<OsStr>, store: &StoreFixture) -> Launch {
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", &store.url])
            .args(&store.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Launch {
            cmd,
            store: store.name,
            admin_password: None,
            keep: None,
        }
    }

    /// More arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Launch {
        self.cmd.args(args);
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable the process would inherit.
    pub fn env_remove(mut self, key: &str) -> Launch {
        self.cmd.env_remove(key);
        self
    }

    /// `TESSERA_ADMIN_PASSWORD` (the admin a first start creates), also
    /// kept for [`Client::admin`].
    pub fn admin_password(mut self, password: &str) -> Launch {
        self.cmd.env("TESSERA_ADMIN_PASSWORD", password);
        self.admin_password = Some(password.to_string());
        self
    }

    /// Keeps only the last `n` lines of the log (a server under load logs
    /// every request); all of them otherwise.
    pub fn keep_log_lines(mut self, n: usize) -> Launch {
        self.keep = Some(n);
        self
    }

    /// Starts it and waits until it listens; the error holds its log.
    pub fn start(mut self) -> Result<Server, String> {
        let mut child = self
            .cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", self.cmd.get_program()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let (sink, keep) = (log.clone(), self.keep);
        // Drains the log for as long as the process runs.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let listening = line.strip_prefix(LISTENING).map(|a| a.trim().to_string());
                if let Ok(mut l) = sink.lock() {
                    if keep.is_some_and(|n| l.len() >= n) {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
                // After the line is in the log, so a caller sees what came before.
                if let Some(base) = listening {
                    let _ = tx.send(base);
                }
            }
        });
        let base = match rx.recv_timeout(START_WITHIN) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "tessera did not start on {}: {}",
                    self.store,
                    join(&log)
                ));
            }
        };
        let mut client = Client::new(&base);
        client.admin_password = self.admin_password;
        Ok(Server { child, client, log })
    }
}

fn join(log: &Mutex<VecDeque<String>>) -> String {
    log.lock()
        .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A running `tessera serve`, killed when dropped. It derefs to its
/// [`Client`], so `server.check(…)` is a request to it.
pub struct Server {
    child: Child,
    client: Client,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Deref for Server {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Waits (bounded) for the process to exit; its status, if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        process::wait_within(&mut self.child, within)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub fn stop(mut self) {
        process::terminate(&mut self.child, Duration::from_secs(10));
    }

    /// The log so far (standard error), one string.
    pub fn log_text(&self) -> String {
        join(&self.log)
    }

    /// The log so far, line by line.
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Sends `sig` (`-TERM`, `-STOP`, …) to process `pid`; panics if `kill` fails.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}
